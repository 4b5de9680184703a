use super::*;

fn file(path: &str, content: &[u8]) -> NewVersion {
    NewVersion {
        path: path.into(),
        kind: Kind::File,
        size: content.len() as u64,
        mtime_ns: 1,
        inode: 1,
        mode: 0o644,
        target: None,
        hash: Some(ObjectId::of(content)),
        attrs: Attrs::default(),
        xattrs: None,
    }
}

#[test]
fn a_new_catalog_opened_by_several_at_once_is_made_once() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    barrier.wait();
                    let cat = Catalog::open(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
                    assert_eq!(cat.generation().unwrap(), 0);
                });
            }
        });
    }
}

#[test]
fn every_change_a_plan_depends_on_raises_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
    let disk = uuid::Uuid::new_v4();
    let mut last = cat.generation().unwrap();
    let mut raised = |cat: &Catalog, what: &str| {
        let now = cat.generation().unwrap();
        assert!(now > last, "{what} left the generation at {now}");
        last = now;
    };
    let s1 = cat
        .apply_scan(
            None,
            &ScanDelta {
                added: vec![file("/a", b"1")],
                ..Default::default()
            },
        )
        .unwrap();
    raised(&cat, "a scan");
    cat.upsert_disk(&DiskRow::new(disk, "A", 0)).unwrap();
    let h = ObjectId::of(b"1");
    cat.add_copies(disk, &[(h, None)]).unwrap();
    raised(&cat, "adding a copy");
    cat.set_verified(disk, &h, 5).unwrap();
    raised(&cat, "verifying a copy");
    cat.remove_copies(disk, &[h]).unwrap();
    raised(&cat, "removing a copy");
    cat.add_copies(disk, &[(h, None)]).unwrap();
    raised(&cat, "adding it again");
    cat.forget_disk(disk).unwrap();
    raised(&cat, "forgetting a disk");
    cat.apply_scan(Some(s1), &ScanDelta::default()).unwrap();
    raised(&cat, "an empty scan");
    // What does not change a plan leaves it alone.
    cat.set_meta("x", "y").unwrap();
    cat.add_copies(disk, &[]).unwrap();
    assert_eq!(cat.generation().unwrap(), last);
}

#[test]
fn versions_are_kept_across_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
    let s1 = cat
        .apply_scan(
            None,
            &ScanDelta {
                added: vec![file("/a", b"1"), file("/b", b"2")],
                ..Default::default()
            },
        )
        .unwrap();
    let b = cat
        .versions_in(s1)
        .unwrap()
        .into_iter()
        .find(|v| v.path == Path::new("/b"))
        .unwrap();
    let s2 = cat
        .apply_scan(
            Some(s1),
            &ScanDelta {
                ended: vec![b.id],
                added: vec![file("/c", b"3")],
                ..Default::default()
            },
        )
        .unwrap();
    let now: Vec<_> = cat
        .versions_in(s2)
        .unwrap()
        .into_iter()
        .map(|v| v.path)
        .collect();
    assert_eq!(now, vec![PathBuf::from("/a"), PathBuf::from("/c")]);
    let then: Vec<_> = cat
        .versions_in(s1)
        .unwrap()
        .into_iter()
        .map(|v| v.path)
        .collect();
    assert_eq!(then, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(cat.object_uses().unwrap().len(), 3);
}

#[test]
fn foreign_and_newer_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES(1);")
        .unwrap();
    assert!(matches!(Catalog::open(&other), Err(Error::Foreign { .. })));
    assert!(matches!(
        Catalog::open_copy(&other),
        Err(Error::Foreign { .. })
    ));

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = Catalog::open_copy(&garbage).err().unwrap();
    assert!(matches!(err, Error::Foreign { .. }), "{err}");

    let newer = dir.path().join("newer.sqlite");
    drop(Catalog::open(&newer).unwrap());
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Catalog::open_copy(&newer).err().unwrap();
    assert!(err.to_string().contains("newer Coffer"), "{err}");
}

#[test]
fn versions_under_a_prefix_are_found_component_wise() {
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
    let s1 = cat
        .apply_scan(
            None,
            &ScanDelta {
                added: vec![
                    file("/a/b", b"1"),
                    file("/a/b/c", b"2"),
                    file("/a/bc", b"3"),
                    file("/a/b0", b"4"),
                    file("/z", b"5"),
                ],
                ..Default::default()
            },
        )
        .unwrap();
    let c = cat
        .versions_in(s1)
        .unwrap()
        .into_iter()
        .find(|v| v.path == Path::new("/a/b/c"))
        .unwrap();
    cat.apply_scan(
        Some(s1),
        &ScanDelta {
            ended: vec![c.id],
            ..Default::default()
        },
    )
    .unwrap();
    let paths = |p: &str| -> Vec<PathBuf> {
        cat.versions_under(Path::new(p))
            .unwrap()
            .into_iter()
            .map(|v| v.path)
            .collect()
    };
    // The ended version is still found: versions of every snapshot.
    assert_eq!(
        paths("/a/b"),
        vec![PathBuf::from("/a/b"), PathBuf::from("/a/b/c")]
    );
    assert_eq!(paths("/a/b/"), paths("/a/b"));
    assert_eq!(paths("/").len(), 5);
    assert_eq!(paths("/a").len(), 4);
    assert!(paths("/nothing").is_empty());
}

#[test]
fn non_utf8_paths_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
    let weird = PathBuf::from(std::ffi::OsString::from_vec(b"/x/\xff\xfe.bin".to_vec()));
    let mut v = file("/", b"z");
    v.path = weird.clone();
    let s = cat
        .apply_scan(
            None,
            &ScanDelta {
                added: vec![v],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(cat.versions_in(s).unwrap()[0].path, weird);
}

/// `fixtures/catalog-v3.sqlite` was written by Coffer at schema v3 (commit
/// dbbc762): two syncs of `/tmp/v3fx/src/docs` holding `kept.txt`,
/// `changed.txt` and `deleted.txt`, then `changed.txt` rewritten,
/// `deleted.txt` removed and `added.txt` made.
#[test]
fn a_catalog_of_schema_v3_migrates_and_keeps_every_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    std::fs::write(&path, include_bytes!("fixtures/catalog-v3.sqlite")).unwrap();
    let mut cat = Catalog::open(&path).unwrap();
    let names = |cat: &Catalog, snap: i64| -> Vec<(String, i64, i64)> {
        cat.versions_in(snap)
            .unwrap()
            .into_iter()
            .map(|v| {
                let p = v.path.to_string_lossy().replace("/tmp/v3fx/src", "");
                (p, v.first_snapshot, v.last_snapshot)
            })
            .collect()
    };
    let own = |v: &[(&str, i64, i64)]| -> Vec<(String, i64, i64)> {
        v.iter().map(|(p, f, l)| (p.to_string(), *f, *l)).collect()
    };
    assert_eq!(
        names(&cat, 1),
        own(&[
            ("", 1, 2),
            ("/docs", 1, 1),
            ("/docs/changed.txt", 1, 1),
            ("/docs/deleted.txt", 1, 1),
            ("/docs/kept.txt", 1, 2),
        ])
    );
    let two = own(&[
        ("", 1, 2),
        ("/docs", 2, 2),
        ("/docs/added.txt", 2, 2),
        ("/docs/changed.txt", 2, 2),
        ("/docs/kept.txt", 1, 2),
    ]);
    assert_eq!(names(&cat, 2), two);
    // A third snapshot in which only added.txt ended: what lives on is not
    // written again, and both older snapshots read as before.
    let added = cat
        .versions_in(2)
        .unwrap()
        .into_iter()
        .find(|v| v.path.ends_with("added.txt"))
        .unwrap();
    let three = cat
        .apply_scan(
            Some(2),
            &ScanDelta {
                ended: vec![added.id],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(three, 3);
    let now = names(&cat, 3);
    assert_eq!(now.len(), 4);
    assert!(
        now.iter()
            .all(|(p, _, l)| *l == 3 && !p.ends_with("added.txt"))
    );
    let mut two_after = two.clone();
    for v in &mut two_after {
        if v.0 != "/docs/added.txt" {
            v.2 = 3;
        }
    }
    assert_eq!(names(&cat, 2), two_after);
    assert_eq!(names(&cat, 1)[3].0, "/docs/deleted.txt");
    let alive: i64 = cat
        .conn
        .query_row(
            "SELECT count(*) FROM versions WHERE last_snapshot = ?1",
            [schema::ALIVE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(alive, 4, "the living versions stay marked alive");
    let tables: i64 = cat
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('scan_cache', 'staging')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

/// A catalog as Coffer wrote it at schema 3 (the same SQL the earlier steps
/// run), with a snapshot, a file, a folder and a disk copy in it.
fn v3_catalog(path: &std::path::Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(schema::SCHEMA_V1).unwrap();
    c.execute("INSERT INTO meta(key, value) VALUES('generation', '7')", [])
        .unwrap();
    c.execute_batch(schema::SCHEMA_V3).unwrap();
    let h = ObjectId::of(b"old").to_hex();
    c.execute_batch(&format!(
        "INSERT INTO snapshots VALUES(1, 100, 101, 1, 3);
         INSERT INTO objects VALUES('{h}', 3);
         INSERT INTO versions(path, kind, size, mtime_ns, inode, mode, target, hash, first_snapshot, last_snapshot)
             VALUES(x'2f682f6f6c64', 0, 3, 5, 9, 420, NULL, '{h}', 1, 1),
                   (x'2f68', 1, 0, 5, 8, 493, NULL, NULL, 1, 1);
         INSERT INTO disks(id, label, created_at) VALUES('{}', 'Blue', 1);
         INSERT INTO copies VALUES('{h}', (SELECT id FROM disks), 2, NULL);"
    , uuid::Uuid::new_v4()))
    .unwrap();
    c.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    c.pragma_update(None, "user_version", 3).unwrap();
}

#[test]
fn a_catalog_of_schema_3_opens_and_takes_what_schema_5_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    v3_catalog(&path);
    // A copy from a disk is read as it is, without migrating.
    let copy = Catalog::open_copy(&path).unwrap();
    assert_eq!(copy.versions_in(1).unwrap().len(), 2);
    // Lookups by hash find the hex digits an older copy holds…
    let old_hash = ObjectId::of(b"old");
    let by_hash = |c: &Catalog| {
        (
            c.object_size(&old_hash).unwrap(),
            c.paths_of(&old_hash).unwrap(),
        )
    };
    let found = (Some(3), vec![PathBuf::from("/h/old")]);
    assert_eq!(by_hash(&copy), found);
    assert_eq!(copy.copies().unwrap()[0].hash, old_hash);
    drop(copy);

    let mut cat = Catalog::open(&path).unwrap();
    let v: i64 = cat
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(cat.generation().unwrap(), 7);
    let old = cat.versions_in(1).unwrap();
    assert_eq!(old.len(), 2);
    assert_eq!(old[1].path, PathBuf::from("/h/old"));
    assert_eq!(old[1].hash, Some(ObjectId::of(b"old")));
    assert_eq!(old[1].attrs, Attrs::default());
    assert_eq!(cat.copies().unwrap().len(), 1);
    // …and the 32 bytes from schema 7 on.
    assert_eq!(by_hash(&cat), found);
    for t in ["objects", "versions WHERE hash IS NOT NULL", "copies"] {
        let kinds: String = cat
            .conn
            .query_row(
                &format!("SELECT group_concat(DISTINCT typeof(hash)) FROM {t}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kinds, "blob", "{t}");
    }

    // What schema 5 records goes in and comes back.
    let x = crate::meta::Xattrs::new(vec![(b"user.tag".to_vec(), b"important".to_vec())]).unwrap();
    let x = std::sync::Arc::new(x);
    let attrs = Attrs {
        uid: Some(65534),
        gid: Some(65534),
        dev: 2049,
        nlink: 2,
        rdev: 0,
        sparse: true,
        xattrs: None,
        ctime_ns: Some(1_700_000_000_123_456_789),
    };
    let mut a = file("/h/a", b"a");
    a.attrs = attrs.clone();
    a.xattrs = Some(x.clone());
    let mut b = file("/h/b", b"a");
    b.attrs = attrs.clone();
    b.xattrs = Some(x.clone());
    let fifo = NewVersion {
        kind: Kind::Fifo,
        hash: None,
        size: 0,
        ..file("/h/pipe", b"")
    };
    let s2 = cat
        .apply_scan(
            Some(1),
            &ScanDelta {
                added: vec![a, b, fifo],
                owners: vec![(crate::meta::owner::Of::User, 65534, "nobody".into())],
                ..Default::default()
            },
        )
        .unwrap();
    let now = cat.versions_in(s2).unwrap();
    let a = now.iter().find(|v| v.path == Path::new("/h/a")).unwrap();
    let b = now.iter().find(|v| v.path == Path::new("/h/b")).unwrap();
    assert_eq!(a.attrs.uid, Some(65534));
    assert_eq!(
        (a.attrs.dev, a.attrs.nlink, a.attrs.sparse, a.attrs.ctime_ns),
        (2049, 2, true, Some(1_700_000_000_123_456_789))
    );
    // One set, stored once, shared by both versions.
    assert!(a.attrs.xattrs.is_some());
    assert_eq!(a.attrs.xattrs, b.attrs.xattrs);
    let n: i64 = cat
        .conn
        .query_row("SELECT count(*) FROM xattr_sets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(cat.xattr_set(a.attrs.xattrs.unwrap()).unwrap().unwrap(), *x);
    assert!(now.iter().any(|v| v.kind == Kind::Fifo));
    assert_eq!(
        cat.owner_name(crate::meta::owner::Of::User, 65534)
            .unwrap()
            .as_deref(),
        Some("nobody")
    );
}

#[test]
fn a_damaged_attribute_set_in_a_catalog_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
    cat.conn
        .execute(
            "INSERT INTO xattr_sets(id, sha256, data) VALUES(1, x'00', x'01ff')",
            [],
        )
        .unwrap();
    let err = cat.xattr_set(1).unwrap_err().to_string();
    assert!(err.contains("xattr_sets.data"), "{err}");
}

#[test]
fn a_hash_that_is_not_hex_stops_the_step_to_schema_7_and_keeps_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite");
    v3_catalog(&path);
    let c = Connection::open(&path).unwrap();
    c.execute("INSERT INTO objects VALUES('not-a-hash', 1)", [])
        .unwrap();
    drop(c);
    let err = Catalog::open(&path).err().unwrap().to_string();
    assert!(err.contains("1 hash that is not 64 hex digits"), "{err}");
    let c = Connection::open(&path).unwrap();
    let (v, text): (i64, i64) = c
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM objects WHERE typeof(hash) = 'text')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((v, text), (6, 2));
}
