#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Restore over real folders: round trips field by field, older snapshots,
//! one disk at a time, disaster recovery from one disk, conflicts, damaged
//! objects, hostile destinations and damaged catalog copies.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use coffer_core::restore::{self, At, Existing, Options};
use coffer_core::{Disk, ObjectId, Progress, io};
use coffer_tests::{Lab, bytes};

/// The shared lab, with a destination folder `out/`.
struct Bench(Lab);

impl std::ops::Deref for Bench {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.0
    }
}

impl std::ops::DerefMut for Bench {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.0
    }
}

impl Bench {
    fn new(copies: u32) -> Bench {
        Bench(Lab::new(copies))
    }

    /// The snapshot a scan leaves.
    fn scan(&mut self) -> i64 {
        self.0.scan().snapshot
    }

    fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    fn restore(&mut self, disks: &[&Path], opts: &Options) -> coffer_core::Result<restore::Report> {
        let disks: Vec<Disk> = disks
            .iter()
            .map(|p| Disk::open(p, io::real()).unwrap())
            .collect();
        let set = Some(self.profile.set_id);
        restore::restore(&mut self.catalog, set, &disks, opts, &Progress::silent())
    }

    fn to_out(&self) -> Options {
        Options {
            dest: Some(self.out()),
            ..Options::default()
        }
    }
}

/// Everything about a tree that restore must bring back, per relative path.
#[derive(Debug, PartialEq, Eq)]
struct Meta {
    kind: &'static str,
    mode: u32,
    mtime_ns: i64,
    /// SHA-256 of a file, target of a link.
    content: String,
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Meta> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(e.path()).unwrap().display().to_string(),
            )
        } else if ft.is_dir() {
            ("dir", String::new())
        } else {
            ("file", ObjectId::of(&fs::read(e.path()).unwrap()).to_hex())
        };
        out.insert(
            e.path().strip_prefix(root).unwrap().to_path_buf(),
            Meta {
                kind,
                // Symlink modes are not kept by Linux; compare the rest.
                mode: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                content,
            },
        );
    }
    out
}

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    File::open(p)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t))
        .unwrap();
}

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

/// Two disks that each hold about half the files, A's catalog copy written
/// last (so it knows what B holds).
fn split_over_two_disks() -> (Bench, PathBuf, PathBuf) {
    let mut b = Bench::new(1);
    b.files(12, 4000);
    b.scan();
    let total: u64 = fs::read_dir(b.src.join("d0"))
        .unwrap()
        .chain(fs::read_dir(b.src.join("d1")).unwrap())
        .chain(fs::read_dir(b.src.join("d2")).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let a = b.disk("A", Some(total / 2));
    let bb = b.disk("B", None);
    b.sync(&a);
    b.sync(&bb);
    b.sync(&a);
    let on_a = Disk::open(&a, io::real()).unwrap().objects().unwrap().len();
    let on_b = Disk::open(&bb, io::real())
        .unwrap()
        .objects()
        .unwrap()
        .len();
    assert!(on_a > 0 && on_b > 0 && on_a + on_b == 12, "{on_a} + {on_b}");
    (b, a, bb)
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
