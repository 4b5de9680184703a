#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! The text of real failures, pinned by snapshots (`insta`): what the CLI
//! prints and what the window shows, each cause once. Every failure is
//! made for real (a disk of another set, a symlink where Coffer keeps its
//! objects, a wrong passphrase, a disk too small); only the temporary
//! folder's name is replaced in the text.

mod common;

use coffer_core::Catalog;
use coffer_tests::{World, bytes, code};
use common::gui::{config, harness, paths, plugged_disk, wait_for_message};
use common::{exe, ok};

/// `coffer ARGS` that must fail with `want`: its stderr, the world's
/// folder written as `[world]`.
fn fails(w: &World, args: &[&str], want: i32) -> String {
    let o = w.run(exe(), args);
    assert_eq!(code(&o), want, "coffer {args:?}");
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    text.replace(&*w.dir.path().to_string_lossy(), "[world]")
}

/// A world with `docs` as its source (two files) and a disk `name`.
fn world_with_disk(name: &str) -> (World, std::path::PathBuf) {
    let w = World::new();
    w.write("docs/a.txt", bytes(1, 3000));
    w.write("docs/b.txt", bytes(2, 5000));
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let d = w.plug(name);
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Blue"],
    );
    (w, d)
}

#[test]
fn the_cli_says_each_failure_once_in_plain_words() {
    // No disk plugged in.
    let w = World::new();
    w.write("docs/a.txt", "a");
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    insta::assert_snapshot!("no_disk", fails(&w, &["sync"], 1));
    insta::assert_snapshot!("unknown_disk", fails(&w, &["sync", "Green"], 1));

    // A disk of another backup set.
    let (w, d) = world_with_disk("d1");
    let other = World::new();
    other.write("x/y", "y");
    ok(
        &other,
        &["source", "add", other.home().join("x").to_str().unwrap()],
    );
    let theirs = other.plug("theirs");
    ok(
        &other,
        &[
            "disk",
            "init",
            theirs.to_str().unwrap(),
            "--label",
            "Theirs",
        ],
    );
    let moved = w.mounts().join("theirs");
    std::fs::rename(&theirs, &moved).unwrap();
    insta::assert_snapshot!(
        "other_set",
        fails(&w, &["sync", moved.to_str().unwrap()], 1)
    );

    // A symlink where the disk keeps its objects.
    ok(&w, &["sync"]);
    let objects = d.join("coffer/objects");
    std::fs::rename(&objects, d.join("coffer/objects-real")).unwrap();
    std::os::unix::fs::symlink(w.dir.path().join("elsewhere"), &objects).unwrap();
    w.write("docs/c.txt", bytes(3, 4000));
    insta::assert_snapshot!("symlinked_objects", fails(&w, &["sync"], 1));
}

#[test]
fn the_cli_names_a_wrong_passphrase_and_a_disk_too_small() {
    let w = World::new();
    w.write("docs/a.txt", bytes(1, 300_000));
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let d = w.plug("travel");
    let mut c = w.command(
        exe(),
        &[
            "disk",
            "init",
            d.to_str().unwrap(),
            "--label",
            "Travel",
            "--encrypt",
            "--kdf-memory-mib",
            "8",
        ],
    );
    c.env("COFFER_PASSPHRASE", "right");
    assert_eq!(code(&c.output().unwrap()), 0);
    let mut c = w.command(exe(), &["sync"]);
    c.env("COFFER_PASSPHRASE", "wrong");
    let o = c.output().unwrap();
    assert_eq!(code(&o), 1);
    let text =
        String::from_utf8_lossy(&o.stderr).replace(&*w.dir.path().to_string_lossy(), "[world]");
    insta::assert_snapshot!("wrong_passphrase", text);

    // A quota that holds nothing of the file: the sync is incomplete (3)
    // and says what was left out and what to do.
    let w = World::new();
    w.write("docs/a.txt", bytes(1, 300_000));
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let d = w.plug("small");
    ok(
        &w,
        &[
            "disk",
            "init",
            d.to_str().unwrap(),
            "--label",
            "Small",
            "--quota",
            "100K",
        ],
    );
    let o = w.run(exe(), &["sync"]);
    assert_eq!(code(&o), 3);
    // The sentence is in the report on stdout; stderr says it again only
    // because stdout is not a terminal here (a script's case).
    let text = format!(
        "stdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
    .replace(&*w.dir.path().to_string_lossy(), "[world]");
    insta::assert_snapshot!("quota_too_small", text);
}

#[test]
fn the_window_says_the_same_failure_once() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let root = plugged_disk(&w, &cfg, "blue", "Blue", None);
    std::fs::create_dir_all(root.join("coffer")).unwrap();
    let objects = root.join("coffer/objects");
    if objects.exists() {
        std::fs::remove_dir_all(&objects).unwrap();
    }
    std::os::unix::fs::symlink(w.dir.path().join("elsewhere"), &objects).unwrap();
    let catalog = Catalog::open(&paths(&w).catalog_file()).unwrap();
    let disk = coffer_core::Disk::open(&root, coffer_core::disk::io::real()).unwrap();
    let mut row = catalog.register(&disk, None).unwrap();
    row.auto_sync = true;
    catalog.upsert_disk(&row).unwrap();
    drop((catalog, disk));
    let mut h = harness(&w);
    let m = wait_for_message(&mut h, "the sync on opening");
    assert!(!m.ok, "{m:?}");
    let text = format!("{}\n{}", m.title, m.details.join("\n"))
        .replace(&*w.dir.path().to_string_lossy(), "[world]");
    insta::assert_snapshot!("window_symlinked_objects", text);
}
