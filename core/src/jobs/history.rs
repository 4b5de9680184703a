//! Recording jobs in the catalog's history: every job a front end runs
//! through the job service (a sync, a verify, a scan, a restore, an
//! archive) is written down when it starts and when it ends, with the
//! front end that ran it, the disks it worked on, what it did and how it
//! ended.
//!
//! History is a record, not a part of the job: a history that cannot be
//! written (a catalog locked for too long, a full data disk) never stops or
//! fails the job it describes. A dry run changes nothing, so it is not
//! recorded.
//!
//! Invariant: every recorded job ends its row exactly once, whatever its
//! outcome (a panic included: the row is ended by the guard's drop).

use std::path::Path;

use crate::catalog::{Catalog, Ended, HistoryDisk, JobEnd};
use crate::config::Paths;
use crate::task::Progress;

/// Which front end ran a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontEnd {
    Window,
    Cli,
    Agent,
}

impl FrontEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            FrontEnd::Window => "window",
            FrontEnd::Cli => "cli",
            FrontEnd::Agent => "agent",
        }
    }

    /// In words, for the History tab and `coffer history`.
    pub fn words(s: &str) -> &'static str {
        match s {
            "window" => "the window",
            "cli" => "the command line",
            "agent" => "in the background",
            _ => "another Coffer",
        }
    }
}

/// The kinds of job the history knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Sync,
    Verify,
    Scan,
    Restore,
    /// Writing an archive.
    Archive,
    ArchiveVerify,
    ArchiveRestore,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Verify => "verify",
            JobKind::Scan => "scan",
            JobKind::Restore => "restore",
            JobKind::Archive => "archive",
            JobKind::ArchiveVerify => "archive-verify",
            JobKind::ArchiveRestore => "archive-restore",
        }
    }

    /// A recorded kind in words ("Sync", "Archive restore").
    pub fn words(s: &str) -> &'static str {
        match s {
            "sync" => "Sync",
            "verify" => "Verify",
            "scan" => "Scan",
            "restore" => "Restore",
            "archive" => "Archive",
            "archive-verify" => "Archive check",
            "archive-restore" => "Archive restore",
            _ => "Job",
        }
    }
}

/// What a job's result says for its history row: whether it did all it
/// should, how much it did, and one line of summary.
pub trait Summary {
    fn ended(&self) -> (bool, u64, u64, String);
}

impl Summary for super::SyncReport {
    fn ended(&self) -> (bool, u64, u64, String) {
        let files = self.disks.iter().map(|d| d.copied_files).sum();
        let bytes = self.disks.iter().map(|d| d.copied_bytes).sum();
        let mut parts: Vec<String> = self
            .disks
            .iter()
            .map(|d| format!("{}: {}", d.label, d.summary()))
            .collect();
        if parts.is_empty()
            && let Some(s) = &self.scan
        {
            parts.push(format!(
                "scanned {} ({}); no disk was synced",
                crate::human::count(s.files, "file"),
                crate::human::bytes(s.bytes)
            ));
        }
        (self.complete(), files, bytes, parts.join("; "))
    }
}

impl Summary for super::VerifyReport {
    fn ended(&self) -> (bool, u64, u64, String) {
        let r = &self.report;
        let good = r.bad.is_empty() && r.missing == 0 && r.strays.is_empty();
        (
            good,
            r.checked,
            r.bytes,
            format!("{}: {}", self.label, crate::verify::summary(r)),
        )
    }
}

impl<T: Summary> Summary for Vec<T> {
    fn ended(&self) -> (bool, u64, u64, String) {
        let mut out = (true, 0, 0, Vec::new());
        for e in self {
            let (ok, files, bytes, s) = e.ended();
            out.0 &= ok;
            out.1 += files;
            out.2 += bytes;
            out.3.push(s);
        }
        (out.0, out.1, out.2, out.3.join("; "))
    }
}

impl Summary for crate::scan::Report {
    fn ended(&self) -> (bool, u64, u64, String) {
        let text = if self.new_snapshot {
            format!(
                "snapshot {}: {} ({}); read {}",
                self.snapshot,
                crate::human::count(self.files, "file"),
                crate::human::bytes(self.bytes),
                crate::human::count(self.hashed_files, "file")
            )
        } else {
            format!("no changes since snapshot {}", self.snapshot)
        };
        (true, self.hashed_files, self.hashed_bytes, text)
    }
}

impl Summary for crate::restore::Report {
    fn ended(&self) -> (bool, u64, u64, String) {
        let mut text = format!(
            "restored {} ({}) into {}",
            crate::human::count(self.files, "file"),
            crate::human::bytes(self.bytes),
            crate::human::path(&self.dest)
        );
        if !self.complete() {
            text.push_str(&format!(
                "; {} still missing",
                crate::human::count(self.missing_files, "file")
            ));
        }
        (self.complete(), self.files, self.bytes, text)
    }
}

impl Summary for crate::archive::Report {
    fn ended(&self) -> (bool, u64, u64, String) {
        (
            true,
            self.new_files + self.changed_files,
            self.compressed_bytes,
            format!(
                "archive {} written: {} entries, {} compressed",
                self.sequence,
                self.entries,
                crate::human::bytes(self.compressed_bytes)
            ),
        )
    }
}

impl Summary for crate::archive::RestoreReport {
    fn ended(&self) -> (bool, u64, u64, String) {
        (
            true,
            self.files,
            self.bytes,
            format!(
                "restored {} ({}) from an archive",
                crate::human::count(self.files, "file"),
                crate::human::bytes(self.bytes)
            ),
        )
    }
}

impl Summary for crate::archive::VerifyReport {
    fn ended(&self) -> (bool, u64, u64, String) {
        (
            true,
            self.members,
            self.bytes,
            format!("{} is good", crate::human::path(&self.path)),
        )
    }
}

/// How a job ended, in words.
pub fn outcome_words(e: JobEnd) -> &'static str {
    match e {
        JobEnd::Running => "running",
        JobEnd::Completed => "done",
        JobEnd::Incomplete => "done, with problems",
        JobEnd::Cancelled => "cancelled",
        JobEnd::Failed => "failed",
        JobEnd::Interrupted => "interrupted",
    }
}

/// The labels of a job's disks, "Blue WD, Red", or "" for none.
pub fn disk_names(e: &crate::catalog::HistoryEntry) -> String {
    e.disks
        .iter()
        .map(|d| d.label.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The disks at these mount points, by id and label, as their identity
/// files say (a folder that is no disk is left out).
pub fn disks_at(roots: &[impl AsRef<Path>]) -> Vec<HistoryDisk> {
    roots
        .iter()
        .filter_map(|r| crate::disk::read_identity(r.as_ref()).ok())
        .map(|i| HistoryDisk {
            id: i.disk_id,
            label: i.label,
        })
        .collect()
}

/// Open disks, by id and label.
pub fn held(disks: &[crate::Disk]) -> Vec<HistoryDisk> {
    disks
        .iter()
        .map(|d| HistoryDisk {
            id: d.id(),
            label: d.label().to_string(),
        })
        .collect()
}

/// A job's history row while it runs; dropping it without [`Row::end`]
/// (a panic) records the job as failed.
pub struct Row {
    catalog: Option<Catalog>,
    id: i64,
    ended: bool,
}

impl Row {
    /// Opens the history and records a job starting now. `create`: the
    /// catalog may be created for it (a first sync); else a job on a
    /// computer with no catalog (a restore from a disk alone) is not
    /// recorded.
    pub fn begin(
        paths: &Paths,
        front: FrontEnd,
        kind: JobKind,
        disks: &[HistoryDisk],
        create: bool,
    ) -> Row {
        let file = paths.catalog_file();
        let catalog = (create || file.exists())
            .then(|| Catalog::open(&file).ok())
            .flatten();
        let id = catalog
            .as_ref()
            .and_then(|c| {
                c.history_begin(kind.as_str(), front.as_str(), disks, crate::now())
                    .ok()
            })
            .unwrap_or(0);
        Row {
            catalog: catalog.filter(|_| id > 0),
            id,
            ended: false,
        }
    }

    /// Ends the row with the job's result.
    pub fn end<T: Summary>(mut self, result: &crate::Result<T>, progress: &Progress) {
        let warnings = progress.warnings().len() as u64;
        let end = match result {
            Ok(v) => {
                let (complete, files, bytes, summary) = v.ended();
                Ended {
                    outcome: if complete && warnings == 0 {
                        JobEnd::Completed
                    } else {
                        JobEnd::Incomplete
                    },
                    files,
                    bytes,
                    warnings,
                    summary,
                }
            }
            Err(crate::Error::Cancelled) => Ended {
                outcome: JobEnd::Cancelled,
                files: progress.counters().files_done,
                bytes: progress.counters().bytes_done,
                warnings,
                summary: "cancelled; what was done before the cancel is kept".into(),
            },
            Err(e) => Ended {
                outcome: JobEnd::Failed,
                files: 0,
                bytes: 0,
                warnings,
                summary: e.to_string(),
            },
        };
        self.write(&end);
    }

    fn write(&mut self, end: &Ended) {
        self.ended = true;
        if let Some(c) = &self.catalog {
            // History never fails the job it records.
            let _ = c.history_end(self.id, end, crate::now());
        }
    }
}

impl Drop for Row {
    fn drop(&mut self) {
        if !self.ended {
            self.write(&Ended {
                outcome: JobEnd::Failed,
                files: 0,
                bytes: 0,
                warnings: 0,
                summary: "the job stopped on an internal error".into(),
            });
        }
    }
}

/// Runs `job` with its history recorded around it: the rule every front
/// end's job follows.
pub fn record<T: Summary>(
    paths: &Paths,
    front: FrontEnd,
    kind: JobKind,
    disks: &[HistoryDisk],
    progress: &Progress,
    job: impl FnOnce(&Progress) -> crate::Result<T>,
) -> crate::Result<T> {
    let create = matches!(kind, JobKind::Sync | JobKind::Scan | JobKind::Verify);
    let row = Row::begin(paths, front, kind, disks, create);
    let result = job(progress);
    row.end(&result, progress);
    result
}
