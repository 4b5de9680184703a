#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Around a disk sync: the profile's command before (a failure stops the
//! sync), its command after (always runs, told the outcome), its dump
//! commands (their output goes through the disk and back, with the command
//! that loads it), and a dry run that records nothing.

use std::path::Path;

use coffer_tests::{World, both, bytes, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");

fn run(w: &World, args: &[&str]) -> std::process::Output {
    w.run(Path::new(EXE), args)
}

fn ok(w: &World, args: &[&str]) -> String {
    let o = run(w, args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn world() -> (World, std::path::PathBuf) {
    let w = World::new();
    for i in 0..5u64 {
        w.write(&format!("Docs/f{i}"), bytes(i, 3000));
    }
    ok(
        &w,
        &["source", "add", w.home().join("Docs").to_str().unwrap()],
    );
    let d = w.plug("disk");
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Hooked"],
    );
    (w, d)
}

fn objects(d: &Path) -> usize {
    walk(&d.join("coffer/objects"))
}

fn walk(p: &Path) -> usize {
    std::fs::read_dir(p).map_or(0, |rd| {
        rd.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

fn snapshots(w: &World) -> usize {
    let v: serde_json::Value =
        serde_json::from_slice(&run(w, &["--json", "snapshots"]).stdout).unwrap();
    v["result"]["snapshots"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_failing_command_before_stops_the_sync_and_the_one_after_still_runs() {
    let (w, d) = world();
    let marks = w.dir.path().join("marks");
    let after = format!(
        "echo \"$COFFER_PHASE $COFFER_RESULT\" >> {}",
        marks.display()
    );
    ok(&w, &["hook", "before", "echo quiescing failed >&2; exit 7"]);
    ok(&w, &["hook", "after", &after]);
    let o = run(&w, &["sync"]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("command before the sync")
            && text.contains("exit 7")
            && text.contains("quiescing failed"),
        "{text}"
    );
    assert_eq!(objects(&d), 0, "something was synced");
    assert_eq!(snapshots(&w), 0, "something was scanned");
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), "after failed\n");

    // A command before that succeeds: the sync runs, and the one after is
    // told so.
    let before = format!("echo before >> {}", marks.display());
    ok(&w, &["hook", "before", &before]);
    ok(&w, &["sync"]);
    assert_eq!(objects(&d), 5);
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        "after failed\nbefore\nafter ok\n"
    );
    let shown = ok(&w, &["hook", "show"]);
    assert!(shown.contains("echo before"), "{shown}");
    ok(&w, &["hook", "clear"]);
    assert!(ok(&w, &["hook", "show"]).contains("(none)"));
}

#[test]
fn a_dump_goes_through_the_disk_and_back_with_its_load_command() {
    let (w, d) = world();
    ok(
        &w,
        &[
            "dump",
            "add",
            "notes",
            "--command",
            "printf 'row 1\\nrow 2\\n'",
            "--load",
            "psql notes",
        ],
    );
    ok(&w, &["sync"]);
    // The dump is a file of the snapshot, on the disk like any other.
    assert_eq!(objects(&d), 6);
    // On a new computer, from the disk alone.
    let config = w.config_dir();
    let data = w.data_dir();
    std::fs::remove_dir_all(&config).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let out = w.dir.path().join("back");
    let text = ok(
        &w,
        &[
            "restore",
            "--from-disk",
            d.to_str().unwrap(),
            "--dumps",
            "--to",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes")).unwrap(),
        "row 1\nrow 2\n"
    );
    assert!(
        text.contains("Dump \"notes\" restored")
            && text.contains("load it back with: psql notes <"),
        "{text}"
    );
}

#[test]
fn a_failing_dump_stops_the_sync_naming_it() {
    let (w, d) = world();
    ok(
        &w,
        &[
            "dump",
            "add",
            "db",
            "--command",
            "echo no server >&2; exit 2",
        ],
    );
    let o = run(&w, &["sync"]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        both(&o).contains("dump \"db\"") && both(&o).contains("no server"),
        "{}",
        both(&o)
    );
    assert_eq!(objects(&d), 0);
}

#[test]
fn a_dry_run_records_no_snapshot_and_writes_nothing() {
    let (w, d) = world();
    let text = ok(&w, &["sync", "--dry-run"]);
    assert!(text.contains("copy 5 files"), "{text}");
    assert_eq!(snapshots(&w), 0);
    assert_eq!(objects(&d), 0);
    ok(&w, &["sync"]);
    w.write("Docs/new", bytes(99, 100));
    ok(&w, &["sync", "--dry-run"]);
    assert_eq!(snapshots(&w), 1);
    assert_eq!(objects(&d), 5);
}
