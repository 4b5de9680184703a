//! Rebuilding files from backup disks: any files, any snapshot, any disk.
//!
//! A restore selects the versions alive in one snapshot under some path
//! prefixes, maps them under a destination, checks everything it can before
//! writing (unsafe names, conflicts, case-insensitive collisions), then
//! restores what the connected disks hold and says which disk to plug in
//! next for the rest (greedy set cover over the catalog's copies).
//!
//! The pieces: `select` (snapshot, versions, where each goes), `names`
//! (unsafe names, FAT/exFAT collisions), `check` (what is at the
//! destination already), `dest` (the destination writer, also used by
//! archive restores), `cover` (which disks to read, which to plug in
//! next), `batch` (files written on all cores, one flush per batch),
//! `links` (hard links made again), `attrs` (owners, extended attributes,
//! holes, and what the destination could not hold), `plan` (a
//! [`RestorePlan`]: all of the above computed before anything is written)
//! and `run` (a plan executed); this file holds the options, the report
//! and the error text.
//!
//! Invariant: nothing is written outside the destination; no existing file
//! is replaced without the user's choice; every byte is checked against its
//! hash.

mod attrs;
mod batch;
mod check;
mod cover;
pub(crate) mod dest;
mod links;
pub(crate) mod names;
mod plan;
mod run;
mod select;
mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::catalog::{Catalog, Version};
use crate::disk::Disk;
use crate::object::ObjectId;
use crate::task::Progress;
pub use attrs::NotHeld;
pub use names::{fat_invalid, fs_kind_of, is_case_insensitive_fs};
pub use plan::{AtDest, RestorePlan, Then, plan};
pub use select::{is_under, open_disk_catalog, resolve_snapshot, select};
pub use source::{Source, open_bucket_catalog};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the catalog holds no snapshot yet; run `coffer sync` first")]
    NoSnapshot,
    #[error("no snapshot was taken at or before {when}")]
    NoSnapshotAt { when: String },
    #[error(
        "nothing in snapshot {snapshot} lies under {}; an older snapshot may hold it (`coffer versions PATH`, then --at)",
        show_paths(paths)
    )]
    NothingSelected { snapshot: i64, paths: Vec<PathBuf> },
    #[error("{path_}: refused, {reason}; nothing was written", path_ = crate::human::path(.path))]
    Unsafe { path: PathBuf, reason: String },
    #[error(
        "{} already exist at the destination: {}; nothing was written (choose --overwrite or --skip-existing)",
        plural(paths.len(), "path"),
        show_paths(paths)
    )]
    Conflicts { paths: Vec<PathBuf> },
    #[error(
        "{} would collide or are invalid on a case-insensitive (FAT/exFAT) destination: {}; nothing was written (choose --rename-collisions)",
        plural(names.len(), "name"),
        names.iter().map(|(p, why)| format!("{} ({why})", p.display())).collect::<Vec<_>>().join(", ")
    )]
    Collisions { names: Vec<(PathBuf, String)> },
    #[error("{op} {path_}: {source}", path_ = crate::human::path(.path))]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot copy the catalog copy from {path_}: {source}", path_ = crate::human::path(.path))]
    CopyCatalog {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// At most 20 paths, then "and N more".
fn show_paths(paths: &[PathBuf]) -> String {
    let mut s = paths
        .iter()
        .take(20)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > 20 {
        s.push_str(&format!(" and {} more", paths.len() - 20));
    }
    s
}

pub(crate) fn io_err(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

pub(crate) fn errno_err(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error + use<> {
    let path = path.to_path_buf();
    move |e| Error::Io {
        op,
        path,
        source: e.into(),
    }
}

/// Which snapshot to restore from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Latest,
    Snapshot(i64),
    /// The newest snapshot taken at or before this time (seconds).
    Time(i64),
}

/// What to do with paths that already exist at the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Existing {
    /// List them and write nothing.
    #[default]
    Refuse,
    /// Replace existing regular files (never folders or other kinds).
    Overwrite,
    /// Leave them as they are and restore the rest.
    Skip,
    /// Keep an existing file and restore the other beside it, as "name
    /// (restored).ext" (folders and other kinds are listed, as by Refuse).
    KeepBoth,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub at: Option<At>,
    /// Paths (files or folders) as the catalog names them; empty = everything.
    pub paths: Vec<PathBuf>,
    /// Restore under this folder; `None` = the original place.
    pub dest: Option<PathBuf>,
    /// For the original place: the folder nothing may be written outside of
    /// (the storage basepath). `None` means `/`.
    pub within: Option<PathBuf>,
    pub existing: Existing,
    /// Treat the destination as case-insensitive even if it is not FAT/exFAT.
    pub case_insensitive: bool,
    /// Rename colliding or invalid names (`name (2).ext`) instead of refusing.
    pub rename_collisions: bool,
    /// Keep setuid, setgid and sticky bits even from a catalog read from a
    /// disk (this workstation's own catalog always keeps them).
    pub keep_special_bits: bool,
}

/// A disk to plug in, and what it would provide.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DiskNeed {
    pub disk_id: uuid::Uuid,
    pub label: String,
    pub files: u64,
    pub bytes: u64,
}

/// A copy that did not hold the bytes its name says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BadCopy {
    pub path: PathBuf,
    pub disk: String,
    pub hash: ObjectId,
    pub actual: ObjectId,
    /// Whether the copy was removed from the catalog and moved aside.
    pub quarantined: bool,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub snapshot: i64,
    pub snapshot_time: i64,
    pub dest: PathBuf,
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// FIFOs and device nodes made.
    pub special: u64,
    /// Files made as another link of a file restored (counted in `files`).
    pub links: u64,
    /// What the destination could not hold (told in one line per kind).
    pub not_held: NotHeld,
    /// Already at the destination with the right content (an earlier run).
    pub already_done: u64,
    pub skipped_existing: Vec<PathBuf>,
    /// Names changed to avoid collisions: (catalog path, restored as).
    pub renamed: Vec<(PathBuf, PathBuf)>,
    /// Disks to plug in next, in order, with what each would provide.
    pub plug_next: Vec<DiskNeed>,
    /// Files whose content is on no known disk (or only in bad copies).
    pub unavailable: Vec<PathBuf>,
    pub bad_copies: Vec<BadCopy>,
    /// Files still missing at the destination.
    pub missing_files: u64,
    pub missing_bytes: u64,
}

impl Report {
    /// True when everything asked for is at the destination.
    pub fn complete(&self) -> bool {
        self.missing_files == 0
    }
}

// ---------------------------------------------------------------- restore

/// Restores what `opts` asks for from the connected `disks`.
pub fn restore(
    catalog: &mut Catalog,
    workstation: Option<uuid::Uuid>,
    disks: &[Disk],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Report> {
    let sources: Vec<&dyn Source> = disks.iter().map(|d| d as &dyn Source).collect();
    restore_from(catalog, workstation, &sources, opts, progress)
}

/// Restores what `opts` asks for from `disks`: connected disks and
/// reachable bucket disks. It plans the restore ([`plan`]), then executes
/// that plan ([`RestorePlan::execute`]).
///
/// `workstation` is the backup set of the workstation's own catalog when
/// `catalog` is that one (then a bad copy is removed from it and moved aside
/// on the disk, which is claimed for that set first, and setuid, setgid and
/// sticky bits are restored); a catalog copy read from a disk is never
/// changed, and its special bits are dropped unless `opts` keeps them.
pub fn restore_from(
    catalog: &mut Catalog,
    workstation: Option<uuid::Uuid>,
    disks: &[&dyn Source],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Report> {
    plan(catalog, workstation, disks, opts, progress)?.execute(catalog, disks, progress)
}

/// One version of a file, when it was first seen, and the labels of the
/// disks that hold its content (sorted).
#[derive(Clone, Debug)]
pub struct Held {
    pub version: Version,
    /// When the snapshot that first holds it was taken.
    pub from: i64,
    pub disks: Vec<String>,
}

/// Every version of exactly `path`, oldest first, with the disks holding
/// each (for `coffer versions` and the window's version list).
pub fn versions_held(catalog: &Catalog, path: &Path) -> crate::Result<Vec<Held>> {
    let labels: HashMap<uuid::Uuid, String> = catalog
        .disks()?
        .into_iter()
        .map(|d| (d.id, d.label))
        .collect();
    let mut holders: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for c in catalog.copies()? {
        holders
            .entry(c.hash)
            .or_default()
            .push(labels.get(&c.disk_id).cloned().unwrap_or_default());
    }
    let times: HashMap<i64, i64> = catalog
        .snapshots()?
        .into_iter()
        .map(|s| (s.id, s.started_at))
        .collect();
    Ok(catalog
        .versions_of(path)?
        .into_iter()
        .map(|version| {
            let mut disks = version
                .hash
                .and_then(|h| holders.get(&h).cloned())
                .unwrap_or_default();
            disks.sort();
            Held {
                from: times
                    .get(&version.first_snapshot)
                    .copied()
                    .unwrap_or_default(),
                version,
                disks,
            }
        })
        .collect())
}

/// What to tell the user about a disk to plug in next, in the words the
/// job's notice, the CLI and the window all use:
/// `plug in "Blue" next: 3 files, 3.0 kB`.
pub fn plug_in_next(need: &DiskNeed) -> String {
    format!(
        "plug in \"{}\" next: {}, {}",
        need.label,
        crate::human::count(need.files, "file"),
        crate::human::bytes(need.bytes)
    )
}
