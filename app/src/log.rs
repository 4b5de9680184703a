//! The log file: what each run of Coffer did, kept for when something went
//! wrong and a user (or whoever helps them) asks "what happened last night?".
//!
//! Lines go to `coffer.log` in the XDG state folder
//! (`~/.local/state/coffer/`), or `logs/` under the data folder where a
//! platform has no state folder. When `COFFER_DATA_DIR` is set they go to
//! `$COFFER_DATA_DIR/logs/`, so tests never write into a user's log. Before a
//! line would take the file past 1 MiB, `coffer.log` becomes `coffer.log.1`
//! (`.1` becomes `.2`, `.2` becomes `.3`, the oldest is dropped).
//!
//! This is the `log` crate's facade with a small hand-written sink: Coffer's
//! own lines are kept from info level up, other crates' (eframe, winit, …)
//! from warn level up. With `--verbose`, Coffer's info lines are also echoed
//! on stderr (warnings and errors are printed there by the CLI already).
//!
//! Messages embed labels, paths and errors read from disks, catalogs and
//! archives: every control and bidirectional formatting character in them is
//! escaped (`human::escape`), in the file and in the `--verbose` echo.
//!
//! Invariant: logging never fails or stops a command; a log that cannot be
//! written is reported once on stderr, then skipped; one event is one line,
//! with no control character but its final newline.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ::log::{Level, LevelFilter, Log, Metadata, Record};
use coffer_core::human;

/// Rotate before the file would grow past this.
const MAX_BYTES: u64 = 1024 * 1024;
/// Rotated files kept besides the current one.
const KEEP: u32 = 3;

/// Where the current log file is (it may not exist yet). The window's
/// "Show log" opens this.
pub fn log_file_path() -> PathBuf {
    log_dir().join("coffer.log")
}

fn log_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("COFFER_DATA_DIR") {
        return PathBuf::from(d).join("logs");
    }
    match directories::ProjectDirs::from("org", "Coffer", "coffer") {
        Some(p) => match p.state_dir() {
            Some(state) => state.to_path_buf(),
            None => p.data_local_dir().join("logs"),
        },
        // No home folder at all: still keep the log somewhere findable.
        None => std::env::temp_dir().join("coffer-logs"),
    }
}

/// Installs the logger for this process. `verbose` also echoes Coffer's
/// info lines on stderr. A second call changes nothing.
pub fn init(verbose: bool) {
    init_to(log_file_path(), verbose);
}

/// Installs the logger writing to `path` (tests point it into their world).
/// A second call changes nothing.
pub fn init_to(path: PathBuf, verbose: bool) {
    let logger = Logger {
        echo: verbose,
        sink: Mutex::new(Sink::new(path, MAX_BYTES, KEEP)),
    };
    if ::log::set_boxed_logger(Box::new(logger)).is_ok() {
        ::log::set_max_level(LevelFilter::Info);
    }
}

struct Logger {
    echo: bool,
    sink: Mutex<Sink>,
}

/// Whether a line of the log file was written by Coffer's own modules
/// (rather than by the toolkit: winit, eframe, egui, the portal), read
/// from its target (see [`format_line`]). A line that does not parse is
/// not Coffer's: Coffer writes every line in that form.
pub fn is_ours_line(line: &str) -> bool {
    line.split_once("] ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .is_some_and(|(target, _)| is_ours(target))
}

/// Coffer's own modules (the app is `coffer`, the library `coffer_core`).
fn is_ours(target: &str) -> bool {
    target == "coffer" || target.starts_with("coffer::") || target.starts_with("coffer_core")
}

impl Log for Logger {
    fn enabled(&self, meta: &Metadata) -> bool {
        if is_ours(meta.target()) {
            meta.level() <= Level::Info
        } else {
            meta.level() <= Level::Warn
        }
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        let line = format_line(&timestamp(), record.level(), record.target(), &msg);
        // A poisoned lock only means another thread panicked mid-write; the
        // sink holds no state that could be half-updated in a harmful way.
        match self.sink.lock() {
            Ok(mut sink) => sink.write_line(&line),
            Err(poisoned) => poisoned.into_inner().write_line(&line),
        }
        if self.echo && record.level() >= Level::Info && is_ours(record.target()) {
            eprintln!("coffer: {}", human::escape(&msg));
        }
    }

    fn flush(&self) {}
}

fn timestamp() -> String {
    // UTC: the local offset cannot be read safely once threads exist.
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One line of the file: `2026-11-23T13:40:00.123Z INFO  [4242] coffer::cli: message`.
/// Newlines and every other control inside the message (and the target,
/// which other crates name) are escaped so that one event is one line that
/// no terminal showing the file interprets.
fn format_line(ts: &str, level: Level, target: &str, msg: &str) -> String {
    format!(
        "{ts} {level:<5} [{}] {}: {}\n",
        std::process::id(),
        human::escape(target),
        human::escape(msg)
    )
}

/// Appends lines to a file, rotating it by size.
struct Sink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    failed: bool,
}

impl Sink {
    fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Sink {
        Sink {
            path,
            max_bytes,
            keep,
            failed: false,
        }
    }

    fn write_line(&mut self, line: &str) {
        if self.failed {
            return;
        }
        if let Err(e) = self.try_write(line) {
            self.failed = true;
            eprintln!(
                "coffer: cannot write the log {}: {e} (logging is off for this run)",
                self.path.display()
            );
        }
    }

    /// Opens the file for each line: lines are few, and this way a rotation
    /// done by another Coffer process (the window and the CLI may run at
    /// once) is followed at the next line instead of writing into `.1`.
    fn try_write(&self, line: &str) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let size = match fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            rotate(&self.path, self.keep)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // One write per line: with O_APPEND, lines of concurrent processes
        // do not interleave.
        f.write_all(line.as_bytes())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `log` → `log.1` → … → `log.{keep}`; the oldest falls off.
fn rotate(path: &Path, keep: u32) -> io::Result<()> {
    if keep == 0 {
        return fs::remove_file(path);
    }
    for n in (1..keep).rev() {
        match fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    fs::rename(path, numbered(path, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/coffer.log");
        let mut sink = Sink::new(path.clone(), 100, 3);
        // Each line is 40 bytes: two fit in 100, the third rotates.
        for i in 0..12 {
            sink.write_line(&format!("{i:02}{}\n", "x".repeat(37)));
        }
        assert!(!sink.failed);
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert!(read(path.clone()).starts_with("10"));
        assert_eq!(read(path.clone()).lines().count(), 2);
        assert!(read(numbered(&path, 1)).starts_with("08"));
        assert!(read(numbered(&path, 2)).starts_with("06"));
        assert!(read(numbered(&path, 3)).starts_with("04"));
        assert!(
            !numbered(&path, 4).exists(),
            "only three rotated files are kept"
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_still_lands_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coffer.log");
        let mut sink = Sink::new(path.clone(), 10, 3);
        sink.write_line("a line longer than ten bytes\n");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "a line longer than ten bytes\n"
        );
        assert!(
            !numbered(&path, 1).exists(),
            "an empty file is never rotated"
        );
    }

    #[test]
    fn an_unwritable_log_is_reported_once_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the log folder should be.
        let blocker = dir.path().join("logs");
        fs::write(&blocker, "").unwrap();
        let mut sink = Sink::new(blocker.join("coffer.log"), 100, 3);
        sink.write_line("one\n");
        assert!(sink.failed);
        sink.write_line("two\n");
    }

    #[test]
    fn lines_are_single_lines_with_level_and_target() {
        let l = format_line("T", Level::Warn, "coffer::cli", "two\nlines");
        assert!(l.starts_with("T WARN  ["), "{l}");
        assert!(l.ends_with("] coffer::cli: two\\nlines\n"), "{l}");
        let l = format_line("T", Level::Info, "coffer", "disk \"\u{1b}[2J\rx\u{202e}\"");
        assert!(
            l.ends_with("coffer: disk \"\\x1b[2J\\rx\\u{202e}\"\n"),
            "{l}"
        );
        assert_eq!(l.matches(|c: char| c.is_control()).count(), 1, "{l}");
        assert!(is_ours("coffer"));
        assert!(is_ours("coffer_core::sync"));
        assert!(!is_ours("coffer_other"));
        assert!(!is_ours("winit::platform"));
        assert!(is_ours_line(&format_line(
            "T",
            Level::Info,
            "coffer::gui::jobs",
            "Syncing Blue"
        )));
        assert!(!is_ours_line(&format_line(
            "T",
            Level::Warn,
            "winit::platform_impl::linux::x11",
            "XSETTINGS: coffer: nothing"
        )));
        assert!(!is_ours_line("garbage without a target"));
    }
}
