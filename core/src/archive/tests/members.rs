//! The member reader against hostile tar streams: unsafe names, members the
//! manifest does not list, wrong types and sizes, links, long names, PAX
//! headers, gzip bombs, damaged gzip and special files.

use std::io::Write;
use std::path::Path;

use super::super::member::{self, Reading, Sink, Want};
use super::super::{RestoreOptions, restore, verify};
use super::*;
use crate::task::Progress;

#[test]
fn unsafe_names_and_unlisted_members_are_refused_before_anything_is_written() {
    use tar::EntryType as T;
    let w = world();
    let m = manifest(vec![file("keep.txt", b"new!"), file("ok.txt", b"ok")]);
    let keep = || raw("keep.txt", T::Regular, b"new!");
    let long = "a".repeat(5000);
    let cases: Vec<(&str, Vec<Raw>, Vec<&str>)> = vec![
        (
            "dotdot",
            vec![raw("../escaped", T::Regular, b"x"), ok_member()],
            vec!["../escaped", "`..`"],
        ),
        (
            "absolute",
            vec![raw("/tmp/coffer-escaped", T::Regular, b"x")],
            vec!["/tmp/coffer-escaped", "absolute"],
        ),
        (
            "inner dotdot",
            vec![raw("sub/../../x", T::Regular, b"x")],
            vec!["sub/../../x", "`..`"],
        ),
        // A listed member first: it is staged, then dropped with the rest.
        (
            "not listed",
            vec![keep(), ok_member(), raw("extra.txt", T::Regular, b"x")],
            vec!["unexpected member `extra.txt`"],
        ),
        (
            "duplicate",
            vec![keep(), ok_member(), ok_member()],
            vec!["`ok.txt` appears twice"],
        ),
        (
            "manifest twice",
            vec![raw("manifest.json", T::Regular, b"{}")],
            vec!["`manifest.json` appears twice"],
        ),
        (
            "size lies",
            vec![keep(), raw("ok.txt", T::Regular, b"okk")],
            vec!["`ok.txt` declares 3 bytes in its header, but the manifest says 2"],
        ),
        (
            "hard link",
            vec![keep(), raw("ok.txt", T::Link, b"").to("/etc/passwd")],
            vec!["`ok.txt` is a hard link"],
        ),
        (
            "hard link out",
            vec![
                keep(),
                ok_member(),
                raw("out", T::Link, b"").to("/etc/passwd"),
            ],
            vec!["unexpected member `out`"],
        ),
        (
            "char device",
            vec![keep(), raw("ok.txt", T::Char, b"")],
            vec!["`ok.txt` is a character device"],
        ),
        (
            "block device",
            vec![keep(), raw("ok.txt", T::Block, b"")],
            vec!["`ok.txt` is a block device"],
        ),
        (
            "fifo",
            vec![keep(), raw("ok.txt", T::Fifo, b"")],
            vec!["`ok.txt` is a FIFO"],
        ),
        (
            "folder for a file",
            vec![keep(), raw("ok.txt/", T::Directory, b"")],
            vec!["`ok.txt` is a folder, but the manifest lists a file"],
        ),
        ("missing", vec![keep()], vec!["missing", "ok.txt"]),
        (
            "wrong content",
            vec![keep(), raw("ok.txt", T::Regular, b"no")],
            vec!["`ok.txt` does not match its SHA-256"],
        ),
        (
            "5000-byte name",
            vec![
                keep(),
                ok_member(),
                raw("././@LongLink", T::GNULongName, long.as_bytes()),
                raw("x", T::Regular, b""),
            ],
            vec!["unexpected member `aaaa"],
        ),
        (
            "2^40-byte long name",
            vec![
                keep(),
                raw("././@LongLink", T::GNULongName, b"").says(1 << 40),
            ],
            vec!["GNU long name of 1099511627776 bytes"],
        ),
        (
            "PAX size lies",
            vec![
                keep(),
                raw("pax", T::XHeader, b"12 size=100\n"),
                ok_member(),
            ],
            vec!["`ok.txt` has a PAX size of 100 bytes"],
        ),
        (
            "global PAX header",
            vec![keep(), raw("g", T::XGlobalHeader, b""), ok_member()],
            vec!["unexpected member `g`"],
        ),
    ];
    for (case, members, want) in cases {
        let f = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
        w.refused(case, &f, 1, &want);
    }
    assert!(!w.dest.parent().unwrap().join("escaped").exists());
    assert!(!Path::new("/tmp/coffer-escaped").exists());
}

#[test]
fn nothing_is_written_through_a_symlink_of_the_archive() {
    use tar::EntryType as T;
    let w = world();
    let target = w.sentinel.display().to_string();
    for spelling in ["s", "s/", "s/.", "./s"] {
        // The manifest lists only the link; the tar adds a file through it.
        let m = manifest(vec![link("s", &target), file("ok.txt", b"ok")]);
        let members = vec![
            raw(spelling, T::Symlink, b"").to(&target),
            raw("s/passwd", T::Regular, b"owned"),
            ok_member(),
        ];
        let f = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
        w.refused(spelling, &f, 1, &["unexpected member `s/passwd`"]);
        // The manifest lists the file under the link too.
        let mut m = manifest(vec![link("s", &target), file("s/passwd", b"owned")]);
        let f = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
        w.refused(spelling, &f, 1, &["`s/passwd`", "lies under a symlink"]);
        // Or spells the link another way.
        if spelling != "s" {
            m.entries[0].path = spelling.to_string();
            let f = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
            w.refused(spelling, &f, 1, &["not canonical"]);
        }
    }
    // A member named like the link's child, under a listed folder of that name.
    let m = manifest(vec![file("s", b"f"), file("s/x", b"y")]);
    let f = w.put("t-1.tar.gz", &archive_bytes(&m, &[]));
    w.refused("under a file", &f, 1, &["`s/x`", "lies under a file"]);
}

/// 64 MiB of zeros, compressed once; repeated, it inflates to gigabytes.
fn zeros_member() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&block).unwrap();
    }
    e.finish().unwrap()
}

/// Records what a restore's sink was offered.
struct Count(u64);

impl Sink for Count {
    fn member(&mut self, _: &str, data: &mut dyn std::io::Read) -> crate::Result<bool> {
        let mut all = Vec::new();
        data.read_to_end(&mut all).unwrap();
        self.0 += all.len() as u64;
        Ok(true)
    }
    fn checked(&mut self, _: &str) -> crate::Result<()> {
        Ok(())
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_size_the_manifest_declares() {
    use tar::EntryType as T;
    let w = world();
    let m = manifest(vec![file("bomb", b"abcdef")]);
    let zeros = zeros_member();
    let gib = |start: Vec<u8>| {
        let mut out = start;
        for _ in 0..16 {
            out.extend_from_slice(&zeros);
        }
        out
    };
    // The header says 1 GiB (and 1 GiB follows); the manifest says 6 bytes.
    let bytes = serde_json::to_vec_pretty(&m).unwrap();
    let head = tar_bytes(&[
        raw("manifest.json", T::Regular, &bytes),
        raw("bomb", T::Regular, b"").says(1 << 30),
    ]);
    let f = w.put("t-1.tar.gz", &gib(gz(&head)));
    let mut sink = Count(0);
    let file = std::fs::File::open(&f).unwrap();
    let err = member::read_volume(
        file,
        &f,
        Want::Equal(&m),
        1,
        &mut sink,
        &Progress::silent(),
        Reading::Restore,
    )
    .err()
    .unwrap();
    assert_eq!(sink.0, 0, "not a byte of it was offered: {err}");
    w.refused(
        "header of 1 GiB",
        &f,
        1,
        &["`bomb` declares 1073741824 bytes"],
    );

    // The header says 6, and 1 GiB of zeros follows where the archive ends.
    let head = tar_bytes(&[
        raw("manifest.json", T::Regular, &bytes),
        raw("bomb", T::Regular, b"abcdef"),
    ]);
    let f = w.put("t-1.tar.gz", &gib(gz(&head)));
    let mut sink = Count(0);
    let file = std::fs::File::open(&f).unwrap();
    let err = member::read_volume(
        file,
        &f,
        Want::Equal(&m),
        1,
        &mut sink,
        &Progress::silent(),
        Reading::Restore,
    )
    .err()
    .unwrap()
    .to_string();
    assert_eq!(sink.0, 6, "the member yields its 6 bytes and not one more");
    assert!(err.contains("decompresses to more than"), "{err}");
    w.refused("1 GiB after the end", &f, 1, &["decompresses to more than"]);
}

#[test]
fn damaged_gzip_and_special_files_are_refused() {
    let w = world();
    let m = manifest(vec![file("ok.txt", b"ok"), file("keep.txt", b"new")]);
    let good = archive_bytes(
        &m,
        &[
            ok_member(),
            raw("keep.txt", tar::EntryType::Regular, b"new"),
        ],
    );
    let f = w.put("t-1.tar.gz", &good);
    verify(&f, &Progress::silent()).unwrap();
    w.put("t-1.tar.gz", &good[..good.len() - 20]);
    w.refused("truncated", &f, 1, &["damaged"]);
    for at in [good.len() / 2, good.len() - 12, 12] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        w.put("t-1.tar.gz", &bad);
        w.refused("bit flip", &f, 1, &[]);
    }
    std::fs::remove_file(&f).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &f,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    w.refused("FIFO", &f, 1, &["a FIFO"]);
    std::fs::remove_file(&f).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &f).unwrap();
    w.refused("symlink to a device", &f, 1, &["a symlink"]);
}

#[test]
fn large_members_are_hashed_on_a_second_core_and_checked() {
    use tar::EntryType as T;
    let w = world();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut lying = big.clone();
    lying[2_500_000] ^= 1;
    let m = manifest(vec![file("big", &big), file("ok.txt", b"ok")]);
    let good = archive_bytes(&m, &[raw("big", T::Regular, &big), ok_member()]);
    let f = w.put("t-1.tar.gz", &good);
    let r = verify(&f, &Progress::silent()).unwrap();
    assert_eq!((r.members, r.bytes), (2, big.len() as u64 + 2));
    let bad = archive_bytes(&m, &[raw("big", T::Regular, &lying), ok_member()]);
    let f = w.put("t-1.tar.gz", &bad);
    w.refused(
        "lying content",
        &f,
        1,
        &["`big` does not match its SHA-256"],
    );
    // Restoring another file reads `big` through, checked but not hashed:
    // its bytes go nowhere (the gzip CRC still guards them).
    let opts = RestoreOptions {
        at: 1,
        prefix: Some("t".into()),
        paths: vec!["ok.txt".into()],
        ..RestoreOptions::default()
    };
    let to = w.dest.with_file_name("one");
    restore(&w.nas, &to, &opts, &Progress::silent()).unwrap();
    assert_eq!(std::fs::read(to.join("ok.txt")).unwrap(), b"ok");
}
