//! The Restore tab, driven by role and label with egui_kittest over a temp
//! world: ticking files and restoring them into a folder or where they
//! were, what exists there, a new computer restoring from one disk alone,
//! the disk to plug in next, the plan's line above the button and why the
//! button cannot be pressed.
#![allow(clippy::unwrap_used)]

mod common;

use coffer::gui::{CofferApp, Purpose};
use coffer_core::config::Config;
use coffer_tests::World;
use common::gui::{
    click, config, disk_in_drawer, harness, has_label, has_label_containing, pick, step_until,
    wait_for_message,
};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

#[test]
fn restores_a_ticked_file_into_a_chosen_folder() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let body = coffer_tests::bytes(7, 20_000);
    w.write("docs/a.txt", &body);
    w.write("docs/sub/b.txt", "world");
    let disk = disk_in_drawer(&w, &cfg, "blue", "Blue", None);
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
    pick(&mut h, Purpose::RestoreDest, &dest);
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
    let disk = disk_in_drawer(w, cfg, "blue", "Blue", None);
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
fn the_plan_of_a_restore_shows_above_the_button_and_follows_the_choices() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let body = coffer_tests::bytes(3, 5000);
    w.write("docs/a.txt", &body);
    w.write("docs/b.txt", "beta");
    let mut h = sync_to_blue(&w, &cfg);
    let dest = w.dir.path().join("restored");
    std::fs::create_dir_all(dest.join("docs")).unwrap();
    std::fs::write(dest.join("docs/a.txt"), "mine").unwrap();
    click(&mut h, "Restore");
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the snapshot tree", |h| has_label(h, &docs));
    click(&mut h, &docs);
    h.state_mut().push(coffer::gui::Action::Picked(
        Purpose::RestoreDest,
        dest.clone(),
    ));
    h.step();
    // The default policy: the plan says why the restore would stop.
    step_until(&mut h, "the refusal in the plan's line", |h| {
        has_label_containing(h, "already exist at the destination")
    });
    // Keep both: the line says what the button would do, in figures.
    click(&mut h, "Keep both");
    let line = format!(
        "Restores 2 files ({}) into {} from disk \"Blue\"; 1 exists and will be kept as both",
        coffer_core::human::bytes(body.len() as u64 + 4),
        dest.display()
    );
    step_until(&mut h, "the plan's line", |h| has_label(h, &line));
    // After the restore the destination changed: planned again.
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore to end");
    assert!(m.ok, "{m:?}");
    assert_eq!(
        std::fs::read(dest.join("docs/a (restored).txt")).unwrap(),
        body
    );
    step_until(&mut h, "the plan after the restore", |h| {
        has_label_containing(h, "Nothing to write into")
    });
    assert!(!has_label(&h, &line));
}
