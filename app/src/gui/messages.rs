//! Every text the window leaves after a job: results, refusals and errors,
//! built here from typed reports so that the views and tabs only show them
//! and the wording is tested without egui.
//!
//! Errors go through [`error_text`], which prints an error's chain of
//! causes once: several core errors put their cause in their message *and*
//! expose it as their source, so a plain chain print would repeat it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use coffer_core::archive::{self, RestoreReport};
use coffer_core::jobs::{SyncReport, VerifyReport};
use coffer_core::task::Outcome;
use coffer_core::{human, restore};

use super::jobs::Busy;
use super::shown_path;

/// A finished job's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub ok: bool,
    pub title: String,
    pub details: Vec<String>,
}

impl Message {
    /// A message that says something went wrong, with one line of detail.
    pub fn problem(title: &str, detail: String) -> Message {
        Message {
            ok: false,
            title: title.into(),
            details: vec![detail],
        }
    }

    /// A message that says something went through, with no detail.
    pub fn done(title: String) -> Message {
        Message {
            ok: true,
            title,
            details: Vec::new(),
        }
    }

    /// The job's warnings, appended: any warning makes the message one to
    /// look at.
    fn with_warnings(mut self, warnings: &[coffer_core::Warning]) -> Message {
        self.ok &= warnings.is_empty();
        self.details
            .extend(warnings.iter().map(ToString::to_string));
        self
    }
}

/// An error with its causes, each once: a cause whose text the message
/// already holds (core errors often embed their source) is not repeated.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !t.is_empty() && !text.contains(&t) {
            let _ = write!(text, ": {t}");
        }
        cause = c.source();
    }
    text
}

/// [`error_text`] of an `anyhow` error (its contexts and their causes).
pub fn anyhow_text(e: &anyhow::Error) -> String {
    error_text(e.as_ref())
}

/// Why a job cannot start now, in words; `label` names a disk by its
/// mount point.
pub fn busy_reason(busy: &Busy, label: impl Fn(&Path) -> String) -> String {
    match busy {
        Busy::Kind(k) => format!("A {} is already running", k.noun()),
        Busy::Disk { root, by } => format!(
            "Wait for the {} to end: it uses \"{}\"",
            by.noun(),
            label(root)
        ),
        Busy::Agent { root } => format!(
            "Coffer is working on \"{}\" in the background: wait for it to end",
            label(root)
        ),
    }
}

pub fn cancelled_message(title: &str) -> Message {
    Message::problem(
        title,
        "Everything copied before the cancel is kept and counted.".into(),
    )
}

pub fn failed_message(title: &str, e: &coffer_core::Error) -> Message {
    Message::problem(title, error_text(e))
}

/// The message a finished sync leaves: one disk's summary as the title, or
/// for several disks one line each.
pub fn sync_message(out: Outcome<SyncReport>) -> Message {
    let (value, warnings) = match out {
        Outcome::Completed { value, warnings } => (value, warnings),
        Outcome::Cancelled => return cancelled_message("Sync cancelled"),
        Outcome::Failed(e) => return failed_message("Sync failed", &e),
    };
    let mut problems = Vec::new();
    if let Some(a) = value.after.as_ref().filter(|a| !a.ok()) {
        problems.push(format!("The command after the sync failed ({})", a.why()));
    }
    for r in &value.disks {
        problems.extend(r.shortfall_message());
        if r.skipped_files > 0 {
            let skipped = format!(
                "{} could not be read now and were skipped",
                human::count(r.skipped_files, "file")
            );
            problems.push(if value.disks.len() > 1 {
                format!("{}: {skipped}", r.label)
            } else {
                skipped
            });
        }
    }
    let complete = value.disks.iter().all(coffer_core::sync::Report::complete);
    let (title, mut details) = match value.disks.as_slice() {
        [] => ("Scanned; no disk was synced".to_string(), Vec::new()),
        [r] => (disk_summary(r, "Sync of "), Vec::new()),
        all => (
            format!("Sync of {} disks done", all.len()),
            all.iter().map(|r| disk_summary(r, "")).collect(),
        ),
    };
    let ok = problems.is_empty() && complete;
    // "Copied 3602 files" after a scan of 4280 new ones: copies are of
    // contents, and the numbers would contradict each other unexplained.
    if let Some(scan) = &value.scan {
        let new = scan.added + scan.changed;
        let copied = value
            .disks
            .iter()
            .map(|r| r.copied_files)
            .max()
            .unwrap_or(0);
        if copied > 0 && copied < new {
            details.push(format!(
                "The scan found {}; files with the same content are copied once, so fewer copies were needed",
                human::count(new, "new or changed file")
            ));
        }
    }
    details.extend(problems);
    Message { ok, title, details }.with_warnings(&warnings)
}

/// "Sync of Blue done: copied …" (or with no `lead`, "Blue: copied …"),
/// or that the disk was up to date.
fn disk_summary(r: &coffer_core::sync::Report, lead: &str) -> String {
    if r.up_to_date {
        format!("{} {}", r.label, r.summary())
    } else if lead.is_empty() {
        format!("{}: {}", r.label, r.summary())
    } else {
        format!("{lead}{} done: {}", r.label, r.summary())
    }
}

/// What a plan deletes that the user may not expect: copies no kept
/// snapshot needs any more, old versions, and copies other disks keep
/// enough of (a damaged copy is replaced, never lost). Files (copies) and
/// bytes of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deletes {
    pub unneeded: (u64, u64),
    pub old: (u64, u64),
    pub redundant: (u64, u64),
}

impl Deletes {
    pub fn of(report: &coffer_core::sync::Report) -> Deletes {
        use coffer_core::plan::{DeleteReason, Step};
        let mut d = Deletes::default();
        for s in &report.plan.steps {
            if let Step::Delete { size, reason, .. } = s {
                let slot = match reason {
                    DeleteReason::Unreferenced => &mut d.unneeded,
                    DeleteReason::OldVersion => &mut d.old,
                    DeleteReason::Redundant => &mut d.redundant,
                    DeleteReason::Damaged => continue,
                };
                slot.0 += 1;
                slot.1 += size;
            }
        }
        d
    }

    pub fn any(&self) -> bool {
        self.unneeded.0 + self.old.0 + self.redundant.0 > 0
    }
}

/// How fast syncs copied lately (bytes a second), from the history: the
/// last ten syncs that copied at least 1 MB and took a second or more.
pub fn sync_rate(history: &[coffer_core::catalog::HistoryEntry]) -> Option<f64> {
    use coffer_core::catalog::JobEnd;
    let (mut bytes, mut secs) = (0u64, 0i64);
    for (b, s) in history
        .iter()
        .filter(|h| h.kind == "sync" && h.outcome == JobEnd::Completed && h.bytes >= 1_000_000)
        .filter_map(|h| Some((h.bytes, h.finished_at? - h.started_at)))
        .filter(|(_, s)| *s >= 1)
        .take(10)
    {
        bytes += b;
        secs += s;
    }
    (secs > 0).then(|| bytes as f64 / secs as f64)
}

/// What the plan says a sync will do, for its title: "111 files (344 MB)
/// to copy, about 35 s, 3 copies (1.2 GB) to delete", or that nothing is
/// to be copied. The time is said only when past syncs tell the speed.
pub fn estimate(reports: &[coffer_core::sync::Report], rate: Option<f64>) -> String {
    let (mut files, mut bytes, mut del, mut del_bytes) = (0, 0, 0, 0);
    for r in reports {
        files += r.plan.copy_files;
        bytes += r.plan.copy_bytes;
        let d = Deletes::of(r);
        del += d.unneeded.0 + d.old.0 + d.redundant.0;
        del_bytes += d.unneeded.1 + d.old.1 + d.redundant.1;
    }
    let copy = if files == 0 {
        "nothing new to copy".to_string()
    } else {
        let time = rate
            .filter(|r| *r > 0.0)
            .map(|r| {
                let secs = (bytes as f64 / r).ceil() as u64;
                format!(
                    ", about {}",
                    human::duration(std::time::Duration::from_secs(secs.max(1)))
                )
            })
            .unwrap_or_default();
        format!(
            "{} ({}) to copy{time}",
            human::count(files, "file"),
            human::bytes(bytes)
        )
    };
    if del == 0 {
        copy
    } else {
        format!(
            "{copy}, {} ({}) to delete",
            human::count(del, "copy"),
            human::bytes(del_bytes)
        )
    }
}

/// "Before this sync": for each disk whose plan deletes something, what it
/// copies and what it deletes, in words.
pub fn plan_question(reports: &[coffer_core::sync::Report]) -> Vec<String> {
    let mut out = Vec::new();
    for report in reports {
        let d = Deletes::of(report);
        if !d.any() {
            continue;
        }
        let (files, bytes) = (
            d.unneeded.0 + d.old.0 + d.redundant.0,
            d.unneeded.1 + d.old.1 + d.redundant.1,
        );
        let mut why = Vec::new();
        if d.unneeded.0 > 0 {
            why.push(format!(
                "{} ({}) that no kept snapshot needs any more",
                human::count(d.unneeded.0, "copy"),
                human::bytes(d.unneeded.1)
            ));
        }
        if d.old.0 > 0 {
            why.push(format!(
                "{} ({}) to make room (older snapshots will no longer be restorable from this disk)",
                human::count(d.old.0, "old version"),
                human::bytes(d.old.1)
            ));
        }
        if d.redundant.0 > 0 {
            why.push(format!(
                "{} ({}) to make room, whose files keep enough verified copies on other disks",
                human::count(d.redundant.0, "copy"),
                human::bytes(d.redundant.1)
            ));
        }
        out.push(format!(
            "{}: this sync will copy {} ({}) and delete {} ({}) from it: {}.",
            report.label,
            human::count(report.plan.copy_files, "file"),
            human::bytes(report.plan.copy_bytes),
            human::count(files, "copy"),
            human::bytes(bytes),
            why.join("; ")
        ));
    }
    out
}

pub fn verify_message(out: Outcome<VerifyReport>) -> Message {
    let (value, warnings) = match out {
        Outcome::Completed { value, warnings } => (value.report, warnings),
        Outcome::Cancelled => return cancelled_message("Verify cancelled"),
        Outcome::Failed(e) => return failed_message("Verify failed", &e),
    };
    Message {
        ok: value.bad.is_empty() && value.missing == 0,
        title: format!(
            "Verified {} objects ({}): {} bad, {} missing",
            value.checked,
            human::bytes(value.bytes),
            value.bad.len(),
            value.missing
        ),
        details: value
            .bad
            .iter()
            .map(|b| format!("{}: {}", b.hash, b.reason))
            .collect(),
    }
    .with_warnings(&warnings)
}

pub fn disk_ready_message(label: &str, root: &Path) -> Message {
    Message::done(format!("Disk \"{label}\" is ready at {}", root.display()))
}

/// The message a finished restore leaves: what was restored, then what
/// is still missing and which disk to plug in next.
pub fn restore_message(out: Outcome<restore::Report>) -> Message {
    let (r, warnings) = match out {
        Outcome::Completed { value, warnings } => (value, warnings),
        Outcome::Cancelled => return cancelled_message("Restore cancelled"),
        Outcome::Failed(e) => return restore_failed_message(&e),
    };
    let mut details = Vec::new();
    if r.already_done > 0 {
        details.push(format!(
            "{} already there",
            human::count(r.already_done, "file")
        ));
    }
    if !r.skipped_existing.is_empty() {
        details.push(format!(
            "Left {} untouched (choose \"Replace them\" to replace them): {}",
            human::count(r.skipped_existing.len() as u64, "existing path"),
            list(&r.skipped_existing)
        ));
    }
    if !r.renamed.is_empty() {
        let new: Vec<PathBuf> = r.renamed.iter().map(|(_, to)| to.clone()).collect();
        details.push(format!(
            "Restored {} under a new name beside what was there: {}",
            human::count(new.len() as u64, "file"),
            list(&new)
        ));
    }
    for b in &r.bad_copies {
        details.push(format!(
            "Damaged copy of {} on disk \"{}\"{}",
            shown_path(&b.path),
            b.disk,
            if b.quarantined {
                " (moved aside and removed from the catalog)"
            } else {
                ""
            }
        ));
    }
    if !r.complete() {
        details.push(format!(
            "{} ({}) still missing",
            human::count(r.missing_files, "file"),
            human::bytes(r.missing_bytes)
        ));
        for n in &r.plug_next {
            details.push(sentence(&restore::plug_in_next(n)));
        }
        if !r.unavailable.is_empty() {
            details.push(format!(
                "{} on no known disk: {}",
                human::count(r.unavailable.len() as u64, "file"),
                list(&r.unavailable)
            ));
        }
    }
    Message {
        ok: r.complete() && r.bad_copies.is_empty(),
        title: format!(
            "Restored {} ({}) into {} from the snapshot of {}",
            human::count(r.files, "file"),
            human::bytes(r.bytes),
            shown_path(&r.dest),
            human::time(r.snapshot_time)
        ),
        details,
    }
    .with_warnings(&warnings)
}

/// The message of a restore that failed. A restore refused before writing
/// (paths that exist, names that clash on FAT) says which of the window's
/// choices goes on, where the command line's text names its flags.
pub fn restore_failed_message(e: &coffer_core::Error) -> Message {
    let title = "Restore failed";
    let (first, listed): (String, Vec<String>) = match e {
        coffer_core::Error::Restore(restore::Error::Conflicts { paths }) => (
            format!(
                "Nothing was restored: {} in the destination. Choose \"Leave them as they are\" or \"Replace them\", or another folder.",
                if paths.len() == 1 {
                    "1 path to restore already exists".to_string()
                } else {
                    format!("{} paths to restore already exist", paths.len())
                }
            ),
            paths
                .iter()
                .map(|p| format!("Exists: {}", shown_path(p)))
                .collect(),
        ),
        coffer_core::Error::Restore(restore::Error::Collisions { names }) => (
            format!(
                "Nothing was restored: {} on this case-insensitive (FAT/exFAT) destination. Tick \"Rename clashing names\", or choose another folder.",
                if names.len() == 1 {
                    "1 name would clash or is invalid".to_string()
                } else {
                    format!("{} names would clash or are invalid", names.len())
                }
            ),
            names
                .iter()
                .map(|(p, why)| format!("{}: {why}", shown_path(p)))
                .collect(),
        ),
        other => return failed_message(title, other),
    };
    let mut details = vec![first];
    details.extend(listed.into_iter().take(50));
    Message {
        ok: false,
        title: title.into(),
        details,
    }
}

/// The message of a written archive.
pub fn archive_written_message(r: &archive::Report) -> Message {
    Message {
        ok: true,
        title: format!(
            "Archive {} written: {} entries, {} new, {} changed, {} deleted; {} compressed",
            r.sequence,
            r.entries,
            r.new_files,
            r.changed_files,
            r.deleted,
            human::bytes(r.compressed_bytes)
        ),
        details: r
            .files
            .iter()
            .map(|f| format!("Wrote {}", shown_path(f)))
            .collect(),
    }
}

/// The message of an archive whose every volume read back good.
pub fn archive_verified_message(name: &str, volumes: &[archive::VerifyReport]) -> Message {
    Message {
        ok: true,
        title: format!("Archive {name} is good"),
        details: volumes
            .iter()
            .map(|r| {
                format!(
                    "{}: good ({} members, {} of content)",
                    shown_path(&r.path),
                    r.members,
                    human::bytes(r.bytes)
                )
            })
            .collect(),
    }
}

/// The message of a restore from archive `name` that went through.
pub fn archive_restored_message(name: &str, dest: &Path, r: &RestoreReport) -> Message {
    let mut details: Vec<String> = r
        .read
        .iter()
        .map(|p| format!("Read {}", shown_path(p)))
        .collect();
    for d in &r.dumps {
        let mut line = format!("Dump \"{}\" is at {}", d.name, shown_path(&d.path));
        if let Some(l) = &d.load_command {
            let _ = write!(line, "; load it back with: {l} < {}", shown_path(&d.path));
        }
        details.push(line);
    }
    Message {
        ok: true,
        title: format!(
            "Restored {name} into {}: {} ({}), {}, {}",
            shown_path(dest),
            human::count(r.files, "file"),
            human::bytes(r.bytes),
            human::count(r.dirs, "folder"),
            human::count(r.symlinks, "symlink")
        ),
        details,
    }
}

/// The message of an archive job that failed. A restore refused because
/// files exist in the destination says what the window offers instead of
/// the command line's `--overwrite`.
pub fn archive_failed_message(title: &str, e: &coffer_core::Error) -> Message {
    let coffer_core::Error::Archive(archive::Error::Exists { paths }) = e else {
        return failed_message(title, e);
    };
    let mut details: Vec<String> = vec![format!(
        "Nothing was restored: {} of the paths to restore already exist in the destination. Tick \"Replace existing files\" to replace them, or choose another folder.",
        paths.len()
    )];
    details.extend(paths.iter().map(|p| format!("Exists: {}", shown_path(p))));
    Message {
        ok: false,
        title: title.into(),
        details,
    }
}

/// An archive job's outcome as a message: `done` words a success.
pub fn archive_message<T>(job: &str, out: Outcome<T>, done: impl FnOnce(T) -> Message) -> Message {
    match out {
        Outcome::Completed { value, warnings } => done(value).with_warnings(&warnings),
        Outcome::Cancelled => cancelled_message(&format!("{job} cancelled")),
        Outcome::Failed(e) => archive_failed_message(&format!("{job} failed"), &e),
    }
}

/// `s` with a capital first letter: a line of its own in the message.
fn sentence(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn list(paths: &[PathBuf]) -> String {
    let mut s: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| shown_path(p).into_owned())
        .collect();
    if paths.len() > 10 {
        s.push(format!("and {} more", paths.len() - 10));
    }
    s.join(", ")
}

#[cfg(test)]
mod tests;
