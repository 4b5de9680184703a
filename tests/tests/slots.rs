//! A disk's catalog copy is written page by page: a sync that changed one
//! file writes the few pages that changed, the copy stays a plain SQLite
//! file that checks against its sidecar, and a copy that does not match
//! what the workstation remembers of it is written whole.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use coffer_core::disk::Disk;
use coffer_tests::{CountingIo, Lab, assert_catalog_opens};

/// Syncs through a counter; returns the bytes written outside `tmp/`.
fn sync_counting(lab: &mut Lab, disk: &Path) -> u64 {
    let io = CountingIo::default();
    lab.scan();
    lab.sync_with(disk, Arc::new(io.clone())).unwrap();
    io.other.load(Ordering::Relaxed)
}

fn slot_sizes(disk: &Path) -> Vec<u64> {
    ["a", "b"]
        .iter()
        .map(|s| {
            std::fs::metadata(disk.join(format!("coffer/catalog-{s}.sqlite")))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .collect()
}

/// Each slot opens with plain SQLite, in rollback-journal mode, intact.
fn assert_plain_sqlite(disk: &Path) {
    for s in ["a", "b"] {
        let p = disk.join(format!("coffer/catalog-{s}.sqlite"));
        let c =
            rusqlite::Connection::open_with_flags(&p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "{}", p.display());
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "{}", p.display());
    }
}

#[test]
fn a_one_file_change_writes_only_the_pages_that_changed() {
    let mut lab = Lab::new(1);
    // Enough files for a catalog of a few hundred pages.
    lab.files(3000, 40);
    let disk = lab.disk("d", None);
    let first = sync_counting(&mut lab, &disk);
    let sizes = slot_sizes(&disk);
    assert!(sizes[0] > 200 * 4096, "slot a is only {} bytes", sizes[0]);
    // The first sync writes both slots whole.
    assert!(first >= sizes[0] + sizes[1], "{first} {sizes:?}");
    for (i, f) in ["d0/f0.bin", "d1/f1.bin"].iter().enumerate() {
        std::fs::write(lab.src.join(f), format!("changed {i}")).unwrap();
        let then = sync_counting(&mut lab, &disk);
        assert!(
            then * 10 < sizes[0],
            "a one-file change wrote {then} bytes of a {}-byte slot",
            sizes[0]
        );
    }
    assert_plain_sqlite(&disk);
    assert_catalog_opens(&disk);
    // The newest copy is the workstation's catalog, row for row.
    let d = Disk::open(&disk, coffer_core::disk::io::real()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let copy = out.path().join("copy.sqlite");
    let got = d.copy_catalog(&copy).unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let theirs = coffer_core::Catalog::open_copy(&copy).unwrap();
    let snap = lab.catalog.latest_snapshot().unwrap().unwrap().id;
    assert_eq!(
        theirs.versions_in(snap).unwrap(),
        lab.catalog.versions_in(snap).unwrap()
    );
}

#[test]
fn a_slot_changed_behind_the_workstations_back_is_written_whole() {
    let mut lab = Lab::new(1);
    lab.files(2000, 40);
    let disk = lab.disk("d", None);
    sync_counting(&mut lab, &disk);
    // Slot a is the older one (the first sync wrote a, then b), next to be
    // written: one byte in the middle of it is changed, its sidecar left as
    // it was.
    let a = disk.join("coffer/catalog-a.sqlite");
    let mut bytes = std::fs::read(&a).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&a, &bytes).unwrap();
    std::fs::write(lab.src.join("d0/f9.bin"), b"after tampering").unwrap();
    let written = sync_counting(&mut lab, &disk);
    let sizes = slot_sizes(&disk);
    assert!(written >= sizes[0], "wrote {written} of {sizes:?}");
    assert_plain_sqlite(&disk);
    let d = Disk::open(&disk, coffer_core::disk::io::real()).unwrap();
    for s in d.slots() {
        assert!(s.meta.is_ok(), "{}: {:?}", s.path.display(), s.meta);
    }
    // And the next one is small again.
    std::fs::write(lab.src.join("d2/f2.bin"), b"and once more").unwrap();
    let small = sync_counting(&mut lab, &disk);
    assert!(small * 10 < sizes[1], "{small} of {sizes:?}");
}
