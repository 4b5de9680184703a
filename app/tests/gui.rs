//! The real window, driven by role and label with egui_kittest over a temp
//! world (catalog, config, a test mount root); no display needed: sources,
//! syncs (and cancelling them), a disk to initialise, the log window. The
//! Restore tab is in `gui_restore.rs`, the Archives tab in `gui_archives.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::gui::{
    click, config, disk_in_drawer, enabled, harness, has_label, has_label_containing, paths,
    step_until, wait_for_message,
};

use coffer::gui::{CofferApp, Purpose};
use coffer_core::config::Config;
use coffer_tests::World;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// A source of `files` small files and a plugged disk "Red" of its set,
/// with the window showing the disk's card.
fn world_to_sync(files: u64) -> (World, Harness<'static, CofferApp>) {
    let w = World::new();
    let cfg = config(&w, &["big"]);
    for i in 0..files {
        w.write(
            &format!("big/d{}/f{i}.bin", i % 100),
            coffer_tests::bytes(i, 512),
        );
    }
    let disk = disk_in_drawer(&w, &cfg, "red", "Red", None);
    std::fs::rename(&disk, w.mounts().join("red")).unwrap();
    let mut h = harness(&w);
    step_until(&mut h, "the disk card", |h| has_label(h, "Sync Red"));
    (w, h)
}

/// Waits, without drawing a frame, until every job thread has ended.
fn wait_for_jobs_to_end(h: &Harness<'_, CofferApp>) {
    let start = Instant::now();
    while !h.state().jobs_ended() {
        assert!(start.elapsed() < Duration::from_secs(60), "a job is stuck");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn adds_a_source_with_the_in_app_picker() {
    let w = World::new();
    config(&w, &[]);
    std::fs::create_dir_all(w.home().join("Documents")).unwrap();
    // The folder chooser's icons are drawn from the emoji fonts, none missing.
    let mut h = harness(&w);
    h.step();
    click(&mut h, "Sources");
    click(&mut h, "Add folder…");
    step_until(&mut h, "the folder picker", |h| has_label(h, "🗀 Documents"));
    // Choosing a folder asks for no file name.
    assert!(has_label(&h, "Folder:") && !has_label(&h, "File:"));
    assert!(!has_label(&h, "Rename"));
    click(&mut h, "🗀 Documents");
    click(&mut h, "Open");
    step_until(&mut h, "the source row", |h| {
        has_label(
            h,
            &format!("Remove {}", w.home().join("Documents").display()),
        )
    });
    let saved = Config::load_or_default(&paths(&w)).unwrap();
    assert_eq!(saved.profile.sources.len(), 1);
    assert_eq!(saved.profile.sources[0].path, w.home().join("Documents"));
}

#[test]
fn a_source_outside_the_basepath_is_refused_with_the_reason() {
    let w = World::new();
    config(&w, &[]);
    let mut h = harness(&w);
    h.step();
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::Source,
        w.dir.path().join("data"),
    ));
    h.step();
    click(&mut h, "Sources");
    assert!(
        has_label_containing(&h, "basepath"),
        "the refusal names the basepath"
    );
    assert!(
        Config::load_or_default(&paths(&w))
            .unwrap()
            .profile
            .sources
            .is_empty()
    );
}

#[test]
fn a_plugged_disk_appears_syncs_and_the_map_shows_one_copy() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    w.write("docs/sub/b.txt", "world");
    let disk = disk_in_drawer(&w, &cfg, "blue", "Blue", None);
    let mut h = harness(&w);
    h.step();
    assert!(!has_label(&h, "Sync Blue"));
    std::fs::rename(&disk, w.mounts().join("blue")).unwrap();
    step_until(&mut h, "the disk card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    step_until(&mut h, "the sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    let m = h.state().message().unwrap().clone();
    assert!(m.title.starts_with("Sync of Blue done"), "{m:?}");
    assert!(m.details.is_empty(), "{m:?}");
    click(&mut h, "Redundancy map");
    assert!(
        has_label(&h, "2 files: 2 with 1 copy (2 wanted)"),
        "the map shows one copy of each file"
    );
    // Columns say what each is, and which disks hold it.
    for header in ["Folder or file", "Size", "Copies", "On disks"] {
        assert!(has_label(&h, header), "{header}");
    }
    assert!(has_label(&h, "Blue (2 files)"), "the source's disks");
    // Drill down into the source.
    click(&mut h, &w.home().join("docs").display().to_string());
    assert!(has_label(&h, "sub"));
    assert!(has_label(&h, "a.txt"));
    // A folder that holds only files opens too.
    click(&mut h, "sub");
    assert!(has_label(&h, "b.txt"), "inside the folder of files");
    assert!(has_label(&h, "Up one folder"));
}

#[test]
fn a_sync_can_be_cancelled() {
    // Many small files: the job checks for cancel between files, so this
    // leaves plenty of places for the cancel to land.
    let (w, mut h) = world_to_sync(20_000);
    click(&mut h, "Sync Red");
    // Cancel as soon as the job runs: scanning and hashing 20,000 files takes
    // far longer than one frame, so the cancel always lands before the end
    // (waiting for the copy phase to show raced with fast machines).
    step_until(&mut h, "the sync to start", |h| {
        h.state().busy() && has_label(h, "Cancel")
    });
    // Through AccessKit: the panel grows as progress arrives, so a pointer
    // click at last frame's position could miss.
    h.get_by_label("Cancel").click_accesskit();
    step_until(&mut h, "the sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    let m = h.state().message().unwrap();
    assert_eq!(m.title, "Sync cancelled", "{m:?}");
    assert!(!m.ok);
    // Mid-way: the disk holds fewer objects than there are files.
    let cat = coffer_core::Catalog::open(&paths(&w).catalog_file()).unwrap();
    let id = coffer_core::disk::read_identity(&w.mounts().join("red"))
        .unwrap()
        .disk_id;
    assert!(cat.copies_on(id).unwrap().len() < 20_000);
}

#[test]
fn a_cancel_while_planning_stops_the_sync_before_its_scan() {
    let (w, mut h) = world_to_sync(200);
    // The plan waits on the catalog's write lock, so it is still planning
    // when Cancel is pressed.
    let lock = coffer_tests::hold_write_lock(&paths(&w).catalog_file());
    click(&mut h, "Sync Red");
    step_until(&mut h, "the plan to run", |h| has_label(h, "— Planning"));
    click(&mut h, "Cancel");
    drop(lock);
    step_until(&mut h, "the sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    let m = h.state().message().unwrap();
    assert_eq!(m.title, "Sync cancelled", "{m:?}");
    // The chain stopped before its scan: the catalog holds no snapshot.
    let cat = coffer_core::Catalog::open(&paths(&w).catalog_file()).unwrap();
    assert!(cat.latest_snapshot().unwrap().is_none());
}

/// The plan hands its disk over to the scan and sync between two frames,
/// and the title and phase shown before Cancel change then. A click on the
/// button as last drawn must still cancel.

#[test]
fn a_cancel_at_the_hand_over_from_plan_to_sync_is_not_lost() {
    let (w, mut h) = world_to_sync(2_000);
    let lock = coffer_tests::hold_write_lock(&paths(&w).catalog_file());
    click(&mut h, "Sync Red");
    step_until(&mut h, "the plan to run", |h| has_label(h, "— Planning"));
    // Let the plan end, but draw no frame: the click below is aimed at the
    // planning frame's Cancel, and the frame that takes it starts the sync.
    drop(lock);
    wait_for_jobs_to_end(&h);
    h.get_by_label("Cancel").click();
    step_until(&mut h, "the sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    let m = h.state().message().unwrap();
    assert_eq!(m.title, "Sync cancelled", "{m:?}");
    let id = coffer_core::disk::read_identity(&w.mounts().join("red"))
        .unwrap()
        .disk_id;
    let cat = coffer_core::Catalog::open(&paths(&w).catalog_file()).unwrap();
    assert!(cat.copies_on(id).unwrap().is_empty());
    coffer_tests::assert_store_consistent(&w.mounts().join("red"));
}

#[test]
fn a_cancel_while_the_plan_waits_for_sync_anyway_ends_the_sync() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let old = coffer_tests::bytes(1, 60_000);
    w.write("docs/a.bin", &old);
    // Room for one version of the file, not two.
    let disk = disk_in_drawer(&w, &cfg, "red", "Red", Some(100_000));
    std::fs::rename(&disk, w.mounts().join("red")).unwrap();
    let mut h = harness(&w);
    step_until(&mut h, "the disk card", |h| has_label(h, "Sync Red"));
    click(&mut h, "Sync Red");
    step_until(&mut h, "the first sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    assert!(h.state().message().unwrap().ok);
    // A new version, scanned: syncing it means evicting the old one, so the
    // plan asks first.
    let new = coffer_tests::bytes(2, 60_000);
    w.write("docs/a.bin", &new);
    let mut cat = coffer_core::Catalog::open(&paths(&w).catalog_file()).unwrap();
    coffer_core::scan::scan(&mut cat, &cfg.profile, &coffer_core::Progress::silent()).unwrap();
    drop(cat);
    click(&mut h, "Sync Red");
    step_until(&mut h, "the plan's question", |h| {
        has_label(h, "Sync anyway")
    });
    h.get_by_label("Cancel").click_accesskit();
    step_until(&mut h, "the sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    let m = h.state().message().unwrap();
    assert_eq!(m.title, "Sync cancelled", "{m:?}");
    h.step();
    assert!(!has_label(&h, "Sync anyway"), "the question is gone");
    let held = coffer_tests::assert_store_consistent(&w.mounts().join("red"));
    assert!(held.contains_key(&coffer_core::ObjectId::of(&old)));
    assert!(!held.contains_key(&coffer_core::ObjectId::of(&new)));
}

#[test]
fn sync_all_asks_before_a_disk_loses_data_then_syncs_every_disk_of_the_set() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let old = coffer_tests::bytes(1, 60_000);
    w.write("docs/a.bin", &old);
    // Red has room for one version of the file, Blue for any number.
    let red = disk_in_drawer(&w, &cfg, "red", "Red", Some(100_000));
    std::fs::rename(&red, w.mounts().join("red")).unwrap();
    let blue = disk_in_drawer(&w, &cfg, "blue", "Blue", None);
    std::fs::rename(&blue, w.mounts().join("blue")).unwrap();
    let mut h = harness(&w);
    step_until(&mut h, "both cards", |h| {
        enabled(h, "Sync Red") && enabled(h, "Sync Blue")
    });
    click(&mut h, "Sync all connected disks");
    let m = wait_for_message(&mut h, "the first sync of both");
    assert!(m.ok && m.title == "Sync of 2 disks done", "{m:?}");
    let new = coffer_tests::bytes(2, 60_000);
    w.write("docs/a.bin", &new);
    let mut cat = coffer_core::Catalog::open(&paths(&w).catalog_file()).unwrap();
    coffer_core::scan::scan(&mut cat, &cfg.profile, &coffer_core::Progress::silent()).unwrap();
    drop(cat);
    click(&mut h, "Dismiss");
    click(&mut h, "Sync all connected disks");
    step_until(&mut h, "the plan's question", |h| {
        has_label(h, "Sync anyway")
    });
    // It names the disk that would lose the old version, and only that one.
    assert!(
        has_label_containing(&h, "Red: this sync will copy"),
        "the question names Red"
    );
    assert!(!has_label_containing(&h, "Blue: this sync will"));
    assert!(
        !enabled(&h, "Verify Blue"),
        "the disks stay claimed while the question waits"
    );
    click(&mut h, "Sync anyway");
    let m = wait_for_message(&mut h, "the sync of both");
    assert!(m.title == "Sync of 2 disks done", "{m:?}");
    let red = coffer_tests::assert_store_consistent(&w.mounts().join("red"));
    assert!(red.contains_key(&coffer_core::ObjectId::of(&new)));
    assert!(!red.contains_key(&coffer_core::ObjectId::of(&old)));
    let blue = coffer_tests::assert_store_consistent(&w.mounts().join("blue"));
    assert!(blue.contains_key(&coffer_core::ObjectId::of(&new)));
    assert!(blue.contains_key(&coffer_core::ObjectId::of(&old)));
}

#[test]
fn nothing_else_starts_on_a_disk_while_it_syncs() {
    let (_w, mut h) = world_to_sync(20_000);
    assert!(enabled(&h, "Verify Red") && enabled(&h, "Sync all connected disks"));
    click(&mut h, "Sync Red");
    step_until(&mut h, "the sync to start", |h| {
        h.state().busy() && has_label(h, "Cancel")
    });
    assert!(!enabled(&h, "Verify Red"), "Verify waits for the sync");
    assert!(
        !enabled(&h, "Sync all connected disks"),
        "one sync at a time"
    );
    assert!(!enabled(&h, "Sync Red"));
    h.get_by_label("Cancel").click_accesskit();
    let m = wait_for_message(&mut h, "the sync to end");
    assert_eq!(m.title, "Sync cancelled", "{m:?}");
    step_until(&mut h, "Verify to come back", |h| enabled(h, "Verify Red"));
}

#[test]
fn an_unknown_disk_offers_initialisation() {
    let w = World::new();
    config(&w, &[]);
    let mut h = harness(&w);
    h.step();
    w.plug("usb");
    step_until(&mut h, "the offer", |h| has_label(h, "Use as backup disk…"));
    click(&mut h, "Use as backup disk…");
    step_until(&mut h, "the form", |h| has_label(h, "Use this disk"));
    click(&mut h, "Use this disk");
    step_until(&mut h, "the new disk's card", |h| has_label(h, "Sync usb"));
    assert!(w.mounts().join("usb/coffer-disk.json").exists());
    assert_eq!(
        h.state().message().unwrap().title,
        format!(
            "Disk \"usb\" is ready at {}",
            w.mounts().join("usb").display()
        )
    );
    // The watcher then sees it as a disk, no longer an unknown folder.
    step_until(&mut h, "the offer to go", |h| {
        !has_label(h, "Use as backup disk…")
    });
}

#[test]
fn show_log_opens_a_window_on_the_log_file() {
    let w = World::new();
    config(&w, &["docs"]);
    let mut h = harness(&w);
    click(&mut h, "Show log");
    step_until(&mut h, "the log window", |h| has_label(h, "Log"));
    // Either the log's path heading its lines, or why there is no log there.
    assert!(
        has_label_containing(&h, "coffer.log"),
        "the log window names the log file"
    );
}
