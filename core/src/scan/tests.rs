use super::*;
use crate::config::Source;
use std::fs;

struct Fixture {
    _dir: tempfile::TempDir,
    src: PathBuf,
    cat: Catalog,
    profile: Profile,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha").unwrap();
    fs::write(src.join("sub/b.txt"), b"beta").unwrap();
    fs::write(src.join("skip.tmp"), b"tmp").unwrap();
    let cat = Catalog::open(&dir.path().join("data/catalog.sqlite")).unwrap();
    let profile = Profile {
        set_id: uuid::Uuid::nil(),
        name: "t".into(),
        basepath: dir.path().to_path_buf(),
        copies: 2,
        sources: vec![Source {
            path: src.clone(),
            excludes: vec!["*.tmp".into()],
            copies: None,
            priority: 0,
            outside_basepath: false,
        }],
        excludes: vec![],
        dumps: vec![],
        before_sync: None,
        after_sync: None,
    };
    Fixture {
        _dir: dir,
        src,
        cat,
        profile,
    }
}

fn run(fx: &mut Fixture) -> Report {
    scan(&mut fx.cat, &fx.profile, &Progress::silent()).unwrap()
}

fn paths(fx: &Fixture, snap: i64) -> Vec<String> {
    fx.cat
        .versions_in(snap)
        .unwrap()
        .into_iter()
        .map(|v| v.path.strip_prefix(&fx.src).unwrap().display().to_string())
        .collect()
}

#[test]
fn first_scan_hashes_everything_not_excluded() {
    let mut fx = fixture();
    let r = run(&mut fx);
    assert_eq!((r.files, r.hashed_files, r.new_snapshot), (2, 2, true));
    assert_eq!(
        paths(&fx, r.snapshot),
        vec!["", "a.txt", "sub", "sub/b.txt"]
    );
}

#[test]
fn unchanged_tree_reads_nothing_and_writes_no_snapshot() {
    let mut fx = fixture();
    let first = run(&mut fx);
    let again = run(&mut fx);
    assert_eq!(
        (again.hashed_files, again.new_snapshot, again.snapshot),
        (0, false, first.snapshot)
    );
}

#[test]
fn changes_are_detected_and_old_versions_kept() {
    let mut fx = fixture();
    let first = run(&mut fx);
    fs::write(fx.src.join("a.txt"), b"alpha two").unwrap();
    fs::remove_file(fx.src.join("sub/b.txt")).unwrap();
    fs::write(fx.src.join("c.txt"), b"gamma").unwrap();
    let second = run(&mut fx);
    assert_eq!(
        (
            second.changed,
            second.removed,
            second.added,
            second.hashed_files
        ),
        (1, 1, 1, 2)
    );
    assert!(paths(&fx, first.snapshot).contains(&"sub/b.txt".to_string()));
    assert!(!paths(&fx, second.snapshot).contains(&"sub/b.txt".to_string()));
    let a = fx.cat.versions_of(&fx.src.join("a.txt")).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].hash, Some(ObjectId::of(b"alpha")));
    assert_eq!(a[1].hash, Some(ObjectId::of(b"alpha two")));
}

#[test]
fn a_rename_is_recognised_without_reading() {
    let mut fx = fixture();
    run(&mut fx);
    fs::rename(fx.src.join("sub/b.txt"), fx.src.join("b-moved.txt")).unwrap();
    let r = run(&mut fx);
    assert_eq!((r.moved, r.hashed_files, r.removed), (1, 0, 1));
}

#[test]
fn same_size_same_second_edit_is_caught_by_nanoseconds() {
    let mut fx = fixture();
    run(&mut fx);
    let p = fx.src.join("a.txt");
    let before = fs::metadata(&p).unwrap();
    fs::write(&p, b"ALPHA").unwrap();
    let f = fs::File::options().write(true).open(&p).unwrap();
    let t = before.modified().unwrap() + std::time::Duration::from_nanos(1);
    f.set_modified(t).unwrap();
    let r = run(&mut fx);
    assert_eq!((r.changed, r.hashed_files), (1, 1));
}

#[test]
fn symlinks_are_recorded_not_followed() {
    let mut fx = fixture();
    std::os::unix::fs::symlink("/etc", fx.src.join("etc-link")).unwrap();
    let r = run(&mut fx);
    let v = fx.cat.versions_in(r.snapshot).unwrap();
    let link = v.iter().find(|v| v.path.ends_with("etc-link")).unwrap();
    assert_eq!(
        (link.kind, link.target.as_deref()),
        (Kind::Symlink, Some(Path::new("/etc")))
    );
    assert_eq!(r.files, 2);
}

#[test]
fn unreadable_folder_is_reported_and_kept() {
    if rustix::process::geteuid().is_root() {
        // Root reads everything; the "missing source" test covers the rule.
        return;
    }
    let mut fx = fixture();
    run(&mut fx);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(fx.src.join("sub"), fs::Permissions::from_mode(0o000)).unwrap();
    let progress = Progress::silent();
    let r = scan(&mut fx.cat, &fx.profile, &progress).unwrap();
    fs::set_permissions(fx.src.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(r.removed, 0);
    assert!(!progress.warnings().is_empty());
}

#[test]
fn missing_source_is_reported_not_deleted() {
    let mut fx = fixture();
    let first = run(&mut fx);
    fs::rename(&fx.src, fx.src.with_extension("away")).unwrap();
    let progress = Progress::silent();
    let r = scan(&mut fx.cat, &fx.profile, &progress).unwrap();
    assert_eq!(
        (r.removed, r.snapshot, r.new_snapshot),
        (0, first.snapshot, false)
    );
    assert!(progress.warnings()[0].message.contains("cannot be read"));
}

#[test]
fn a_hard_link_group_is_read_once_and_recorded_as_one_file() {
    let mut fx = fixture();
    fs::hard_link(fx.src.join("a.txt"), fx.src.join("sub/a-link.txt")).unwrap();
    let r = run(&mut fx);
    // a.txt and sub/b.txt read; the link takes a.txt's hash.
    assert_eq!((r.files, r.hashed_files), (3, 2));
    let a = &fx.cat.versions_of(&fx.src.join("a.txt")).unwrap()[0];
    let l = &fx.cat.versions_of(&fx.src.join("sub/a-link.txt")).unwrap()[0];
    assert_eq!(a.hash, l.hash);
    assert_eq!(
        (a.inode, a.attrs.dev, a.attrs.nlink),
        (l.inode, l.attrs.dev, 2)
    );
    // Unlinked, the other one is a new version of its own: nlink 1 now.
    fs::remove_file(fx.src.join("sub/a-link.txt")).unwrap();
    let r = run(&mut fx);
    assert_eq!((r.removed, r.changed, r.hashed_files), (1, 1, 0));
    let a = fx.cat.versions_of(&fx.src.join("a.txt")).unwrap();
    assert_eq!(a.last().unwrap().attrs.nlink, 1);
}

#[test]
fn a_change_of_mode_owner_or_attributes_alone_is_a_new_version_read_from_nothing() {
    let mut fx = fixture();
    run(&mut fx);
    let a = fx.src.join("a.txt");
    let b = fx.src.join("sub/b.txt");
    fs::set_permissions(&a, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let r = run(&mut fx);
    assert_eq!((r.changed, r.hashed_files, r.new_snapshot), (1, 0, true));
    assert_eq!(fx.cat.versions_of(&a).unwrap().last().unwrap().mode, 0o600);

    rustix::fs::setxattr(&b, "user.tag", b"blue", rustix::fs::XattrFlags::empty()).unwrap();
    let r = run(&mut fx);
    assert_eq!((r.changed, r.hashed_files), (1, 0));
    let v = fx.cat.versions_of(&b).unwrap().last().unwrap().clone();
    let set = fx.cat.xattr_set(v.attrs.xattrs.unwrap()).unwrap().unwrap();
    assert_eq!(
        set.iter().collect::<Vec<_>>(),
        vec![(&b"user.tag"[..], &b"blue"[..])]
    );
    // Its inode unchanged since, the set is taken as recorded: no change.
    assert!(!run(&mut fx).new_snapshot);
    // The same value written again is no change either (listed again: the
    // write moved its ctime).
    rustix::fs::setxattr(&b, "user.tag", b"blue", rustix::fs::XattrFlags::empty()).unwrap();
    assert!(!run(&mut fx).new_snapshot);
    rustix::fs::setxattr(&b, "user.tag", b"red", rustix::fs::XattrFlags::empty()).unwrap();
    assert_eq!(run(&mut fx).changed, 1);

    if crate::meta::owner::is_root() {
        std::os::unix::fs::chown(&a, Some(65534), Some(65534)).unwrap();
        let r = run(&mut fx);
        assert_eq!((r.changed, r.hashed_files), (1, 0));
        let v = fx.cat.versions_of(&a).unwrap().last().unwrap().clone();
        assert_eq!((v.attrs.uid, v.attrs.gid), (Some(65534), Some(65534)));
    }
}
