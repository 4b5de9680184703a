#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Hostile disks, part 2 (issue 14 items 3–6 and 8): a disk of another
//! backup set, text from a disk that would drive the terminal, catalog
//! paths that lead out of the destination, nonsense size limits, and a
//! slot generation at the top of its range.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use coffer_tests::hostile::disk::{self, Cmd, DiskWorld};
use coffer_tests::hostile::{Expect, Findings, Runner, Tree, Watched, fails, ok_or_fails};
use coffer_tests::{World, bytes};

fn exe() -> &'static Path {
    coffer_tests::hostile::binary(env!("CARGO_BIN_EXE_coffer"))
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

// ---------------------------------------------------------- another set

#[test]
fn a_disk_of_another_backup_set_is_never_written() {
    let f = Findings::new("hostile disk: another backup set");
    let cases: Vec<&str> = vec![
        "the disk's identity lists another set",
        "the disk was set up and synced by another computer",
    ];
    f.run_cases(
        &cases,
        |c| c.to_string(),
        2,
        |&case| {
            let dw = DiskWorld::new(exe());
            let (target, foreign) = if case.starts_with("the disk's identity") {
                dw.edit_identity(|v| v["sets"] = serde_json::json!([uuid::Uuid::new_v4()]));
                (dw.disk.clone(), None)
            } else {
                let other = World::new();
                other.write("papers/theirs.txt", "their file");
                let papers = other.home().join("papers");
                disk::setup_ok(&other, exe(), &["source", "add", papers.to_str().unwrap()]);
                let d2 = dw.w.plug("d2");
                let d2s = d2.to_str().unwrap();
                disk::setup_ok(&other, exe(), &["disk", "init", d2s, "--label", "Foreign"]);
                disk::setup_ok(&other, exe(), &["sync", d2s]);
                (d2, Some(other))
            };
            let t = target.to_str().unwrap();
            let mut watched = Watched::of(&[&target, &dw.outside]);
            let refused = fails(&["backup set", "Hostile", "Foreign"]);
            for args in [vec!["verify", t], vec!["sync", t], vec!["verify"]] {
                let run = Runner::new(&dw.w, exe()).run(&os(&args));
                let want = if args.len() == 1 {
                    Expect::Any
                } else {
                    refused.clone()
                };
                f.check(case, &run, &want);
                f.fail_all(
                    case,
                    &format!("`{}` changed the other set's disk", run.line),
                    watched.changes(),
                );
            }
            if let Some(other) = foreign {
                // Its own computer still restores its files from it.
                let dest = dw.new_dest();
                let run = Runner::new(&World::new(), exe()).run(&[
                    OsString::from("restore"),
                    "--from-disk".into(),
                    target.clone().into_os_string(),
                    "--to".into(),
                    dest.clone().into_os_string(),
                ]);
                f.check(case, &run, &Expect::Ok);
                let want =
                    BTreeMap::from([("papers/theirs.txt".to_string(), b"their file".to_vec())]);
                f.fail_all(
                    case,
                    "the other set's own restore",
                    disk::restored_wrong(&want, &dest),
                );
                drop(other);
            }
        },
    );
    f.finish();
}

// ------------------------------------------------------ terminal injection

const LABEL: &str = "Evil\u{1b}[2J\u{1b}[1;1H\nfake line: all your disks are fine";

/// Source names that would drive a terminal printed raw.
fn hostile_names() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "docs/esc\u{1b}[2J\u{1b}[1;1Hclear.txt",
            b"clears the screen".to_vec(),
        ),
        (
            "docs/nl\nfake line restored 0 files.txt",
            b"forges a line".to_vec(),
        ),
        ("docs/cr\rfake.txt", b"returns the carriage".to_vec()),
        ("docs/bell\u{7}.txt", b"rings".to_vec()),
        ("docs/plain.txt", b"plain".to_vec()),
    ]
}

#[test]
fn text_from_a_disk_never_reaches_the_terminal_raw() {
    let f = Findings::new("hostile disk: terminal injection");
    let cases = vec![
        "a disk label holding escape sequences and a newline",
        "source paths holding ESC, newline, CR and BEL, read back from the disk",
        "a disk folder named with ESC and a newline, its identity broken",
        "a NUL inside a path of the disk's catalog",
    ];
    f.run_cases(
        &cases,
        |c| c.to_string(),
        4,
        |&case| match cases.iter().position(|c| *c == case) {
            Some(0) => label(&f, case),
            Some(1) => paths(&f, case),
            Some(2) => folder_name(&f, case),
            _ => nul_path(&f, case),
        },
    );
    f.finish();
}

fn label(f: &Findings, case: &str) {
    let dw = DiskWorld::new(exe());
    dw.edit_identity(|v| v["label"] = LABEL.into());
    let steps = [
        Cmd::SyncAll,
        Cmd::Sync,
        Cmd::Verify,
        Cmd::Disks,
        Cmd::Status,
    ]
    .into_iter()
    .map(|c| (c, Expect::Any))
    .collect();
    dw.play(f, case, steps, &[&dw.outside]);
}

fn paths(f: &Findings, case: &str) {
    let dw = DiskWorld::with_files(exe(), &hostile_names());
    let docs = dw.w.home().join("docs");
    dw.add_file(
        "docs/title\u{1b}]0;owned\u{7}.txt",
        b"sets the window title",
    );
    let run = Runner::new(&dw.w, exe()).run(&os(&["sync"]));
    f.check(case, &run, &Expect::Ok);
    let mut files = dw.files.clone();
    files.insert(
        "docs/title\u{1b}]0;owned\u{7}.txt".into(),
        b"sets the window title".to_vec(),
    );
    let (run, dest) = dw.restore_elsewhere();
    f.check(case, &run, &Expect::Ok);
    f.fail_all(
        case,
        "restore --from-disk",
        disk::restored_wrong(&files, &dest),
    );
    let weird = docs.join("nl\nfake line restored 0 files.txt");
    let runs = [
        Runner::new(&dw.w, exe()).run(&[OsString::from("ls"), docs.clone().into_os_string()]),
        Runner::new(&dw.w, exe()).run(&os(&["ls"])),
        Runner::new(&dw.w, exe()).run(&os(&["find", "*"])),
        Runner::new(&dw.w, exe()).run(&[OsString::from("versions"), weird.into_os_string()]),
    ];
    for r in &runs {
        f.check(case, r, &Expect::Any);
    }
    // Again onto the same destination, each file changed there since: the
    // existing paths are listed, and the listing must be escaped too.
    for rel in files.keys() {
        let p = dest.join(rel);
        if p.exists() {
            std::fs::write(&p, "changed since").unwrap();
        }
    }
    let again = Runner::new(&World::new(), exe()).run(&[
        OsString::from("restore"),
        "--from-disk".into(),
        dw.disk.clone().into_os_string(),
        "--to".into(),
        dest.into_os_string(),
    ]);
    f.check(case, &again, &fails(&["clear.txt", "plain.txt"]));
}

fn folder_name(f: &Findings, case: &str) {
    let w = World::new();
    let d = w.plug("evil\u{1b}[2J\nfake line: disk ok");
    std::fs::write(d.join("coffer-disk.json"), "{\"format\": 1, \"disk_").unwrap();
    let dest = w.dir.path().join("dest");
    let id = ["coffer-disk.json"];
    let d = d.into_os_string();
    let runs = [
        (
            vec![OsString::from("disks")],
            Expect::Exit(3, vec![id[0].into()]),
        ),
        (vec!["sync".into(), d.clone()], fails(&id)),
        (vec!["verify".into(), d.clone()], fails(&id)),
        (
            vec![
                "restore".into(),
                "--from-disk".into(),
                d,
                "--to".into(),
                dest.into_os_string(),
            ],
            fails(&id),
        ),
    ];
    for (args, want) in runs {
        let run = Runner::new(&w, exe()).run(&args);
        f.check(case, &run, &want);
    }
}

/// Replaces the path `from` with `to` in the versions of both slots.
fn repath(dw: &DiskWorld, from: &Path, to: &[u8]) {
    let sql = format!(
        "UPDATE versions SET path = {} WHERE path = {};",
        disk::blob(to),
        disk::blob(from.as_os_str().as_encoded_bytes())
    );
    for x in ['a', 'b'] {
        disk::edit_slot(&dw.slot(x), &dw.sidecar(x), &sql);
    }
}

fn nul_path(f: &Findings, case: &str) {
    let dw = DiskWorld::new(exe());
    dw.both_slots();
    let a = dw.w.home().join("docs/a.txt");
    let mut to =
        dw.w.home()
            .join("docs/a")
            .into_os_string()
            .into_encoded_bytes();
    to.extend_from_slice(b"\0\x1b[2Jb.txt");
    repath(&dw, &a, &to);
    let mut watched = Watched::of(&[&dw.outside]);
    let (run, dest) = dw.restore_elsewhere();
    f.check(case, &run, &ok_or_fails(&["b.txt"]));
    f.fail_all(case, "restore --from-disk", watched.changes());
    if !run.ok() {
        f.fail_all(case, "restore --from-disk", disk::kept(&dest));
    }
    if run.ok() {
        let mut files = dw.files.clone();
        files.remove("docs/a.txt");
        f.fail_all(
            case,
            "restore --from-disk exited 0 but",
            disk::restored_wrong(&files, &dest),
        );
    }
}

// ------------------------------------------- catalog paths leading outside

#[test]
fn catalog_paths_from_a_disk_never_lead_outside_the_destination() {
    let f = Findings::new("hostile disk: catalog paths");
    let cases = vec![
        "a path of the disk's catalog climbs out with ..",
        "a path of the disk's catalog is absolute, outside the basepath",
    ];
    f.run_cases(
        &cases,
        |c| c.to_string(),
        2,
        |&case| {
            let dw = DiskWorld::new(exe());
            dw.both_slots();
            let a = dw.w.home().join("docs/a.txt");
            let to = if case.contains("..") {
                dw.w.home().join("docs/../../outside/escaped.txt")
            } else {
                dw.outside.join("abs-escaped.txt")
            };
            repath(&dw, &a, to.as_os_str().as_encoded_bytes());
            let mut watched = Watched::of(&[&dw.outside, &dw.w.home()]);
            let (run, dest) = dw.restore_elsewhere();
            f.check(case, &run, &ok_or_fails(&["escaped.txt"]));
            f.fail_all(case, "restore --from-disk", watched.changes());
            f.fail_all(case, "restore --from-disk", disk::kept(&dest));
            let under_dest = Tree::of(&dest)
                .nodes
                .keys()
                .any(|p| p.to_string_lossy().contains("escaped"));
            if run.ok() && !under_dest {
                f.note(format!("{case}: exit 0, the hostile path was left out"));
            }
        },
    );
    f.finish();
}

// ------------------------------------------------------------------ limits

#[test]
fn nonsense_size_limits_in_an_identity_are_refused_quickly() {
    let f = Findings::new("hostile disk: size limits");
    let cases: Vec<(&str, u64)> = vec![
        ("max_file_size 0", 0),
        ("max_file_size 1", 1),
        ("max_file_size 1000", 1000),
        ("max_file_size 63 MiB", 63 << 20),
        ("max_file_size 64 MiB (accepted)", 64 << 20),
    ];
    f.run_cases(
        &cases,
        |c| c.0.to_string(),
        5,
        |&(case, limit)| {
            let mut dw = DiskWorld::new(exe());
            dw.edit_identity(|v| v["max_file_size"] = limit.into());
            let big = bytes(77, 300_000);
            dw.add_file("docs/big.bin", &big);
            let mut watched = Watched::of(&[&dw.outside]);
            let quick = Runner::new(&dw.w, exe()).timeout(Duration::from_secs(5));
            let run = quick.run(&[OsString::from("sync"), dw.disk.clone().into_os_string()]);
            f.fail_all(case, "sync", watched.changes());
            if limit >= 64 << 20 {
                f.check(case, &run, &Expect::Ok);
                dw.files.insert("docs/big.bin".into(), big);
                let (run, dest) = dw.restore_elsewhere();
                f.check(case, &run, &Expect::Ok);
                f.fail_all(case, "restore --from-disk", dw.restored_wrong(&dest));
            } else {
                if run.hung {
                    f.fail(case, format!("not refused within 5 s; {}", run.describe()));
                } else {
                    f.check(case, &run, &fails(&["coffer-disk.json", "max_file_size"]));
                }
                for cmd in [Cmd::Verify, Cmd::Restore] {
                    let r = dw.run(cmd);
                    f.check(case, &r, &Expect::Any);
                }
            }
        },
    );
    f.finish();
}

// ------------------------------------------------------------- generations

#[test]
fn a_slot_generation_at_the_top_never_restores_an_old_snapshot() {
    let f = Findings::new("hostile disk: generation wrap");
    let cases = vec!["the older slot's generation is 2^64-1"];
    f.run_cases(
        &cases,
        |c| c.to_string(),
        1,
        |&case| {
            let mut dw = DiskWorld::new(exe());
            dw.add_file("docs/a.txt", b"alpha, second version\n");
            disk::setup_ok(&dw.w, exe(), &["sync"]);
            dw.files
                .insert("docs/a.txt".into(), b"alpha, second version\n".to_vec());
            let (ga, gb) = (
                disk::sidecar_generation(&dw.sidecar('a')),
                disk::sidecar_generation(&dw.sidecar('b')),
            );
            assert_eq!(
                (ga, gb),
                (Some(3), Some(2)),
                "a first sync writes both slots (1, 2), the next the older (a, 3)"
            );
            disk::rewrite_sidecar(&dw.slot('b'), &dw.sidecar('b'), u64::MAX.into());
            // A change, so the next sync writes a catalog slot (an unchanged
            // disk takes the up-to-date path and writes none).
            dw.add_file("docs/a.txt", b"alpha, third version\n");
            let named = ok_or_fails(&["catalog-b", "generation"]);
            let run = dw.run(Cmd::SyncAll);
            f.check(case, &run, &named);
            if run.ok() {
                dw.files
                    .insert("docs/a.txt".into(), b"alpha, third version\n".to_vec());
            }
            let (run, dest) = dw.restore_elsewhere();
            f.check(case, &run, &named);
            if run.ok() {
                f.fail_all(
                    case,
                    "restore --from-disk exited 0 but (the old snapshot?)",
                    dw.restored_wrong(&dest),
                );
            }
        },
    );
    f.finish();
}
