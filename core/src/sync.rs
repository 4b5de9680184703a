//! Carrying a plan out on the one connected disk.
//!
//! A sync registers the disk, empties its `tmp/`, reconciles the catalog with
//! what is really on it, plans, then deletes and copies. Copies come from the
//! source files (re-hashed on the way, so a file changed since the scan is
//! never stored under the wrong name) or from another connected disk. They
//! are committed in batches: one flush per batch, then the renames, then the
//! catalog records the copies. Last, the catalog copy on the disk is replaced.
//!
//! A sync that left the disk holding everything it would take records a
//! saturation key (catalog generation, profile, quota, object-store folder
//! stamps); a later sync that finds the same key has nothing to do and
//! skips listing the disk and planning.
//!
//! Invariant: the disk's identity is re-read before every batch of writes;
//! the catalog only records a copy after its object is flushed under its
//! final name; an interrupted sync leaves a state the next sync completes
//! without copying again what is already in place.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, DiskRow, ObjectUse};
use crate::config::Profile;
use crate::disk::{self, Disk, Pending};
use crate::object::ObjectId;
use crate::plan::{self, ObjectState, Plan, Step};
use crate::task::{Phase, Progress};

use rayon::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("disk \"{label}\" at {root} belongs to another backup set; it was not changed")]
    WrongSet { root: PathBuf, label: String },
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
    let mut report = Report {
        disk_id: disk.id(),
        label: disk.label().into(),
        root: disk.root().into(),
        dry_run: opts.dry_run,
        ..Report::default()
    };
    match sync_inner(catalog, profile, disk, others, opts, progress, &mut report) {
        Ok(()) => Ok(report),
        Err(e) => Err(full_error(e, disk, &report)),
    }
}

fn sync_inner(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &mut Disk,
    others: &[&Disk],
    opts: &Options,
    progress: &Progress,
    report: &mut Report,
) -> crate::Result<()> {
    disk.check_identity()?;
    if !disk.identity.sets.contains(&profile.set_id) {
        return Err(Error::WrongSet {
            root: disk.root().into(),
            label: disk.label().into(),
        }
        .into());
    }
    disk.lock()?;
    progress.phase(Phase::Planning, 0, 0);
    if !opts.dry_run {
        disk.clean_tmp()?;
    }
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
    let room = space
        .free
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
    progress.phase(
        Phase::Copying,
        copies.len() as u64,
        copies.iter().map(|c| c.1).sum(),
    );
    // Objects are copied in batches, each batch by all cores at once (the
    // hashing is the CPU cost), then flushed and committed together.
    let mut outcome: crate::Result<()> = Ok(());
    let mut rest = copies.as_slice();
    while !rest.is_empty() && outcome.is_ok() {
        disk.check_identity()?;
        let mut n = 0;
        let mut bytes = 0u64;
        while n < rest.len() && n < opts.batch_files && (n == 0 || bytes < opts.batch_bytes) {
            bytes += rest[n].1;
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let results: Vec<(u64, crate::Result<Option<Pending>>)> = chunk
            .par_iter()
            .map(|(hash, size)| {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return (*size, Err(crate::Error::Cancelled));
                }
                let srcs = paths.get(hash).copied().unwrap_or(&[]);
                let r = progress
                    .check()
                    .and_then(|()| copy_one(disk, others, hash, srcs, progress));
                if r.is_err() {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
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
                // The first real error wins over the stops it caused.
                Err(e) => {
                    let stopped = |r: &crate::Result<()>| matches!(r, Err(crate::Error::Cancelled));
                    if outcome.is_ok()
                        || (stopped(&outcome) && !matches!(e, crate::Error::Cancelled))
                    {
                        outcome = Err(e);
                    }
                }
            }
        }
        // Whatever was copied completely is kept, even when the sync stops early.
        if let Err(e) = commit(catalog, disk, batch, report)
            && outcome.is_ok()
        {
            outcome = Err(e);
        }
    }
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

fn commit(
    catalog: &mut Catalog,
    disk: &Disk,
    batch: Vec<Pending>,
    report: &mut Report,
) -> crate::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let sizes: HashMap<ObjectId, u64> = batch.iter().map(|p| (p.hash, p.size)).collect();
    let done = disk.commit(batch)?;
    let now = crate::now();
    let rows: Vec<(ObjectId, Option<i64>)> = done.iter().map(|h| (*h, Some(now))).collect();
    catalog.add_copies(disk.id(), &rows)?;
    report.copied_files += done.len() as u64;
    report.copied_bytes += done.iter().filter_map(|h| sizes.get(h)).sum::<u64>();
    Ok(())
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
