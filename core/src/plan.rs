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
mod tests {
    use super::*;
    use rstest::rstest;

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 32])
    }

    fn obj(n: u8, size: u64) -> ObjectState {
        ObjectState {
            hash: id(n),
            size,
            wanted: 2,
            priority: 0,
            current: true,
            newest_snapshot: 10,
            copies_elsewhere: 0,
            verified_elsewhere: 0,
            available: true,
        }
    }

    fn copies(p: &Plan) -> Vec<u8> {
        p.steps
            .iter()
            .filter_map(|s| {
                if let Step::Copy { hash, .. } = s {
                    Some(hash.0[0])
                } else {
                    None
                }
            })
            .collect()
    }

    fn deletes(p: &Plan) -> Vec<(u8, DeleteReason)> {
        p.steps
            .iter()
            .filter_map(|s| {
                if let Step::Delete { hash, reason, .. } = s {
                    Some((hash.0[0], *reason))
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn unreferenced_and_damaged_go_first() {
        let objects = [obj(1, 10)];
        let on_disk = BTreeMap::from([(id(9), 5), (id(1), 3)]);
        let p = plan(&Input {
            objects: &objects,
            on_disk: &on_disk,
            room: 100,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(
            deletes(&p),
            vec![(1, DeleteReason::Damaged), (9, DeleteReason::Unreferenced)]
        );
        assert_eq!(copies(&p), vec![1]);
    }

    #[rstest]
    // (copies elsewhere, priority) per object → copy order
    #[case::fewest_copies_first(&[(1, 0), (0, 0), (1, 5)], &[2, 3, 1])]
    #[case::priority_breaks_ties(&[(0, 0), (0, 9), (0, 3)], &[2, 3, 1])]
    fn copy_order(#[case] spec: &[(u32, i32)], #[case] expect: &[u8]) {
        let objects: Vec<_> = spec
            .iter()
            .enumerate()
            .map(|(i, &(c, prio))| ObjectState {
                copies_elsewhere: c,
                priority: prio,
                ..obj(i as u8 + 1, 10)
            })
            .collect();
        let p = plan(&Input {
            objects: &objects,
            on_disk: &BTreeMap::new(),
            room: 1000,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(copies(&p), expect);
    }

    #[test]
    fn objects_with_enough_copies_are_not_copied_again() {
        let objects = [
            ObjectState {
                copies_elsewhere: 2,
                verified_elsewhere: 2,
                ..obj(1, 10)
            },
            obj(2, 10),
        ];
        let p = plan(&Input {
            objects: &objects,
            on_disk: &BTreeMap::new(),
            room: 1000,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(copies(&p), vec![2]);
    }

    #[test]
    fn full_disk_reports_shortfall_and_keeps_going_with_what_fits() {
        let objects = [obj(1, 50), obj(2, 500), obj(3, 40)];
        let p = plan(&Input {
            objects: &objects,
            on_disk: &BTreeMap::new(),
            room: 100,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(copies(&p), vec![1, 3]);
        assert_eq!((p.short_files, p.short_bytes), (1, 500));
        assert!(deletes(&p).is_empty());
    }

    #[test]
    fn eviction_never_takes_a_current_object_below_wanted_verified_copies() {
        // 5 and 6 are on this disk; 5 has two verified copies elsewhere,
        // 6 has two copies elsewhere but only one verified.
        let objects = [
            ObjectState {
                copies_elsewhere: 2,
                verified_elsewhere: 2,
                ..obj(5, 60)
            },
            ObjectState {
                copies_elsewhere: 2,
                verified_elsewhere: 1,
                ..obj(6, 60)
            },
            obj(1, 100),
        ];
        let on_disk = BTreeMap::from([(id(5), 60), (id(6), 60)]);
        let p = plan(&Input {
            objects: &objects,
            on_disk: &on_disk,
            room: 50,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(deletes(&p), vec![(5, DeleteReason::Redundant)]);
        assert_eq!(copies(&p), vec![1]);

        // Needing more than the safe evictions can free: evict nothing.
        let objects2 = [objects[0].clone(), objects[1].clone(), obj(1, 200)];
        let p = plan(&Input {
            objects: &objects2,
            on_disk: &on_disk,
            room: 50,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert!(deletes(&p).is_empty());
        assert_eq!(p.short_bytes, 200);
    }

    #[test]
    fn old_versions_make_room_oldest_first_and_are_copied_newest_first() {
        let objects = [
            ObjectState {
                current: false,
                newest_snapshot: 3,
                ..obj(7, 30)
            },
            ObjectState {
                current: false,
                newest_snapshot: 1,
                ..obj(8, 30)
            },
            obj(1, 40),
        ];
        let on_disk = BTreeMap::from([(id(7), 30), (id(8), 30)]);
        let p = plan(&Input {
            objects: &objects,
            on_disk: &on_disk,
            room: 20,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(deletes(&p), vec![(8, DeleteReason::OldVersion)]);
        assert_eq!(copies(&p), vec![1]);

        let objects = [
            ObjectState {
                current: false,
                newest_snapshot: 3,
                ..obj(7, 30)
            },
            ObjectState {
                current: false,
                newest_snapshot: 5,
                ..obj(8, 30)
            },
        ];
        let p = plan(&Input {
            objects: &objects,
            on_disk: &BTreeMap::new(),
            room: 40,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(copies(&p), vec![8]);
        // The one that did not fit is counted: the disk is not saturated.
        assert_eq!(p.deferred_files, 1);
        assert_eq!(p.short_files, 0);
    }

    #[test]
    fn unavailable_objects_are_counted_not_planned() {
        let objects = [ObjectState {
            available: false,
            ..obj(1, 10)
        }];
        let p = plan(&Input {
            objects: &objects,
            on_disk: &BTreeMap::new(),
            room: 100,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!((p.copy_files, p.unavailable_files), (0, 1));
    }

    #[test]
    fn zero_copies_wanted_is_never_copied_and_is_evicted_first() {
        let objects = [
            ObjectState {
                wanted: 0,
                ..obj(4, 80)
            },
            obj(1, 50),
        ];
        let on_disk = BTreeMap::from([(id(4), 80)]);
        let p = plan(&Input {
            objects: &objects,
            on_disk: &on_disk,
            room: 10,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(deletes(&p), vec![(4, DeleteReason::Redundant)]);
        assert_eq!(copies(&p), vec![1]);
    }

    /// Simulates syncing disks in rotation, as a user would plug them in.
    fn rotate(sizes: &[u64], objects: &[(u8, u64)], rounds: usize) -> Vec<BTreeMap<ObjectId, u64>> {
        let mut disks: Vec<BTreeMap<ObjectId, u64>> = vec![BTreeMap::new(); sizes.len()];
        for round in 0..rounds {
            let d = round % sizes.len();
            let states: Vec<ObjectState> = objects
                .iter()
                .map(|&(n, size)| {
                    let elsewhere = disks
                        .iter()
                        .enumerate()
                        .filter(|(i, disk)| *i != d && disk.contains_key(&id(n)))
                        .count() as u32;
                    ObjectState {
                        copies_elsewhere: elsewhere,
                        verified_elsewhere: elsewhere,
                        ..obj(n, size)
                    }
                })
                .collect();
            let used: u64 = disks[d].values().sum();
            let p = plan(&Input {
                objects: &states,
                on_disk: &disks[d],
                room: sizes[d] - used,
                quota_room: None,
                block: 1,
                keep: &HashSet::new(),
            });
            for s in &p.steps {
                match *s {
                    Step::Delete { hash, .. } => {
                        disks[d].remove(&hash);
                    }
                    Step::Copy { hash, size, .. } => {
                        disks[d].insert(hash, size);
                    }
                }
            }
            let used: u64 = disks[d].values().sum();
            assert!(
                used <= sizes[d],
                "disk {d} overfilled: {used} > {}",
                sizes[d]
            );
        }
        disks
    }

    #[test]
    fn three_disks_of_different_sizes_reach_two_copies_in_rotation() {
        let objects: Vec<(u8, u64)> = (1..=30).map(|n| (n, u64::from(n) * 10)).collect();
        let total: u64 = objects.iter().map(|o| o.1).sum(); // 4650
        let disks = rotate(&[total, total / 2, total], &objects, 6);
        for (n, _) in &objects {
            let c = disks.iter().filter(|d| d.contains_key(&id(*n))).count();
            assert!(c >= 2, "object {n} has {c} copies");
        }
    }

    #[test]
    fn rotation_without_room_for_two_copies_keeps_at_least_one_of_everything() {
        let objects: Vec<(u8, u64)> = (1..=20).map(|n| (n, 100)).collect();
        let disks = rotate(&[800, 800, 800], &objects, 9);
        for (n, _) in &objects {
            let c = disks.iter().filter(|d| d.contains_key(&id(*n))).count();
            assert!(c >= 1, "object {n} lost");
        }
        let total: usize = disks.iter().map(BTreeMap::len).sum();
        assert_eq!(total, 24, "all room used for copies");
    }

    #[test]
    fn plan_is_deterministic() {
        let objects: Vec<ObjectState> = (1..=50)
            .map(|n| ObjectState {
                copies_elsewhere: u32::from(n % 3),
                priority: i32::from(n % 4),
                ..obj(n, 7)
            })
            .collect();
        let on_disk = BTreeMap::from([(id(3), 7), (id(200), 9)]);
        let a = plan(&Input {
            objects: &objects,
            on_disk: &on_disk,
            room: 150,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        let mut shuffled = objects.clone();
        shuffled.reverse();
        let b = plan(&Input {
            objects: &shuffled,
            on_disk: &on_disk,
            room: 150,
            quota_room: None,
            block: 1,
            keep: &HashSet::new(),
        });
        assert_eq!(a, b);
    }
}
