//! The destination writer's own cases: symlinks and files in the way,
//! special bits, what is replaced, staging, and a mount inside the
//! destination.

use super::*;

#[test]
fn special_bits_are_kept_only_when_asked() {
    assert_eq!(mode_bits(0o4755, false).as_raw_mode(), 0o755);
    assert_eq!(mode_bits(0o4755, true).as_raw_mode(), 0o4755);
    assert_eq!(mode_bits(0o3777, false).as_raw_mode(), 0o777);
    assert_eq!(mode_bits(0o170644, true).as_raw_mode(), 0o644);
}

#[test]
fn folders_are_never_opened_through_a_symlink() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let (dest, made) = Dest::create(&t.path().join("d/e")).unwrap();
    assert_eq!(made.len(), 2);
    std::os::unix::fs::symlink(&outside, dest.root().join("s")).unwrap();
    std::fs::write(dest.root().join("f"), b"").unwrap();
    for (rel, why) in [
        ("s", "symlink"),
        ("s/x", "symlink"),
        ("f/x", "not a folder"),
    ] {
        for create in [false, true] {
            let err = dest.dir(Path::new(rel), create).err().unwrap();
            assert!(err.to_string().contains(why), "{rel}: {err}");
            // The same without openat2, one component at a time.
            let path = dest.root().join(rel);
            let err = dest.walk(Path::new(rel), create, path).err().unwrap();
            assert!(err.to_string().contains(why), "{rel}: {err}");
        }
    }
    for bad in ["../d", "a/../../x", "/etc"] {
        assert!(dest.dir(Path::new(bad), true).is_err(), "{bad}");
    }
    assert!(dest.dir(Path::new("new/deeper"), false).unwrap().is_none());
    assert!(dest.dir(Path::new("new/deeper"), true).unwrap().is_some());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    let mode = std::fs::metadata(dest.root().join("new/deeper")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o700);
}

#[test]
fn only_a_regular_file_is_replaced_and_only_when_asked() {
    let t = tempfile::tempdir().unwrap();
    let (dest, _) = Dest::create(t.path()).unwrap();
    let root = dest.dir(Path::new(""), false).unwrap().unwrap();
    std::fs::write(t.path().join("old"), b"mine").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", t.path().join("link")).unwrap();
    let shown = t.path().join("x");
    let (tmp, f) = root.create_tmp(&shown).unwrap();
    drop(f);
    let err = put_in_place(&root, &tmp, &root, OsStr::new("old"), false, &shown).unwrap_err();
    assert!(err.to_string().contains("left alone"), "{err}");
    assert_eq!(std::fs::read(t.path().join("old")).unwrap(), b"mine");
    let err = put_in_place(&root, &tmp, &root, OsStr::new("link"), true, &shown).unwrap_err();
    assert!(err.to_string().contains("regular file"), "{err}");
    assert!(
        std::fs::symlink_metadata(t.path().join("link"))
            .unwrap()
            .is_symlink()
    );
    put_in_place(&root, &tmp, &root, OsStr::new("old"), true, &shown).unwrap();
    assert_eq!(std::fs::read(t.path().join("old")).unwrap(), b"");
    {
        let staging = dest.staging().unwrap();
        let (tmp, _f) = staging.dir().create_tmp(&shown).unwrap();
        assert!(staging.dir().stat(&tmp).is_some());
    }
    let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
    assert_eq!(left.len(), 2, "the staging folder is gone: {left:?}");
}

#[test]
fn a_file_moves_into_a_mount_inside_the_destination() {
    // Needs a second file system inside the destination: a tmpfs
    // mounted there, which only root may do.
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    std::fs::create_dir(&m).unwrap();
    let mounted = rustix::process::geteuid().is_root()
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "coffer-test"])
            .arg(&m)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _u = Unmount(&m);
    let (dest, _) = Dest::create(t.path()).unwrap();
    let staging = dest.staging().unwrap();
    let shown = m.join("f");
    let (tmp, mut f) = staging.dir().create_tmp(&shown).unwrap();
    std::io::Write::write_all(&mut f, b"across").unwrap();
    set_file_meta(&f, 0o640, Some(1_000_000_000_123), false, &shown).unwrap();
    drop(f);
    let into = dest.dir(Path::new("m"), false).unwrap().unwrap();
    move_in(staging.dir(), &tmp, &into, OsStr::new("f"), false, &shown).unwrap();
    assert_eq!(std::fs::read(&shown).unwrap(), b"across");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&shown).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.mtime(), meta.mtime_nsec()),
        (0o640, 1000, 123)
    );
    assert!(staging.dir().stat(&tmp).is_none());
    // And never over what is there.
    let (tmp, _) = staging.dir().create_tmp(&shown).unwrap();
    let err = move_in(staging.dir(), &tmp, &into, OsStr::new("f"), false, &shown).unwrap_err();
    assert!(err.to_string().contains("left alone"), "{err}");
    assert_eq!(
        std::fs::read_dir(&m).unwrap().count(),
        1,
        "no temp file is left"
    );
}
