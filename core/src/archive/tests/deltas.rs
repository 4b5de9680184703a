//! Deltas that lie (sizes, COPY ranges, commands, results), special bits,
//! and a destination the restore made itself.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::super::manifest::{DeltaInfo, How, Kind, Manifest};
use super::super::{RestoreOptions, restore, verify};
use super::*;
use crate::task::Progress;

/// A full archive of `f` = `base`, and an incremental whose delta for `f`
/// makes `size` bytes of SHA-256 `result` (lies as the case needs).
fn chain(
    w: &World,
    base: &[u8],
    delta: &[u8],
    size: u64,
    result: &str,
    header: Option<u64>,
) -> PathBuf {
    let full = manifest(vec![file("f", base)]);
    w.put(
        "t-1.tar.gz",
        &archive_bytes(&full, &[raw("f", tar::EntryType::Regular, base)]),
    );
    let mut e = file("f", b"");
    e.size = size;
    e.sha256 = Some(result.to_string());
    e.how = Some(How::Delta);
    e.delta = Some(DeltaInfo {
        base_sha256: sha(base),
        sha256: sha(delta),
        size: delta.len() as u64,
    });
    let inc = Manifest {
        id: uuid::Uuid::from_u128(2),
        kind: Kind::Incremental,
        sequence: 2,
        base_sequence: Some(1),
        base_id: Some(full.id),
        ..manifest(vec![e])
    };
    let mut member = raw(".coffer-delta/f", tar::EntryType::Regular, delta);
    if let Some(h) = header {
        member = member.says(h);
        member.data.clear();
    }
    w.put("t-1-to-2.tar.gz", &archive_bytes(&inc, &[member]))
}

#[test]
fn hostile_deltas_are_refused() {
    let w = world();
    let base = b"0123456789";
    let magic = 0x7273_0236u32.to_be_bytes();
    let with = |cmds: &[u8]| [&magic[..], cmds].concat();
    // A result of 2^62 bytes: refused by the manifest's bounds.
    let d = with(&[0x45, 0, 10, 0]);
    let f = chain(&w, base, &d, 1 << 62, &sha(base), None);
    w.refused("2^62", &f, 2, &["`f`", "4611686018427387904"]);
    // A delta member of 512 MiB: its header is refused before it is read.
    let f = chain(&w, base, &d, 10, &sha(base), Some(512 << 20));
    w.refused(
        "512 MiB delta",
        &f,
        2,
        &["`.coffer-delta/f` declares 536870912 bytes"],
    );
    // COPY past the base's end: only applying it can tell (verify cannot
    // see the base), so only restore is asked.
    let d = with(&[0x45, 5, 10, 0]);
    let f = chain(&w, base, &d, 10, &sha(base), None);
    verify(&f, &Progress::silent()).unwrap();
    let err = w
        .restore(2, RestoreOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a COPY of 10 bytes at 5 lies outside the 10 bytes"),
        "{err}"
    );
    assert!(
        err.contains("t-1-to-2.tar.gz") && err.contains("for f"),
        "{err}"
    );
    w.unchanged("copy past base");
    // Copies that make more than the declared size, a result with the
    // wrong hash, bytes after END, an unknown command: both refuse.
    let big = [7u8; 100];
    let long = with(&[0x45, 0, 100, 0x45, 0, 100, 0]);
    let f = chain(&w, &big, &long, 100, &sha(&big), None);
    w.refused("too long", &f, 2, &["for f", "more than the 100 bytes"]);
    let f = chain(&w, base, &with(&[0x45, 0, 10, 0, 7]), 10, &sha(base), None);
    w.refused("trailing", &f, 2, &["for f", "after its END"]);
    let f = chain(&w, base, &with(&[0x99]), 10, &sha(base), None);
    w.refused("unknown command", &f, 2, &["for f", "unknown command"]);
    let d = with(&[0x45, 0, 10, 0]);
    chain(&w, base, &d, 10, &sha(b"other"), None);
    let err = w
        .restore(2, RestoreOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not match the manifest's SHA-256"),
        "{err}"
    );
    w.unchanged("wrong result");
    // And a good one goes through.
    let d = with(&[0x45, 0, 100, 0x03, b'x', b'y', b'z', 0]);
    let want = [&big[..], b"xyz"].concat();
    let f = chain(&w, &big, &d, 103, &sha(&want), None);
    verify(&f, &Progress::silent()).unwrap();
    w.restore(2, RestoreOptions::default()).unwrap();
    assert_eq!(std::fs::read(w.dest.join("f")).unwrap(), want);
}

#[test]
fn special_bits_are_dropped_unless_kept() {
    let w = world();
    let mut f = file("tool", b"#!/bin/sh\n");
    f.mode = 0o6755;
    let mut d = dir("shared");
    d.mode = 0o3775;
    let m = manifest(vec![d, f, file("shared/x", b"x")]);
    let members = [
        raw("shared", tar::EntryType::Directory, b""),
        raw("tool", tar::EntryType::Regular, b"#!/bin/sh\n"),
        raw("shared/x", tar::EntryType::Regular, b"x"),
    ];
    w.put("t-1.tar.gz", &archive_bytes(&m, &members));
    let mode = |p: &str| {
        std::fs::symlink_metadata(w.dest.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    w.restore(1, RestoreOptions::default()).unwrap();
    assert_eq!((mode("tool"), mode("shared")), (0o755, 0o775));
    for p in ["tool", "shared/x", "shared"] {
        let _ = std::fs::remove_file(w.dest.join(p));
    }
    std::fs::remove_dir(w.dest.join("shared")).unwrap();
    let keep = RestoreOptions {
        keep_special_bits: true,
        ..RestoreOptions::default()
    };
    w.restore(1, keep).unwrap();
    if rustix::process::geteuid().is_root() {
        assert_eq!((mode("tool"), mode("shared")), (0o6755, 0o3775));
    } else {
        assert_eq!(mode("tool") & 0o4777, 0o4755);
    }
    // Nothing of the restore's own is left behind.
    let names: Vec<String> = std::fs::read_dir(&w.dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".coffer")), "{names:?}");
}

#[test]
fn a_failed_restore_takes_away_the_destination_it_made() {
    let w = world();
    let m = manifest(vec![file("ok.txt", b"ok")]);
    w.put(
        "t-1.tar.gz",
        &archive_bytes(&m, &[ok_member(), raw("x", tar::EntryType::Regular, b"")]),
    );
    let fresh = w.dest.join("new/deeper");
    let opts = RestoreOptions {
        at: 1,
        ..RestoreOptions::default()
    };
    let err = restore(&w.nas, &fresh, &opts, &Progress::silent()).unwrap_err();
    assert!(err.to_string().contains("unexpected member `x`"), "{err}");
    w.unchanged("fresh destination");
}
