#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Hostile disks, part 1 (issue 14 items 1 and 2): symlinks inside a disk's
//! `coffer/` folder and special files where Coffer expects its own files.
//!
//! Each case starts from a real disk synced by the real binary, tampers
//! with it, and runs the commands that apply under a timeout and an
//! address-space cap. Nothing outside the disk may change (a sentinel
//! folder, and every symlink target, are hashed around each command), the
//! workstation catalog must stay intact, and each command must fail naming
//! the path at fault, or (for an object) treat the object as bad or missing.

use std::path::Path;

use coffer_tests::hostile::disk::{self, Cmd, DiskWorld};
use coffer_tests::hostile::{Expect, Findings, fails, ok_or_fails};

fn exe() -> &'static Path {
    coffer_tests::hostile::binary(env!("CARGO_BIN_EXE_coffer"))
}

/// Needles that mean "the message names the `coffer` folder itself" (not
/// just some path below it, nor `coffer-disk.json`).
fn coffer_folder() -> Vec<String> {
    [":", " ", "\"", "'", "`", ")", ",", ";", "\n"]
        .iter()
        .map(|end| format!("d1/coffer{end}"))
        .collect()
}

/// One case: a name, whether it needs root, and the tampering, which
/// returns the commands to run and what each must do.
struct Case {
    name: &'static str,
    root_only: bool,
    tamper: fn(&DiskWorld) -> Vec<(Cmd, Expect)>,
}

/// The short hex of the object holding `content`, as messages may name it.
fn hex12(dw: &DiskWorld, content: &[u8]) -> String {
    dw.object_of(content)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(12)
        .collect()
}

/// The object of `docs/b.bin`, and what names it in a message.
fn b_object(dw: &DiskWorld) -> (std::path::PathBuf, Vec<String>) {
    let content = dw.files["docs/b.bin"].clone();
    let path = dw.object_of(&content);
    assert!(
        path.exists(),
        "no object for docs/b.bin at {}",
        path.display()
    );
    (path, vec!["b.bin".into(), hex12(dw, &content)])
}

/// Bad or missing: what verify reports for a damaged object.
fn bad_or_missing(mut n: Vec<String>) -> Expect {
    n.extend(["bad".into(), "missing".into()]);
    Expect::Fails(n)
}

fn symlink_cases() -> Vec<Case> {
    vec![
        Case {
            name: "coffer/tmp is a symlink to an outside folder with files",
            root_only: false,
            tamper: |dw| {
                let victim = dw.outside.join("victim-tmp");
                std::fs::create_dir_all(&victim).unwrap();
                std::fs::write(victim.join("mine.txt"), "mine").unwrap();
                std::fs::write(victim.join("also.txt"), "also mine").unwrap();
                disk::symlink(&victim, &dw.coffer().join("tmp"));
                dw.add_file("docs/new.txt", b"new content for the next sync");
                vec![
                    (Cmd::Restore, ok_or_fails(&["coffer/tmp"])),
                    (Cmd::SyncAll, fails(&["coffer/tmp"])),
                    (Cmd::Sync, fails(&["coffer/tmp"])),
                    (Cmd::Verify, ok_or_fails(&["coffer/tmp"])),
                ]
            },
        },
        Case {
            name: "coffer/objects is a symlink to an outside folder",
            root_only: false,
            tamper: |dw| {
                let victim = dw.outside.join("victim-objects");
                std::fs::create_dir_all(&victim).unwrap();
                std::fs::write(victim.join("unrelated.txt"), "unrelated").unwrap();
                disk::symlink(&victim, &dw.coffer().join("objects"));
                dw.add_file("docs/new.txt", b"new content for the next sync");
                vec![
                    (
                        Cmd::Restore,
                        fails(&["coffer/objects", "missing", "not on"]),
                    ),
                    (Cmd::Verify, fails(&["coffer/objects"])),
                    (Cmd::Sync, fails(&["coffer/objects"])),
                    (Cmd::SyncAll, fails(&["coffer/objects"])),
                ]
            },
        },
        Case {
            name: "a fan-out folder coffer/objects/XX is a symlink to an outside folder",
            root_only: false,
            tamper: |dw| {
                let (obj, mut n) = b_object(dw);
                let fan = obj.parent().unwrap().to_path_buf();
                let victim = dw.outside.join("victim-fanout");
                std::fs::rename(&fan, &victim).unwrap();
                disk::symlink(&victim, &fan);
                n.push(format!(
                    "objects/{}",
                    fan.file_name().unwrap().to_string_lossy()
                ));
                vec![
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Verify, bad_or_missing(n.clone())),
                    (Cmd::Sync, Expect::OkOrFails(n)),
                ]
            },
        },
        Case {
            name: "an object file is a symlink to an outside file with its bytes",
            root_only: false,
            tamper: |dw| {
                let (obj, n) = b_object(dw);
                let victim = dw.outside.join("victim-object");
                std::fs::rename(&obj, &victim).unwrap();
                disk::symlink(&victim, &obj);
                vec![
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Verify, bad_or_missing(n.clone())),
                    (Cmd::Sync, Expect::OkOrFails(n)),
                ]
            },
        },
        Case {
            name: "coffer/catalog-b.sqlite (the next slot written) is a symlink to an outside file",
            root_only: false,
            tamper: |dw| {
                let victim = dw.outside.join("victim-slot");
                std::fs::write(&victim, "precious, not a catalog").unwrap();
                disk::symlink(&victim, &dw.slot('b'));
                dw.add_file("docs/new.txt", b"new content for the next sync");
                vec![
                    (Cmd::Restore, ok_or_fails(&["catalog-b.sqlite"])),
                    (Cmd::Sync, fails(&["catalog-b.sqlite"])),
                    (Cmd::Verify, fails(&["catalog-b.sqlite"])),
                ]
            },
        },
        Case {
            name: "coffer/catalog-b.sqlite is a symlink to the workstation catalog",
            root_only: false,
            tamper: |dw| {
                disk::symlink(&dw.catalog(), &dw.slot('b'));
                dw.add_file("docs/new.txt", b"new content for the next sync");
                vec![
                    (Cmd::Restore, ok_or_fails(&["catalog-b.sqlite"])),
                    (Cmd::Sync, fails(&["catalog-b.sqlite"])),
                    (Cmd::Verify, fails(&["catalog-b.sqlite"])),
                    (Cmd::Status, Expect::Ok),
                ]
            },
        },
        Case {
            name: "coffer/catalog-a.json (a sidecar) is a symlink to an outside copy",
            root_only: false,
            tamper: |dw| {
                let victim = dw.outside.join("victim-sidecar.json");
                std::fs::copy(dw.sidecar('a'), &victim).unwrap();
                disk::symlink(&victim, &dw.sidecar('a'));
                dw.add_file("docs/new.txt", b"new content for the next sync");
                vec![
                    (Cmd::Restore, ok_or_fails(&["catalog-a.json"])),
                    (Cmd::Sync, fails(&["catalog-a.json"])),
                    (Cmd::Verify, fails(&["catalog-a.json"])),
                ]
            },
        },
        Case {
            name: "coffer/lock is a dangling symlink to an outside path",
            root_only: false,
            tamper: |dw| {
                disk::symlink(&dw.outside.join("victim-lock"), &dw.coffer().join("lock"));
                dw.add_file("docs/new.txt", b"new content for the next sync");
                vec![
                    (Cmd::Restore, ok_or_fails(&["coffer/lock"])),
                    (Cmd::Sync, fails(&["coffer/lock"])),
                    (Cmd::Verify, fails(&["coffer/lock"])),
                ]
            },
        },
        Case {
            name: "coffer/bad-objects is a symlink to an outside folder, and an object is corrupt",
            root_only: false,
            tamper: |dw| {
                let victim = dw.outside.join("victim-bad");
                std::fs::create_dir_all(&victim).unwrap();
                std::fs::write(victim.join("unrelated.txt"), "unrelated").unwrap();
                disk::symlink(&victim, &dw.coffer().join("bad-objects"));
                let (obj, mut n) = b_object(dw);
                let len = std::fs::metadata(&obj).unwrap().len() as usize;
                std::fs::write(&obj, coffer_tests::bytes(4242, len)).unwrap();
                n.push("coffer/bad-objects".into());
                vec![
                    (Cmd::Verify, fails(&["coffer/bad-objects"])),
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Sync, Expect::OkOrFails(n)),
                ]
            },
        },
        Case {
            name: "the disk's coffer folder itself is a symlink to an outside folder",
            root_only: false,
            tamper: |dw| {
                let victim = dw.outside.join("victim-coffer");
                std::fs::rename(dw.coffer(), &victim).unwrap();
                disk::symlink(&victim, &dw.coffer());
                dw.add_file("docs/new.txt", b"new content for the next sync");
                let n = coffer_folder();
                vec![
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Verify, Expect::Fails(n.clone())),
                    (Cmd::Sync, Expect::Fails(n.clone())),
                    (Cmd::SyncAll, Expect::Fails(n)),
                ]
            },
        },
    ]
}

/// What every command must do when `coffer-disk.json` is not a file.
fn unreadable_identity() -> Vec<(Cmd, Expect)> {
    let id = "coffer-disk.json";
    vec![
        (Cmd::Disks, Expect::Exit(3, vec![id.into()])),
        (Cmd::Sync, fails(&[id])),
        (Cmd::Verify, fails(&[id])),
        (Cmd::Restore, fails(&[id])),
        (Cmd::SyncAll, fails(&[])),
        (Cmd::Status, Expect::Any),
    ]
}

/// What a special file at slot B (the newest after sync and verify) or its
/// sidecar must give: restore works from slot A (or fails naming it), the
/// writers refuse naming it.
fn special_at_slot_b(name: &str) -> Vec<(Cmd, Expect)> {
    vec![
        (Cmd::Restore, ok_or_fails(&[name])),
        (Cmd::Sync, fails(&[name])),
        (Cmd::Verify, fails(&[name])),
    ]
}

fn special_cases() -> Vec<Case> {
    vec![
        Case {
            name: "coffer-disk.json is a FIFO",
            root_only: false,
            tamper: |dw| {
                disk::remove(&dw.identity());
                disk::mkfifo(&dw.identity());
                unreadable_identity()
            },
        },
        Case {
            name: "coffer-disk.json is a Unix socket",
            root_only: false,
            tamper: |dw| {
                disk::remove(&dw.identity());
                disk::socket(&dw.identity());
                unreadable_identity()
            },
        },
        Case {
            name: "coffer-disk.json is a character device like /dev/zero",
            root_only: true,
            tamper: |dw| {
                disk::remove(&dw.identity());
                disk::mknod_zero(&dw.identity());
                unreadable_identity()
            },
        },
        Case {
            name: "catalog slot B is a FIFO",
            root_only: false,
            tamper: |dw| {
                dw.both_slots();
                disk::remove(&dw.slot('b'));
                disk::mkfifo(&dw.slot('b'));
                special_at_slot_b("catalog-b.sqlite")
            },
        },
        Case {
            name: "the sidecar of slot B is a FIFO",
            root_only: false,
            tamper: |dw| {
                dw.both_slots();
                disk::remove(&dw.sidecar('b'));
                disk::mkfifo(&dw.sidecar('b'));
                special_at_slot_b("catalog-b.json")
            },
        },
        Case {
            name: "catalog slot B is a character device like /dev/zero",
            root_only: true,
            tamper: |dw| {
                dw.both_slots();
                disk::remove(&dw.slot('b'));
                disk::mknod_zero(&dw.slot('b'));
                special_at_slot_b("catalog-b.sqlite")
            },
        },
        Case {
            name: "an object file is a FIFO",
            root_only: false,
            tamper: |dw| {
                let (obj, n) = b_object(dw);
                disk::remove(&obj);
                disk::mkfifo(&obj);
                vec![
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Verify, bad_or_missing(n.clone())),
                    (Cmd::Sync, Expect::OkOrFails(n)),
                ]
            },
        },
        Case {
            name: "an object file is a character device like /dev/zero",
            root_only: true,
            tamper: |dw| {
                let (obj, n) = b_object(dw);
                disk::remove(&obj);
                disk::mknod_zero(&obj);
                vec![
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Verify, bad_or_missing(n.clone())),
                    (Cmd::Sync, Expect::OkOrFails(n)),
                ]
            },
        },
        Case {
            name: "a folder stands where an object file should be",
            root_only: false,
            tamper: |dw| {
                let (obj, n) = b_object(dw);
                disk::remove(&obj);
                std::fs::create_dir_all(&obj).unwrap();
                std::fs::write(obj.join("inside"), "not an object").unwrap();
                vec![
                    (Cmd::Restore, Expect::Fails(n.clone())),
                    (Cmd::Verify, bad_or_missing(n.clone())),
                    (Cmd::Sync, Expect::OkOrFails(n)),
                ]
            },
        },
    ]
}

/// Runs a table: each case on a fresh synced world, the sentinel folder
/// (which holds every symlink target) watched around each command.
fn run_table(group: &str, cases: Vec<Case>) {
    let f = Findings::new(group);
    let root = disk::is_root();
    // Hung commands use no CPU, so one worker per case keeps the table
    // short even when several cases hang until the timeout.
    let workers = cases.len();
    f.run_cases(
        &cases,
        |c| c.name.to_string(),
        workers,
        |c| {
            if c.root_only && !root {
                f.note(format!("skipped (needs root): {}", c.name));
                return;
            }
            let dw = DiskWorld::new(exe());
            let steps = (c.tamper)(&dw);
            dw.play(&f, c.name, steps, &[&dw.outside]);
        },
    );
    f.finish();
}

#[test]
fn symlinks_inside_the_coffer_folder_are_never_followed() {
    run_table("hostile disk: symlinks", symlink_cases());
}

#[test]
fn special_files_where_coffer_expects_its_own_never_hang_or_exhaust_memory() {
    run_table("hostile disk: special files", special_cases());
}

/// The harness itself: an untampered disk passes every check under the
/// same cap and timeout, or the cases above prove nothing.
#[test]
fn an_untampered_disk_passes_every_check() {
    let f = Findings::new("hostile disk: control");
    f.case();
    let dw = DiskWorld::new(exe());
    dw.both_slots();
    dw.add_file("docs/new.txt", b"new content for the next sync");
    let steps = vec![
        (Cmd::Restore, Expect::Ok),
        (Cmd::Disks, Expect::Ok),
        (Cmd::Status, Expect::Ok),
        (Cmd::Verify, Expect::Ok),
        (Cmd::Sync, Expect::Ok),
        (Cmd::SyncAll, Expect::Ok),
    ];
    dw.play(&f, "an untampered disk", steps, &[&dw.outside]);
    f.finish();
}
