//! Carrying a plan out on the one connected disk.
//!
//! A sync claims the disk (identity, backup set, lock), settles its `tmp/`
//! (copies an interrupted sync left are adopted or resumed, the rest
//! removed), reconciles the catalog with what is really on the disk, plans,
//! then deletes and copies. Copies come from the source files (re-hashed on
//! the way, so a file changed since the scan is never stored under the
//! wrong name) or from another connected disk. They are committed in
//! batches: one flush per batch, then the renames, then the catalog records
//! the copies; a committer thread flushes and renames one batch while the
//! next is copied. Last, the catalog copy on the disk is replaced.
//!
//! `scan_and_sync` runs the scan first with a [`Stage`] on the disk: each
//! new file is copied into `tmp/` by the read that hashes it, and those
//! copies stand in for copying from the source when the plan wants them.
//! When the disk has room for everything new, staged copies are committed
//! while the scan still runs, so a sync killed half-way keeps what it did.
//!
//! The pieces: `run` (one sync of one disk, [`SyncRun`]), `copy` (copying
//! in batches), `state` (the planner's view, reconciling, saturation),
//! `tmp` (settling `tmp/`, committing early).
//!
//! A sync that left the disk holding everything it would take records a
//! saturation key (catalog generation, profile, quota, object-store folder
//! stamps); a later sync that finds the same key has nothing to do and
//! skips listing the disk and planning.
//!
//! Invariant: the disk's identity is re-read before every batch of writes;
//! the catalog only records a copy after its object is flushed under its
//! final name; a staged copy is committed only if the plan would copy its
//! object to this disk; an interrupted sync leaves a state the next sync
//! completes without reading or copying again what it already did.

mod bucket;
mod copy;
mod run;
mod state;
mod tmp;

use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::config::Profile;
use crate::disk::{self, Disk, Stage};
use crate::plan::Plan;
use crate::task::Progress;

pub use bucket::{register_bucket, sync_bucket, write_bucket_catalog};
pub use state::object_states;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nothing has been scanned yet; run `coffer scan` first")]
    NoSnapshot,
}

/// How a sync went.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub disk_id: uuid::Uuid,
    pub label: String,
    pub root: PathBuf,
    pub dry_run: bool,
    pub plan: Plan,
    pub copied_files: u64,
    pub copied_bytes: u64,
    pub deleted_files: u64,
    pub deleted_bytes: u64,
    /// Objects that could not be read now (changed since the scan, or the
    /// only copy is on a disk that is not connected).
    pub skipped_files: u64,
    /// Bytes Coffer may still write on the disk after the sync.
    pub room_after: u64,
    /// Nothing changed in the catalog or on the disk since a sync left the
    /// disk holding all it would take: no listing or planning was needed.
    pub up_to_date: bool,
}

impl Report {
    /// The report of a sync of `disk` that has done nothing yet.
    fn empty(disk: &Disk, opts: &Options) -> Report {
        Report {
            disk_id: disk.id(),
            label: disk.label().into(),
            root: disk.root().into(),
            dry_run: opts.dry_run,
            ..Report::default()
        }
    }

    /// True when this disk took everything the plan wanted it to take and
    /// nothing is left below its wanted copies for lack of room here.
    pub fn complete(&self) -> bool {
        self.plan.short_files == 0 && self.skipped_files == 0 && self.plan.unavailable_files == 0
    }

    /// What the sync did, for after the disk's name: "copied 3 files (1.2
    /// MB), deleted 0 (0 B); 40 GB free for Coffer", or that it was up to date.
    pub fn summary(&self) -> String {
        let room = crate::human::bytes(self.room_after);
        if self.up_to_date {
            format!(
                "is up to date: nothing changed here or on the disk since its last sync; {room} free for Coffer"
            )
        } else {
            format!(
                "copied {} ({}), deleted {} ({}); {room} free for Coffer",
                crate::human::count(self.copied_files, "file"),
                crate::human::bytes(self.copied_bytes),
                self.deleted_files,
                crate::human::bytes(self.deleted_bytes),
            )
        }
    }

    /// The sentence to show when the disk was too small.
    pub fn shortfall_message(&self) -> Option<String> {
        (self.plan.short_files > 0).then(|| {
            format!(
                "disk \"{}\" at {} is full: {} left out, {} more needed; they have fewer copies than wanted: plug in another disk, or give this one a bigger quota",
                self.label,
                self.root.display(),
                crate::human::count(self.plan.short_files, "file"),
                crate::human::bytes(self.plan.short_bytes)
            )
        })
    }
}

/// Knobs for tests and benchmarks; the defaults suit real disks.
#[derive(Clone, Debug)]
pub struct Options {
    pub dry_run: bool,
    /// Flush after this many objects…
    pub batch_files: usize,
    /// …or this many bytes, whichever comes first.
    pub batch_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            batch_files: 2000,
            batch_bytes: 128 << 20,
        }
    }
}

/// Syncs `disk` (which must be connected) against the latest snapshot.
/// `others` are other connected disks that can serve as sources.
pub fn sync(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &mut Disk,
    others: &[&Disk],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Report> {
    let disk = &*disk;
    let mut report = Report::empty(disk, opts);
    let result = (|| {
        let stage = prepare(catalog, profile, disk, opts, progress)?;
        SyncRun {
            catalog,
            profile,
            disk,
            others,
            opts,
            stage: stage.as_ref(),
            progress,
            report: &mut report,
        }
        .run()
    })();
    match result {
        Ok(()) => Ok(report),
        Err(e) => Err(full_error(e, disk, &report)),
    }
}

/// Scans the sources, then syncs `disk`. New and changed files are copied
/// to the disk as the scan reads them (each is read once), as far as the
/// disk has room for them; the plan then decides which of them stay, unless
/// the disk had room for all of them, and then they are committed as the
/// scan goes.
pub fn scan_and_sync(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &mut Disk,
    others: &[&Disk],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<(crate::scan::Report, Report)> {
    let disk = &*disk;
    let mut report = Report::empty(disk, opts);
    let result = (|| {
        let stage = prepare(catalog, profile, disk, opts, progress)?;
        let journal = crate::catalog::Journal::start(catalog.path())?;
        let scanned = match &stage {
            Some(stage) => {
                let (scanned, early) =
                    tmp::scan_committing(catalog, profile, stage, &journal, progress)?;
                report.copied_files = early.0;
                report.copied_bytes = early.1;
                scanned
            }
            None => crate::scan::scan_into(catalog, profile, None, Some(&journal), progress)?,
        };
        journal.finish()?;
        SyncRun {
            catalog,
            profile,
            disk,
            others,
            opts,
            stage: stage.as_ref(),
            progress,
            report: &mut report,
        }
        .run()?;
        Ok(scanned)
    })();
    match result {
        Ok(scanned) => Ok((scanned, report)),
        Err(e) => Err(full_error(e, disk, &report)),
    }
}

/// Claims the disk for this set (the one write gate: identity, set, lock)
/// and settles its `tmp/` into a stage that may take the room the disk has
/// (less what the catalog copy will need). A dry run writes nothing and
/// has no stage.
fn prepare<'d>(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &'d Disk,
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Option<Stage<'d>>> {
    disk.claim(profile.set_id)?;
    if opts.dry_run {
        return Ok(None);
    }
    // Known before anything is recorded as copied to it.
    catalog.register(disk, None)?;
    let used = catalog.disk(disk.id())?.and_then(|r| r.used).unwrap_or(0);
    let reserve = state::catalog_reserve(catalog, disk);
    let room = disk
        .space(used)
        .map_or(0, |s| s.free.saturating_sub(reserve).min(s.room()));
    let stage = Stage::new(disk, room);
    tmp::settle(catalog, disk, &stage, progress)?;
    Ok(Some(stage))
}

/// One sync of one disk: everything it reads and what it has done so far.
pub(crate) struct SyncRun<'a, 'd> {
    catalog: &'a mut Catalog,
    profile: &'a Profile,
    disk: &'d Disk,
    others: &'a [&'a Disk],
    opts: &'a Options,
    stage: Option<&'a Stage<'d>>,
    progress: &'a Progress,
    report: &'a mut Report,
}

/// Turns "no space left" into a message naming the disk and what was needed.
fn full_error(e: crate::Error, disk: &Disk, report: &Report) -> crate::Error {
    if let crate::Error::Disk(d) = &e
        && d.is_full()
    {
        let left = report
            .plan
            .copy_bytes
            .saturating_sub(report.copied_bytes)
            .max(report.plan.short_bytes);
        let available = disk.space(0).map(|s| s.free).unwrap_or(0);
        return disk::Error::Full {
            root: disk.root().into(),
            label: disk.label().into(),
            needed: left,
            available,
        }
        .into();
    }
    e
}

/// Writes the catalog (with the profile) to the disk's older catalog slot:
/// page by page where SQLite can give pages (only those that changed are
/// written), else exported and written whole.
pub fn write_catalog_copy(catalog: &Catalog, profile: &Profile, disk: &Disk) -> crate::Result<()> {
    let profile_json = serde_json::to_string(profile).unwrap_or_default();
    catalog.set_meta("profile", &profile_json)?;
    let dir = catalog
        .path()
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let maps = dir.join("slot-pages");
    if let Some(w) = disk.write_catalog_pages(catalog, &maps)? {
        // A disk with one valid slot (a new one) gets its second at once:
        // the catalog copy is then redundant from the first sync on, and
        // every later write of either slot is of changed pages only.
        if !w.other_valid {
            disk.write_catalog_pages(catalog, &maps)?;
        }
        return Ok(());
    }
    let tmp = dir.join(format!(".export-{}.sqlite", uuid::Uuid::new_v4().simple()));
    let result = catalog
        .export_to(&tmp)
        .map_err(crate::Error::from)
        .and_then(|()| {
            disk.write_catalog(&tmp)
                .map(|_| ())
                .map_err(crate::Error::from)
        });
    let _ = std::fs::remove_file(&tmp);
    result
}
