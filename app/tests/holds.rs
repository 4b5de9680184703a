//! What a source holds that a FAT32 disk cannot keep, said by `coffer
//! status` and on the disk's card in the window: hard links, symlinks,
//! private and executable modes, names FAT cannot hold and names that
//! differ only in case, in a source synced to a real FAT32 file system
//! (the kernel's vfat, or fusefat).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use coffer_tests::World;
use coffer_tests::mount::Mount;
use common::gui::{harness, has_label_containing, step_until};
use common::{json, ok};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

const SAID: &str = "2 hard links, 1 symlink and 2 files and folders with private or executable modes; A (FAT32) cannot hold links, symlinks or Unix modes: the disk keeps them in its catalog copy, a restore onto FAT32 loses them; 1 name FAT cannot hold and 2 names differing only in case: a restore onto FAT32 must rename them (--rename-collisions)";

#[test]
fn status_and_the_disk_card_say_what_a_fat32_disk_cannot_hold() {
    let w = World::new();
    let tree = w.home().join("tree");
    for (rel, mode) in [
        ("ok.txt", 0o644),
        ("run.sh", 0o755),
        ("secret", 0o600),
        ("what?.txt", 0o644),
        ("Notes", 0o644),
        ("notes", 0o644),
    ] {
        let p = w.write(&format!("tree/{rel}"), rel);
        chmod(&p, mode);
    }
    chmod(&tree, 0o755);
    std::fs::hard_link(tree.join("ok.txt"), tree.join("ok-link.txt")).unwrap();
    std::os::unix::fs::symlink("ok.txt", tree.join("link")).unwrap();
    ok(
        &w,
        &["source", "add", tree.to_str().unwrap(), "--copies", "1"],
    );
    let a = w.plug("A");
    let Some(_fat) = Mount::fat32(&a, 512) else {
        eprintln!(
            "skipped: no FAT32 file system can be mounted here (needs root, and vfat or fusefat)"
        );
        return;
    };
    ok(&w, &["disk", "init", a.to_str().unwrap(), "--label", "A"]);
    ok(&w, &["sync", "A"]);

    let text = ok(&w, &["status"]);
    let line = format!("  {}: {SAID}", tree.display());
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
    let (code, v) = json(&w, &["status"]);
    assert_eq!(code, 0, "{v}");
    let limits = v["result"]["limits"].as_array().unwrap();
    assert_eq!(limits.len(), 1, "{v}");
    assert_eq!(limits[0]["fs"], "FAT32");
    assert_eq!(limits[0]["message"], SAID);
    let h = &v["result"]["holdings"][0];
    assert_eq!(
        (
            &h["hard_links"],
            &h["symlinks"],
            &h["modes"],
            &h["fat_names"],
            &h["case_clashes"]
        ),
        (&2.into(), &1.into(), &2.into(), &1.into(), &2.into()),
        "{h}"
    );

    // The window's card for A says the same.
    let mut h = harness(&w);
    let shown = format!("{}: {SAID}", tree.display());
    step_until(&mut h, "the card's line on what A cannot hold", |h| {
        has_label_containing(h, &shown)
    });
}
