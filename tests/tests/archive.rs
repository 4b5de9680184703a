#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Archives over real folders: round trips through full and incremental
//! archives, volumes, GNU tar compatibility, and hostile or damaged input.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use coffer_core::Progress;
use coffer_core::archive::{self, Mode, Options, RestoreOptions};
use coffer_core::config::{Dump, Profile};
use coffer_tests::{bytes, profile_over};

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    out: PathBuf,
    profile: Profile,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let src = root.join("home/docs");
        std::fs::create_dir_all(src.join("sub/deep")).unwrap();
        std::fs::create_dir_all(src.join("empty")).unwrap();
        std::fs::write(src.join("a.txt"), b"alpha\n").unwrap();
        std::fs::write(src.join("sub/b.bin"), bytes(2, 20_000)).unwrap();
        std::fs::write(src.join("sub/deep/big.bin"), bytes(3, 600_000)).unwrap();
        std::fs::write(src.join("skip.tmp"), b"excluded").unwrap();
        std::fs::set_permissions(src.join("a.txt"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::os::unix::fs::symlink("sub/b.bin", src.join("link")).unwrap();
        let out = root.join("nas");
        std::fs::create_dir_all(&out).unwrap();
        let profile = profile_over(&src, root.join("home"), 2, vec!["*.tmp".into()]);
        Bench {
            _dir: dir,
            root,
            src,
            out,
            profile,
        }
    }

    fn archive(&self, mode: Mode, opts: &Options) -> coffer_core::Result<archive::Report> {
        archive::create(&self.profile, &self.out, mode, opts, &Progress::silent())
    }

    fn restore(&self, at: u64, paths: &[&str], to: &str) -> coffer_core::Result<PathBuf> {
        let dest = self.root.join(to);
        let opts = RestoreOptions {
            at,
            paths: paths.iter().map(|s| s.to_string()).collect(),
            ..RestoreOptions::default()
        };
        archive::restore(&self.out, &dest, &opts, &Progress::silent())?;
        Ok(dest)
    }
}

/// Everything about a tree that restore must reproduce.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir(root) {
        let rel = e.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel.is_empty() || rel == "manifest.json" {
            continue;
        }
        let m = std::fs::symlink_metadata(&e).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&e).unwrap().display())
        } else if m.is_dir() {
            format!("dir {:o}", m.mode() & 0o7777)
        } else {
            let data = std::fs::read(&e).unwrap();
            format!(
                "file {:o} {} {}",
                m.mode() & 0o7777,
                m.mtime(),
                coffer_core::ObjectId::of(&data)
            )
        };
        out.insert(rel, what);
    }
    out
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out.sort();
    out
}

/// The source tree as restore should give it back (without excluded files).
fn expected(b: &Bench) -> BTreeMap<String, String> {
    tree(&b.src)
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".tmp"))
        .map(|(k, v)| (format!("docs/{k}"), v))
        .chain([("docs".to_string(), String::new())])
        .collect()
}

fn restored(dest: &Path) -> BTreeMap<String, String> {
    let mut t = tree(dest);
    // The source root's own mode is compared loosely (it is the test's temp dir).
    if let Some(v) = t.get_mut("docs") {
        v.clear();
    }
    t
}

fn bump_mtime(p: &Path, secs: i64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(secs as u64);
    f.set_modified(t).unwrap();
}

#[test]
fn full_and_two_incrementals_restore_exactly_at_each_point() {
    let b = Bench::new();
    let r1 = b.archive(Mode::Full, &Options::default()).unwrap();
    assert_eq!(r1.files, vec![b.out.join("home-1.tar.gz")]);
    let at1 = expected(&b);

    // Append, in-place edit of the larger file, delete, rename, new empty folder.
    use std::io::Write;
    let mut f = std::fs::File::options()
        .append(true)
        .open(b.src.join("a.txt"))
        .unwrap();
    f.write_all(b"more\n").unwrap();
    drop(f);
    let big = b.src.join("sub/deep/big.bin");
    let mut data = std::fs::read(&big).unwrap();
    data[300_000..300_100].copy_from_slice(&[7u8; 100]);
    std::fs::write(&big, &data).unwrap();
    bump_mtime(&big, 10);
    std::fs::remove_file(b.src.join("link")).unwrap();
    std::fs::rename(b.src.join("sub/b.bin"), b.src.join("sub/b-renamed.bin")).unwrap();
    std::fs::create_dir_all(b.src.join("new/empty")).unwrap();
    let r2 = b
        .archive(Mode::Incremental { since: None }, &Options::default())
        .unwrap();
    assert_eq!(r2.files, vec![b.out.join("home-1-to-2.tar.gz")]);
    assert!(r2.delta_files >= 1, "{r2:?}");
    // The edit of 100 bytes in 600 kB is carried as a small delta.
    assert!(r2.stored_bytes < 100_000, "{r2:?}");
    let at2 = expected(&b);

    std::fs::remove_dir_all(b.src.join("sub/deep")).unwrap();
    std::fs::write(b.src.join("new/c.txt"), b"gamma").unwrap();
    let r3 = b
        .archive(Mode::Incremental { since: None }, &Options::default())
        .unwrap();
    assert_eq!(r3.files, vec![b.out.join("home-2-to-3.tar.gz")]);
    assert!(r3.deleted >= 2, "{r3:?}");
    let at3 = expected(&b);

    assert_eq!(restored(&b.restore(1, &[], "r1").unwrap()), at1);
    assert_eq!(restored(&b.restore(2, &[], "r2").unwrap()), at2);
    assert_eq!(restored(&b.restore(3, &[], "r3").unwrap()), at3);

    // Nothing changed: no new archive.
    let err = b
        .archive(Mode::Incremental { since: None }, &Options::default())
        .unwrap_err();
    assert!(err.to_string().contains("nothing changed"), "{err}");
    assert_eq!(archive::find(&b.out, None).unwrap().len(), 3);

    // --since: against the newest archive old enough, skipping 2 and 3.
    std::fs::write(b.src.join("d.txt"), b"delta").unwrap();
    let r4 = b.archive(
        Mode::Incremental {
            since: Some(coffer_core::now() - 3600),
        },
        &Options::default(),
    );
    assert!(r4.is_err(), "all archives are newer than an hour ago");
    let r4 = b
        .archive(
            Mode::Incremental {
                since: Some(coffer_core::now() + 5),
            },
            &Options::default(),
        )
        .unwrap();
    assert_eq!(r4.base_sequence, Some(3));
    let at4 = expected(&b);
    assert_eq!(restored(&b.restore(4, &[], "r4").unwrap()), at4);
}

#[test]
fn single_file_from_ten_volumes_reads_one_volume() {
    let mut b = Bench::new();
    for i in 0..20 {
        std::fs::write(b.src.join(format!("v{i:02}.bin")), bytes(100 + i, 40_000)).unwrap();
    }
    b.profile.sources[0].excludes.push("sub/".into());
    let r = b
        .archive(
            Mode::Full,
            &Options {
                volume_size: Some(90_000),
                ..Options::default()
            },
        )
        .unwrap();
    assert_eq!(r.files.len(), 10, "{:?}", r.files);
    assert!(r.files[9].ends_with("home-1.vol010.tar.gz"));
    for f in &r.files {
        archive::verify(f, &Progress::silent()).unwrap();
    }
    let m = archive::read_manifest(&r.files[0]).unwrap();
    let entry = m.entries.iter().find(|e| e.path == "docs/v13.bin").unwrap();
    let v = entry.volume.unwrap();
    // Only that volume is needed: put the others aside.
    let aside = b.root.join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    for (i, f) in r.files.iter().enumerate() {
        if i as u32 + 1 != v {
            std::fs::rename(f, aside.join(f.file_name().unwrap())).unwrap();
        }
    }
    let dest = b.restore(1, &["docs/v13.bin"], "one").unwrap();
    assert_eq!(
        std::fs::read(dest.join("docs/v13.bin")).unwrap(),
        bytes(113, 40_000)
    );
    // A file in a missing volume is refused, naming the volume.
    let err = b.restore(1, &["docs/v00.bin"], "two").unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
    assert!(err.to_string().contains("vol00"), "{err}");
    assert!(!b.root.join("two/docs/v00.bin").exists());
}

#[test]
fn gnu_tar_lists_and_extracts() {
    if std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: GNU tar is not installed");
        return;
    }
    let b = Bench::new();
    b.archive(Mode::Full, &Options::default()).unwrap();
    std::fs::write(b.src.join("a.txt"), b"changed").unwrap();
    b.archive(Mode::Incremental { since: None }, &Options::default())
        .unwrap();
    for f in archive::find(&b.out, None).unwrap() {
        let o = std::process::Command::new("tar")
            .arg("-tzf")
            .arg(f.first())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("manifest.json\n"));
    }
    let x = b.root.join("x");
    std::fs::create_dir_all(&x).unwrap();
    std::fs::copy(b.out.join("home-1.tar.gz"), b.root.join("h.tar.gz")).unwrap();
    std::fs::write(b.src.join("a.txt"), b"alpha\n").unwrap();
    std::fs::set_permissions(b.src.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(b.root.join("h.tar.gz"))
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let strip = |t: BTreeMap<String, String>| -> BTreeMap<String, String> {
        // GNU tar keeps whole seconds; compare content, kinds and modes.
        t.into_iter()
            .map(|(k, v)| {
                let v: Vec<&str> = v.split(' ').collect();
                let v = if v[0] == "file" {
                    format!("{} {}", v[1], v[3])
                } else {
                    v.join(" ")
                };
                (k, v)
            })
            .filter(|(k, _)| k != "docs")
            .collect()
    };
    assert_eq!(strip(tree(&x)), strip(expected(&b)));
}

#[test]
fn damaged_archives_are_refused_and_change_nothing() {
    let b = Bench::new();
    let r = b.archive(Mode::Full, &Options::default()).unwrap();
    let good = std::fs::read(&r.files[0]).unwrap();
    let path = &r.files[0];

    // Truncated.
    std::fs::write(path, &good[..good.len() - 300]).unwrap();
    let err = archive::verify(path, &Progress::silent()).unwrap_err();
    assert!(err.to_string().contains("home-1.tar.gz"), "{err}");
    let err = b.restore(1, &[], "t").unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(!b.root.join("t/docs/sub/deep/big.bin").exists());

    // One flipped byte in the middle.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(path, &bad).unwrap();
    assert!(archive::verify(path, &Progress::silent()).is_err());
    let err = b.restore(1, &[], "f").unwrap_err();
    assert!(err.to_string().contains("home-1.tar.gz"), "{err}");

    // Existing files are not clobbered.
    std::fs::write(path, &good).unwrap();
    let dest = b.root.join("e");
    std::fs::create_dir_all(dest.join("docs")).unwrap();
    std::fs::write(dest.join("docs/a.txt"), b"mine").unwrap();
    let err = b.restore(1, &[], "e").unwrap_err();
    assert!(err.to_string().contains("already exist"), "{err}");
    assert_eq!(std::fs::read(dest.join("docs/a.txt")).unwrap(), b"mine");
    assert!(!dest.join("docs/sub").exists());
}

#[test]
fn delta_against_the_wrong_base_is_refused() {
    let b = Bench::new();
    b.archive(Mode::Full, &Options::default()).unwrap();
    let first = std::fs::read(b.out.join("home-1.tar.gz")).unwrap();
    let mut data = std::fs::read(b.src.join("sub/deep/big.bin")).unwrap();
    data[10] ^= 1;
    std::fs::write(b.src.join("sub/deep/big.bin"), &data).unwrap();
    bump_mtime(&b.src.join("sub/deep/big.bin"), 20);
    b.archive(Mode::Incremental { since: None }, &Options::default())
        .unwrap();
    // Another full archive takes the place of number 1.
    std::fs::remove_file(b.out.join("home-1.tar.gz")).unwrap();
    std::fs::rename(b.out.join("home-1-to-2.tar.gz"), b.root.join("inc")).unwrap();
    b.archive(Mode::Full, &Options::default()).unwrap();
    std::fs::rename(b.root.join("inc"), b.out.join("home-1-to-2.tar.gz")).unwrap();
    let err = b.restore(2, &[], "w").unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(!b.root.join("w/docs/sub/deep/big.bin").exists());
    drop(first);
}

/// A hand-made member: name, type, data, link target.
type Member<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);

/// Writes a gzip'd tar by hand (raw headers, so any name can be used).
fn hand_made(path: &Path, members: &[Member<'_>]) {
    // The manifest lists one honest file, `ok.txt`, stored after the others.
    let manifest = format!(
        r#"{{"format":1,"id":"00000000-0000-0000-0000-000000000000","kind":"full","prefix":"evil","sequence":1,"created_at":0,"basepath":"/","sources":[],"block_size":4096,"volumes":1,"dumps":[],"entries":[{{"path":"ok.txt","kind":"file","size":2,"mtime_ns":0,"mode":420,"how":"new","volume":1,"sha256":"{}"}}]}}"#,
        coffer_core::ObjectId::of(b"ok").to_hex()
    );
    let mut out = Vec::new();
    let mut all: Vec<Member<'_>> = vec![(
        "manifest.json",
        tar::EntryType::Regular,
        manifest.as_bytes(),
        None,
    )];
    all.extend_from_slice(members);
    all.push(("ok.txt", tar::EntryType::Regular, b"ok", None));
    for (name, ty, data, link) in all {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(ty);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &out).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

#[test]
fn hostile_members_are_refused_and_nothing_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let nas = dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let cases: Vec<(&str, Vec<Member<'_>>, &str)> = vec![
        (
            "dotdot",
            vec![("../escaped", tar::EntryType::Regular, b"x", None)],
            "`..`",
        ),
        (
            "abs",
            vec![("/tmp/coffer-escaped", tar::EntryType::Regular, b"x", None)],
            "absolute",
        ),
        (
            "link",
            vec![
                ("out", tar::EntryType::Symlink, b"", Some("/tmp")),
                ("out/coffer-escaped", tar::EntryType::Regular, b"x", None),
            ],
            "unexpected member",
        ),
    ];
    for (name, members, why) in cases {
        let f = nas.join(format!("{name}-1.tar.gz"));
        hand_made(&f, &members);
        let err = archive::verify(&f, &Progress::silent()).unwrap_err();
        assert!(err.to_string().contains(why), "{name}: {err}");
        assert!(
            err.to_string().contains(&f.display().to_string()),
            "{name}: {err}"
        );
        let dest = dir.path().join(format!("dest-{name}"));
        let opts = RestoreOptions {
            at: 1,
            prefix: Some(name.into()),
            ..RestoreOptions::default()
        };
        // Restore makes verify's checks before it writes anything: a member
        // the manifest does not list fails it like an unsafe name does.
        let err = archive::restore(&nas, &dest, &opts, &Progress::silent()).unwrap_err();
        let want = if name == "link" {
            "unexpected member"
        } else {
            "unsafe member"
        };
        assert!(err.to_string().contains(want), "{name}: {err}");
        assert!(!dest.join("ok.txt").exists(), "{name}");
        assert!(
            std::fs::symlink_metadata(dest.join("out")).is_err(),
            "{name}"
        );
    }
    assert!(!dir.path().join("escaped").exists());
    assert!(!Path::new("/tmp/coffer-escaped").exists());

    // A manifest that itself lists a `..` path is refused before anything.
    let f = nas.join("m-1.tar.gz");
    let manifest = r#"{"format":1,"id":"00000000-0000-0000-0000-000000000000","kind":"full","prefix":"m","sequence":1,"created_at":0,"basepath":"/","sources":[],"block_size":4096,"volumes":1,"dumps":[],"entries":[{"path":"../x","kind":"file","size":1,"mtime_ns":0,"mode":420,"how":"new","volume":1,"sha256":"00"}]}"#;
    let gz = {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        h.set_mode(0o644);
        t.append_data(&mut h, "manifest.json", manifest.as_bytes())
            .unwrap();
        let raw = t.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    };
    std::fs::write(&f, gz).unwrap();
    let err = archive::read_manifest(&f).unwrap_err();
    assert!(err.to_string().contains("`..`"), "{err}");
}

#[test]
fn restore_never_writes_through_a_symlink_in_the_destination() {
    let b = Bench::new();
    b.archive(Mode::Full, &Options::default()).unwrap();
    let dest = b.root.join("dest");
    let elsewhere = b.root.join("elsewhere");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dest.join("docs")).unwrap();
    let err = b.restore(1, &[], "dest").unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn dumps_and_sqlite_are_archived() {
    let mut b = Bench::new();
    let db = b.src.join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (42);")
        .unwrap();
    b.profile.dumps.push(Dump {
        name: "greeting".into(),
        command: "echo hello".into(),
        load_command: Some("cat > /dev/null".into()),
    });
    let r = b.archive(Mode::Full, &Options::default()).unwrap();
    assert_eq!(r.dumps, 1);
    drop(conn);
    let dest = b.restore(1, &[], "d").unwrap();
    assert_eq!(
        std::fs::read(dest.join("dumps/greeting")).unwrap(),
        b"hello\n"
    );
    // The WAL content is in the copy, though the main file lacked it.
    let back = rusqlite::Connection::open(dest.join("docs/app.db")).unwrap();
    let x: i64 = back.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 42);

    // A failing dump fails the archive and leaves no archive behind.
    b.profile.dumps.push(Dump {
        name: "bad".into(),
        command: "echo oops >&2; exit 3".into(),
        load_command: None,
    });
    let err = b.archive(Mode::Full, &Options::default()).unwrap_err();
    assert!(err.to_string().contains("oops"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&b.out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn empty_sources_are_refused() {
    let mut b = Bench::new();
    let empty = b.root.join("home/nothing");
    std::fs::create_dir_all(&empty).unwrap();
    b.profile.sources[0].path = empty;
    // The source folder itself is an entry; exclude everything under an
    // empty basepath-level source to have nothing at all.
    b.profile.basepath = b.root.join("home/nothing");
    let err = b.archive(Mode::Full, &Options::default()).unwrap_err();
    assert!(err.to_string().contains("nothing to archive"), "{err}");
    assert_eq!(std::fs::read_dir(&b.out).unwrap().count(), 0);
}

#[test]
fn long_names_and_link_targets_round_trip() {
    // Past the 100 bytes of a tar header: GNU long names and long links.
    let b = Bench::new();
    let deep = b.src.join("d".repeat(120)).join("e".repeat(200));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join(format!("{}.txt", "f".repeat(200))), b"long").unwrap();
    std::os::unix::fs::symlink("t".repeat(300), b.src.join("long-link")).unwrap();
    let r = b.archive(Mode::Full, &Options::default()).unwrap();
    archive::verify(&r.files[0], &Progress::silent()).unwrap();
    assert_eq!(restored(&b.restore(1, &[], "r").unwrap()), expected(&b));
}
