//! Root's guarantees: no symlink followed, no special file read, nothing
//! outside the root touched.

use super::*;

fn root() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    let r = Root::open(d.path()).unwrap();
    (d, r)
}

#[test]
fn symlinks_are_never_followed_anywhere_on_the_way() {
    let (d, r) = root();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("f"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
    std::fs::create_dir(d.path().join("real")).unwrap();
    std::os::unix::fs::symlink("../link", d.path().join("real/up")).unwrap();
    for rel in ["link/f", "link", "real/up/f"] {
        let err = r.open_file(Path::new(rel)).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{rel}: {err}");
    }
    assert!(r.create_new(Path::new("link/new"), 0o600).is_err());
    assert!(r.rewrite(Path::new("link/f"), 0o600).is_err());
    assert!(r.list(Path::new("link")).is_err());
    assert!(r.create_dir_all(Path::new("link/x"), 0o700).is_err());
    assert!(
        r.rename(Path::new("real/up"), Path::new("link/moved"))
            .is_err()
    );
    // A dangling link is not created through either.
    std::os::unix::fs::symlink(outside.path().join("made"), d.path().join("dangling")).unwrap();
    assert!(r.open_rw(Path::new("dangling"), true).is_err());
    assert!(r.rewrite(Path::new("dangling"), 0o600).is_err());
    assert!(!outside.path().join("made").exists());
    assert_eq!(std::fs::read(outside.path().join("f")).unwrap(), b"secret");
    // Removing a link removes the link, not its target.
    r.remove_file(Path::new("link")).unwrap();
    assert!(outside.path().join("f").exists());
}

#[test]
fn special_files_are_refused_without_blocking() {
    let (d, r) = root();
    let fifo = d.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let err = r.open_file(Path::new("fifo")).unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
    let err = r.rewrite(Path::new("fifo"), 0o600).unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
    std::fs::create_dir(d.path().join("dir")).unwrap();
    let err = r.read_capped(Path::new("dir"), 10).unwrap_err();
    assert!(err.to_string().contains("folder"), "{err}");
}

#[test]
fn reads_are_capped_and_paths_stay_plain() {
    let (d, r) = root();
    std::fs::write(d.path().join("big"), vec![0u8; 100]).unwrap();
    assert!(r.read_capped(Path::new("big"), 99).is_err());
    assert_eq!(r.read_capped(Path::new("big"), 100).unwrap().len(), 100);
    for bad in ["../x", "/etc/passwd", "a/./b", "", "a/../b"] {
        assert!(r.open_file(Path::new(bad)).is_err(), "{bad}");
    }
}

#[test]
fn a_moved_root_is_noticed() {
    let base = tempfile::tempdir().unwrap();
    let p = base.path().join("disk");
    std::fs::create_dir(&p).unwrap();
    let r = Root::open(&p).unwrap();
    assert!(r.still_at_path());
    std::fs::rename(&p, base.path().join("away")).unwrap();
    std::fs::create_dir(&p).unwrap();
    assert!(!r.still_at_path());
}

#[test]
fn a_kept_folder_removed_or_replaced_by_a_symlink_is_resolved_again() {
    let (d, r) = root();
    let outside = tempfile::tempdir().unwrap();
    r.create_dir_all(Path::new("c/tmp"), 0o700).unwrap();
    r.create_new(Path::new("c/tmp/a"), 0o600).unwrap();
    r.rename(Path::new("c/tmp/a"), Path::new("c/tmp/b"))
        .unwrap();
    // Removed and made again behind the root's back: found anew.
    std::fs::remove_dir_all(d.path().join("c/tmp")).unwrap();
    r.create_dir_all(Path::new("c/tmp"), 0o700).unwrap();
    r.create_new(Path::new("c/tmp/a"), 0o600).unwrap();
    assert!(d.path().join("c/tmp/a").is_file());
    std::fs::remove_dir_all(d.path().join("c/tmp")).unwrap();
    std::fs::create_dir(d.path().join("c/tmp")).unwrap();
    r.create_new(Path::new("c/tmp/a"), 0o600).unwrap();
    r.rename(Path::new("c/tmp/a"), Path::new("c/x")).unwrap();
    r.remove_file(Path::new("c/x")).unwrap();
    // Replaced by a symlink: refused, nothing made outside.
    std::fs::remove_dir_all(d.path().join("c/tmp")).unwrap();
    std::os::unix::fs::symlink(outside.path(), d.path().join("c/tmp")).unwrap();
    let err = r.create_new(Path::new("c/tmp/a"), 0o600).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(r.create_dir_all(Path::new("c/tmp"), 0o700).is_err());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}
