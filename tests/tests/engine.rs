#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! The engine over real folders: rotation, faults at every write, full and
//! vanished disks, and kept history. Library-level, so each fault can be
//! placed at an exact write operation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_core::disk::io::{Fault, FaultyIo};
use coffer_core::{Disk, ObjectId, Progress, disk::io, sync};
use coffer_tests::{Lab, assert_catalog_opens, assert_store_consistent, bytes};

/// The shared lab with `files` files, syncing in batches of 3 so that
/// faults land between batches as well as inside them.
fn bench(files: usize, size: usize) -> Lab {
    let mut lab = Lab::new(2);
    lab.files(files, size);
    lab.sync_opts.batch_files = 3;
    lab
}

fn current_objects(b: &Lab) -> BTreeMap<ObjectId, u64> {
    let latest = b.catalog.latest_snapshot().unwrap().unwrap().id;
    b.catalog
        .versions_in(latest)
        .unwrap()
        .into_iter()
        .filter_map(|v| v.hash.map(|h| (h, v.size)))
        .collect()
}

#[test]
fn three_disks_in_rotation_reach_two_copies_of_everything() {
    let mut b = bench(24, 4000);
    b.scan();
    let total: u64 = current_objects(&b).values().sum();
    // Room for 2 copies over the three disks only if all three are used.
    let disks = [
        b.disk("a", Some(total * 3 / 4 + 1024)),
        b.disk("b", Some(total * 3 / 4 + 1024)),
        b.disk("c", Some(total * 3 / 4 + 1024)),
    ];
    // Catalog copies need room of their own; quotas count only objects.
    for round in 0..6 {
        let r = b.sync(&disks[round % 3]);
        assert!(r.copied_bytes <= total, "round {round}");
    }
    let held: Vec<BTreeMap<ObjectId, u64>> =
        disks.iter().map(|d| assert_store_consistent(d)).collect();
    for (h, _) in current_objects(&b) {
        let copies = held.iter().filter(|d| d.contains_key(&h)).count();
        assert!(copies >= 2, "{h} has {copies} copies");
    }
    for d in &disks {
        assert_catalog_opens(d);
        let used: u64 = assert_store_consistent(d).values().sum();
        assert!(
            used <= total * 3 / 4 + 1024,
            "quota exceeded on {}",
            d.display()
        );
    }
}

#[test]
fn a_deleted_source_file_stays_in_older_snapshots_and_on_disk() {
    let mut b = bench(5, 1000);
    let first = b.scan();
    let d = b.disk("a", None);
    b.sync(&d);
    let gone = b.src.join("d0/f0.bin");
    let content = std::fs::read(&gone).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let second = b.scan();
    assert!(second.snapshot > first.snapshot);
    b.sync(&d);
    let old = b.catalog.versions_in(first.snapshot).unwrap();
    let v = old
        .iter()
        .find(|v| v.path == gone)
        .expect("old version kept");
    assert_eq!(v.hash, Some(ObjectId::of(&content)));
    assert!(
        b.catalog
            .versions_in(second.snapshot)
            .unwrap()
            .iter()
            .all(|v| v.path != gone)
    );
    assert!(
        assert_store_consistent(&d).contains_key(&ObjectId::of(&content)),
        "old version evicted with room to spare"
    );
}

#[test]
fn a_fault_at_any_write_leaves_a_consistent_disk_that_the_next_sync_completes() {
    fault_at_every_write(|b, d, io| {
        b.scan();
        b.sync_with(d, io).map(|_| ())
    });
}

#[test]
fn a_fault_at_any_write_of_a_scan_and_sync_leaves_a_consistent_disk() {
    // The scan writes to the disk too (what it reads is staged there).
    fault_at_every_write(|b, d, io| b.scan_and_sync_with(d, io).map(|_| ()));
}

/// Runs `job` on a fresh bench with each fault kind at each write operation
/// in turn, until the job no longer reaches the fault; after each run the
/// disk must be consistent and a healthy sync must complete it.
fn fault_at_every_write(job: impl Fn(&mut Lab, &Path, Arc<FaultyIo>) -> coffer_core::Result<()>) {
    for fault in [
        Fault::ErrorOnce,
        Fault::ErrorForever,
        Fault::NoSpace,
        Fault::Vanish,
        Fault::Crash,
    ] {
        let mut at = 1;
        loop {
            let mut b = bench(7, 3000);
            let d = b.disk("a", None);
            let faulty = FaultyIo::new(at, fault);
            let result = job(&mut b, &d, Arc::new(faulty.clone()));
            let tripped = faulty.tripped();
            if tripped {
                assert!(
                    result.is_err() || fault == Fault::ErrorOnce,
                    "{fault:?} at op {at}: fault fired but sync said Ok"
                );
            }
            assert_store_consistent(&d);
            // The next run, with a healthy disk, completes the job.
            let (_, r) = b.scan_and_sync_with(&d, io::real()).unwrap();
            assert!(r.complete(), "{fault:?} at op {at}: re-run incomplete");
            let on_disk = assert_store_consistent(&d);
            for h in current_objects(&b).keys() {
                assert!(
                    on_disk.contains_key(h),
                    "{fault:?} at op {at}: {h} missing after re-run"
                );
            }
            assert_catalog_opens(&d);
            assert_eq!(
                std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(),
                0,
                "tmp not emptied"
            );
            if !tripped {
                break;
            }
            at += 1;
            assert!(at < 500, "runaway");
        }
    }
}

#[test]
fn the_scan_stages_each_new_content_once_and_the_sync_commits_it() {
    let mut b = bench(6, 2000);
    // Two files with one content: one object, staged once.
    std::fs::write(b.src.join("twin-1"), bytes(99, 5000)).unwrap();
    std::fs::write(b.src.join("twin-2"), bytes(99, 5000)).unwrap();
    let d = b.disk("a", None);
    let disk = Disk::open(&d, io::real()).unwrap();
    disk.claim(b.profile.set_id).unwrap();
    let stage = coffer_core::disk::Stage::new(&disk, u64::MAX);
    let scanned = coffer_core::scan::scan_into(
        &mut b.catalog,
        &b.profile,
        Some(&stage),
        None,
        &Progress::silent(),
    )
    .unwrap();
    let objects = current_objects(&b);
    assert_eq!(scanned.hashed_files, 8);
    assert_eq!(objects.len(), 7);
    assert_eq!(stage.held(), objects.values().sum::<u64>());
    assert_eq!(std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(), 7);
    // A stage dropped unused leaves nothing behind.
    drop(stage);
    assert_eq!(std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(), 0);
    disk.release();

    // The whole first sync: every object in place, read from the stage.
    std::fs::write(b.src.join("new"), bytes(100, 7000)).unwrap();
    let (scanned, r) = b.scan_and_sync_with(&d, io::real()).unwrap();
    assert_eq!((scanned.hashed_files, r.copied_files), (1, 8));
    assert!(r.complete());
    let on_disk = assert_store_consistent(&d);
    assert_eq!(on_disk, current_objects(&b));
    assert_eq!(b.catalog.copies_on(disk.id()).unwrap().len(), 8);
    assert_eq!(std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(), 0);
    sync_until_up_to_date(&mut b, &d);
}

#[test]
fn a_disk_too_small_keeps_the_plans_choice_whatever_the_scan_staged() {
    // Photos come first by priority; the disk holds about half of it all.
    let mut b = bench(0, 0);
    let photos = b.root.join("home/photos");
    for i in 0..6 {
        std::fs::create_dir_all(&photos).unwrap();
        std::fs::write(photos.join(format!("p{i}")), bytes(200 + i, 20_000)).unwrap();
        // Bigger, so the scan (largest first) stages them first.
        std::fs::write(b.src.join(format!("doc{i}")), bytes(300 + i, 30_000)).unwrap();
    }
    let mut source = b.profile.sources[0].clone();
    source.path = photos.clone();
    source.priority = 10;
    b.profile.sources.push(source);
    let quota = 6 * 20_000 + 2 * 30_000 + 1000;
    let staged = b.disk("a", Some(quota));
    let (_, r) = b.scan_and_sync_with(&staged, io::real()).unwrap();
    assert!(r.plan.short_files > 0);
    // Every photo, then the two documents that fit: the plan's choice, not
    // the order the scan read (and staged) things in.
    let held = assert_store_consistent(&staged);
    for i in 0..6 {
        assert!(held.contains_key(&ObjectId::of(&bytes(200 + i, 20_000))));
    }
    assert_eq!(held.len(), 8);
    assert_eq!(
        std::fs::read_dir(staged.join("coffer/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_vanished_disk_stops_the_sync_with_a_clear_error() {
    let mut b = bench(3, 100);
    b.scan();
    let d = b.disk("a", None);
    let err = b
        .sync_with(&d, Arc::new(FaultyIo::new(3, Fault::Vanish)))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&d.display().to_string()), "{msg}");
}

#[test]
fn no_space_names_the_disk_and_the_bytes_needed() {
    let mut b = bench(3, 100);
    b.scan();
    let d = b.disk("a", None);
    let err = b
        .sync_with(&d, Arc::new(FaultyIo::new(4, Fault::NoSpace)))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("is full") && msg.contains("more needed") && msg.contains("\"a\""),
        "{msg}"
    );
    assert!(assert_store_consistent(&d).is_empty());
}

#[test]
fn a_disk_too_small_reports_the_shortfall_and_keeps_what_fits() {
    let mut b = bench(6, 10_000);
    b.scan();
    let d = b.disk("small", Some(25_000));
    let r = b.sync(&d);
    assert!(r.copied_files >= 1 && r.plan.short_files >= 1, "{r:?}");
    let msg = r.shortfall_message().unwrap();
    assert!(
        msg.contains("small") && msg.contains("more needed"),
        "{msg}"
    );
    let used: u64 = assert_store_consistent(&d).values().sum();
    assert!(used <= 25_000);
}

#[test]
fn a_changed_source_is_never_stored_under_the_old_hash() {
    let mut b = bench(3, 500);
    b.scan();
    let d = b.disk("a", None);
    let p = b.src.join("d1/f1.bin");
    std::fs::write(&p, b"changed after the scan").unwrap();
    let r = b.sync(&d);
    assert_eq!(r.skipped_files, 1);
    assert!(!r.complete());
    assert_store_consistent(&d);
    b.scan();
    let r = b.sync(&d);
    assert!(r.complete());
    assert!(assert_store_consistent(&d).contains_key(&ObjectId::of(b"changed after the scan")));
}

#[test]
fn an_object_whose_source_is_gone_comes_from_another_connected_disk() {
    let mut b = bench(2, 700);
    b.scan();
    let a = b.disk("a", None);
    let c = b.disk("c", None);
    b.sync(&a);
    let p = b.src.join("d0/f0.bin");
    let old = ObjectId::of(&std::fs::read(&p).unwrap());
    std::fs::write(&p, b"new content").unwrap();
    b.scan();
    let da = Disk::open(&a, io::real()).unwrap();
    let mut dc = Disk::open(&c, io::real()).unwrap();
    let opts = sync::Options::default();
    sync::sync(
        &mut b.catalog,
        &b.profile,
        &mut dc,
        &[&da],
        &opts,
        &Progress::silent(),
    )
    .unwrap();
    assert!(
        assert_store_consistent(&c).contains_key(&old),
        "old version not copied from the other disk"
    );
}

#[test]
fn parts_are_used_above_the_file_size_limit() {
    let mut b = bench(1, 5000);
    // Parts are at least 64 MiB (smaller ones are refused as nonsense): a
    // file of two parts and a bit makes three.
    let part = coffer_core::disk::MIN_PART_SIZE;
    let chunk = bytes(5, 1 << 20);
    let mut big = chunk.repeat(2 * (part as usize >> 20));
    big.extend_from_slice(&chunk[..1000]);
    std::fs::write(b.src.join("big.img"), big).unwrap();
    b.scan();
    let d = b.disk("fat", None);
    let mut disk = Disk::open(&d, io::real()).unwrap();
    disk.identity.max_file_size = Some(part);
    disk.claim(b.profile.set_id).unwrap();
    disk.write_identity().unwrap();
    drop(disk);
    b.sync(&d);
    let parts = walkdir(&d.join("coffer/objects"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".p00"))
        .count();
    assert_eq!(parts, 3);
    assert_eq!(assert_store_consistent(&d).len(), 2);
}

fn walkdir(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walkdir(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Syncs until the sync finds the disk up to date (its folders' timestamps
/// must first be older than the file system's granularity), at most ~4 s.
fn sync_until_up_to_date(b: &mut Lab, d: &Path) -> sync::Report {
    for _ in 0..16 {
        let r = b.sync(d);
        if r.up_to_date {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("a disk with nothing to do never became up to date");
}

#[test]
fn an_unchanged_disk_is_up_to_date_and_any_change_brings_back_a_full_sync() {
    let mut b = bench(6, 1000);
    b.scan();
    let d = b.disk("a", None);
    let first = b.sync(&d);
    assert!(!first.up_to_date);
    assert_eq!(first.copied_files, 6);
    let r = sync_until_up_to_date(&mut b, &d);
    assert_eq!((r.copied_files, r.deleted_files), (0, 0));

    // An object removed behind Coffer's back is noticed and copied again.
    let victim = *current_objects(&b).keys().next().unwrap();
    let disk = Disk::open(&d, io::real()).unwrap();
    std::fs::remove_file(disk.object_path(&victim)).unwrap();
    let r = b.sync(&d);
    assert!(!r.up_to_date);
    assert_eq!(r.copied_files, 1);
    assert!(assert_store_consistent(&d).contains_key(&victim));

    // A changed source is copied: the catalog changed.
    sync_until_up_to_date(&mut b, &d);
    std::fs::write(b.src.join("d0/new.bin"), bytes(99, 5000)).unwrap();
    b.scan();
    let r = b.sync(&d);
    assert!(!r.up_to_date);
    assert_eq!(r.copied_files, 1);

    // Wanting more copies of a folder is a change too, even with nothing
    // to copy here: the plan is made again.
    sync_until_up_to_date(&mut b, &d);
    b.profile.copies = 3;
    assert!(!b.sync(&d).up_to_date);

    // A disk too small to take everything is never "up to date".
    let small = b.disk("small", Some(3000));
    for _ in 0..3 {
        let r = b.sync(&small);
        assert!(!r.up_to_date);
        assert!(r.plan.short_files > 0);
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn a_disks_loss_counts_each_content_once_and_forgetting_it_says_the_same() {
    let mut b = Lab::new(1);
    let same = bytes(7, 50_000);
    for i in 0..3 {
        std::fs::write(b.src.join(format!("copy{i}.bin")), &same).unwrap();
    }
    std::fs::write(b.src.join("other.bin"), bytes(8, 10_000)).unwrap();
    let d = b.disk("blue", None);
    b.scan();
    b.sync(&d);
    let status = coffer_core::redundancy::status(&b.catalog, &b.profile).unwrap();
    let loss = &status.disks[0].lost;
    assert_eq!(loss.files, 4);
    assert_eq!(
        loss.bytes, 60_000,
        "three files of one content take its room once"
    );
    let id = Disk::open(&d, io::real()).unwrap().id();
    let cost = coffer_core::redundancy::forget_cost(&b.catalog, &b.profile, id).unwrap();
    assert_eq!(cost.only_copy, *loss);
    assert_eq!(cost.fewer_than_wanted.files, 0);
    assert!(!cost.is_free());
}
