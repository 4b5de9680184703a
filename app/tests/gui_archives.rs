//! The Archives tab, driven by role and label with egui_kittest over a
//! temp world: writing, listing and verifying an archive, restoring from a
//! full and incremental chain, what exists at the destination, and a
//! damaged archive.
#![allow(clippy::unwrap_used)]

mod common;

use coffer::gui::{CofferApp, Purpose};
use coffer_core::config::Config;
use coffer_tests::World;
use common::gui::{
    click, config, harness, has_label, has_label_containing, step_until, wait_for_message,
};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

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
