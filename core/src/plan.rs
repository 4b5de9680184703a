//! What one sync should delete from and copy to the one disk plugged in.
//!
//! The order follows DESIGN.md:
//! 1. delete objects on this disk that no retained snapshot references (and
//!    torn copies whose size is wrong);
//! 2. copy current objects that have fewer copies than wanted: fewest copies
//!    first, then higher priority, then by hash; when one does not fit, make
//!    room by evicting from this disk first current objects that keep at
//!    least their wanted number of *verified* copies elsewhere, then old
//!    versions (those with enough verified copies elsewhere first, then
//!    oldest first) — and only if that frees enough;
//! 3. with room left, copy older versions that lack copies, newest first.
//!
//! A copy on a disk that is not connected counts toward "copies", but only a
//! verified one may justify an eviction.
//!
//! Invariant: `plan` does no I/O; the same input gives the same plan, and a
//! current object is never evicted below its wanted verified copies.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::object::ObjectId;

/// What the planner knows of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectState {
    pub hash: ObjectId,
    pub size: u64,
    /// Copies wanted (the highest of its folders).
    pub wanted: u32,
    pub priority: i32,
    /// Referenced by the latest snapshot.
    pub current: bool,
    /// Newest snapshot it is part of (for old versions: how recent).
    pub newest_snapshot: i64,
    /// Copies on other disks, connected or not, as the catalog records them.
    pub copies_elsewhere: u32,
    /// Of those, copies whose bytes were hashed when written or verified.
    pub verified_elsewhere: u32,
    /// Its bytes can be read now (source file, or another connected disk).
    pub available: bool,
}

/// Everything a plan depends on.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub objects: &'a [ObjectState],
    /// Objects on this disk and their sizes as found there.
    pub on_disk: &'a BTreeMap<ObjectId, u64>,
    /// Free bytes Coffer may still fill on this disk.
    pub room: u64,
    /// Bytes of objects the quota still allows, if the disk has one.
    pub quota_room: Option<u64>,
    /// The disk's allocation unit: what an object takes of the free room
    /// is its size rounded up to whole blocks (1 to count bytes alone).
    pub block: u64,
    /// Content on the disk that no snapshot references yet but that must
    /// stay (an interrupted scan read it).
    pub keep: &'a HashSet<ObjectId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteReason {
    /// No retained snapshot references it.
    Unreferenced,
    /// Its size on the disk is wrong (a torn copy).
    Damaged,
    /// Enough verified copies remain elsewhere; the room is needed.
    Redundant,
    /// An old version, evicted to make room for current data.
    OldVersion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Step {
    Delete {
        hash: ObjectId,
        size: u64,
        reason: DeleteReason,
    },
    Copy {
        hash: ObjectId,
        size: u64,
        current: bool,
    },
}

/// The plan for one disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub copy_files: u64,
    pub copy_bytes: u64,
    pub delete_files: u64,
    pub delete_bytes: u64,
    /// Current objects below their wanted copies that did not fit here.
    pub short_files: u64,
    pub short_bytes: u64,
    /// Objects that lack copies but cannot be read now (source gone and no
    /// other disk holding them connected).
    pub unavailable_files: u64,
    /// Old versions that lack copies and were left out (no room here, or
    /// not readable now). Zero, with nothing short or unavailable, means
    /// the disk holds all it would ever take from this catalog.
    pub deferred_files: u64,
}

impl Plan {
    /// The objects to copy, with their sizes, in order.
    pub fn copies(&self) -> Vec<(ObjectId, u64)> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Copy { hash, size, .. } => Some((*hash, *size)),
                Step::Delete { .. } => None,
            })
            .collect()
    }

    /// The objects to delete, with their sizes, in order.
    pub fn deletions(&self) -> Vec<(ObjectId, u64)> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete { hash, size, .. } => Some((*hash, *size)),
                Step::Copy { .. } => None,
            })
            .collect()
    }

    /// Deletions of data the user may not expect to lose from this disk
    /// (evictions of still-referenced objects), which the UI shows first.
    pub fn evictions(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| {
            matches!(
                s,
                Step::Delete {
                    reason: DeleteReason::Redundant | DeleteReason::OldVersion,
                    ..
                }
            )
        })
    }
}

/// Room on the disk as a plan spends it: free space in whole blocks, and
/// the quota (if any) in bytes of objects.
#[derive(Clone, Copy, Debug)]
struct Room {
    free: u64,
    quota: Option<u64>,
    block: u64,
}

impl Room {
    /// What an object of `size` bytes takes of the free space.
    fn cost(&self, size: u64) -> u64 {
        size.div_ceil(self.block).saturating_mul(self.block)
    }

    fn fits(&self, size: u64) -> bool {
        self.cost(size) <= self.free && self.quota.is_none_or(|q| size <= q)
    }

    fn take(&mut self, size: u64) {
        self.free = self.free.saturating_sub(self.cost(size));
        self.quota = self.quota.map(|q| q.saturating_sub(size));
    }

    fn give(&mut self, size: u64) {
        self.free = self.free.saturating_add(self.cost(size));
        self.quota = self.quota.map(|q| q.saturating_add(size));
    }

    /// Whether freeing objects of these sizes would make room for `size`.
    fn could_fit(&self, size: u64, freeable: impl Iterator<Item = u64> + Clone) -> bool {
        let mut r = *self;
        for s in freeable {
            r.give(s);
        }
        r.fits(size)
    }
}

/// Computes the plan. Pure and deterministic.
pub fn plan(input: &Input<'_>) -> Plan {
    let mut p = Plan::default();
    let known: HashMap<ObjectId, &ObjectState> =
        input.objects.iter().map(|o| (o.hash, o)).collect();
    let mut room = Room {
        free: input.room,
        quota: input.quota_room,
        block: input.block.max(1),
    };
    let delete = |p: &mut Plan, room: &mut Room, hash: ObjectId, size: u64, reason| {
        let freed = if size == u64::MAX { 0 } else { size };
        p.steps.push(Step::Delete {
            hash,
            size: freed,
            reason,
        });
        p.delete_files += 1;
        p.delete_bytes += freed;
        room.give(freed);
    };

    let copy = |p: &mut Plan, room: &mut Room, o: &ObjectState| {
        room.take(o.size);
        p.steps.push(Step::Copy {
            hash: o.hash,
            size: o.size,
            current: o.current,
        });
        p.copy_files += 1;
        p.copy_bytes += o.size;
    };

    // 1. Unreferenced and damaged.
    let mut present: HashSet<ObjectId> = HashSet::new();
    for (hash, &size) in input.on_disk {
        match known.get(hash) {
            None if input.keep.contains(hash) => {}
            None => delete(&mut p, &mut room, *hash, size, DeleteReason::Unreferenced),
            Some(o) if o.size != size => {
                delete(&mut p, &mut room, *hash, size, DeleteReason::Damaged)
            }
            Some(_) => {
                present.insert(*hash);
            }
        }
    }

    // Eviction candidates on this disk, in the order they may go.
    let mut redundant: Vec<&ObjectState> = present
        .iter()
        .filter_map(|h| known.get(h).copied())
        .filter(|o| o.current && o.verified_elsewhere >= o.wanted)
        .collect();
    redundant.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then((b.verified_elsewhere - b.wanted).cmp(&(a.verified_elsewhere - a.wanted)))
            .then(b.size.cmp(&a.size))
            .then(a.hash.cmp(&b.hash))
    });
    let mut old: Vec<&ObjectState> = present
        .iter()
        .filter_map(|h| known.get(h).copied())
        .filter(|o| !o.current)
        .collect();
    old.sort_by(|a, b| {
        let a_safe = a.verified_elsewhere >= a.wanted;
        let b_safe = b.verified_elsewhere >= b.wanted;
        b_safe
            .cmp(&a_safe)
            .then(a.newest_snapshot.cmp(&b.newest_snapshot))
            .then(a.hash.cmp(&b.hash))
    });
    let mut evictable: Vec<(&ObjectState, DeleteReason)> = redundant
        .into_iter()
        .map(|o| (o, DeleteReason::Redundant))
        .chain(old.into_iter().map(|o| (o, DeleteReason::OldVersion)))
        .collect();
    evictable.reverse(); // pop() takes the first candidate

    // 2. Current objects below their wanted copies.
    let mut need: Vec<&ObjectState> = input
        .objects
        .iter()
        .filter(|o| {
            o.current && o.wanted > 0 && o.copies_elsewhere < o.wanted && !present.contains(&o.hash)
        })
        .collect();
    need.sort_by(|a, b| {
        a.copies_elsewhere
            .cmp(&b.copies_elsewhere)
            .then(b.priority.cmp(&a.priority))
            .then(a.hash.cmp(&b.hash))
    });
    let mut evicted: HashSet<ObjectId> = HashSet::new();
    for o in need {
        if !o.available {
            p.unavailable_files += 1;
            continue;
        }
        if !room.fits(o.size) {
            if !room.could_fit(o.size, evictable.iter().map(|(e, _)| e.size)) {
                p.short_files += 1;
                p.short_bytes += o.size;
                continue;
            }
            while !room.fits(o.size) {
                let Some((e, reason)) = evictable.pop() else {
                    break;
                };
                evicted.insert(e.hash);
                delete(&mut p, &mut room, e.hash, e.size, reason);
            }
        }
        copy(&mut p, &mut room, o);
    }

    // 3. Old versions, newest first, only into free room.
    let mut old_need: Vec<&ObjectState> = input
        .objects
        .iter()
        .filter(|o| {
            !o.current
                && o.wanted > 0
                && o.copies_elsewhere < o.wanted
                && !present.contains(&o.hash)
        })
        .collect();
    old_need.sort_by(|a, b| {
        b.newest_snapshot
            .cmp(&a.newest_snapshot)
            .then(a.hash.cmp(&b.hash))
    });
    for o in old_need {
        if !o.available || !room.fits(o.size) {
            p.deferred_files += 1;
            continue;
        }
        copy(&mut p, &mut room, o);
    }
    p
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
