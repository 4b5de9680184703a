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
//! holes, and what the destination could not hold); this file
//! orchestrates them.
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
mod select;
mod source;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::io::Errno;

use crate::catalog::{Catalog, Kind, Version};
use crate::disk::Disk;
use crate::object::ObjectId;
use crate::task::{Phase, Progress};
use attrs::Fidelity;
pub use attrs::NotHeld;
use batch::{Batch, BatchCtx, FileJob, Writing, settle};
use cover::{holders, plan_next};
use dest::Dest;
use names::handle_collisions;
pub use names::{fat_invalid, fs_kind_of, is_case_insensitive_fs};
use select::{Entry, State};
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

#[derive(Clone, Debug, Default)]
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
/// reachable bucket disks.
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
    progress.phase(Phase::Planning, 0, 0);
    let snap = resolve_snapshot(catalog, opts.at.unwrap_or(At::Latest))?;
    let versions = select(catalog, snap.id, &opts.paths)?;
    if versions.is_empty() {
        return Err(Error::NothingSelected {
            snapshot: snap.id,
            paths: opts.paths.clone(),
        }
        .into());
    }
    let keep_special = workstation.is_some() || opts.keep_special_bits;
    let (dest_root, mut entries) = select::place(versions, opts)?;

    // The destination folder itself: created if missing, never a symlink
    // unless the user named one (then it is resolved once, here).
    let (dest, _) = Dest::create(&dest_root)?;
    let dest_root = dest.root().to_path_buf();

    let mut report = Report {
        snapshot: snap.id,
        snapshot_time: snap.started_at,
        dest: dest_root.clone(),
        ..Report::default()
    };
    if opts.case_insensitive || is_case_insensitive_fs(&dest_root) {
        report.renamed = handle_collisions(&mut entries, opts.rename_collisions)?;
    }

    // Look before writing anything: unsafe parents and conflicts.
    check::look(&mut entries, &dest, opts, &mut report, progress)?;
    let followers = links::groups(&entries);
    let fid = Fidelity::new(catalog, &entries, keep_special, fs_kind_of(&dest_root))?;

    // What the connected disks can provide.
    let holders = holders(catalog, disks)?;
    let todo_files: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.version.kind == Kind::File && matches!(e.state, State::ToDo | State::Replace))
        .collect();
    let total_bytes: u64 = todo_files.iter().map(|e| e.version.size).sum();
    progress.phase(Phase::Restoring, todo_files.len() as u64, total_bytes);
    report.already_done = entries
        .iter()
        .filter(|e| e.version.kind == Kind::File && e.state == State::Done)
        .count() as u64;

    let mut bad: HashSet<(usize, ObjectId)> = HashSet::new();
    let mut missing: BTreeMap<ObjectId, (u64, u64)> = BTreeMap::new();
    let mut missing_paths: BTreeMap<ObjectId, Vec<PathBuf>> = BTreeMap::new();
    let mut dirty_dirs = false;
    let mut batch = Batch::default();
    let mut cx = BatchCtx {
        catalog: &mut *catalog,
        workstation,
        disks,
        dest: &dest,
        progress,
        report: &mut report,
        bad: &mut bad,
        missing: &mut missing,
        missing_paths: &mut missing_paths,
    };

    // Batches are written (on all cores) by a helper thread while the batch
    // before is flushed and renamed here. On an error, what was already
    // written is still put in place: it is whole and checked.
    std::thread::scope(|s| -> crate::Result<()> {
        let mut inflight: Option<Writing<'_, '_>> = None;
        let walked = (|| -> crate::Result<()> {
            for (i, e) in entries.iter().enumerate() {
                progress.check()?;
                if e.version.kind == Kind::Dir && e.state == State::Done {
                    // A folder an earlier run finished (and made read-only, maybe)
                    // must take the rest of its files; its mode is set again below.
                    if let Some(d) = dest.dir(&e.rel, false)? {
                        d.make_writable();
                    }
                }
                if !matches!(e.state, State::ToDo | State::Replace) {
                    continue;
                }
                let target = dest_root.join(&e.rel);
                progress.current(&target);
                let parent = e.rel.parent().unwrap_or(Path::new(""));
                let name = e.rel.file_name().unwrap_or_default();
                let vanished = || Error::Unsafe {
                    path: target.clone(),
                    reason: "its folder vanished".into(),
                };
                match e.version.kind {
                    Kind::Dir => {
                        let dir = dest.dir(parent, true)?.ok_or_else(vanished)?;
                        if dir.make_dir(name, &target)? {
                            cx.report.dirs += 1;
                            dirty_dirs = true;
                        }
                    }
                    // FAT32 and exFAT have no symlinks: counted and told.
                    Kind::Symlink if !fid.unix => fid.symlink_not_held(),
                    Kind::Symlink => {
                        let dir = dest.dir(parent, true)?.ok_or_else(vanished)?;
                        let link_target = e.version.target.clone().unwrap_or_default();
                        dir.make_symlink(
                            link_target.as_os_str(),
                            name,
                            e.version.mtime_ns,
                            e.state == State::Replace,
                            &target,
                            |d, n| fid.chown_at(d, n, &e.version),
                        )?;
                        cx.report.symlinks += 1;
                    }
                    Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                        use rustix::fs::FileType as T;
                        let (kind, device) = match e.version.kind {
                            Kind::CharDevice => (T::CharacterDevice, true),
                            Kind::BlockDevice => (T::BlockDevice, true),
                            _ => (T::Fifo, false),
                        };
                        // A device node from a catalog that is not this
                        // computer's could open any disk: like setuid.
                        if device && !fid.trusted {
                            fid.device_withheld();
                            continue;
                        }
                        let dir = dest.dir(parent, true)?.ok_or_else(vanished)?;
                        match dir.make_node(
                            name,
                            kind,
                            e.version.attrs.rdev,
                            e.version.mode,
                            e.version.mtime_ns,
                            keep_special,
                            e.state == State::Replace,
                            &target,
                            |d, n| fid.chown_at(d, n, &e.version),
                        )? {
                            Ok(()) => cx.report.special += 1,
                            Err(err) => fid.node_refused(device, err),
                        }
                    }
                    Kind::File if followers.contains_key(&i) => {}
                    Kind::File => {
                        let hash = e.version.hash.unwrap_or_else(|| ObjectId::of(b""));
                        let empty = e.version.size == 0 && hash == ObjectId::of(b"");
                        // Connected disks that hold it and have not proved bad for it.
                        let sources: Vec<Option<usize>> = if empty {
                            vec![None]
                        } else {
                            holders
                                .connected
                                .iter()
                                .filter(|(d, set)| {
                                    set.contains(&hash) && !cx.bad.contains(&(*d, hash))
                                })
                                .map(|(d, _)| Some(*d))
                                .collect()
                        };
                        if sources.is_empty() {
                            let m = cx.missing.entry(hash).or_insert((e.version.size, 0));
                            m.1 += 1;
                            cx.missing_paths
                                .entry(hash)
                                .or_default()
                                .push(e.version.path.clone());
                            continue;
                        }
                        let dir = match batch.dirs.get(parent) {
                            Some(d) => Arc::clone(d),
                            None => {
                                let d = Arc::new(dest.dir(parent, true)?.ok_or_else(vanished)?);
                                batch.dirs.insert(parent.to_path_buf(), Arc::clone(&d));
                                d
                            }
                        };
                        batch.bytes += e.version.size;
                        batch.jobs.push(FileJob {
                            entry: e,
                            dir,
                            target,
                            hash,
                            sources,
                        });
                        if batch.full() {
                            let before = inflight.take();
                            inflight = Some(Writing::start(
                                s,
                                std::mem::take(&mut batch),
                                disks,
                                keep_special,
                                &fid,
                                progress,
                            )?);
                            dirty_dirs |= settle(before, &mut cx)?;
                        }
                    }
                }
            }
            dirty_dirs |= settle(inflight.take(), &mut cx)?;
            let last = std::mem::take(&mut batch);
            let written = last.write(disks, keep_special, &fid, progress);
            dirty_dirs |= last.finish(written, &mut cx)?;
            // The other links of each file, now that it is in place.
            dirty_dirs |= links::make_links(
                &entries,
                &followers,
                &mut links::LinkCtx {
                    dest: &dest,
                    fid: &fid,
                    keep_special,
                    report: cx.report,
                    missing: cx.missing,
                    missing_paths: cx.missing_paths,
                    progress,
                },
            )?;
            Ok(())
        })();
        if walked.is_err() {
            let _ = settle(inflight.take(), &mut cx);
        }
        walked
    })?;

    // Folders last, deepest first, so their contents do not change their
    // mtime. Folders that were already there (an earlier run) get theirs too.
    let dirs: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.version.kind == Kind::Dir && e.state != State::Skipped)
        .collect();
    for e in dirs.into_iter().rev() {
        if let Some(d) = dest.dir(&e.rel, false)? {
            fid.apply(std::os::fd::AsFd::as_fd(&d), &e.version);
            d.set_meta(e.version.mode, e.version.mtime_ns, keep_special)?;
            fid.mode_kept(std::os::fd::AsFd::as_fd(&d), &e.version);
        }
    }
    report.not_held = fid.not_held();
    for n in fid.notices() {
        progress.notice(n);
    }
    if dirty_dirs {
        dest.flush()?;
    }

    // What is left, and which disks to plug in for it.
    let bad_hashes: HashSet<ObjectId> = bad.iter().map(|(_, h)| *h).collect();
    let (plug, uncovered) = plan_next(catalog, &holders.others, &missing)?;
    report.plug_next = plug;
    for h in &uncovered {
        report
            .unavailable
            .extend(missing_paths.get(h).cloned().unwrap_or_default());
    }
    report.missing_files = missing.values().map(|(_, n)| n).sum();
    report.missing_bytes = missing.values().map(|(s, n)| s * n).sum();
    for h in uncovered {
        if !bad_hashes.contains(&h) {
            for p in missing_paths.get(&h).into_iter().flatten() {
                progress.warn(Some(p), "its content is on no known disk");
            }
        }
    }
    for need in &report.plug_next {
        progress.notice(plug_in_next(need));
    }
    progress.flush();
    Ok(report)
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
