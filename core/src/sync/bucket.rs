//! One sync of one bucket disk, after a scan: the same planner, the same
//! planner's view of every object (`object_states`), the same reconciling
//! of the catalog's copies with what the bucket lists, then deletions,
//! uploads (`parallel` at a time, each from a source file that still holds
//! the content or from another connected disk) and the catalog copy.
//!
//! A bucket has no `tmp/` to settle and nothing to rename: an upload that
//! did not finish left nothing under its key (see `bucket::upload`), so a
//! sync cut short (an error, a kill) leaves a bucket the next one completes
//! without uploading again what is there.
//!
//! A sync that carried out its whole plan records a saturation key (the
//! catalog's generation, the profile, the quota, the ETags of the bucket's
//! catalog sidecars); the next sync with the same key skips listing and
//! planning. Objects removed from the bucket behind Coffer's back are then
//! found by `verify`, not by the sync.
//!
//! Invariant: the catalog records a copy on a bucket only after the upload
//! was checked and its content hashed to the object's id.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;

use super::state::{object_states, reconcile};
use super::{Options, Report};
use crate::bucket::{BucketDisk, DiskError};
use crate::catalog::{Catalog, DiskRow};
use crate::config::Profile;
use crate::disk::Disk;
use crate::object::ObjectId;
use crate::plan;
use crate::task::{Phase, Progress};

impl From<DiskError> for crate::Error {
    fn from(e: DiskError) -> crate::Error {
        // The chain, whole: the bucket's error names the key and the cause.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        crate::Error::Failed(msg)
    }
}

/// Records the bucket disk in the catalog: label, quota, where it was
/// seen (its URL), what it holds.
pub fn register_bucket(catalog: &Catalog, disk: &BucketDisk, used: u64) -> crate::Result<DiskRow> {
    let id = &disk.identity;
    let mut row = catalog
        .disk(id.disk_id)?
        .unwrap_or_else(|| DiskRow::new(id.disk_id, &id.label, id.created_at));
    row.label = id.label.clone();
    row.quota = id.quota;
    row.last_seen = Some(crate::now());
    row.last_mount = Some(PathBuf::from(disk.bucket().location().url("")));
    row.used = Some(used);
    row.capacity = id.quota;
    row.free = id.quota.map(|q| q.saturating_sub(used));
    catalog.upsert_disk(&row)?;
    Ok(row)
}

/// Syncs the bucket disk `disk` against the catalog's latest snapshot,
/// `others` (connected local disks) serving as sources for content the
/// workstation no longer has.
pub fn sync_bucket(
    catalog: &mut Catalog,
    profile: &Profile,
    disk: &BucketDisk,
    others: &[&Disk],
    opts: &Options,
    parallel: usize,
    progress: &Progress,
) -> crate::Result<Report> {
    let id = disk.identity.disk_id;
    let mut report = Report {
        disk_id: id,
        label: disk.identity.label.clone(),
        root: PathBuf::from(disk.bucket().location().url("")),
        dry_run: opts.dry_run,
        ..Report::default()
    };
    progress.phase(Phase::Planning, 0, 0);
    // The fast way out, as for a local disk: a bucket that a sync left
    // holding all it would take, whose catalog copies nobody rewrote since,
    // with this catalog unchanged since, needs nothing (not even a listing).
    let saturated_at = format!("saturated:{id}");
    let key = saturation_key(catalog, profile, disk)?;
    if catalog.meta(&saturated_at)?.as_deref() == Some(key.as_str()) {
        let used = catalog.disk(id)?.and_then(|r| r.used).unwrap_or(0);
        let mut row = register_bucket(catalog, disk, used)?;
        if !opts.dry_run {
            row.last_sync = Some(crate::now());
            catalog.upsert_disk(&row)?;
        }
        report.up_to_date = true;
        report.room_after = disk
            .identity
            .quota
            .map_or(u64::MAX / 4, |q| q.saturating_sub(used));
        return Ok(report);
    }
    if !opts.dry_run {
        // Until this sync ends well, the next one lists and plans.
        catalog.set_meta(&saturated_at, "")?;
    }
    let on_disk = disk.objects(catalog.known_hashes()?)?;
    let used: u64 = on_disk.values().filter(|s| **s != u64::MAX).sum();
    register_bucket(catalog, disk, used)?;
    reconcile(catalog, id, &on_disk)?;
    let (states, uses) = object_states(catalog, profile, Some(id), others)?;
    let quota_room = disk.identity.quota.map(|q| q.saturating_sub(used));
    let pending: HashSet<ObjectId> = catalog.scan_cache()?.values().map(|c| c.hash).collect();
    // A bucket has no room of its own to run out of: only its quota.
    let room = u64::MAX / 4;
    let plan = plan::plan(&plan::Input {
        objects: &states,
        on_disk: &on_disk,
        room,
        quota_room,
        block: 1,
        keep: &pending,
    });
    report.plan = plan.clone();
    report.room_after = quota_room.unwrap_or(room);
    if opts.dry_run {
        return Ok(report);
    }
    let deletions = plan.deletions();
    progress.phase(Phase::Deleting, deletions.len() as u64, 0);
    let mut removed = Vec::new();
    let mut result: crate::Result<()> = Ok(());
    for (h, size) in &deletions {
        if let Err(e) = disk.remove_object(h) {
            result = Err(e.into());
            break;
        }
        removed.push(*h);
        report.deleted_files += 1;
        report.deleted_bytes += size;
        progress.advance(1, *size);
    }
    catalog.remove_copies(id, &removed)?;
    result?;

    let copies = plan.copies();
    progress.phase(
        Phase::Copying,
        copies.len() as u64,
        copies.iter().map(|c| c.1).sum(),
    );
    let paths: HashMap<ObjectId, &[PathBuf]> =
        uses.iter().map(|u| (u.hash, u.paths.as_slice())).collect();
    let uploads = Uploads {
        disk,
        others,
        copies: &copies,
        paths: &paths,
        parallel,
    };
    let result = upload_all(catalog, &uploads, progress, &mut report);
    // What was uploaded is recorded even when the sync stops here.
    result?;

    progress.phase(Phase::WritingCatalog, 1, 0);
    let used_now = used.saturating_sub(report.deleted_bytes) + report.copied_bytes;
    let mut row = register_bucket(catalog, disk, used_now)?;
    row.last_sync = Some(crate::now());
    catalog.upsert_disk(&row)?;
    let key = format!("slot-fingerprint:{id}");
    let fingerprint = format!("{}:{}", catalog.fingerprint()?, profile.digest());
    let unchanged = report.copied_files == 0
        && report.deleted_files == 0
        && catalog.meta(&key)?.as_deref() == Some(fingerprint.as_str());
    if !unchanged {
        write_bucket_catalog(catalog, profile, disk)?;
        catalog.set_meta(&key, &fingerprint)?;
    }
    report.room_after = disk
        .identity
        .quota
        .map_or(room, |q| q.saturating_sub(used_now));
    // Everything the plan wanted happened, and it wanted all it could.
    let saturated = report.skipped_files == 0
        && plan.short_files == 0
        && plan.unavailable_files == 0
        && plan.deferred_files == 0
        && report.copied_files == plan.copy_files
        && report.deleted_files == plan.delete_files;
    let key = if saturated {
        saturation_key(catalog, profile, disk)?
    } else {
        String::new()
    };
    catalog.set_meta(&saturated_at, &key)?;
    Ok(report)
}

/// What a bucket's sync depends on: the catalog's generation, the
/// profile, the quota, and the bucket's catalog copies.
fn saturation_key(
    catalog: &Catalog,
    profile: &Profile,
    disk: &BucketDisk,
) -> crate::Result<String> {
    Ok(format!(
        "bucket:{}:{}:{:?}:{}",
        catalog.generation()?,
        profile.digest(),
        disk.identity.quota,
        disk.catalog_token()?
    ))
}

/// Exports the catalog and uploads it into the bucket's older slot.
pub fn write_bucket_catalog(
    catalog: &Catalog,
    profile: &Profile,
    disk: &BucketDisk,
) -> crate::Result<()> {
    let profile_json = serde_json::to_string(profile).unwrap_or_default();
    catalog.set_meta("profile", &profile_json)?;
    let dir = catalog
        .path()
        .parent()
        .unwrap_or(std::path::Path::new("."))
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

/// The uploads of a sync to a bucket: what goes where, read from where.
struct Uploads<'a> {
    disk: &'a BucketDisk,
    /// Other connected disks, read when no source file holds an object any more.
    others: &'a [&'a Disk],
    /// The objects to upload, with their sizes.
    copies: &'a [(ObjectId, u64)],
    /// The files holding each object.
    paths: &'a HashMap<ObjectId, &'a [PathBuf]>,
    /// How many uploads run at once.
    parallel: usize,
}

/// Uploads `copies`, `parallel` at a time, recording each in the catalog
/// as it is done; the first failure stops the rest (after the uploads
/// under way finished) and is returned.
fn upload_all(
    catalog: &mut Catalog,
    uploads: &Uploads<'_>,
    progress: &Progress,
    report: &mut Report,
) -> crate::Result<()> {
    let Uploads {
        disk,
        others,
        copies,
        paths,
        parallel,
    } = *uploads;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(ObjectId, crate::Result<Option<u64>>)>();
    let mut first_error = None;
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || {
                use std::sync::atomic::Ordering::SeqCst;
                while !stop.load(SeqCst) {
                    let Some((hash, _)) = copies.get(next.fetch_add(1, SeqCst)) else {
                        return;
                    };
                    let srcs = paths.get(hash).copied().unwrap_or(&[]);
                    let r = upload_one(disk, others, hash, srcs, progress);
                    if r.is_err() {
                        stop.store(true, SeqCst);
                    }
                    if tx.send((*hash, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for (hash, r) in rx {
            match r {
                Ok(Some(size)) => {
                    if let Err(e) = catalog.add_copies(disk.identity.disk_id, &[(hash, None)]) {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                        first_error.get_or_insert(crate::Error::from(e));
                        continue;
                    }
                    report.copied_files += 1;
                    report.copied_bytes += size;
                    progress.advance(1, 0);
                }
                Ok(None) => report.skipped_files += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    first_error.map_or(Ok(()), Err)
}

/// Uploads one object from a source file that still holds it, else from
/// another connected disk. `Ok(None)`: no source has it now.
fn upload_one(
    disk: &BucketDisk,
    others: &[&Disk],
    hash: &ObjectId,
    paths: &[PathBuf],
    progress: &Progress,
) -> crate::Result<Option<u64>> {
    let mut each = |n: u64| {
        progress.advance(0, n);
        if progress.is_cancelled() {
            Err(std::io::Error::other("cancelled"))
        } else {
            Ok(())
        }
    };
    for path in paths {
        let Ok(mut f) = super::copy::open_source(path) else {
            continue;
        };
        progress.current(path);
        match disk.put_object(hash, &mut f, &mut each) {
            Ok(n) => return Ok(Some(n)),
            Err(DiskError::Changed { .. }) => continue,
            Err(e) => return Err(cancelled_or(e, progress)),
        }
    }
    for other in others {
        let Ok(mut r) = other.open_object(hash) else {
            continue;
        };
        progress.current(&other.object_path(hash));
        match disk.put_object(hash, &mut r, &mut each) {
            Ok(n) => return Ok(Some(n)),
            Err(DiskError::Changed { .. }) => progress.warn(
                Some(&other.object_path(hash)),
                "does not match its name on that disk; run `coffer verify` on it",
            ),
            Err(e) => return Err(cancelled_or(e, progress)),
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

fn cancelled_or(e: DiskError, progress: &Progress) -> crate::Error {
    if progress.is_cancelled() {
        crate::Error::Cancelled
    } else {
        e.into()
    }
}
