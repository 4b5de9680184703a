#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Restore over real folders: round trips field by field, older snapshots,
//! one disk at a time, disaster recovery from one disk, damaged objects,
//! many batches and special bits. Refusals are in `restore_refused.rs`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use coffer_core::restore::{self, At, Options};
use coffer_core::{Disk, Progress, disk::io};
use coffer_tests::bench::{Bench, set_mtime, split_over_two_disks, tree};
use coffer_tests::{Lab, bytes};

#[test]
fn a_tree_round_trips_field_by_field() {
    let mut b = Bench::new(1);
    let s = b.src.clone();
    fs::create_dir_all(s.join("café/naïve ☕")).unwrap();
    fs::write(s.join("café/naïve ☕/thé.txt"), "chaud").unwrap();
    fs::write(s.join("empty.txt"), "").unwrap();
    fs::create_dir_all(s.join("empty-folder")).unwrap();
    fs::write(s.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(s.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(s.join("secret"), bytes(7, 300_000)).unwrap();
    fs::set_permissions(s.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    symlink("café/naïve ☕/thé.txt", s.join("link-in")).unwrap();
    symlink("/etc/passwd", s.join("link-out")).unwrap();
    set_mtime(&s.join("empty.txt"), 1_000_000_000, 123_456_789);
    set_mtime(&s.join("secret"), 1_500_000_000, 1);
    set_mtime(&s.join("café/naïve ☕"), 1_200_000_000, 42);
    fs::set_permissions(s.join("empty-folder"), fs::Permissions::from_mode(0o750)).unwrap();
    set_mtime(&s.join("empty-folder"), 1_300_000_000, 7);
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);

    let r = b.restore(&[&a], &b.to_out()).unwrap();
    assert!(r.complete(), "{r:?}");
    assert!(r.bad_copies.is_empty());
    let want = tree(&b.src);
    let got = tree(&b.out().join("docs"));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (p, w) in &want {
        assert_eq!(Some(w), got.get(p), "{}", p.display());
    }
    // No temp file is left behind.
    assert!(walkdir::WalkDir::new(b.out()).into_iter().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".coffer-restore-")
    }));
}

#[test]
fn an_older_snapshot_brings_back_deleted_and_old_content() {
    let mut b = Bench::new(1);
    fs::write(b.src.join("keep.txt"), "v1").unwrap();
    fs::write(b.src.join("gone.txt"), "deleted later").unwrap();
    let s1 = b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    fs::write(b.src.join("keep.txt"), "version two").unwrap();
    fs::remove_file(b.src.join("gone.txt")).unwrap();
    let s2 = b.scan();
    assert!(s2 > s1);
    b.sync(&a);

    let mut o = b.to_out();
    o.at = Some(At::Snapshot(s1));
    let r = b.restore(&[&a], &o).unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(r.snapshot, s1);
    assert_eq!(fs::read(b.out().join("docs/keep.txt")).unwrap(), b"v1");
    assert_eq!(
        fs::read(b.out().join("docs/gone.txt")).unwrap(),
        b"deleted later"
    );

    // The latest snapshot, one file only, into another folder.
    let o = Options {
        dest: Some(b.root.join("out2")),
        paths: vec![b.src.join("keep.txt")],
        ..Options::default()
    };
    b.restore(&[&a], &o).unwrap();
    assert_eq!(
        fs::read(b.root.join("out2/keep.txt")).unwrap(),
        b"version two"
    );
    assert!(!b.root.join("out2/gone.txt").exists());
}

#[test]
fn a_restore_needing_two_disks_is_done_one_disk_at_a_time() {
    let (mut b, a, bb) = split_over_two_disks();
    let r = b.restore(&[&a], &b.to_out()).unwrap();
    assert!(!r.complete());
    assert_eq!(r.plug_next.len(), 1, "{r:?}");
    assert_eq!(r.plug_next[0].label, "B");
    assert_eq!(r.plug_next[0].files, r.missing_files);
    assert!(r.unavailable.is_empty());
    let first = r.files;

    // The second run, with B only, continues: what A gave counts as done.
    let r = b.restore(&[&bb], &b.to_out()).unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(r.already_done, first);
    assert_eq!(tree(&b.src), tree(&b.out().join("docs")));
}

#[test]
fn disaster_recovery_from_one_disk_alone() {
    let (b, a, bb) = split_over_two_disks();
    // The workstation is gone: catalog, config, sources.
    let Bench(Lab {
        dir: _dir,
        root,
        src,
        ..
    }) = b;
    let want = tree(&src);
    fs::remove_dir_all(root.join("data")).unwrap();
    fs::remove_dir_all(root.join("home")).unwrap();

    let out = root.join("rescued");
    let disk_a = Disk::open(&a, io::real()).unwrap();
    let (mut cat, _tmp, _) = restore::open_disk_catalog(&disk_a).unwrap();
    let opts = Options {
        dest: Some(out.clone()),
        ..Options::default()
    };
    let r = restore::restore(&mut cat, None, &[disk_a], &opts, &Progress::silent()).unwrap();
    assert!(!r.complete());
    assert_eq!(r.plug_next.len(), 1);
    assert_eq!(r.plug_next[0].label, "B", "names what only B has");
    drop(cat);

    // Then B, again from its own catalog copy (older, but it has every file B holds).
    let disk_b = Disk::open(&bb, io::real()).unwrap();
    let (mut cat, _tmp, _) = restore::open_disk_catalog(&disk_b).unwrap();
    let r = restore::restore(&mut cat, None, &[disk_b], &opts, &Progress::silent()).unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(want, tree(&out.join("docs")));
    assert!(
        !root.join("data").exists(),
        "no workstation catalog was made"
    );
}

#[test]
fn a_damaged_object_is_caught_and_restored_from_the_other_disk() {
    let mut b = Bench::new(2);
    b.files(4, 5000);
    b.scan();
    let a = b.disk("A", None);
    let bb = b.disk("B", None);
    b.sync(&a);
    b.sync(&bb);
    let da = Disk::open(&a, io::real()).unwrap();
    let (victim, _) = da.objects().unwrap().into_iter().next().unwrap();
    let path = da.object_path(&victim);
    let mut raw = fs::read(&path).unwrap();
    raw[100] ^= 0x01;
    fs::write(&path, raw).unwrap();

    let r = b.restore(&[&a, &bb], &b.to_out()).unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(r.bad_copies.len(), 1);
    assert_eq!(r.bad_copies[0].disk, "A");
    assert_eq!(r.bad_copies[0].hash, victim);
    assert!(r.bad_copies[0].quarantined);
    assert_eq!(tree(&b.src), tree(&b.out().join("docs")));
    // The bad copy is out of the catalog and out of the store.
    assert!(
        !b.catalog
            .copies_on(da.id())
            .unwrap()
            .iter()
            .any(|c| c.hash == victim)
    );
    assert!(!path.exists());
    assert!(da.bad_dir().join(victim.to_hex()).exists());

    // With only A, the damaged file is reported, not written.
    let fresh = b.root.join("out-a");
    let o = Options {
        dest: Some(fresh.clone()),
        ..Options::default()
    };
    let r = b.restore(&[&a], &o).unwrap();
    assert_eq!(r.missing_files, 1);
    assert_eq!(r.plug_next[0].label, "B");
}

#[test]
fn a_restore_of_many_folders_spans_several_batches_and_round_trips() {
    // More folders than one batch keeps open, and duplicates across them:
    // every batch must be flushed, renamed and accounted for.
    let mut b = Bench::new(1);
    for i in 0..450u64 {
        let p = b.src.join(format!("g{}/h{}/f{i}.txt", i % 5, i % 230));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes(i % 300, 100 + (i as usize % 7) * 1000)).unwrap();
    }
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let r = b.restore(&[&a], &b.to_out()).unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(r.files, 450);
    let want = tree(&b.src);
    let got = tree(&b.out().join("docs"));
    assert_eq!(want, got);
}

#[test]
fn special_bits_come_back_from_this_computers_catalog_only() {
    let mut b = Bench::new(1);
    fs::create_dir_all(b.src.join("shared")).unwrap();
    fs::write(b.src.join("tool"), b"#!/bin/sh\n").unwrap();
    fs::write(b.src.join("shared/x"), b"x").unwrap();
    fs::set_permissions(b.src.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(b.src.join("shared"), fs::Permissions::from_mode(0o1777)).unwrap();
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;

    // This computer's own catalog: the bits are its own, and kept.
    b.restore(&[&a], &b.to_out()).unwrap();
    let out = b.out().join("docs");
    assert_eq!(
        (mode(&out.join("tool")), mode(&out.join("shared"))),
        (0o4755, 0o1777)
    );

    // A catalog read from a disk: dropped, unless asked for.
    for (keep, want) in [(false, (0o755, 0o777)), (true, (0o4755, 0o1777))] {
        let to = b.root.join(format!("from-disk-{keep}"));
        let disk = Disk::open(&a, io::real()).unwrap();
        let (mut cat, _tmp, _) = restore::open_disk_catalog(&disk).unwrap();
        let opts = Options {
            dest: Some(to.clone()),
            keep_special_bits: keep,
            ..Options::default()
        };
        restore::restore(&mut cat, None, &[disk], &opts, &Progress::silent()).unwrap();
        let out = to.join("docs");
        assert_eq!(
            (mode(&out.join("tool")), mode(&out.join("shared"))),
            want,
            "keep_special_bits: {keep}"
        );
    }
}
