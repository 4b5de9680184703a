//! The planner's rules, case by case.

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
