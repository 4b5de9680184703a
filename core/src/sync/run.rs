//! One sync of one disk, once it was claimed and its `tmp/` settled: the
//! up-to-date shortcut, reconciling, the plan, deletions, copies, and the
//! catalog copy on the disk.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::state::{catalog_reserve, object_states, reconcile, saturation_key};
use super::{SyncRun, write_catalog_copy};
use crate::object::ObjectId;
use crate::plan;
use crate::task::Phase;

impl SyncRun<'_, '_> {
    /// Plans and carries the plan out.
    pub(super) fn run(&mut self) -> crate::Result<()> {
        let (catalog, disk) = (&mut *self.catalog, self.disk);
        // What the scan committed early is on the disk already: in the
        // listing below, and in the report.
        let (early_files, early_bytes) = (self.report.copied_files, self.report.copied_bytes);
        self.progress.phase(Phase::Planning, 0, 0);
        // The fast way out: a disk that a sync left holding all it would
        // take, unchanged since, with a catalog unchanged since, needs nothing.
        let saturated_at = format!("saturated:{}", disk.id());
        if self.stage.is_none_or(|s| s.held() == 0)
            && let Some(key) = saturation_key(catalog, self.profile, disk)?
            && catalog.meta(&saturated_at)?.as_deref() == Some(key.as_str())
            && disk.has_catalog()
        {
            let mut row = catalog.register(disk, None)?;
            if !self.opts.dry_run {
                row.last_sync = Some(crate::now());
                catalog.upsert_disk(&row)?;
            }
            self.report.up_to_date = true;
            // The figure every view shows for this disk.
            self.report.room_after = row.free.unwrap_or(0);
            return Ok(());
        }
        catalog.teach(disk)?;
        let on_disk = disk.objects()?;
        let used: u64 = on_disk.values().filter(|s| **s != u64::MAX).sum();
        catalog.register(disk, Some(used))?;
        reconcile(catalog, disk.id(), &on_disk)?;
        let (states, uses) = object_states(catalog, self.profile, Some(disk.id()), self.others)?;
        let space = disk.space(used)?;
        // Staged copies already take room on the disk that committing them
        // will not take again; the catalog copy needs free room of its own;
        // the quota counts objects, staged ones included once committed.
        let staged = self.stage.map_or(0, |s| s.held());
        let room = (space.free + staged).saturating_sub(catalog_reserve(catalog, disk));
        let quota_room = space.quota.map(|q| q.saturating_sub(used));
        // Content an unfinished scan read is not "unreferenced" yet.
        let pending: HashSet<ObjectId> = catalog.scan_cache()?.values().map(|c| c.hash).collect();
        let plan = plan::plan(&plan::Input {
            objects: &states,
            on_disk: &on_disk,
            room,
            quota_room,
            block: disk.block_size(),
            keep: &pending,
        });
        self.report.plan = plan.clone();
        if self.opts.dry_run {
            self.report.room_after = quota_room
                .map_or(room, |q| q.min(room))
                .saturating_sub(plan.copy_bytes)
                .saturating_add(plan.delete_bytes);
            return Ok(());
        }
        let paths: HashMap<ObjectId, &[PathBuf]> =
            uses.iter().map(|u| (u.hash, u.paths.as_slice())).collect();

        // Deletions first, as one batch, after checking the disk is still there.
        let deletions = plan.deletions();
        if !deletions.is_empty() {
            self.progress
                .phase(Phase::Deleting, deletions.len() as u64, 0);
            disk.check_identity()?;
            let mut removed = Vec::new();
            let mut result = Ok(());
            for (h, size) in &deletions {
                if let Err(e) = disk.remove_object(h) {
                    result = Err(e);
                    break;
                }
                removed.push(*h);
                self.report.deleted_files += 1;
                self.report.deleted_bytes += size;
                self.progress.advance(1, *size);
            }
            self.catalog.remove_copies(disk.id(), &removed)?;
            result?;
        }

        let copies = plan.copies();
        if let Some(stage) = self.stage {
            let wanted: HashSet<ObjectId> = copies.iter().map(|c| c.0).collect();
            stage.retain(|h| wanted.contains(h));
        }
        self.progress.phase(
            Phase::Copying,
            copies.len() as u64,
            copies.iter().map(|c| c.1).sum(),
        );
        let planned = (plan.copy_files, plan.delete_files);
        self.copy_all(&paths, &copies)?;

        self.progress.phase(Phase::WritingCatalog, 1, 0);
        let (catalog, disk) = (&mut *self.catalog, self.disk);
        let used_now = used.saturating_sub(self.report.deleted_bytes)
            + (self.report.copied_bytes - early_bytes);
        let mut row = catalog.register(disk, Some(used_now))?;
        row.last_sync = Some(crate::now());
        catalog.upsert_disk(&row)?;
        // A sync that changed nothing leaves the disk's catalog copy as it
        // is (rewriting it costs a flush of the whole disk for no news).
        let key = format!("slot-fingerprint:{}", disk.id());
        let fingerprint = format!("{}:{}", catalog.fingerprint()?, self.profile.digest());
        let unchanged = self.report.copied_files == 0
            && self.report.deleted_files == 0
            && catalog.meta(&key)?.as_deref() == Some(fingerprint.as_str())
            && disk.has_catalog();
        if !unchanged {
            write_catalog_copy(catalog, self.profile, disk)?;
            catalog.set_meta(&key, &fingerprint)?;
        }
        // Its tmp/ is empty now: what the journal knew of it is done with.
        catalog.clear_staging(disk.id())?;
        // Measured once the catalog copy is written, and recorded: the
        // figure every view and command shows for this disk.
        self.report.room_after = catalog.register(disk, Some(used_now))?.free.unwrap_or(0);
        // Everything the plan wanted happened, and it wanted all it could:
        // the next sync may skip listing and planning while nothing changes.
        let saturated = self.report.skipped_files == 0
            && plan.short_files == 0
            && plan.unavailable_files == 0
            && plan.deferred_files == 0
            && self.report.copied_files - early_files == planned.0
            && self.report.deleted_files == planned.1;
        let key = if saturated {
            saturation_key(catalog, self.profile, disk)?
        } else {
            None
        };
        catalog.set_meta(&saturated_at, key.as_deref().unwrap_or(""))?;
        Ok(())
    }
}
