//! The Disks tab's care of disks, driven by label: a disk already plugged
//! in when the window opens syncs when it should; the background agent's
//! job shows with its progress and its disk is left to it; the card's
//! "Manage" menu renames, changes the quota, and forgets a lost disk after
//! saying what that costs, in modal dialogs answered with Enter and Esc;
//! the agent switch writes the autostart entry.
#![allow(clippy::unwrap_used)]

mod common;

use coffer_core::Catalog;
use coffer_tests::World;
use common::gui::{
    click, config, enabled, harness, has_label, has_label_containing, paths, plugged_disk,
    step_until, wait_for_message,
};
use egui_kittest::kittest::Queryable as _;

/// The disk at `root` known to the catalog with auto-sync on.
fn auto_sync(w: &World, root: &std::path::Path) {
    let catalog = Catalog::open(&paths(w).catalog_file()).unwrap();
    let disk = coffer_core::Disk::open(root, coffer_core::disk::io::real()).unwrap();
    let mut row = catalog.register(&disk, None).unwrap();
    row.auto_sync = true;
    catalog.upsert_disk(&row).unwrap();
}

#[test]
fn a_disk_plugged_in_before_the_window_opens_is_synced_when_it_should_be() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let root = plugged_disk(&w, &cfg, "blue", "Blue", None);
    auto_sync(&w, &root);
    let mut h = harness(&w);
    let m = wait_for_message(&mut h, "the sync on opening");
    assert!(m.ok, "{m:?}");
    assert!(m.title.starts_with("Sync of Blue done"), "{m:?}");
}

#[test]
fn the_agents_job_is_shown_and_its_disk_is_left_to_it() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let root = plugged_disk(&w, &cfg, "blue", "Blue", None);
    auto_sync(&w, &root);
    // An agent (this process stands in for it) syncing Blue.
    let status = coffer::agent::status::AgentStatus {
        pid: std::process::id(),
        updated_at: coffer_core::now(),
        job: Some(coffer::agent::status::AgentJob {
            kind: "sync".into(),
            label: "Blue".into(),
            root: root.clone(),
            phase: "Copying".into(),
            bytes_done: 45,
            bytes_total: 100,
            files_done: 1,
            files_total: 2,
            ..Default::default()
        }),
    };
    coffer::agent::status::write(&paths(&w), &status).unwrap();
    let mut h = harness(&w);
    step_until(&mut h, "the agent's job", |h| {
        has_label(h, "Syncing Blue in the background: Copying, 45%")
    });
    step_until(&mut h, "the card", |h| has_label(h, "Sync Blue"));
    step_until(&mut h, "the window to settle", |h| !h.state().busy());
    assert!(!enabled(&h, "Sync Blue"), "the agent has the disk");
    assert!(!enabled(&h, "Verify Blue"));
    assert!(
        h.state().message().is_none(),
        "the window leaves the auto-sync to the agent: {:?}",
        h.state().message()
    );
    // The agent is done: the disk is the window's again.
    let done = coffer::agent::status::AgentStatus {
        job: None,
        ..status
    };
    coffer::agent::status::write(&paths(&w), &done).unwrap();
    step_until(&mut h, "the disk free again", |h| enabled(h, "Sync Blue"));
    assert!(has_label(
        &h,
        "The background agent is running and waiting for a disk."
    ));
}

#[test]
fn a_disk_is_renamed_and_given_a_quota_from_its_card_menu() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    plugged_disk(&w, &cfg, "blue", "Blue", None);
    let mut h = harness(&w);
    step_until(&mut h, "the card", |h| has_label(h, "Manage Blue"));
    click(&mut h, "Manage Blue");
    click(&mut h, "Rename…");
    step_until(&mut h, "the dialog", |h| has_label(h, "Rename Blue"));
    // Esc closes it without a change.
    h.key_press(egui::Key::Escape);
    step_until(&mut h, "the dialog to close", |h| {
        !has_label(h, "Rename Blue")
    });
    click(&mut h, "Manage Blue");
    click(&mut h, "Rename…");
    step_until(&mut h, "the dialog", |h| has_label(h, "New name"));
    h.get_by_label("New name")
        .set_text_value_accesskit("Blue WD");
    h.step();
    // Enter is the dialog's main button.
    h.key_press(egui::Key::Enter);
    let m = wait_for_message(&mut h, "the rename");
    assert_eq!(m.title, "\"Blue\" is now \"Blue WD\"");
    step_until(&mut h, "the renamed card", |h| has_label(h, "Sync Blue WD"));
    let id = std::fs::read_to_string(w.mounts().join("blue/coffer-disk.json")).unwrap();
    assert!(id.contains("\"Blue WD\""), "{id}");

    click(&mut h, "Manage Blue WD");
    click(&mut h, "Change quota…");
    step_until(&mut h, "the dialog", |h| {
        has_label(h, "Quota (e.g. 200 GB)")
    });
    h.get_by_label("Quota (e.g. 200 GB)")
        .set_text_value_accesskit("lots");
    h.step();
    click(&mut h, "Change quota");
    step_until(&mut h, "the refusal", |h| has_label_containing(h, "lots"));
    h.get_by_label("Quota (e.g. 200 GB)")
        .set_text_value_accesskit("1 MB");
    h.step();
    click(&mut h, "Change quota");
    let m = wait_for_message(&mut h, "the quota");
    assert!(m.title.starts_with("Blue WD: quota 1.0 MB;"), "{m:?}");
    let catalog = Catalog::open(&paths(&w).catalog_file()).unwrap();
    assert_eq!(catalog.disks().unwrap()[0].quota, Some(1_000_000));
}

#[test]
fn a_lost_disk_is_forgotten_after_the_window_says_what_that_costs() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    plugged_disk(&w, &cfg, "blue", "Blue", None);
    let mut h = harness(&w);
    step_until(&mut h, "the card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    assert!(wait_for_message(&mut h, "the sync").ok);
    click(&mut h, "Manage Blue");
    assert!(
        !has_label(&h, "Forget…"),
        "a connected disk is not forgotten"
    );
    h.key_press(egui::Key::Escape);
    h.step();
    w.unplug("blue");
    step_until(&mut h, "the card to say it is gone", |h| {
        has_label_containing(h, "Last seen")
    });
    click(&mut h, "Manage Blue");
    assert!(!enabled(&h, "Rename…"), "its name is on the disk");
    click(&mut h, "Forget…");
    step_until(&mut h, "the cost", |h| {
        has_label(h, "1 file (5 B) would have no copy left")
    });
    click(&mut h, "Forget it");
    let m = wait_for_message(&mut h, "forgetting");
    assert_eq!(m.title, "\"Blue\" is forgotten");
    step_until(&mut h, "the card to go", |h| !has_label(h, "Manage Blue"));
}

#[test]
fn the_agent_switch_writes_and_removes_the_autostart_entry() {
    let w = World::new();
    config(&w, &[]);
    let xdg = w.dir.path().join("xdg");
    let dirs = coffer::desktop::autostart::Dirs {
        user: xdg.join("autostart"),
        system: vec![w.dir.path().join("etc/xdg/autostart")],
    };
    let app = coffer::gui::CofferApp::new(
        paths(&w),
        coffer_core::volumes::MountSource::TestRoot(w.mounts()),
    )
    .unwrap()
    .with_autostart(dirs);
    let mut h = common::gui::harness_of(app);
    let text = "Back up when a disk is plugged in, even with this window closed";
    step_until(&mut h, "the switch", |h| has_label(h, text));
    click(&mut h, text);
    let entry = xdg.join("autostart/coffer-agent.desktop");
    assert!(
        std::fs::read_to_string(&entry)
            .unwrap()
            .contains("Exec=coffer agent")
    );
    click(&mut h, text);
    assert!(!entry.exists());
}

#[test]
fn the_theme_and_folder_fields_are_remembered_across_restarts() {
    let w = World::new();
    config(&w, &[]);
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let mut h = harness(&w);
    h.step();
    h.state_mut().push(coffer::gui::Action::Picked(
        coffer::gui::Purpose::ArchiveDir,
        nas.clone(),
    ));
    h.state_mut().push(coffer::gui::Action::Theme(
        coffer::gui::remember::Theme::Dark,
    ));
    h.step();
    h.step();
    assert_eq!(
        h.ctx.options(|o| o.theme_preference),
        egui::ThemePreference::Dark
    );
    drop(h);
    let file = w.config_dir().join("window.json");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("\"dark\""), "{saved}");
    // A new window starts from what was saved: the fields come back (were
    // they lost, the window would save them empty at once).
    let mut h = harness(&w);
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(
        h.ctx.options(|o| o.theme_preference),
        egui::ThemePreference::Dark
    );
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(again["archive_dir"], nas.display().to_string(), "{again}");
    click(&mut h, "Archives");
    assert!(has_label(&h, "No archives in this folder."));
}

#[test]
fn a_first_run_is_guided_from_folders_to_the_first_sync() {
    let w = World::new();
    config(&w, &[]);
    let docs = w.home().join("docs");
    w.write("docs/a.txt", "hello");
    let mut h = harness(&w);
    step_until(&mut h, "the assistant", |h| has_label(h, "Getting started"));
    assert!(has_label(&h, "1. Choose the folders to back up"));
    assert!(!enabled(&h, "Sync now"), "nothing to sync yet");
    // Step 1: the folder, as the chooser would answer.
    assert!(enabled(&h, "Add folder…"));
    h.state_mut().push(coffer::gui::Action::Picked(
        coffer::gui::Purpose::Source,
        docs.clone(),
    ));
    step_until(&mut h, "step 1 done", |h| {
        has_label(h, "1. Choose the folders to back up (done)")
    });
    // Step 2: a disk plugged in, set up from the assistant.
    w.plug("usb");
    step_until(&mut h, "the offer", |h| {
        has_label(
            h,
            &format!("Use {} as backup disk…", w.mounts().join("usb").display()),
        )
    });
    click(
        &mut h,
        &format!("Use {} as backup disk…", w.mounts().join("usb").display()),
    );
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "step 2 done", |h| {
        has_label(h, "2. Plug in a USB disk to keep the copies on (done)")
    });
    // Step 3: one copy is enough here.
    click(&mut h, "1 disk");
    assert_eq!(
        coffer_core::config::Config::load_or_default(&paths(&w))
            .unwrap()
            .profile
            .copies,
        1
    );
    // Step 4: the first sync, and the assistant goes.
    step_until(&mut h, "Sync now", |h| enabled(h, "Sync now"));
    click(&mut h, "Sync now");
    let m = wait_for_message(&mut h, "the first sync");
    assert!(m.ok, "{m:?}");
    step_until(&mut h, "the assistant to go", |h| {
        !has_label(h, "Getting started")
    });
}
