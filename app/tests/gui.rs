//! The real window, driven by role and label with egui_kittest over a temp
//! world (catalog, config, a test mount root); no display needed.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::gui::{config, enabled, has_label, has_label_containing, paths, step_until};

use coffer::gui::{CofferApp, Purpose};
use coffer_core::config::Config;
use coffer_core::volumes::MountSource;
use coffer_tests::World;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn harness(w: &World) -> Harness<'static, CofferApp> {
    harness_with(w, egui_kittest::Harness::<CofferApp>::builder())
}

fn harness_with(
    w: &World,
    builder: egui_kittest::HarnessBuilder<CofferApp>,
) -> Harness<'static, CofferApp> {
    // Never the system's folder chooser: a test must not open a dialog on
    // the desktop it runs on.
    let app = CofferApp::new(paths(w), MountSource::TestRoot(w.mounts()))
        .unwrap()
        .with_folder_chooser_in_window();
    builder.with_size(egui::vec2(1200.0, 900.0)).build_ui_state(
        |ui, app: &mut CofferApp| {
            app.logic(ui.ctx());
            app.draw(ui);
        },
        app,
    )
}

/// Clicks the widget with this label and lets the click take effect (one
/// frame to see it, one to draw the result).
fn click(h: &mut Harness<'_, CofferApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
    // Panels take a frame to settle at their new size (the status panel
    // after Dismiss, the restore bar above it).
    h.step();
}

fn init_disk(w: &World, cfg: &Config, name: &str, label: &str) -> std::path::PathBuf {
    init_disk_with_quota(w, cfg, name, label, None)
}

fn init_disk_with_quota(
    w: &World,
    cfg: &Config,
    name: &str,
    label: &str,
    quota: Option<u64>,
) -> std::path::PathBuf {
    let away = w.dir.path().join("drawer").join(name);
    std::fs::create_dir_all(&away).unwrap();
    coffer_core::Disk::init(
        &away,
        label,
        cfg.profile.set_id,
        quota,
        coffer_core::io::real(),
    )
    .unwrap();
    away
}

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
    let disk = init_disk(&w, &cfg, "red", "Red");
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
    let disk = init_disk(&w, &cfg, "blue", "Blue");
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
    let disk = init_disk_with_quota(&w, &cfg, "red", "Red", Some(100_000));
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
    let red = init_disk_with_quota(&w, &cfg, "red", "Red", Some(100_000));
    std::fs::rename(&red, w.mounts().join("red")).unwrap();
    let blue = init_disk(&w, &cfg, "blue", "Blue");
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
fn restores_a_ticked_file_into_a_chosen_folder() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let body = coffer_tests::bytes(7, 20_000);
    w.write("docs/a.txt", &body);
    w.write("docs/sub/b.txt", "world");
    let disk = init_disk(&w, &cfg, "blue", "Blue");
    std::fs::rename(&disk, w.mounts().join("blue")).unwrap();
    let mut h = harness(&w);
    step_until(&mut h, "the disk card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    step_until(&mut h, "the sync to end", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    // The original goes away; only the disk holds it now.
    std::fs::remove_file(w.home().join("docs/a.txt")).unwrap();
    click(&mut h, "Restore");
    step_until(&mut h, "the snapshot tree", |h| {
        has_label(h, &w.home().join("docs").display().to_string())
    });
    // The source's folder is open: its file and subfolder show, unticked.
    assert!(has_label(&h, "a.txt") && has_label(&h, "sub"));
    click(&mut h, "Search");
    h.get_by_label("Search").type_text("a.txt");
    h.step();
    step_until(&mut h, "the search result", |h| {
        has_label(h, &w.home().join("docs/a.txt").display().to_string())
    });
    click(&mut h, &w.home().join("docs/a.txt").display().to_string());
    assert!(has_label(&h, "1 item ticked"));
    click(&mut h, "Versions");
    step_until(&mut h, "the versions", |h| {
        !h.state().busy() && has_label_containing(h, ": on Blue")
    });
    let dest = w.dir.path().join("restored");
    std::fs::create_dir_all(&dest).unwrap();
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::RestoreDest,
        dest.clone(),
    ));
    h.step();
    h.step();
    click(&mut h, "Restore ticked items");
    step_until(&mut h, "the restore to end", |h| {
        !h.state().busy()
            && h.state()
                .message()
                .is_some_and(|m| m.title.starts_with("Restored"))
    });
    let m = h.state().message().unwrap().clone();
    assert!(m.ok, "{m:?}");
    assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), body);
    assert!(
        !dest.join("sub").exists(),
        "only the ticked file is restored"
    );
    // Again, over a changed file: refused by default, naming it, with
    // nothing written.
    std::fs::write(dest.join("a.txt"), "mine").unwrap();
    click(&mut h, "Dismiss");
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the second restore to be refused");
    assert!(!m.ok, "{m:?}");
    assert!(
        m.details[0].starts_with("Nothing was restored: 1 path to restore already exists"),
        "{m:?}"
    );
    assert!(
        m.details
            .contains(&format!("Exists: {}", dest.join("a.txt").display())),
        "{m:?}"
    );
    assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"mine");
    // "Leave them as they are": the changed file stays and the message says so.
    click(&mut h, "Dismiss");
    click(&mut h, "Leave them as they are");
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the third restore to end");
    assert!(
        m.details
            .iter()
            .any(|d| d.starts_with("Left 1 existing path untouched")),
        "{m:?}"
    );
    assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"mine");
    // "Keep both": the restored file goes beside the changed one.
    click(&mut h, "Dismiss");
    click(&mut h, "Keep both");
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the fourth restore to end");
    assert!(
        m.details
            .iter()
            .any(|d| d.starts_with("Restored 1 file under a new name beside what was there")),
        "{m:?}"
    );
    assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read(dest.join("a (restored).txt")).unwrap(), body);
}

/// Syncs the world's sources onto a plugged disk "Blue" through the window.
fn sync_to_blue(w: &World, cfg: &Config) -> Harness<'static, CofferApp> {
    let disk = init_disk(w, cfg, "blue", "Blue");
    std::fs::rename(&disk, w.mounts().join("blue")).unwrap();
    let mut h = harness(w);
    step_until(&mut h, "the disk card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    let m = wait_for_message(&mut h, "the sync to end");
    assert!(m.ok, "{m:?}");
    click(&mut h, "Dismiss");
    h
}

#[test]
fn restores_to_where_the_files_were_and_asks_before_replacing() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "first a");
    w.write("docs/sub/b.txt", "first b");
    let mut h = sync_to_blue(&w, &cfg);
    let a = w.home().join("docs/a.txt");
    let b = w.home().join("docs/sub/b.txt");
    std::fs::remove_file(&a).unwrap();
    std::fs::write(&b, "changed b").unwrap();

    click(&mut h, "Restore");
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the snapshot tree", |h| has_label(h, &docs));
    click(&mut h, &docs);
    click(
        &mut h,
        &format!("Where they were (under {})", w.home().display()),
    );
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore to be refused");
    assert!(!m.ok && m.title == "Restore failed", "{m:?}");
    assert!(
        m.details[0].starts_with("Nothing was restored: 1 path to restore already exists"),
        "{m:?}"
    );
    assert!(
        m.details.contains(&format!("Exists: {}", b.display())),
        "{m:?}"
    );
    assert!(!a.exists(), "a refused restore writes nothing");
    assert_eq!(std::fs::read(&b).unwrap(), b"changed b");

    click(&mut h, "Dismiss");
    click(&mut h, "Leave them as they are");
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore that leaves b alone");
    assert!(m.title.starts_with("Restored 1 file ("), "{m:?}");
    assert_eq!(std::fs::read(&a).unwrap(), b"first a");
    assert_eq!(std::fs::read(&b).unwrap(), b"changed b");

    click(&mut h, "Dismiss");
    click(&mut h, "Replace them");
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore that replaces b");
    assert!(m.ok, "{m:?}");
    assert_eq!(std::fs::read(&b).unwrap(), b"first b");
    assert_eq!(std::fs::read(&a).unwrap(), b"first a");
}

#[test]
fn a_new_computer_restores_from_one_disk_alone() {
    let w = World::new();
    let cfg = config(&w, &["photos"]);
    let big = coffer_tests::bytes(3, 300_000);
    w.write("photos/2019/a.jpg", &big);
    w.write("photos/b.jpg", "small");
    drop(sync_to_blue(&w, &cfg));
    // The workstation is gone: no catalog, no config, no log.
    std::fs::remove_dir_all(w.config_dir()).unwrap();
    std::fs::remove_dir_all(w.data_dir()).unwrap();

    let mut h = harness(&w);
    click(&mut h, "Restore");
    let offer = "Restore from disk \"Blue\" alone";
    step_until(&mut h, "the offer to read the disk's catalog", |h| {
        has_label(h, "No snapshots on this computer yet: sync a disk first.") && has_label(h, offer)
    });
    click(&mut h, offer);
    let photos = w.home().join("photos").display().to_string();
    step_until(&mut h, "the disk's snapshot tree", |h| {
        has_label(h, &photos)
    });
    click(&mut h, &photos);
    let dest = w.dir.path().join("new-computer");
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::RestoreDest,
        dest.clone(),
    ));
    h.step();
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore from the disk alone");
    assert!(m.ok, "{m:?}");
    assert_eq!(std::fs::read(dest.join("photos/2019/a.jpg")).unwrap(), big);
    assert_eq!(std::fs::read(dest.join("photos/b.jpg")).unwrap(), b"small");
    // The disk's catalog was read from a private copy: this computer's
    // catalog (the window makes an empty one) did not take it over.
    let own = w.data_dir().join("catalog.sqlite");
    if own.exists() {
        let own = coffer_core::Catalog::open(&own).unwrap();
        assert!(own.snapshots().unwrap().is_empty());
    }
}

#[test]
fn a_restore_names_the_disk_to_plug_in_and_goes_on_when_it_is() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "alpha");
    w.write("docs/b.txt", "beta");
    let mut h = sync_to_blue(&w, &cfg);
    w.unplug("blue");
    click(&mut h, "Disks");
    step_until(&mut h, "Blue to be seen unplugged", |h| {
        has_label_containing(h, "Last seen")
    });

    click(&mut h, "Restore");
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the snapshot tree", |h| has_label(h, &docs));
    click(&mut h, &docs);
    let dest = w.dir.path().join("out");
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::RestoreDest,
        dest.clone(),
    ));
    h.step();
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore without its disk");
    assert!(!m.ok, "{m:?}");
    assert!(
        m.details.iter().any(|d| d == "2 files (9 B) still missing"),
        "{m:?}"
    );
    assert!(
        m.details
            .iter()
            .any(|d| d.starts_with("Plug in \"Blue\" next: 2 files")),
        "{m:?}"
    );
    assert!(!dest.join("docs/a.txt").exists());

    assert!(has_label(
        &h,
        "The restore goes on by itself when the disk it needs is plugged in."
    ));
    assert!(!has_label(&h, "Open folder"), "nothing was restored yet");
    // Plugging Blue in is all it takes: the restore goes on by itself.
    w.replug("blue");
    step_until(&mut h, "the restore to go on", |h| {
        h.state().message().is_none_or(|m| m.ok)
    });
    let m = wait_for_message(&mut h, "the restore with its disk");
    assert!(m.ok, "{m:?}");
    assert_eq!(std::fs::read(dest.join("docs/a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(dest.join("docs/b.txt")).unwrap(), b"beta");
    assert!(
        has_label(&h, "Open folder"),
        "the restored folder can be opened"
    );
}

#[test]
fn the_restore_button_says_why_it_cannot_be_pressed_and_stays_in_sight() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    for i in 0..300 {
        w.write(&format!("docs/f{i:03}.txt"), format!("file {i}"));
    }
    let mut h = sync_to_blue(&w, &cfg);
    click(&mut h, "Restore");
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the snapshot tree", |h| has_label(h, &docs));
    assert!(has_label(&h, "Tick the files or folders to restore above"));
    click(&mut h, &docs);
    assert!(has_label(&h, "Choose the folder to restore into"));
    // However long the tree, the button is on screen: inside the window.
    let button = h.get_by_label("Restore ticked items").rect();
    assert!(button.max.y <= 900.0, "{button:?}");
}

#[test]
fn writes_a_full_archive_lists_and_verifies_it() {
    let w = World::new();
    config(&w, &["docs"]);
    w.write("docs/a.txt", coffer_tests::bytes(3, 50_000));
    w.write("docs/sub/b.txt", "world");
    let dir = w.home().join("archives");
    std::fs::create_dir_all(&dir).unwrap();
    // The folder chooser's icons are drawn from the emoji fonts, none missing.
    let mut h = harness(&w);
    h.step();
    click(&mut h, "Archives");
    assert!(has_label(
        &h,
        "Choose the folder archives go in (a NAS share, a second disk)."
    ));
    click(&mut h, "Choose folder…");
    step_until(&mut h, "the folder picker", |h| has_label(h, "🗀 archives"));
    click(&mut h, "🗀 archives");
    click(&mut h, "Open");
    step_until(&mut h, "the folder to be set", |h| {
        h.state().busy() || h.query_by_label("Open").is_none()
    });
    click(&mut h, "Name prefix");
    h.get_by_label("Name prefix").type_text("home");
    h.step();
    click(&mut h, "Full archive");
    step_until(&mut h, "the archive to be written", |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    let m = h.state().message().unwrap().clone();
    assert!(m.ok && m.title.starts_with("Archive 1 written"), "{m:?}");
    assert!(dir.join("home-1.tar.gz").exists(), "{m:?}");
    step_until(&mut h, "the archive in the list", |h| {
        has_label(h, "home-1")
    });
    assert!(has_label_containing(&h, "full, "));
    click(&mut h, "home-1");
    click(&mut h, "Verify home-1");
    step_until(&mut h, "the verify to end", |h| {
        !h.state().busy()
            && h.state()
                .message()
                .is_some_and(|m| m.title.contains("is good"))
    });
    assert!(h.state().message().unwrap().ok);
}

/// The Archives tab on `dir`, with the list read.
fn archives_tab_on(h: &mut Harness<'_, CofferApp>, dir: &std::path::Path) {
    click(h, "Archives");
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::ArchiveDir,
        dir.to_path_buf(),
    ));
    // One frame takes the action and starts the listing; only then does
    // "not busy" mean the list is in.
    h.step();
    step_until(h, "the archive list", |h| !h.state().busy());
}

fn wait_for_message(h: &mut Harness<'_, CofferApp>, what: &str) -> coffer::gui::Message {
    step_until(h, what, |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    h.state().message().unwrap().clone()
}

#[test]
fn restores_a_file_then_everything_from_a_full_and_incremental_archive() {
    let w = World::new();
    config(&w, &["docs"]);
    w.write("docs/a.txt", coffer_tests::bytes(1, 40_000));
    w.write("docs/sub/b.txt", "world");
    w.write("docs/big.bin", coffer_tests::bytes(9, 300_000));
    let dir = w.dir.path().join("nas");
    std::fs::create_dir_all(&dir).unwrap();
    // The folder chooser's icons are drawn from the emoji fonts, none missing.
    let mut h = harness(&w);
    h.step();
    archives_tab_on(&mut h, &dir);
    click(&mut h, "Full archive");
    let m = wait_for_message(&mut h, "the full archive");
    assert!(m.ok && m.title.starts_with("Archive 1 written"), "{m:?}");
    let a2 = coffer_tests::bytes(2, 40_000);
    w.write("docs/a.txt", &a2);
    w.write("docs/new.txt", "new");
    click(&mut h, "Incremental");
    let m = wait_for_message(&mut h, "the incremental");
    assert!(m.ok && m.title.starts_with("Archive 2 written"), "{m:?}");
    assert!(dir.join("home-1-to-2.tar.gz").exists());

    // As of archive 2: its manifest lists the tree at that point.
    step_until(&mut h, "the list", |h| has_label(h, "home-2"));
    click(&mut h, "home-2");
    step_until(&mut h, "the archive's files", |h| {
        has_label(h, "docs") && has_label(h, "a.txt") && has_label(h, "new.txt")
    });
    assert!(has_label(&h, "Nothing ticked: everything is restored"));
    click(&mut h, "a.txt");
    assert!(has_label(&h, "1 item ticked"));
    // The destination through the in-app folder picker.
    let one = w.home().join("restored-one");
    std::fs::create_dir_all(&one).unwrap();
    click(&mut h, "Choose destination…");
    step_until(&mut h, "the folder picker", |h| {
        has_label(h, "🗀 restored-one")
    });
    click(&mut h, "🗀 restored-one");
    click(&mut h, "Open");
    step_until(&mut h, "the picker to close", |h| {
        h.query_by_label("Open").is_none()
    });
    click(&mut h, "Restore from home-2");
    let m = wait_for_message(&mut h, "the restore of one file");
    assert!(m.ok, "{m:?}");
    assert_eq!(
        m.title,
        format!(
            "Restored home-2 into {}: 1 file (40 kB), 0 folders, 0 symlinks",
            one.display()
        )
    );
    assert_eq!(std::fs::read(one.join("docs/a.txt")).unwrap(), a2);
    assert!(!one.join("docs/sub").exists() && !one.join("docs/big.bin").exists());

    // Everything: nothing ticked, into another folder.
    click(&mut h, "Untick all");
    let all = w.dir.path().join("restored-all");
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::ArchiveRestoreDest,
        all.clone(),
    ));
    h.step();
    click(&mut h, "Restore from home-2");
    let m = wait_for_message(&mut h, "the restore of everything");
    assert!(m.ok, "{m:?}");
    // The chain was read: the full archive for what did not change.
    for f in ["home-1.tar.gz", "home-1-to-2.tar.gz"] {
        let read = format!("Read {}", dir.join(f).display());
        assert!(m.details.contains(&read), "{m:?}");
    }
    assert_eq!(std::fs::read(all.join("docs/a.txt")).unwrap(), a2);
    assert_eq!(std::fs::read(all.join("docs/sub/b.txt")).unwrap(), b"world");
    assert_eq!(
        std::fs::read(all.join("docs/big.bin")).unwrap(),
        coffer_tests::bytes(9, 300_000)
    );
    assert_eq!(std::fs::read(all.join("docs/new.txt")).unwrap(), b"new");
}

/// A full archive of `docs` (a.txt, sub/b.txt) written by core into `nas`.
fn full_archive(w: &World, cfg: &Config) -> std::path::PathBuf {
    w.write("docs/a.txt", coffer_tests::bytes(1, 200_000));
    w.write("docs/sub/b.txt", "world");
    let dir = w.dir.path().join("nas");
    std::fs::create_dir_all(&dir).unwrap();
    coffer_core::archive::create(
        &cfg.profile,
        &dir,
        coffer_core::archive::Mode::Full,
        &coffer_core::archive::Options::default(),
        &coffer_core::Progress::silent(),
    )
    .unwrap();
    dir
}

#[test]
fn a_restore_over_an_existing_file_names_it_and_overwrites_nothing() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let dir = full_archive(&w, &cfg);
    let dest = w.dir.path().join("out");
    std::fs::create_dir_all(dest.join("docs")).unwrap();
    std::fs::write(dest.join("docs/a.txt"), "mine").unwrap();
    let mut h = harness(&w);
    h.step();
    archives_tab_on(&mut h, &dir);
    click(&mut h, "home-1");
    step_until(&mut h, "the archive's files", |h| has_label(h, "a.txt"));
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::ArchiveRestoreDest,
        dest.clone(),
    ));
    h.step();
    click(&mut h, "Restore from home-1");
    let m = wait_for_message(&mut h, "the restore to be refused");
    assert!(!m.ok);
    assert_eq!(m.title, "Restore from home-1 failed", "{m:?}");
    assert!(
        m.details
            .contains(&format!("Exists: {}", dest.join("docs/a.txt").display())),
        "{m:?}"
    );
    assert!(m.details[0].starts_with("Nothing was restored"), "{m:?}");
    assert_eq!(std::fs::read(dest.join("docs/a.txt")).unwrap(), b"mine");
    assert!(!dest.join("docs/sub").exists(), "nothing else was written");
}

#[test]
fn a_damaged_archive_is_reported_with_its_path() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let dir = full_archive(&w, &cfg);
    // Damage the compressed data near the end, past the manifest.
    let file = dir.join("home-1.tar.gz");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 2_000;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, bytes).unwrap();
    let mut h = harness(&w);
    h.step();
    archives_tab_on(&mut h, &dir);
    click(&mut h, "home-1");
    step_until(&mut h, "the archive's files", |h| has_label(h, "a.txt"));
    let dest = w.dir.path().join("out");
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::ArchiveRestoreDest,
        dest.clone(),
    ));
    h.step();
    click(&mut h, "Restore from home-1");
    let m = wait_for_message(&mut h, "the restore to fail");
    assert_eq!(m.title, "Restore from home-1 failed", "{m:?}");
    assert!(
        m.details[0].contains(&file.display().to_string()) && m.details[0].contains("damaged"),
        "{m:?}"
    );
    assert!(!dest.join("docs/a.txt").exists());
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
