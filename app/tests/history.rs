//! The history of jobs through the real binary: every job that changes
//! something is recorded with its front end, disks, counts and outcome; a
//! dry run is not; a failed job says why.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_tests::{World, bytes};
use common::{json, ok};

fn setup() -> World {
    let w = World::new();
    for i in 0..5 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 4000));
    }
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let d = w.plug("blue");
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Blue WD"],
    );
    w
}

#[test]
fn syncs_verifies_and_failures_are_listed_newest_first_and_dry_runs_are_not() {
    let w = setup();
    let (_, v) = json(&w, &["history"]);
    assert_eq!(v["result"]["jobs"].as_array().unwrap().len(), 0, "{v}");
    ok(&w, &["sync"]);
    ok(&w, &["sync", "--dry-run"]);
    ok(&w, &["verify"]);
    ok(&w, &["hook", "before", "exit 3"]);
    let o = w.run(common::exe(), &["sync"]);
    assert_eq!(coffer_tests::code(&o), 1);
    let (c, v) = json(&w, &["history"]);
    assert_eq!(c, 0, "{v}");
    let jobs = v["result"]["jobs"].as_array().unwrap();
    let kinds: Vec<&str> = jobs.iter().map(|j| j["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["sync", "verify", "sync"],
        "the dry run is not recorded: {v}"
    );
    let failed = &jobs[0];
    assert_eq!(failed["outcome"], "failed");
    assert!(
        failed["summary"]
            .as_str()
            .unwrap()
            .contains("the command before the sync"),
        "{failed}"
    );
    let synced = &jobs[2];
    assert_eq!(synced["outcome"], "completed");
    assert_eq!(synced["front_end"], "cli");
    assert_eq!(synced["files"], 5);
    assert_eq!(synced["bytes"], 20_000);
    assert_eq!(synced["disks"][0]["label"], "Blue WD");
    assert!(synced["finished_at"].as_i64().unwrap() >= synced["started_at"].as_i64().unwrap());
    assert_eq!(
        jobs[1]["summary"],
        "Blue WD: checked 5 copies (20 kB): all good"
    );
    // The text names what ran, where from, and how it ended.
    let text = ok(&w, &["history"]);
    assert!(
        text.contains("Sync failed on Blue WD, from the command line"),
        "{text}"
    );
    assert!(
        text.contains("Verify done on Blue WD, from the command line"),
        "{text}"
    );
}

#[test]
fn restores_and_archives_are_recorded_too() {
    let w = setup();
    ok(&w, &["sync"]);
    let out = w.dir.path().join("out");
    ok(&w, &["restore", "--to", out.to_str().unwrap()]);
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    ok(&w, &["archive", "full", "--to", nas.to_str().unwrap()]);
    let (_, v) = json(&w, &["history"]);
    let jobs = v["result"]["jobs"].as_array().unwrap();
    let kinds: Vec<&str> = jobs.iter().map(|j| j["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["archive", "restore", "sync"], "{v}");
    assert_eq!(jobs[1]["files"], 5);
    assert_eq!(jobs[1]["outcome"], "completed");
}
