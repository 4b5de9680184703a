//! Encrypted disks in the window, driven by label: a job that needs one
//! asks its passphrase in the "Unlock" dialog before it starts, refuses a
//! wrong one at once and runs with the right one; Esc starts nothing;
//! restoring from this computer's catalog or from the disk's own copy on a
//! new computer asks too. No passphrase is in this process's environment:
//! the disks are made through the library.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use coffer::gui::{Action, Purpose};
use coffer_tests::World;
use common::gui::{
    answer, click, config, harness, has_label, has_label_containing, plugged_encrypted_disk,
    step_until, wait_for_dialog, wait_for_message,
};

const PASS: &str = "correct horse battery staple";

/// Files under the disk's `coffer/objects` and `coffer/tmp`, and whether a
/// catalog slot was written.
fn written(root: &Path) -> (usize, bool) {
    let mut n = 0;
    for dir in ["coffer/objects", "coffer/tmp"] {
        for e in walk(&root.join(dir)) {
            if e.is_file() {
                n += 1;
            }
        }
    }
    let slots = std::fs::read_dir(root.join("coffer")).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("catalog-")
    });
    (n, slots)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_sync_asks_the_passphrase_refuses_a_wrong_one_and_runs_with_the_right_one() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let root = plugged_encrypted_disk(&w, &cfg, "blue", "Blue", PASS);
    let mut h = harness(&w);
    step_until(&mut h, "the card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    wait_for_dialog(&mut h, "Blue");
    assert!(
        has_label(&h, "Remember on this computer"),
        "the keyring is offered"
    );

    answer(&mut h, "not the passphrase");
    step_until(&mut h, "the refusal", |h| {
        !h.state().busy() && has_label(h, "Wrong passphrase for Blue. Try again.")
    });
    assert_eq!(h.state().asking_passphrase_for(), Some("Blue"));
    assert!(h.state().message().is_none(), "no job ran");
    assert_eq!(written(&root), (0, false), "nothing was written");

    answer(&mut h, PASS);
    let m = wait_for_message(&mut h, "the sync");
    assert!(m.ok, "{m:?}");
    assert!(m.title.starts_with("Sync of Blue done"), "{m:?}");
    assert!(h.state().asking_passphrase_for().is_none());
    let (objects, slots) = written(&root);
    assert!(objects >= 1 && slots, "{objects} objects, slots {slots}");
    // What is on the disk is sealed.
    for f in walk(&root.join("coffer/objects")) {
        let b = std::fs::read(&f).unwrap();
        assert!(!b.windows(5).any(|w| w == b"hello"), "{}", f.display());
    }

    // The window keeps the answer: the next sync and a verify do not ask.
    click(&mut h, "Dismiss");
    click(&mut h, "Verify Blue");
    let m = wait_for_message(&mut h, "the verify");
    assert!(m.ok, "{m:?}");
    assert!(h.state().asking_passphrase_for().is_none());
}

#[test]
fn esc_in_the_passphrase_dialog_starts_nothing() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let root = plugged_encrypted_disk(&w, &cfg, "blue", "Blue", PASS);
    let mut h = harness(&w);
    step_until(&mut h, "the card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    wait_for_dialog(&mut h, "Blue");
    h.key_press(egui::Key::Escape);
    step_until(&mut h, "the dialog to close", |h| {
        !has_label(h, "Unlock Blue") && h.state().message().is_some()
    });
    let m = h.state().message().unwrap().clone();
    assert!(!m.ok && m.title == "Not started", "{m:?}");
    assert_eq!(m.details, ["No passphrase was given for Blue."]);
    step_until(&mut h, "the window to settle", |h| !h.state().busy());
    assert_eq!(written(&root), (0, false), "nothing was written");
    let catalog = coffer_core::Catalog::open(&common::gui::paths(&w).catalog_file()).unwrap();
    assert!(
        catalog.snapshots().unwrap().is_empty(),
        "nothing was scanned"
    );

    // Cancel, clicked, does the same; Sync asks again.
    click(&mut h, "Dismiss");
    click(&mut h, "Sync Blue");
    wait_for_dialog(&mut h, "Blue");
    click(&mut h, "Cancel");
    assert!(!has_label(&h, "Unlock Blue"));
    assert_eq!(written(&root), (0, false));
}

/// Syncs `docs` onto the encrypted "Blue" through the window.
fn synced_blue(w: &World) -> std::path::PathBuf {
    let cfg = config(w, &["docs"]);
    w.write("docs/a.txt", "first a");
    w.write("docs/sub/b.txt", "first b");
    let root = plugged_encrypted_disk(w, &cfg, "blue", "Blue", PASS);
    let mut h = harness(w);
    step_until(&mut h, "the card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    wait_for_dialog(&mut h, "Blue");
    answer(&mut h, PASS);
    let m = wait_for_message(&mut h, "the sync");
    assert!(m.ok, "{m:?}");
    root
}

#[test]
fn a_restore_from_an_encrypted_disk_asks_its_passphrase() {
    let w = World::new();
    synced_blue(&w);
    // The window opens again: it knows no passphrase.
    let mut h = harness(&w);
    click(&mut h, "Restore");
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the snapshot tree", |h| has_label(h, &docs));
    click(&mut h, &docs);
    let dest = w.dir.path().join("restored");
    h.state_mut()
        .push(Action::Picked(Purpose::RestoreDest, dest.clone()));
    h.step();
    click(&mut h, "Restore ticked items");
    wait_for_dialog(&mut h, "Blue");
    answer(&mut h, "wrong");
    step_until(&mut h, "the refusal", |h| {
        has_label(h, "Wrong passphrase for Blue. Try again.")
    });
    assert!(!dest.exists(), "nothing was restored before the key check");
    answer(&mut h, PASS);
    let m = wait_for_message(&mut h, "the restore");
    assert!(m.ok, "{m:?}");
    assert_eq!(std::fs::read(dest.join("docs/a.txt")).unwrap(), b"first a");
    assert_eq!(
        std::fs::read(dest.join("docs/sub/b.txt")).unwrap(),
        b"first b"
    );
}

#[test]
fn a_new_computer_asks_the_passphrase_to_read_an_encrypted_disk_alone() {
    let w = World::new();
    synced_blue(&w);
    // The workstation is gone: no catalog, no config.
    std::fs::remove_dir_all(w.config_dir()).unwrap();
    std::fs::remove_dir_all(w.data_dir()).unwrap();
    let mut h = harness(&w);
    click(&mut h, "Restore");
    let offer = "Restore from disk \"Blue\" alone";
    step_until(&mut h, "the offer to read the disk's catalog", |h| {
        has_label(h, offer)
    });
    click(&mut h, offer);
    wait_for_dialog(&mut h, "Blue");
    assert!(has_label_containing(
        &h,
        "Blue is encrypted: its backups are listed once its passphrase is given."
    ));
    answer(&mut h, PASS);
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the disk's snapshot tree", |h| has_label(h, &docs));
    click(&mut h, &docs);
    let dest = w.dir.path().join("new-computer");
    h.state_mut()
        .push(Action::Picked(Purpose::RestoreDest, dest.clone()));
    h.step();
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore from the disk alone");
    assert!(m.ok, "{m:?}");
    assert!(
        h.state().asking_passphrase_for().is_none(),
        "asked once for the listing and the restore"
    );
    assert_eq!(
        std::fs::read(dest.join("docs/sub/b.txt")).unwrap(),
        b"first b"
    );
}
