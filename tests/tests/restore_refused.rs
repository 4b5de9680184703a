#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! What a restore refuses, before anything is written: conflicts at the
//! destination, symlinks in it, damaged or foreign catalog copies, names
//! that collide on FAT, paths outside the basepath, and disks whose
//! objects are not files.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use coffer_core::restore::{self, Existing, Options};
use coffer_core::{Disk, ObjectId, disk::io};
use coffer_tests::bench::{Bench, tree};
use coffer_tests::bytes;

#[test]
fn conflicts_are_refused_before_anything_is_written() {
    let mut b = Bench::new(1);
    b.files(6, 1000);
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let clash = b.out().join("docs/d1/f1.bin");
    fs::create_dir_all(clash.parent().unwrap()).unwrap();
    fs::write(&clash, "mine, not the backup's").unwrap();

    let err = b.restore(&[&a], &b.to_out()).unwrap_err().to_string();
    assert!(err.contains(&clash.display().to_string()), "{err}");
    assert_eq!(fs::read(&clash).unwrap(), b"mine, not the backup's");
    let files: Vec<_> = walkdir::WalkDir::new(b.out())
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .collect();
    assert_eq!(files.len(), 1, "nothing else was written");

    let mut o = b.to_out();
    o.existing = Existing::Skip;
    let r = b.restore(&[&a], &o).unwrap();
    assert_eq!(r.skipped_existing, vec![clash.clone()]);
    assert_eq!(fs::read(&clash).unwrap(), b"mine, not the backup's");
    assert_eq!(r.files, 5);

    o.existing = Existing::Overwrite;
    let r = b.restore(&[&a], &o).unwrap();
    assert!(r.complete());
    assert_eq!(r.files, 1);
    assert_eq!(tree(&b.src), tree(&b.out().join("docs")));
}

#[test]
fn nothing_is_written_through_a_symlink_in_the_destination() {
    let mut b = Bench::new(1);
    b.files(4, 100);
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let outside = b.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(b.out()).unwrap();
    // Pre-existing symlinks: the top folder, and (second run) a sub-folder.
    symlink(&outside, b.out().join("docs")).unwrap();
    let err = b.restore(&[&a], &b.to_out()).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);

    fs::remove_file(b.out().join("docs")).unwrap();
    fs::create_dir_all(b.out().join("docs")).unwrap();
    symlink(&outside, b.out().join("docs/d2")).unwrap();
    let err = b.restore(&[&a], &b.to_out()).unwrap_err().to_string();
    assert!(err.contains("d2"), "{err}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(b.out().join("docs")).unwrap().count(),
        1,
        "nothing was written before the refusal"
    );
}

#[test]
fn a_symlink_restored_earlier_is_never_a_way_out() {
    // The backup itself holds `d` as a symlink and, from an older snapshot,
    // `d` as a folder with a file: restoring the folder over the link must
    // not follow it.
    let mut b = Bench::new(1);
    let outside = b.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, b.src.join("d")).unwrap();
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    b.restore(&[&a], &b.to_out()).unwrap();
    assert!(
        fs::symlink_metadata(b.out().join("docs/d"))
            .unwrap()
            .is_symlink()
    );

    fs::remove_file(b.src.join("d")).unwrap();
    fs::create_dir_all(b.src.join("d")).unwrap();
    fs::write(b.src.join("d/x"), "inside").unwrap();
    b.scan();
    b.sync(&a);
    let mut o = b.to_out();
    o.existing = Existing::Skip;
    let r = b.restore(&[&a], &o);
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "{r:?}");
}

#[test]
fn damaged_or_foreign_catalog_copies_are_refused_clearly() {
    let mut b = Bench::new(1);
    b.files(3, 100);
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let ws = b.root.join("data/catalog.sqlite");
    let ws_before = fs::read(&ws).unwrap();
    let disk = Disk::open(&a, io::real()).unwrap();
    let (slot, _) = disk.newest_catalog().unwrap();
    let good = fs::read(&slot).unwrap();

    let foreign = {
        let p = b.root.join("foreign.sqlite");
        rusqlite::Connection::open(&p)
            .unwrap()
            .execute_batch("CREATE TABLE photos(x); INSERT INTO photos VALUES(1);")
            .unwrap();
        fs::read(&p).unwrap()
    };
    let newer = {
        let p = b.root.join("newer.sqlite");
        fs::write(&p, &good).unwrap();
        rusqlite::Connection::open(&p)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        fs::read(&p).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "catalog"),
        ("empty", Vec::new(), "not a Coffer catalog"),
        ("random", bytes(9, 8192), "not a Coffer catalog"),
        ("foreign", foreign, "not a Coffer catalog"),
        ("newer", newer, "newer Coffer"),
    ];
    for (name, content, expect) in cases {
        // Every slot holds the bad file, with a sidecar that matches it (the
        // worst case: the checksum cannot tell).
        for s in disk.slots() {
            fs::write(&s.path, &content).unwrap();
            let side = s.path.with_extension("json");
            let meta = coffer_core::disk::SlotMeta {
                generation: 9,
                size: content.len() as u64,
                sha256: ObjectId::of(&content),
                written_at: 0,
            };
            fs::write(side, serde_json::to_vec(&meta).unwrap()).unwrap();
        }
        let err = match restore::open_disk_catalog(&disk) {
            Ok(_) => panic!("{name}: a bad catalog copy was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expect), "{name}: {err}");
        assert!(err.contains("catalog-"), "{name} names the slot: {err}");
    }
    // A torn slot (checksum mismatch) is refused before it is even opened.
    for s in disk.slots() {
        fs::write(&s.path, &good[..100]).unwrap();
    }
    let err = restore::open_disk_catalog(&disk).err().unwrap().to_string();
    assert!(err.contains("no valid catalog copy"), "{err}");
    assert_eq!(
        fs::read(&ws).unwrap(),
        ws_before,
        "workstation catalog untouched"
    );
}

#[test]
fn case_collisions_are_refused_on_a_case_insensitive_destination() {
    let mut b = Bench::new(1);
    fs::write(b.src.join("Photo.JPG"), "big").unwrap();
    fs::write(b.src.join("photo.jpg"), "small").unwrap();
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let mut o = b.to_out();
    o.case_insensitive = true;
    let err = b.restore(&[&a], &o).unwrap_err().to_string();
    assert!(err.contains("photo.jpg"), "{err}");
    assert!(!b.out().join("docs").exists());
    o.rename_collisions = true;
    let r = b.restore(&[&a], &o).unwrap();
    assert!(r.complete());
    assert_eq!(r.renamed.len(), 1);
    assert_eq!(
        fs::read(b.out().join("docs/photo (2).jpg")).unwrap(),
        b"small"
    );
}

#[test]
fn the_original_place_gets_a_deleted_file_back_and_nothing_outside_the_basepath() {
    let mut b = Bench::new(1);
    b.files(4, 500);
    fs::write(b.src.join("note.txt"), "remember").unwrap();
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    fs::remove_file(b.src.join("note.txt")).unwrap();
    let original = b.root.join("home");
    // Everything else is still there, unchanged: a plain restore refuses
    // nothing but counts it as done.
    let o = Options {
        within: Some(original.clone()),
        ..Options::default()
    };
    let r = b.restore(&[&a], &o).unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(r.files, 1);
    assert_eq!(r.already_done, 4);
    assert_eq!(fs::read(b.src.join("note.txt")).unwrap(), b"remember");

    // A basepath that does not hold the backed-up paths is refused.
    let o = Options {
        within: Some(b.root.join("elsewhere")),
        ..Options::default()
    };
    let err = b.restore(&[&a], &o).unwrap_err().to_string();
    assert!(err.contains("outside"), "{err}");
    assert!(
        !b.root.join("elsewhere").exists()
            || fs::read_dir(b.root.join("elsewhere")).unwrap().count() == 0
    );
}

#[test]
fn an_object_that_is_not_a_file_stops_the_restore_before_anything_is_written() {
    let mut b = Bench::new(1);
    b.files(9, 200_000);
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let mine = b.out().join("docs/d2/f8.bin");
    fs::create_dir_all(mine.parent().unwrap()).unwrap();
    fs::write(&mine, "mine").unwrap();
    // One object in the middle is a folder on the disk: only regular files
    // are objects, and the restore stops before writing anything, naming it.
    let d = Disk::open(&a, io::real()).unwrap();
    let f4 = ObjectId::of(&fs::read(b.src.join("d1/f4.bin")).unwrap());
    let p = d.object_path(&f4);
    fs::remove_file(&p).unwrap();
    fs::create_dir(&p).unwrap();

    let mut o = b.to_out();
    o.existing = Existing::Skip;
    let err = b.restore(&[&a], &o).unwrap_err().to_string();
    assert!(
        err.contains(&f4.to_hex()) && err.contains("folder"),
        "names the object and what it is: {err}"
    );
    assert_eq!(fs::read(&mine).unwrap(), b"mine");
    let src = tree(&b.src);
    for (rel, m) in tree(&b.out().join("docs")) {
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(".coffer-restore-"),
            "temp file left: {rel:?}"
        );
        if m.kind == "file" && rel != Path::new("d2/f8.bin") {
            assert_eq!(
                Some(&m.content),
                src.get(&rel).map(|s| &s.content),
                "{rel:?}"
            );
        }
    }
    assert!(!b.out().join("docs/d1/f4.bin").exists());
}
