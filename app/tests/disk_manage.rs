//! Looking after disks through the real binary: rename, quota, auto-sync,
//! forget (with what it costs) and eject; one figure of free space in
//! `coffer disks` and the sync's report; `whereis` before any verify; a
//! dry run that records nothing.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_tests::{World, both, bytes, code};
use common::{exe, json, ok};

fn setup(quota: Option<&str>) -> World {
    let w = World::new();
    for i in 0..5 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 40_000));
    }
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let d = w.plug("blue");
    let mut args = vec!["disk", "init", d.to_str().unwrap(), "--label", "Blue WD"];
    if let Some(q) = quota {
        args.extend(["--quota", q]);
    }
    ok(&w, &args);
    w
}

fn disk_json(w: &World, label: &str) -> serde_json::Value {
    let (c, v) = json(w, &["disks"]);
    assert_eq!(c, 0, "{v}");
    v["result"]["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["disk"]["label"] == label)
        .unwrap_or_else(|| panic!("no disk {label}: {v}"))
        .clone()
}

#[test]
fn disks_and_the_sync_report_give_the_same_free_space_under_a_quota() {
    let w = setup(Some("1M"));
    let (c, v) = json(&w, &["sync"]);
    assert_eq!(c, 0, "{v}");
    let room = v["result"]["disks"][0]["room_after"].as_u64().unwrap();
    let used = 5 * 40_000;
    assert_eq!(room, (1 << 20) - used, "the quota bounds the room");
    let d = disk_json(&w, "Blue WD");
    assert_eq!(d["disk"]["free"].as_u64(), Some(room), "{d}");
    // The text says the same figure.
    let text = ok(&w, &["disks"]);
    let shown = coffer_core::human::bytes(room);
    assert!(text.contains(&format!("{shown} free")), "{text}");
    // A quota change is written on the disk and counted at once.
    ok(&w, &["disk", "quota", "Blue WD", "500k"]);
    let d = disk_json(&w, "Blue WD");
    let q = coffer_core::human::parse_size("500k").unwrap();
    assert_eq!(d["disk"]["quota"].as_u64(), Some(q));
    assert_eq!(d["disk"]["free"].as_u64(), Some(q - used), "{d}");
    let (_, v) = json(&w, &["sync"]);
    assert_eq!(
        v["result"]["disks"][0]["room_after"].as_u64(),
        Some(q - used),
        "{v}"
    );
    ok(&w, &["disk", "quota", "Blue WD", "none"]);
    assert!(disk_json(&w, "Blue WD")["disk"]["quota"].is_null());
}

#[test]
fn a_dry_run_leaves_the_snapshots_alone() {
    let w = setup(None);
    ok(&w, &["sync"]);
    let count = |w: &World| {
        let (_, v) = json(w, &["snapshots"]);
        v["result"]["snapshots"].as_array().unwrap().len()
    };
    assert_eq!(count(&w), 1);
    w.write("docs/new.bin", bytes(99, 1000));
    let o = w.run(exe(), &["sync", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("copy 1 file"),
        "{}",
        both(&o)
    );
    assert_eq!(count(&w), 1, "a dry run records no snapshot");
    ok(&w, &["sync"]);
    assert_eq!(count(&w), 2);
}

#[test]
fn whereis_says_never_verified_until_a_verify_ran() {
    let w = setup(None);
    ok(&w, &["sync"]);
    let docs = w.home().join("docs");
    let text = ok(&w, &["whereis", docs.to_str().unwrap()]);
    assert!(text.contains("Blue WD: 5 files"), "{text}");
    assert!(text.contains("never verified"), "{text}");
    assert!(!text.contains("all verified"), "{text}");
    ok(&w, &["verify"]);
    let text = ok(&w, &["whereis", docs.to_str().unwrap()]);
    assert!(text.contains("all verified, oldest"), "{text}");
}

#[test]
fn a_disk_is_renamed_on_the_disk_itself_and_auto_sync_is_switched() {
    let w = setup(None);
    let text = ok(&w, &["disk", "rename", "blue wd", "Red Seagate"]);
    assert_eq!(text, "Disk \"Blue WD\" is now \"Red Seagate\"\n");
    let id = std::fs::read_to_string(w.mounts().join("blue/coffer-disk.json")).unwrap();
    assert!(id.contains("Red Seagate"), "{id}");
    assert_eq!(disk_json(&w, "Red Seagate")["connected"], true);
    // Syncs find it by its new name.
    ok(&w, &["sync", "Red Seagate"]);
    ok(&w, &["disk", "auto-sync", "Red Seagate", "on"]);
    assert_eq!(disk_json(&w, "Red Seagate")["disk"]["auto_sync"], true);
    ok(&w, &["disk", "auto-sync", "Red Seagate", "off"]);
    assert_eq!(disk_json(&w, "Red Seagate")["disk"]["auto_sync"], false);
    // A bad name is refused, and the disk keeps its own.
    let o = w.run(exe(), &["disk", "rename", "Red Seagate", "  "]);
    assert_eq!(code(&o), 1);
    assert!(
        both(&o).contains("a disk's name must be 1 to"),
        "{}",
        both(&o)
    );
    // Unplugged, it cannot be renamed: the name lives on the disk.
    w.unplug("blue");
    let o = w.run(exe(), &["disk", "rename", "Red Seagate", "Green"]);
    assert_eq!(code(&o), 1);
    assert!(
        both(&o).contains("is not connected: plug it in"),
        "{}",
        both(&o)
    );
    let o = w.run(exe(), &["disk", "rename", "Nope", "Green"]);
    assert!(
        both(&o).contains("no known disk is named \"Nope\" (known: Red Seagate)"),
        "{}",
        both(&o)
    );
}

#[test]
fn forgetting_a_lost_disk_says_what_it_costs_first() {
    let w = setup(None);
    ok(&w, &["sync"]);
    let o = w.run(exe(), &["disk", "forget", "Blue WD"]);
    assert_eq!(code(&o), 1);
    assert!(
        both(&o).contains("only a disk that is lost can be forgotten"),
        "{}",
        both(&o)
    );
    w.unplug("blue");
    let o = w.run(exe(), &["disk", "forget", "Blue WD"]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        both(&o).contains("5 files (200 kB) would have no copy left; run again with --yes"),
        "{}",
        both(&o)
    );
    assert_eq!(disk_json(&w, "Blue WD")["connected"], false);
    let text = ok(&w, &["disk", "forget", "Blue WD", "--yes"]);
    assert!(
        text.starts_with("Disk \"Blue WD\" is forgotten: 5 files"),
        "{text}"
    );
    let (_, v) = json(&w, &["disks"]);
    assert_eq!(v["result"]["disks"].as_array().unwrap().len(), 0, "{v}");
    let (_, v) = json(&w, &["status"]);
    assert!(v.to_string().contains("no copy on any disk"), "{v}");
}

#[test]
fn ejecting_a_folder_that_is_no_mount_says_so() {
    let w = setup(None);
    let o = w.run(exe(), &["disk", "eject", "Blue WD"]);
    assert_eq!(code(&o), 1);
    assert!(
        both(&o).contains("is a folder, not a disk mounted there: there is nothing to eject"),
        "{}",
        both(&o)
    );
}
