#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! A 1 GiB sparse file in an archive, through the real binary: the archive
//! is small, GNU tar extracts it (PAX 1.0 sparse) with its content and its
//! holes, and Coffer's own restore gives it back the same way.

use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use coffer_tests::{World, both, code};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

const GIB: u64 = 1 << 30;

/// SHA-256 of a file, read in pieces (a GiB is never held in memory).
fn sha_of(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = coffer_core::object::Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h.finish().to_hex();
        }
        h.update(&buf[..n]);
    }
}

/// Bytes allocated to a file.
fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

#[test]
fn a_sparse_gigabyte_archives_small_and_gnu_tar_and_coffer_restore_its_holes() {
    let w = World::new();
    let img = w.write("vm/disk.img", "");
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.set_len(GIB).unwrap();
    for (at, what) in [
        (0, &b"boot sector"[..]),
        (GIB / 3, b"a block in the middle"),
        (GIB - 4096, b"the last block"),
    ] {
        f.write_all_at(what, at).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let want = sha_of(&img);
    let source_blocks = allocated(&img);

    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let vm = w.home().join("vm");
    let o = w.run(exe(), &["source", "add", vm.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", both(&o));
    let o = w.run(exe(), &["archive", "full", "--to", nas.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", both(&o));
    let archive = nas.join("home-1.tar.gz");
    let size = std::fs::metadata(&archive).unwrap().len();
    println!("1 GiB sparse file ({source_blocks} bytes allocated): archive of {size} bytes");
    assert!(size < 64 << 10, "the archive takes {size} bytes");

    // GNU tar, with no option at all, and with --sparse.
    for args in [&["-xzf"][..], &["--sparse", "-xzf"]] {
        let out = w.dir.path().join(format!("gnu{}", args.len()));
        std::fs::create_dir_all(&out).unwrap();
        let t = Command::new("tar")
            .args(args)
            .arg(&archive)
            .arg("-C")
            .arg(&out)
            .output()
            .unwrap();
        assert!(t.status.success(), "GNU tar {args:?}: {}", both(&t));
        let got = out.join("vm/disk.img");
        assert_eq!(std::fs::metadata(&got).unwrap().len(), GIB);
        assert_eq!(sha_of(&got), want, "GNU tar {args:?} gave other content");
        let used = allocated(&got);
        println!("GNU tar {args:?}: {used} bytes allocated");
        assert!(
            used <= 256 << 10,
            "GNU tar {args:?}: {used} bytes allocated"
        );
        assert!(
            !out.join("GNUSparseFile.0").exists(),
            "GNU tar {args:?} saw a plain member"
        );
    }

    let dest = w.dir.path().join("r");
    let o = w.run(
        exe(),
        &[
            "archive",
            "restore",
            nas.to_str().unwrap(),
            "--at",
            "1",
            "--to",
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", both(&o));
    let got = dest.join("vm/disk.img");
    assert_eq!(sha_of(&got), want);
    let used = allocated(&got);
    println!("coffer archive restore: {used} bytes allocated");
    assert!(used <= 256 << 10, "coffer restore: {used} bytes allocated");
    let o = w.run(exe(), &["archive", "verify", archive.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", both(&o));
}
