//! What a sync plans from: the planner's view of every object, the
//! catalog's copies made to match the disk, the room the catalog copy
//! needs, and the saturation key of an up-to-date disk.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::catalog::{Catalog, ObjectUse};
use crate::config::Profile;
use crate::disk::Disk;
use crate::object::ObjectId;
use crate::plan::ObjectState;

use super::Error;

/// Makes the catalog's copies for this disk match what is on it.
pub(super) fn reconcile(
    catalog: &mut Catalog,
    disk_id: uuid::Uuid,
    on_disk: &BTreeMap<ObjectId, u64>,
) -> crate::Result<()> {
    let recorded = catalog.copies_on(disk_id)?;
    let gone: Vec<ObjectId> = recorded
        .iter()
        .map(|c| c.hash)
        .filter(|h| !on_disk.contains_key(h))
        .collect();
    catalog.remove_copies(disk_id, &gone)?;
    let known: HashSet<ObjectId> = recorded.iter().map(|c| c.hash).collect();
    let mut found = Vec::new();
    for (h, size) in on_disk {
        if !known.contains(h) && catalog.object_size(h)? == Some(*size) {
            // On the disk but not in the catalog: an interrupted sync got
            // this far. Its name guarantees its bytes, but nobody has
            // re-read them since, so it counts as a copy, not a verified one.
            found.push((*h, None));
        }
    }
    Ok(catalog.add_copies(disk_id, &found)?)
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
    let mut on_connected: HashSet<ObjectId> = HashSet::new();
    for d in connected {
        // A locked encrypted disk cannot serve as a source.
        if Some(d.id()) != this_disk && d.unlocked() {
            catalog.teach(d)?;
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

/// Room kept free for the catalog copy written at the end of a sync: the
/// export (about the catalog's size, plus what this sync adds) less the
/// slot it overwrites, which it frees first.
pub(super) fn catalog_reserve(catalog: &Catalog, disk: &Disk) -> u64 {
    let size = std::fs::metadata(catalog.path())
        .map(|m| m.len())
        .unwrap_or(0);
    let overwritten = disk
        .slots()
        .iter()
        .map(|s| s.meta.as_ref().map_or(0, |m| m.size))
        .min()
        .unwrap_or(0);
    size.saturating_sub(overwritten) + size / 16 + (256 << 10)
}

/// What a saturated disk stays saturated under: the catalog's generation,
/// the profile (copies wanted, sources), the disk's quota and the state of
/// its object store. `None` when the object store cannot be summed up now.
pub(super) fn saturation_key(
    catalog: &Catalog,
    profile: &Profile,
    disk: &Disk,
) -> crate::Result<Option<String>> {
    let Some(token) = disk.objects_token()? else {
        return Ok(None);
    };
    Ok(Some(format!(
        "{}:{}:{:?}:{token}",
        catalog.generation()?,
        profile.digest(),
        disk.identity.quota
    )))
}
