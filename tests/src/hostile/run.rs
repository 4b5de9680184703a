//! Running the real binary against hostile input: under a timeout, with its
//! address space capped, its output captured and judged.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::World;

/// The address-space cap (`ulimit -v`, KiB) every hostile command runs
/// under. With `MALLOC_ARENA_MAX=2` and four rayon threads a normal sync,
/// verify or restore of the small worlds used here needs about 50 MiB of
/// address space; 512 MiB leaves ten times that, and is still below what a
/// reader that loads a 512 MiB member or a 600 MiB name into memory needs.
pub const MEM_CAP_KIB: u64 = 512 * 1024;

/// A command that has not finished after this long counts as hung. Every
/// normal command of these small worlds finishes in well under a second with
/// the debug binary.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The timeout of the later commands of a case once one of them hung:
/// still far above what a normal command takes, and it keeps a case whose
/// every command hangs from costing a full timeout each.
pub const AFTER_HANG: Duration = Duration::from_secs(3);

/// Rayon threads of the binary under test. Each thread reserves a stack and
/// may get a malloc arena, so the address space a command needs grows with
/// the core count; fixing it keeps the cap meaningful on any CI machine.
pub const THREADS: &str = "4";

/// Most output kept per stream; the rest is read and dropped.
const KEEP: usize = 1 << 20;

/// One finished (or killed) command.
#[derive(Debug)]
pub struct Run {
    /// What ran, for messages (`coffer sync /x`).
    pub line: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Killed because it outlived its timeout.
    pub hung: bool,
    pub elapsed: Duration,
    /// The largest size (bytes) the watched folder reached while it ran.
    pub peak_watched: u64,
}

impl Run {
    /// Both streams, lossy, one after the other.
    pub fn output(&self) -> String {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// What happened, for a failure message: command, exit, time, and both
    /// streams with control characters made visible.
    pub fn describe(&self) -> String {
        let how = if self.hung {
            format!("HUNG (killed after {:.1} s)", self.elapsed.as_secs_f64())
        } else if let Some(s) = self.signal {
            format!(
                "killed by signal {s} after {:.1} s",
                self.elapsed.as_secs_f64()
            )
        } else {
            format!(
                "exit {} after {:.1} s",
                self.code.unwrap_or(-1),
                self.elapsed.as_secs_f64()
            )
        };
        format!(
            "`{}`: {how}\n      stdout: {}\n      stderr: {}",
            self.line,
            visible(&self.stdout),
            visible(&self.stderr)
        )
    }

    /// Why this run counts as a crash (panic, abort, signal, hang), if it does.
    pub fn crash(&self) -> Option<String> {
        let err = String::from_utf8_lossy(&self.stderr);
        if self.hung {
            return Some("hang: still running at the timeout".into());
        }
        if let Some(s) = self.signal {
            return Some(format!("killed by signal {s}"));
        }
        if err.contains("panicked") {
            return Some("panicked".into());
        }
        if err.contains("memory allocation of") {
            return Some("ran out of memory (allocation failed)".into());
        }
        // A read that stops only at the address-space cap: without the cap
        // it would have taken all the machine's memory.
        if self.output().to_lowercase().contains("out of memory") {
            return Some("ran out of memory (read until the address-space cap)".into());
        }
        match self.code {
            Some(101) => Some("exit 101 (a panic)".into()),
            Some(134) => Some("exit 134 (abort)".into()),
            Some(137) => Some("exit 137 (SIGKILL)".into()),
            Some(139) => Some("exit 139 (SIGSEGV)".into()),
            None => Some("no exit code".into()),
            _ => None,
        }
    }

    /// The first raw control character (other than newline and tab) in
    /// either stream, described with what surrounds it.
    pub fn control_chars(&self) -> Option<String> {
        for (name, s) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if let Some(i) = s
                .iter()
                .position(|&b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f)
            {
                let from = i.saturating_sub(40);
                let to = (i + 40).min(s.len());
                return Some(format!(
                    "raw control byte 0x{:02x} in {name} at byte {i}: …{}…",
                    s[i],
                    visible(&s[from..to])
                ));
            }
        }
        None
    }

    /// A line of output that starts with `prefix` (a forged line).
    pub fn line_starting_with(&self, prefix: &str) -> Option<String> {
        self.output()
            .lines()
            .find(|l| l.trim_start_matches(['\r', ' ']).starts_with(prefix))
            .map(str::to_string)
    }

    pub fn ok(&self) -> bool {
        !self.hung && self.code == Some(0)
    }
}

/// Bytes as text with every control character and invalid byte escaped,
/// cut to a readable length.
pub fn visible(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::new();
    for c in s.chars() {
        if out.len() > 3000 {
            out.push_str(" …(cut)");
            break;
        }
        match c {
            '\n' => out.push_str("⏎ "),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    if out.trim().is_empty() {
        "(empty)".into()
    } else {
        out
    }
}

/// How to run one command: the world whose environment it gets, a timeout,
/// and a folder whose size is sampled while it runs.
pub struct Runner<'a> {
    pub world: &'a World,
    pub exe: &'a Path,
    pub timeout: Duration,
    pub watch: Option<PathBuf>,
}

impl<'a> Runner<'a> {
    pub fn new(world: &'a World, exe: &'a Path) -> Runner<'a> {
        Runner {
            world,
            exe,
            timeout: TIMEOUT,
            watch: None,
        }
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn watch(mut self, folder: &Path) -> Self {
        self.watch = Some(folder.to_path_buf());
        self
    }

    /// Runs `coffer ARGS…` under the cap and the timeout.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        let line = format!(
            "coffer {}",
            args.iter()
                .map(|a| visible(a.as_encoded_bytes()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -v {MEM_CAP_KIB} || exit 99; exec \"$0\" \"$@\""
            ))
            .arg(self.exe)
            .args(&args);
        self.world.env(&mut cmd);
        // Temp files of a command that is killed at the timeout stay
        // behind: keep them inside the world, which goes when it does.
        let tmp = self.world.dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("create the world's temp folder");
        cmd.env("TMPDIR", &tmp)
            .env("MALLOC_ARENA_MAX", "2")
            .env("RAYON_NUM_THREADS", THREADS)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t0 = Instant::now();
        let mut child = cmd.spawn().expect("spawn sh for coffer");
        let out = child.stdout.take().map(collect);
        let err = child.stderr.take().map(collect);
        let mut hung = false;
        let mut peak = 0u64;
        let status = loop {
            if let Some(w) = &self.watch {
                peak = peak.max(size_of_tree(w));
            }
            match child.try_wait().expect("wait for coffer") {
                Some(s) => break s,
                None if t0.elapsed() > self.timeout => {
                    hung = true;
                    let _ = child.kill();
                    break child.wait().expect("reap coffer");
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let elapsed = t0.elapsed();
        if let Some(w) = &self.watch {
            peak = peak.max(size_of_tree(w));
        }
        let stdout = out
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = err
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert_ne!(
            status.code(),
            Some(99),
            "`ulimit -v {MEM_CAP_KIB}` failed in sh"
        );
        Run {
            line,
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
            hung,
            elapsed,
            peak_watched: peak,
        }
    }
}

/// Reads a stream to its end on a thread, keeping the first [`KEEP`] bytes.
fn collect(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

/// Bytes allocated to the files under `root` (sparse files count what they
/// hold), without following symlinks.
pub fn size_of_tree(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512)
        .sum()
}
