//! Carrying a plan out on the one connected disk.
//!
//! A sync registers the disk, empties its `tmp/`, reconciles the catalog with
//! what is really on it, plans, then deletes and copies. Copies come from the
//! source files (re-hashed on the way, so a file changed since the scan is
//! never stored under the wrong name) or from another connected disk. They
//! are committed in batches: one flush per batch, then the renames, then the
//! catalog records the copies; a committer thread flushes and renames one
//! batch while the next is copied. Last, the catalog copy on the disk is
//! replaced.
//!
//! `scan_and_sync` runs the scan first with a [`Stage`] on the disk: each
//! new file is copied into `tmp/` by the read that hashes it, and those
//! copies stand in for copying from the source when the plan wants them.
//!
//! A sync that left the disk holding everything it would take records a
//! saturation key (catalog generation, profile, quota, object-store folder
//! stamps); a later sync that finds the same key has nothing to do and
//! skips listing the disk and planning.
//!
//! Invariant: the disk's identity is re-read before every batch of writes;
//! the catalog only records a copy after its object is flushed under its
//! final name; a staged copy is committed only if the plan copies its
//! object to this disk; an interrupted sync leaves a state the next sync
//! completes without copying again what is already in place.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, DiskRow, ObjectUse};
use crate::config::Profile;
use crate::disk::{self, Disk, Pending};
use crate::object::ObjectId;
use crate::plan::{self, ObjectState, Plan, Step};
use crate::task::{Phase, Progress};

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
                "disk \"{}\" at {} is full: {} more bytes needed for {} files that have fewer copies than wanted; plug in another disk or raise its quota",
                self.label,
                self.root.display(),
                self.plan.short_bytes,
                self.plan.short_files
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
            batch_bytes: 512 << 20,
        }
    }
}

/// New and changed files copied into a disk's `tmp/` by the scan, on the
/// same read that hashes them, so a first sync reads each file once. They
/// are committed only if the plan wants them on this disk; the rest are
/// dropped (also when the stage is dropped on an error).
pub struct Stage<'d> {
    disk: &'d Disk,
    /// Bytes it may still take.
    room: AtomicU64,
    /// Bytes it holds now.
    held: AtomicU64,
    stopped: AtomicBool,
    staged: Mutex<FxHashMap<ObjectId, Pending>>,
}

impl<'d> Stage<'d> {
    /// A stage on `disk` that takes at most `room` bytes.
    pub fn new(disk: &'d Disk, room: u64) -> Self {
        Stage {
            disk,
            room: AtomicU64::new(room),
            held: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            staged: Mutex::default(),
        }
    }

    pub fn disk(&self) -> &'d Disk {
        self.disk
    }

    /// Takes room for a file of `size` bytes; false when there is none (or
    /// staging stopped), and the file is then only hashed.
    pub fn reserve(&self, size: u64) -> bool {
        // What the file really takes: whole blocks, at least one.
        let need = size.div_ceil(4096).max(1) * 4096;
        !self.stopped.load(Ordering::Relaxed)
            && self
                .room
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                    r.checked_sub(need)
                })
                .is_ok()
    }

    /// A write to the disk failed: nothing more is staged in this run.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Keeps a copy whose source proved steady while it was read. The same
    /// content staged twice is kept once.
    pub fn keep(&self, p: Pending) {
        let mut staged = self.lock();
        match staged.entry(p.hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                drop(staged);
                self.disk.discard_pending(p);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                self.held.fetch_add(p.size, Ordering::Relaxed);
                v.insert(p);
            }
        }
    }

    /// Bytes held in `tmp/` now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// The staged copy of `hash`, taken out to be committed.
    fn take(&self, hash: &ObjectId) -> Option<Pending> {
        let p = self.lock().remove(hash)?;
        self.held.fetch_sub(p.size, Ordering::Relaxed);
        Some(p)
    }

    /// Drops every staged copy `wanted` rejects.
    fn retain(&self, wanted: impl Fn(&ObjectId) -> bool) {
        let dropped: Vec<Pending> = {
            let mut staged = self.lock();
            let gone: Vec<ObjectId> = staged.keys().filter(|h| !wanted(h)).copied().collect();
            gone.iter().filter_map(|h| staged.remove(h)).collect()
        };
        for p in dropped {
            self.held.fetch_sub(p.size, Ordering::Relaxed);
            self.disk.discard_pending(p);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<ObjectId, Pending>> {
        // The map stays consistent whatever a panicking holder was doing.
        self.staged.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Stage<'_> {
    fn drop(&mut self) {
        self.retain(|_| false);
    }
}

/// Registers a connected disk in the catalog (or refreshes what it knows).
pub fn register(catalog: &Catalog, disk: &Disk, used: Option<u64>) -> crate::Result<DiskRow> {
    let space = disk.space(used.unwrap_or(0)).ok();
    let mut row = catalog
        .disk(disk.id())?
        .unwrap_or_else(|| DiskRow::new(disk.id(), disk.label(), disk.identity.created_at));
    row.label = disk.label().to_string();
    row.quota = disk.identity.quota;
    row.last_seen = Some(crate::now());
    row.last_mount = Some(disk.root().to_path_buf());
    if let Some(s) = space {
        row.capacity = Some(s.quota.map_or(s.total, |q| q.min(s.total)));
        row.free = Some(s.room());
    }
    if used.is_some() {
        row.used = used;
    }
    catalog.upsert_disk(&row)?;
    Ok(row)
}

/// Makes the catalog's copies for this disk match what is on it.
fn reconcile(
    catalog: &mut Catalog,
    disk: &Disk,
    on_disk: &BTreeMap<ObjectId, u64>,
) -> crate::Result<()> {
    let recorded = catalog.copies_on(disk.id())?;
    let gone: Vec<ObjectId> = recorded
        .iter()
        .map(|c| c.hash)
        .filter(|h| !on_disk.contains_key(h))
        .collect();
    catalog.remove_copies(disk.id(), &gone)?;
    let known: std::collections::HashSet<ObjectId> = recorded.iter().map(|c| c.hash).collect();
    let mut found = Vec::new();
    for (h, size) in on_disk {
        if !known.contains(h) && catalog.object_size(h)? == Some(*size) {
            // On the disk but not in the catalog: an interrupted sync got
            // this far. Its name guarantees its bytes, but nobody has
            // re-read them since, so it counts as a copy, not a verified one.
            found.push((*h, None));
        }
    }
    Ok(catalog.add_copies(disk.id(), &found)?)
}

/// Builds the planner's view of every object.
pub fn object_states(
    catalog: &Catalog,
    profile: &Profile,
    this_disk: Option<uuid::Uuid>,
    connected: &[&Disk],
) -> crate::Result<(Vec<ObjectState>, Vec<ObjectUse>)> {
    let latest = catalog.latest_snapshot()?.ok_or(Error::NoSnapshot)?.id;
    let uses = catalog.object_uses()?;
    let mut elsewhere: HashMap<ObjectId, (u32, u32)> = HashMap::new();
    for c in catalog.copies()? {
        if Some(c.disk_id) == this_disk {
            continue;
        }
        let e = elsewhere.entry(c.hash).or_default();
        e.0 += 1;
        e.1 += u32::from(c.verified_at.is_some());
    }
    let mut on_connected: std::collections::HashSet<ObjectId> = std::collections::HashSet::new();
    for d in connected {
        if Some(d.id()) != this_disk {
            on_connected.extend(d.objects()?.into_keys());
        }
    }
    let states = uses
        .iter()
        .map(|u| {
            let (wanted, priority) = u
                .paths
                .iter()
                .map(|p| profile.wanted_for(p))
                .fold((0, i32::MIN), |(w, pr), (w2, p2)| (w.max(w2), pr.max(p2)));
            let (copies, verified) = elsewhere.get(&u.hash).copied().unwrap_or_default();
            let current = u.newest_snapshot == latest;
            ObjectState {
                hash: u.hash,
                size: u.size,
                wanted,
                priority,
                current,
                newest_snapshot: u.newest_snapshot,
                copies_elsewhere: copies,
                verified_elsewhere: verified,
                available: current || on_connected.contains(&u.hash),
            }
        })
        .collect();
    Ok((states, uses))
}

/// Room kept free for the catalog copy written at the end of a sync.
fn catalog_reserve(catalog: &Catalog) -> u64 {
    let size = std::fs::metadata(catalog.path())
        .map(|m| m.len())
        .unwrap_or(0);
    size + size / 4 + (4 << 20)
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
    let mut report = Report::empty(disk, opts);
    let result = prepare(profile, disk, opts).and_then(|()| {
        sync_inner(
            catalog,
            profile,
            disk,
            others,
            opts,
            None,
            progress,
            &mut report,
        )
    });
    match result {
        Ok(()) => Ok(report),
        Err(e) => Err(full_error(e, disk, &report)),
    }
}

/// Scans the sources, then syncs `disk`. New and changed files are copied
/// to the disk as the scan reads them (each is read once), as far as the
/// disk has room for them; the plan then decides which of them stay.
pub fn scan_and_sync(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &mut Disk,
    others: &[&Disk],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<(crate::scan::Report, Report)> {
    let mut report = Report::empty(disk, opts);
    prepare(profile, disk, opts).map_err(|e| full_error(e, disk, &report))?;
    let disk = &*disk;
    let stage = if opts.dry_run {
        None
    } else {
        // The room the disk's catalog row last saw, less what the catalog
        // copy will need; the plan has the last word anyway.
        let used = catalog.disk(disk.id())?.and_then(|r| r.used).unwrap_or(0);
        let room = disk.space(used).map_or(0, |s| {
            s.free
                .saturating_sub(2 * catalog_reserve(catalog))
                .min(s.room())
        });
        Some(Stage::new(disk, room))
    };
    let scanned = crate::scan::scan_into(catalog, profile, stage.as_ref(), progress)?;
    let result = sync_inner(
        catalog,
        profile,
        disk,
        others,
        opts,
        stage.as_ref(),
        progress,
        &mut report,
    );
    match result {
        Ok(()) => Ok((scanned, report)),
        Err(e) => Err(full_error(e, disk, &report)),
    }
}

/// Claims the disk for this set (the one write gate: identity, set, lock)
/// and empties its `tmp/`.
fn prepare(profile: &Profile, disk: &mut Disk, opts: &Options) -> crate::Result<()> {
    disk.claim(profile.set_id)?;
    if !opts.dry_run {
        disk.clean_tmp()?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sync_inner(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &Disk,
    others: &[&Disk],
    opts: &Options,
    stage: Option<&Stage>,
    progress: &Progress,
    report: &mut Report,
) -> crate::Result<()> {
    progress.phase(Phase::Planning, 0, 0);
    // The fast way out: a disk that a sync left holding all it would take,
    // unchanged since, with a catalog unchanged since, needs nothing.
    let saturated_at = format!("saturated:{}", disk.id());
    if let Some(key) = saturation_key(catalog, profile, disk)?
        && catalog.meta(&saturated_at)?.as_deref() == Some(key.as_str())
        && disk.has_catalog()
    {
        let used = catalog.disk(disk.id())?.and_then(|r| r.used).unwrap_or(0);
        let mut row = register(catalog, disk, Some(used))?;
        if !opts.dry_run {
            row.last_sync = Some(crate::now());
            catalog.upsert_disk(&row)?;
        }
        report.up_to_date = true;
        report.room_after = disk.space(used).map(|s| s.room()).unwrap_or(0);
        return Ok(());
    }
    let on_disk = disk.objects()?;
    let used: u64 = on_disk.values().filter(|s| **s != u64::MAX).sum();
    register(catalog, disk, Some(used))?;
    reconcile(catalog, disk, &on_disk)?;
    let (states, uses) = object_states(catalog, profile, Some(disk.id()), others)?;
    let space = disk.space(used)?;
    // The quota counts objects; the catalog copy needs free space of its own.
    // Staged copies already take room that committing them will not take again.
    let staged = stage.map_or(0, Stage::held);
    let room = (space.free + staged)
        .saturating_sub(catalog_reserve(catalog))
        .min(space.room());
    let plan = plan::plan(&plan::Input {
        objects: &states,
        on_disk: &on_disk,
        room,
    });
    report.plan = plan.clone();
    if opts.dry_run {
        report.room_after = room
            .saturating_sub(plan.copy_bytes)
            .saturating_add(plan.delete_bytes);
        return Ok(());
    }
    let paths: HashMap<ObjectId, &[PathBuf]> =
        uses.iter().map(|u| (u.hash, u.paths.as_slice())).collect();

    // Deletions first, as one batch, after checking the disk is still there.
    let deletions: Vec<(ObjectId, u64)> = plan
        .steps
        .iter()
        .filter_map(|s| {
            if let Step::Delete { hash, size, .. } = s {
                Some((*hash, *size))
            } else {
                None
            }
        })
        .collect();
    if !deletions.is_empty() {
        progress.phase(Phase::Deleting, deletions.len() as u64, 0);
        disk.check_identity()?;
        let mut removed = Vec::new();
        let mut result = Ok(());
        for (h, size) in &deletions {
            if let Err(e) = disk.remove_object(h) {
                result = Err(e);
                break;
            }
            removed.push(*h);
            report.deleted_files += 1;
            report.deleted_bytes += size;
            progress.advance(1, *size);
        }
        catalog.remove_copies(disk.id(), &removed)?;
        result?;
    }

    let copies: Vec<(ObjectId, u64)> = plan
        .steps
        .iter()
        .filter_map(|s| {
            if let Step::Copy { hash, size, .. } = s {
                Some((*hash, *size))
            } else {
                None
            }
        })
        .collect();
    if let Some(stage) = stage {
        let wanted: std::collections::HashSet<ObjectId> = copies.iter().map(|c| c.0).collect();
        stage.retain(|h| wanted.contains(h));
    }
    progress.phase(
        Phase::Copying,
        copies.len() as u64,
        copies.iter().map(|c| c.1).sum(),
    );
    let outcome = copy_all(
        catalog, disk, others, stage, &paths, &copies, opts, progress, report,
    );
    outcome?;

    progress.phase(Phase::WritingCatalog, 1, 0);
    let used_now = used.saturating_sub(report.deleted_bytes) + report.copied_bytes;
    let mut row = register(catalog, disk, Some(used_now))?;
    row.last_sync = Some(crate::now());
    catalog.upsert_disk(&row)?;
    // A sync that changed nothing leaves the disk's catalog copy as it is
    // (rewriting it costs a flush of the whole disk for no new information).
    let key = format!("slot-fingerprint:{}", disk.id());
    let profile_json = serde_json::to_string(profile).unwrap_or_default();
    let fingerprint = format!(
        "{}:{}",
        catalog.fingerprint()?,
        crate::object::ObjectId::of(profile_json.as_bytes())
    );
    let unchanged = report.copied_files == 0
        && report.deleted_files == 0
        && catalog.meta(&key)?.as_deref() == Some(fingerprint.as_str())
        && disk.has_catalog();
    if !unchanged {
        write_catalog_copy(catalog, profile, disk)?;
        catalog.set_meta(&key, &fingerprint)?;
    }
    report.room_after = disk.space(used_now).map(|s| s.room()).unwrap_or(0);
    // Everything the plan wanted happened, and it wanted all it could: the
    // next sync may skip listing and planning while nothing changes.
    let saturated = report.skipped_files == 0
        && plan.short_files == 0
        && plan.unavailable_files == 0
        && plan.deferred_files == 0
        && report.copied_files == plan.copy_files
        && report.deleted_files == plan.delete_files;
    let key = if saturated {
        saturation_key(catalog, profile, disk)?
    } else {
        None
    };
    catalog.set_meta(&saturated_at, key.as_deref().unwrap_or(""))?;
    Ok(())
}

/// What a saturated disk stays saturated under: the catalog's generation,
/// the profile (copies wanted, sources), the disk's quota and the state of
/// its object store. `None` when the object store cannot be summed up now.
fn saturation_key(
    catalog: &Catalog,
    profile: &Profile,
    disk: &Disk,
) -> crate::Result<Option<String>> {
    let Some(token) = disk.objects_token()? else {
        return Ok(None);
    };
    let profile_json = serde_json::to_string(profile).unwrap_or_default();
    Ok(Some(format!(
        "{}:{}:{:?}:{token}",
        catalog.generation()?,
        ObjectId::of(profile_json.as_bytes()),
        disk.identity.quota
    )))
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

/// Copies the objects in batches. Each batch is copied by all cores at once
/// (hashing is the CPU cost), then flushed and renamed into place by a
/// committer thread while the next batch is copied, so the disk's flush
/// overlaps the next batch's reading and hashing; the catalog records each
/// batch once the committer has made it durable.
#[allow(clippy::too_many_arguments)]
fn copy_all(
    catalog: &mut Catalog,
    disk: &Disk,
    others: &[&Disk],
    stage: Option<&Stage>,
    paths: &HashMap<ObjectId, &[PathBuf]>,
    copies: &[(ObjectId, u64)],
    opts: &Options,
    progress: &Progress,
    report: &mut Report,
) -> crate::Result<()> {
    type Committed = Result<Vec<(ObjectId, u64)>, disk::Error>;
    let mut outcome: crate::Result<()> = Ok(());
    // The first real error wins over the stops it caused.
    let fail = |outcome: &mut crate::Result<()>, e: crate::Error| {
        let stopped = matches!(outcome, Err(crate::Error::Cancelled));
        if outcome.is_ok() || (stopped && !matches!(e, crate::Error::Cancelled)) {
            *outcome = Err(e);
        }
    };
    let mut record = |catalog: &mut Catalog, done: Committed, outcome: &mut crate::Result<()>| {
        let r = done.map_err(crate::Error::from).and_then(|done| {
            let now = crate::now();
            let rows: Vec<(ObjectId, Option<i64>)> =
                done.iter().map(|d| (d.0, Some(now))).collect();
            catalog.add_copies(disk.id(), &rows)?;
            report.copied_files += done.len() as u64;
            report.copied_bytes += done.iter().map(|d| d.1).sum::<u64>();
            Ok(())
        });
        if let Err(e) = r {
            fail(outcome, e);
        }
    };
    std::thread::scope(|s| {
        // One batch waits while one is committed: at most three batches of
        // temp copies exist at once.
        let (to_commit, batches) = std::sync::mpsc::sync_channel::<Vec<Pending>>(1);
        let (committed, done) = std::sync::mpsc::channel::<Committed>();
        let committer = std::thread::Builder::new()
            .name("commit".into())
            .spawn_scoped(s, move || {
                let mut failed = false;
                for batch in batches {
                    if failed {
                        // After a failed commit nothing more is trusted to
                        // this disk in this run.
                        for p in batch {
                            disk.discard_pending(p);
                        }
                        continue;
                    }
                    let sizes: HashMap<ObjectId, u64> =
                        batch.iter().map(|p| (p.hash, p.size)).collect();
                    let r = disk.commit(batch).map(|done| {
                        done.into_iter()
                            .map(|h| (h, sizes.get(&h).copied().unwrap_or(0)))
                            .collect()
                    });
                    failed = r.is_err();
                    if committed.send(r).is_err() {
                        break;
                    }
                }
            });
        let committer = match committer {
            Ok(c) => c,
            Err(e) => {
                outcome = Err(crate::Error::Panic(format!("cannot start a thread: {e}")));
                return;
            }
        };
        let mut rest = copies;
        while !rest.is_empty() && outcome.is_ok() {
            while let Ok(d) = done.try_recv() {
                record(catalog, d, &mut outcome);
            }
            if let Err(e) = disk.check_identity() {
                fail(&mut outcome, e.into());
                break;
            }
            let mut n = 0;
            let mut bytes = 0u64;
            while n < rest.len() && n < opts.batch_files && (n == 0 || bytes < opts.batch_bytes) {
                bytes += rest[n].1;
                n += 1;
            }
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let stop = AtomicBool::new(false);
            let results: Vec<(u64, crate::Result<Option<Pending>>)> = chunk
                .par_iter()
                // One object per task: sizes vary wildly, so every one is up for stealing.
                .with_max_len(1)
                .map(|(hash, size)| {
                    if stop.load(Ordering::Relaxed) {
                        return (*size, Err(crate::Error::Cancelled));
                    }
                    if let Some(p) = stage.and_then(|s| s.take(hash)) {
                        progress.advance(0, *size);
                        return (*size, Ok(Some(p)));
                    }
                    let srcs = paths.get(hash).copied().unwrap_or(&[]);
                    let r = progress
                        .check()
                        .and_then(|()| copy_one(disk, others, hash, srcs, progress));
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    (*size, r)
                })
                .collect();
            let mut batch: Vec<Pending> = Vec::new();
            for (size, r) in results {
                match r {
                    Ok(Some(p)) => {
                        batch.push(p);
                        progress.advance(1, 0);
                    }
                    Ok(None) => {
                        report.skipped_files += 1;
                        progress.advance(1, size);
                    }
                    Err(e) => fail(&mut outcome, e),
                }
            }
            // Whatever was copied completely is kept, even when the sync stops early.
            if !batch.is_empty() && to_commit.send(batch).is_err() {
                break;
            }
        }
        drop(to_commit);
        for d in done.iter() {
            record(catalog, d, &mut outcome);
        }
        if committer.join().is_err() {
            fail(
                &mut outcome,
                crate::Error::Panic("the commit thread panicked".into()),
            );
        }
    });
    outcome
}

/// Copies one object into the disk's tmp/, from a source file that still
/// holds it or from another connected disk. `Ok(None)`: no source has it now.
fn copy_one(
    disk: &Disk,
    others: &[&Disk],
    hash: &ObjectId,
    paths: &[PathBuf],
    progress: &Progress,
) -> crate::Result<Option<Pending>> {
    let each = |n: u64| {
        progress.advance(0, n);
        progress.check()
    };
    for path in paths {
        let Ok(mut f) = open_source(path) else {
            continue;
        };
        progress.current(path);
        match disk.write_tmp(hash, &mut f, each) {
            Ok(p) => return Ok(Some(p)),
            Err(crate::Error::Disk(disk::Error::SourceChanged { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    for other in others {
        if other.id() == disk.id() {
            continue;
        }
        let Ok(mut r) = other.open_object(hash) else {
            continue;
        };
        progress.current(&other.object_path(hash));
        match disk.write_tmp(hash, &mut r, each) {
            Ok(p) => return Ok(Some(p)),
            Err(crate::Error::Disk(disk::Error::SourceChanged { .. })) => {
                progress.warn(
                    Some(&other.object_path(hash)),
                    "does not match its name on that disk; run `coffer verify` on it",
                );
            }
            Err(e) => return Err(e),
        }
    }
    let shown = paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from(hash.to_hex()));
    progress.warn(
        Some(&shown),
        "changed or gone since the last scan; it will be copied after the next scan",
    );
    Ok(None)
}

fn open_source(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Exports the catalog (with the profile) and writes it to the disk's
/// older catalog slot.
pub fn write_catalog_copy(catalog: &Catalog, profile: &Profile, disk: &Disk) -> crate::Result<()> {
    let profile_json = serde_json::to_string(profile).unwrap_or_default();
    catalog.set_meta("profile", &profile_json)?;
    let dir = catalog
        .path()
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
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
