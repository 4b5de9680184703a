//! Shell completions and man pages, generated from the clap definitions so
//! they never drift from the parser. Packagers call the hidden commands
//! `coffer completions <shell>` and `coffer man [--out-dir DIR]`;
//! `scripts/gen-assets.sh` writes them into `target/assets/` for the `.deb`.
//!
//! Invariant: these commands only print or write the requested files; they
//! read no config and write no log (they run at build time).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;
use serde_json::{Value, json};

use super::Cli;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "coffer", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `coffer completions <shell>`: the script on stdout.
pub(super) fn completions_cmd(shell: Shell) -> anyhow::Result<(Value, String)> {
    let script = completions(shell);
    Ok((
        json!({"shell": shell.to_string(), "script": script}),
        script,
    ))
}

/// The command as the man pages describe it: no `help` subcommand (each
/// page already documents `--help`).
fn man_command() -> clap::Command {
    Cli::command().disable_help_subcommand(true)
}

/// Sections of coffer(1) that clap does not know about.
const MAN_EXTRA: &str = r#".SH FILES
.TP
\fI~/.config/coffer/\fR
The configuration: sources, exclusions, copies wanted
(\fB$COFFER_CONFIG_DIR\fR when set).
.TP
\fI~/.local/share/coffer/\fR
The workstation catalog of snapshots and copies (\fB$COFFER_DATA_DIR\fR when set).
.TP
\fI~/.local/state/coffer/coffer.log\fR
The log, rotated at 1 MiB into \fIcoffer.log.1\fR to \fIcoffer.log.3\fR
(\fI$COFFER_DATA_DIR/logs/\fR when \fBCOFFER_DATA_DIR\fR is set).
.TP
\fIcoffer/\fR on each backup disk
The disk's identity (\fIcoffer-disk.json\fR), its objects and two copies of the catalog.
.SH ENVIRONMENT
.TP
\fBCOFFER_CONFIG_DIR\fR, \fBCOFFER_DATA_DIR\fR
Use these folders instead of the XDG ones.
.TP
\fBCOFFER_BASEPATH\fR
The storage basepath that sources must lie under (default: the home folder).
.SH "EXIT STATUS"
.TP
\fB0\fR
Success.
.TP
\fB1\fR
Failure.
.TP
\fB2\fR
Usage error.
.TP
\fB3\fR
Incomplete: disk full, files skipped or unreadable, more disks needed.
.TP
\fB4\fR
The disk is in use by another Coffer process.
.TP
\fB130\fR
Cancelled.
.SH NOTES
Run \fBcoffer\fR with no arguments to open the window.
"#;

/// The roff source of coffer(1).
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(man_command());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    // The `after_help` text is replaced by the sections below.
    out.extend_from_slice(MAN_EXTRA.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Writes coffer(1) and a page per visible subcommand (coffer-sync(1), …)
/// into `dir`; returns the files written.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(man_command(), dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    // The generic main page is replaced by the one with FILES and EXIT STATUS.
    let main = dir.join("coffer.1");
    std::fs::write(&main, man_page()?)
        .with_context(|| format!("cannot write {}", main.display()))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("coffer") && n.ends_with(".1"))
        })
        .collect();
    pages.sort();
    Ok(pages)
}

/// `coffer man`: the page on stdout, or every page into `--out-dir`.
pub(super) fn man_cmd(args: super::ManArgs) -> anyhow::Result<(Value, String)> {
    match args.out_dir {
        None => {
            let page = String::from_utf8(man_page()?).context("man page is not UTF-8")?;
            Ok((json!({"page": page}), page))
        }
        Some(dir) => {
            let pages = write_man_pages(&dir)?;
            let text = format!("Wrote {} man pages into {}\n", pages.len(), dir.display());
            Ok((json!({"written": pages}), text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_name_the_subcommands() {
        // clap_complete also completes the hidden commands; harmless.
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = completions(shell);
            assert!(s.contains("sync") && s.contains("verify"), "{shell}: {s}");
        }
        assert!(completions(Shell::Bash).contains("complete -F _coffer"));
        assert!(completions(Shell::Zsh).starts_with("#compdef coffer"));
    }

    #[test]
    fn the_man_page_has_the_usual_sections() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.contains(".TH coffer 1"), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "SUBCOMMANDS",
            "FILES",
            "\"EXIT STATUS\"",
        ] {
            assert!(
                page.contains(&format!(".SH {section}")),
                "no {section} in:\n{page}"
            );
        }
        assert!(page.contains("coffer\\-sync(1)"), "{page}");
        assert!(!page.contains("coffer\\-help"), "{page}");
        assert!(!page.contains("coffer\\-man"), "{page}");
    }

    #[test]
    fn every_page_named_by_the_main_page_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for n in [
            "coffer.1",
            "coffer-sync.1",
            "coffer-source.1",
            "coffer-source-add.1",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|x| x.contains("help") || x.contains("completions"))
        );
        let main = std::fs::read_to_string(dir.path().join("coffer.1")).unwrap();
        assert!(main.contains(".SH FILES"));
    }
}
