//! A scan or sync that was interrupted is resumed, not started over: what
//! the scan read is not read again, copies left in a disk's `tmp/` are
//! adopted or resumed after their bytes were checked, and nothing left
//! there is trusted blindly.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use coffer_core::catalog::{Cached, Journal, Note, Staging};
use coffer_core::disk::{Disk, new_tag};
use coffer_core::{ObjectId, disk::io};
use coffer_tests::{CountingIo, Lab, assert_catalog_opens, assert_store_consistent, bytes};

fn lab(files: usize, size: usize) -> Lab {
    let lab = Lab::new(1);
    lab.files(files, size);
    lab
}

fn ident(p: &Path) -> (u64, i64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.ino())
}

fn source_files(b: &Lab) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = walk(&b.src);
    v.sort();
    v
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

#[test]
fn a_scan_reads_nothing_an_interrupted_scan_read_of_unchanged_files() {
    let mut b = lab(10, 3000);
    let files = source_files(&b);
    // An interrupted scan read the first half, and the 5th file changed since.
    let journal = Journal::start(b.catalog.path()).unwrap();
    for (i, f) in files.iter().take(5).enumerate() {
        let (size, mtime_ns, inode) = ident(f);
        let content = std::fs::read(f).unwrap();
        journal.note(Note::Hashed {
            path: f.clone(),
            cached: Cached {
                size,
                mtime_ns,
                inode,
                hash: ObjectId::of(&content),
            },
        });
        if i == 4 {
            std::fs::write(f, bytes(77, 3001)).unwrap();
        }
    }
    journal.finish().unwrap();
    let r = b.scan();
    assert_eq!((r.resumed_files, r.hashed_files), (4, 6), "{r:?}");
    // Every hash is right, and the cache is gone with the snapshot.
    let snap = b.catalog.latest_snapshot().unwrap().unwrap().id;
    for v in b.catalog.versions_in(snap).unwrap() {
        if let Some(h) = v.hash {
            assert_eq!(h, ObjectId::of(&std::fs::read(&v.path).unwrap()), "{v:?}");
        }
    }
    assert!(b.catalog.scan_cache().unwrap().is_empty());
}

/// Leaves in `disk`'s tmp/ a copy of the first `len` bytes of `src` (what a
/// killed sync leaves), journaled as made from it when `journaled`.
fn leave_copy(b: &mut Lab, disk: &Path, src: &Path, len: usize, journaled: bool) {
    let d = Disk::open(disk, io::real()).unwrap();
    d.claim(b.profile.set_id).unwrap();
    let tag = new_tag();
    let content = std::fs::read(src).unwrap();
    let p = d.stage_as(&tag, &mut &content[..len], |_| Ok(())).unwrap();
    // Nothing discards it: the process "died" here.
    std::mem::forget(p);
    if journaled {
        let (size, mtime_ns, inode) = ident(src);
        let j = Journal::start(b.catalog.path()).unwrap();
        b.catalog.register(&d, None).unwrap();
        j.note(Note::Staging {
            disk: d.id(),
            staging: Staging {
                name: tag,
                path: src.to_path_buf(),
                size,
                mtime_ns,
                inode,
            },
        });
        j.finish().unwrap();
    }
}

#[test]
fn whole_copies_left_in_tmp_are_adopted_and_partial_ones_resumed() {
    let mut b = lab(6, 20_000);
    let d = b.disk("a", None);
    let files = source_files(&b);
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    // Two whole copies (one journaled, one not), one half copy journaled.
    let first_len = std::fs::read(&files[0]).unwrap().len();
    leave_copy(&mut b, &d, &files[0], first_len, true);
    let whole = std::fs::read(&files[1]).unwrap().len();
    leave_copy(&mut b, &d, &files[1], whole, false);
    let half = std::fs::read(&files[2]).unwrap().len() / 2;
    leave_copy(&mut b, &d, &files[2], half, true);
    let first = std::fs::read(&files[0]).unwrap().len() as u64;

    let counting = CountingIo::default();
    let (scanned, r) = b
        .scan_and_sync_with(&d, Arc::new(counting.clone()))
        .unwrap();
    assert!(r.complete(), "{r:?}");
    assert_eq!(
        scanned.hashed_files + scanned.resumed_files,
        6,
        "{scanned:?}"
    );
    // Neither the journaled whole copy nor the half already there was
    // written again. (The copy with no journal row was adopted for its
    // content, but the scan, not knowing which file it was, read and staged
    // that file again: a kill leaves at most a few of those.)
    let saved = first + half as u64;
    assert!(
        counting.tmp_bytes() <= total - saved,
        "wrote {} into tmp/, expected at most {}",
        counting.tmp_bytes(),
        total - saved
    );
    let on_disk = assert_store_consistent(&d);
    for f in &files {
        assert!(
            on_disk.contains_key(&ObjectId::of(&std::fs::read(f).unwrap())),
            "{f:?}"
        );
    }
    assert_eq!(std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(), 0);
    assert!(
        b.catalog
            .staging_on(Disk::open(&d, io::real()).unwrap().id())
            .unwrap()
            .is_empty()
    );
    assert_catalog_opens(&d);
}

#[test]
fn a_partial_copy_that_does_not_match_its_source_is_dropped() {
    let mut b = lab(2, 50_000);
    let d = b.disk("a", None);
    let files = source_files(&b);
    leave_copy(&mut b, &d, &files[0], 25_000, true);
    // Tamper with the copy on the disk: its bytes no longer agree.
    let tmp = std::fs::read_dir(d.join("coffer/tmp"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bad = std::fs::read(&tmp).unwrap();
    bad[100] ^= 0xff;
    std::fs::write(&tmp, bad).unwrap();
    let (_, r) = b.scan_and_sync_with(&d, io::real()).unwrap();
    assert!(r.complete(), "{r:?}");
    let on_disk = assert_store_consistent(&d);
    assert_eq!(on_disk.len(), 2);
    for f in &files {
        assert!(on_disk.contains_key(&ObjectId::of(&std::fs::read(f).unwrap())));
    }
}

#[test]
fn torn_and_foreign_files_in_tmp_are_never_trusted() {
    let mut b = lab(3, 4000);
    let d = b.disk("a", None);
    let tmp = d.join("coffer/tmp");
    // A torn copy with no journal, one named for a hash it does not hold,
    // and a file that is no copy of Coffer's at all.
    std::fs::write(tmp.join(format!("staged.{}.p001", new_tag())), b"torn").unwrap();
    let lie = ObjectId::of(b"something else");
    std::fs::write(
        tmp.join(format!("{}.{}.p001", lie.to_hex(), new_tag())),
        b"other",
    )
    .unwrap();
    std::fs::write(tmp.join("notes.txt"), b"hello").unwrap();
    let (_, r) = b.scan_and_sync_with(&d, io::real()).unwrap();
    assert!(r.complete(), "{r:?}");
    let on_disk = assert_store_consistent(&d);
    assert_eq!(on_disk.len(), 3, "{on_disk:?}");
    assert!(!on_disk.contains_key(&ObjectId::of(b"torn")));
    assert!(!on_disk.contains_key(&lie));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
