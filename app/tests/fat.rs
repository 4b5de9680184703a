#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! A FAT32 disk, mounted by the kernel where it has vfat and through FUSE
//! (`fusefat`) where it has not, as desktops do: a file above 4 GiB is
//! stored as parts and restored byte for byte.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use coffer_tests::mount::Mount;
use coffer_tests::{World, both, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");

fn ok(w: &World, args: &[&str]) -> String {
    let o = w.run(Path::new(EXE), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sha256(p: &Path) -> Vec<u8> {
    use sha2::Digest;
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().to_vec()
}

#[test]
fn a_file_above_4_gib_goes_to_a_fat32_disk_in_parts_and_comes_back_whole() {
    let w = World::new();
    let disk = w.mounts().join("stick");
    let Some(fat) = Mount::fat32(&disk, 5200) else {
        eprintln!("skipped: no FAT32 file system can be mounted here");
        return;
    };
    // 4.5 GB, mostly holes, with data at the start, across the 4 GiB mark
    // and at the end.
    let big = w.write("Videos/holiday.mkv", b"");
    let size: u64 = 4_500_000_000;
    {
        let mut f = std::fs::File::options().write(true).open(&big).unwrap();
        f.set_len(size).unwrap();
        for at in [0, (4 << 30) - 2000, size - 5000] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&coffer_tests::bytes(at, 4096.min((size - at) as usize)))
                .unwrap();
        }
    }
    ok(&w, &["source", "add", w.home().join("Videos").to_str().unwrap()]);
    ok(&w, &["disk", "init", disk.to_str().unwrap(), "--label", "Stick"]);
    ok(&w, &["sync"]);
    let mut parts: Vec<(String, u64)> = walk(&disk.join("coffer/objects"))
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p.file_name().unwrap().to_string_lossy().into_owned(), len)
        })
        .collect();
    parts.sort();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts[0].0.ends_with(".p001") && parts[1].0.ends_with(".p002"), "{parts:?}");
    assert!(parts.iter().all(|p| p.1 < 4 << 30), "{parts:?}");
    assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), size);
    let out = w.dir.path().join("restored");
    ok(
        &w,
        &["restore", w.home().join("Videos").to_str().unwrap(), "--to", out.to_str().unwrap()],
    );
    let back = out.join("Videos/holiday.mkv");
    assert_eq!(std::fs::metadata(&back).unwrap().len(), size);
    assert_eq!(sha256(&back), sha256(&big), "restored bytes differ");
    drop(fat);
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
