#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Hostile disks, part 4: damaged and foreign catalog slots (issue 14, "at
//! least 20 damaged or foreign catalog slots").
//!
//! Each case starts from a real disk with both slots valid (a sync wrote
//! slot A, a verify slot B, both holding the same snapshot) and damages one
//! or both. With one slot damaged, `restore --from-disk` on a new machine
//! must work from the other and restore the right content; with both
//! damaged it must fail naming both slots on the disk (not a private temp
//! copy). Then `coffer sync` onto the disk must succeed or fail clearly,
//! the workstation catalog must stay intact, and a disk the sync called good
//! must restore again.

use std::path::Path;

use coffer_tests::bytes;
use coffer_tests::hostile::disk::{self, Cmd, DiskWorld};
use coffer_tests::hostile::{Expect, Findings, Tree, Watched};
use serde_json::{Value, json};

fn exe() -> &'static Path {
    coffer_tests::hostile::binary(env!("CARGO_BIN_EXE_coffer"))
}

/// How many slots a case leaves unusable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Damage {
    One,
    Both,
}

type Tamper = fn(&DiskWorld);

/// Overwrites slot `x` with `data`, keeping its sidecar as it was.
fn write_slot(dw: &DiskWorld, x: char, data: &[u8]) {
    std::fs::write(dw.slot(x), data).unwrap();
}

/// Makes the sidecar of `x` match the slot as it is now, generation 3
/// (newer than both), so a reader trusts the damaged slot first.
fn trust(dw: &DiskWorld, x: char) {
    disk::rewrite_sidecar(&dw.slot(x), &dw.sidecar(x), json!(3));
}

fn edit_sidecar(dw: &DiskWorld, x: char, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(dw.sidecar(x)).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(dw.sidecar(x), serde_json::to_vec(&v).unwrap()).unwrap();
}

/// A new SQLite file made by `sql`, copied over slot `x`.
fn sqlite_slot(dw: &DiskWorld, x: char, sql: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("other.sqlite");
    disk::new_sqlite(&p, sql);
    std::fs::copy(&p, dw.slot(x)).unwrap();
}

/// The SQL deleting `docs/a.txt` from a catalog (a catalog that says less).
fn forget_a(dw: &DiskWorld) -> String {
    let a = dw.w.home().join("docs/a.txt");
    format!(
        "DELETE FROM versions WHERE path = {};",
        disk::blob(a.as_os_str().as_encoded_bytes())
    )
}

fn cases() -> Vec<(&'static str, Damage, Tamper)> {
    vec![
        ("slot B empty", Damage::One, |dw| write_slot(dw, 'b', b"")),
        ("slot B truncated", Damage::One, |dw| {
            let b = std::fs::read(dw.slot('b')).unwrap();
            write_slot(dw, 'b', &b[..b.len() / 2]);
        }),
        ("slot B random bytes, stale sidecar", Damage::One, |dw| {
            let n = std::fs::metadata(dw.slot('b')).unwrap().len() as usize;
            write_slot(dw, 'b', &bytes(7, n));
        }),
        ("slot B random bytes, matching sidecar", Damage::One, |dw| {
            write_slot(dw, 'b', &bytes(8, 40_000));
            trust(dw, 'b');
        }),
        (
            "slot B another program's SQLite database (no application_id)",
            Damage::One,
            |dw| {
                sqlite_slot(
                    dw,
                    'b',
                    "CREATE TABLE notes(x); INSERT INTO notes VALUES('mine');",
                );
                trust(dw, 'b');
            },
        ),
        (
            "slot B a Coffer catalog with user_version 99",
            Damage::One,
            |dw| {
                disk::edit_slot(&dw.slot('b'), &dw.sidecar('b'), "PRAGMA user_version = 99;");
            },
        ),
        (
            "slot B a valid header with corrupted pages",
            Damage::One,
            |dw| {
                let mut b = std::fs::read(dw.slot('b')).unwrap();
                let junk = bytes(9, b.len());
                b[4096..].copy_from_slice(&junk[4096..]);
                write_slot(dw, 'b', &b);
                trust(dw, 'b');
            },
        ),
        (
            "slot B the right application_id but no tables",
            Damage::One,
            |dw| {
                sqlite_slot(
                    dw,
                    'b',
                    "PRAGMA application_id = 1131374162; PRAGMA user_version = 2; \
                 CREATE TABLE t(x); DROP TABLE t;",
                );
                trust(dw, 'b');
            },
        ),
        ("sidecar B missing", Damage::One, |dw| {
            disk::remove(&dw.sidecar('b'))
        }),
        ("sidecar B garbage", Damage::One, |dw| {
            std::fs::write(dw.sidecar('b'), b"\x00\x01garbage{{{").unwrap();
        }),
        ("sidecar B sha256 mismatch", Damage::One, |dw| {
            edit_sidecar(dw, 'b', |v| {
                let s = v["sha256"].as_str().unwrap().to_string();
                let flipped = if s.starts_with('0') { "1" } else { "0" };
                v["sha256"] = json!(format!("{flipped}{}", &s[1..]));
            });
        }),
        ("sidecar B size mismatch", Damage::One, |dw| {
            edit_sidecar(dw, 'b', |v| {
                v["size"] = json!(v["size"].as_u64().unwrap() + 1)
            });
        }),
        ("sidecar B generation a string", Damage::One, |dw| {
            edit_sidecar(dw, 'b', |v| v["generation"] = json!("3"));
        }),
        ("sidecar B generation negative", Damage::One, |dw| {
            edit_sidecar(dw, 'b', |v| v["generation"] = json!(-3));
        }),
        (
            "sidecar B generation 2^64-1 (slot B valid)",
            Damage::One,
            |dw| {
                disk::rewrite_sidecar(&dw.slot('b'), &dw.sidecar('b'), json!(u64::MAX));
            },
        ),
        ("sidecar B of 10 MB", Damage::One, |dw| {
            std::fs::write(dw.sidecar('b'), vec![b'x'; 10 << 20]).unwrap();
        }),
        ("sidecar B a FIFO", Damage::One, |dw| {
            disk::remove(&dw.sidecar('b'));
            disk::mkfifo(&dw.sidecar('b'));
        }),
        ("slot B a FIFO", Damage::One, |dw| {
            disk::remove(&dw.slot('b'));
            disk::mkfifo(&dw.slot('b'));
        }),
        (
            "slot B a symlink to an outside catalog that says less, trusted sidecar",
            Damage::One,
            |dw| {
                let other = dw.outside.join("other-catalog.sqlite");
                std::fs::copy(dw.slot('b'), &other).unwrap();
                let side = dw.outside.join("other-catalog.json");
                disk::edit_slot(&other, &side, &forget_a(dw));
                disk::symlink(&other, &dw.slot('b'));
                trust(dw, 'b');
            },
        ),
        ("slot B a folder", Damage::One, |dw| {
            disk::remove(&dw.slot('b'));
            std::fs::create_dir(dw.slot('b')).unwrap();
            std::fs::write(dw.slot('b').join("inside"), "x").unwrap();
        }),
        (
            "a hostile catalog-b.sqlite-wal that deletes a file",
            Damage::One,
            |dw| {
                let wal = dw.coffer().join("catalog-b.sqlite-wal");
                disk::hostile_wal(&dw.slot('b'), &forget_a(dw), &wal);
            },
        ),
        ("a garbage catalog-b.sqlite-journal", Damage::One, |dw| {
            std::fs::write(
                dw.coffer().join("catalog-b.sqlite-journal"),
                bytes(10, 8192),
            )
            .unwrap();
        }),
        ("slot A (the older) random bytes", Damage::One, |dw| {
            let n = std::fs::metadata(dw.slot('a')).unwrap().len() as usize;
            write_slot(dw, 'a', &bytes(11, n));
        }),
        (
            "both slots damaged: A truncated, B random",
            Damage::Both,
            |dw| {
                let a = std::fs::read(dw.slot('a')).unwrap();
                write_slot(dw, 'a', &a[..100]);
                let n = std::fs::metadata(dw.slot('b')).unwrap().len() as usize;
                write_slot(dw, 'b', &bytes(12, n));
            },
        ),
        ("both sidecars missing", Damage::Both, |dw| {
            disk::remove(&dw.sidecar('a'));
            disk::remove(&dw.sidecar('b'));
        }),
        (
            "both damaged: B foreign with a trusted sidecar, sidecar A garbage",
            Damage::Both,
            |dw| {
                sqlite_slot(dw, 'b', "CREATE TABLE notes(x);");
                trust(dw, 'b');
                std::fs::write(dw.sidecar('a'), "garbage").unwrap();
            },
        ),
    ]
}

#[test]
fn damaged_or_foreign_catalog_slots_fall_back_or_fail_naming_the_slot() {
    let f = Findings::new("hostile disk: catalog slots");
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "issue 14 asks for at least 20 slot cases"
    );
    f.run_cases(
        &cases,
        |c| c.0.to_string(),
        6,
        |&(name, damage, tamper)| {
            let dw = DiskWorld::new(exe());
            dw.both_slots();
            tamper(&dw);
            let slot_a = format!("{}/catalog-a", dw.coffer().display());
            let slot_b = format!("{}/catalog-b", dw.coffer().display());
            // Restoring reads the disk: the slots and what lies beside them
            // must stay as they are.
            let coffer_files = Tree::of(&dw.coffer());
            let mut watched = Watched::of(&[&dw.outside]);
            let (run, dest) = dw.restore_elsewhere();
            let want = match damage {
                Damage::One => Expect::Ok,
                Damage::Both => Expect::FailsAll(vec![slot_a.clone(), slot_b.clone()]),
            };
            f.check(name, &run, &want);
            if !run.ok() {
                f.fail_all(name, "restore --from-disk", disk::kept(&dest));
            }
            if run.ok() {
                f.fail_all(
                    name,
                    "restore --from-disk exited 0 but",
                    dw.restored_wrong(&dest),
                );
            }
            f.fail_all(name, "restore --from-disk", watched.changes());
            let catalog_part = |t: &Tree| {
                t.nodes
                    .iter()
                    .filter(|(p, _)| !p.starts_with("objects") && !p.starts_with("tmp"))
                    .map(|(p, n)| (p.clone(), n.clone()))
                    .collect::<Vec<_>>()
            };
            let after = Tree::of(&dw.coffer());
            if catalog_part(&after) != catalog_part(&coffer_files) {
                f.fail_all(
                    name,
                    "restore --from-disk changed the disk",
                    after.changes_since(&coffer_files),
                );
            }
            // A sync onto the disk: works, or fails naming a slot.
            let runs = dw.play_after(
                &f,
                name,
                vec![(Cmd::Sync, Expect::OkOrFails(vec![slot_a, slot_b]))],
                &[&dw.outside],
                run.hung,
            );
            if runs.first().is_some_and(|r| r.ok()) {
                let (run, dest) = dw.restore_elsewhere();
                if !run.ok() {
                    f.fail(
                        name,
                        format!(
                            "the sync exited 0, yet the disk does not restore: {}",
                            run.describe()
                        ),
                    );
                } else {
                    f.fail_all(name, "restore after the sync", dw.restored_wrong(&dest));
                }
            }
        },
    );
    f.finish();
}
