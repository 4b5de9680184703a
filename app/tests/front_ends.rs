//! The window and the command line give the same outcome: both call the job
//! service, and this checks what a user would see of it on disk. Two worlds
//! are built alike (two disks of this backup set, one disk of another set
//! that another computer synced, one plain folder); one is driven through
//! the real window (egui_kittest, by label), the other through the real
//! `coffer` binary, and the disks are compared.
#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer::gui::CofferApp;
use coffer_core::config::{Config, Paths, Source};
use coffer_core::volumes::MountSource;
use coffer_core::{Catalog, Disk, ObjectId};
use coffer_tests::hostile::Watched;
use coffer_tests::{World, assert_catalog_opens, assert_store_consistent, both, bytes, code};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

fn paths(w: &World) -> Paths {
    Paths {
        config_dir: w.config_dir(),
        data_dir: w.data_dir(),
    }
}

/// The files of the source, the same in every world.
fn files() -> Vec<(String, Vec<u8>)> {
    (0..12)
        .map(|i| {
            (
                format!("docs/d{}/f{i}.bin", i % 3),
                bytes(i, 3_000 + 1_000 * i as usize),
            )
        })
        .collect()
}

/// The file whose copy on Blue is damaged before the verify.
const DAMAGED: usize = 5;

/// A world with the source `docs`, disks "Blue" and "Red" of its backup set,
/// "Green" of another set (set up and synced by another computer, so it
/// holds objects and catalog copies of its own), and a plain folder.
struct Scene {
    w: World,
    /// The other computer, kept so its disk's contents stay its own.
    _other: World,
    blue: PathBuf,
    red: PathBuf,
    green: PathBuf,
    plain: PathBuf,
}

fn scene() -> Scene {
    let w = World::new();
    let mut cfg = Config::load_or_default(&paths(&w)).unwrap();
    cfg.profile.basepath = w.home();
    for (rel, body) in files() {
        w.write(&rel, body);
    }
    cfg.profile
        .add_source(Source {
            path: w.home().join("docs"),
            excludes: Vec::new(),
            copies: None,
            priority: 0,
            outside_basepath: false,
        })
        .unwrap();
    cfg.save(&paths(&w)).unwrap();
    let init = |name: &str, label: &str| {
        let root = w.plug(name);
        Disk::init(
            &root,
            label,
            cfg.profile.set_id,
            None,
            coffer_core::disk::io::real(),
        )
        .unwrap();
        root
    };
    let blue = init("blue", "Blue");
    let red = init("red", "Red");
    let other = World::new();
    other.write("papers/theirs.txt", "their file");
    let theirs = other.plug("green");
    for args in [
        vec![
            "source",
            "add",
            other.home().join("papers").to_str().unwrap(),
        ],
        vec!["disk", "init", theirs.to_str().unwrap(), "--label", "Green"],
        vec!["sync"],
    ] {
        let o = other.run(exe(), &args);
        assert_eq!(code(&o), 0, "the other computer's {args:?}: {}", both(&o));
    }
    let green = w.mounts().join("green");
    std::fs::rename(&theirs, &green).unwrap();
    let plain = w.plug("usb");
    std::fs::write(plain.join("holiday.jpg"), "not a backup").unwrap();
    Scene {
        w,
        _other: other,
        blue,
        red,
        green,
        plain,
    }
}

impl Scene {
    /// Everything that must never change: the other set's disk and the
    /// plain folder, hashed.
    fn watched(&self) -> Watched {
        Watched::of(&[&self.green, &self.plain])
    }

    fn snapshots(&self) -> usize {
        Catalog::open(&paths(&self.w).catalog_file())
            .unwrap()
            .snapshots()
            .unwrap()
            .len()
    }

    /// Overwrites Blue's copy of the `DAMAGED` file with other bytes of the
    /// same length; returns its object.
    fn damage_blue(&self) -> ObjectId {
        let body = &files()[DAMAGED].1;
        let id = ObjectId::of(body);
        let file = find(&self.blue.join("coffer/objects"), &id.to_string())
            .unwrap_or_else(|| panic!("no object {id} on Blue"));
        std::fs::write(&file, vec![0x5a; body.len()]).unwrap();
        id
    }
}

/// The file named `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if e.file_name() == name {
            return Some(p);
        }
    }
    None
}

/// The disk's newest catalog copy: its generation, and what it says the
/// disk holds (object, verified or not).
fn catalog_copy(root: &Path) -> (u64, BTreeMap<ObjectId, bool>) {
    let disk = Disk::open(root, coffer_core::disk::io::real()).unwrap();
    let (slot, meta) = disk.newest_catalog().unwrap();
    let copy = Catalog::open_copy(&slot).unwrap();
    let held = copy
        .copies_on(disk.id())
        .unwrap()
        .into_iter()
        .map(|c| (c.hash, c.verified_at.is_some()))
        .collect();
    (meta.generation, held)
}

/// What moved aside on a disk.
fn moved_aside(root: &Path) -> usize {
    std::fs::read_dir(root.join("coffer/bad-objects")).map_or(0, |d| d.count())
}

// ------------------------------------------------------------------ window

fn harness(w: &World) -> Harness<'static, CofferApp> {
    let app = CofferApp::new(paths(w), MountSource::TestRoot(w.mounts()))
        .unwrap()
        .with_folder_chooser_in_window();
    Harness::builder()
        .with_size(egui::vec2(1200.0, 900.0))
        .build_ui_state(
            |ui, app: &mut CofferApp| {
                app.logic(ui.ctx());
                app.draw(ui);
            },
            app,
        )
}

fn step_until(
    h: &mut Harness<'_, CofferApp>,
    what: &str,
    done: impl Fn(&Harness<'_, CofferApp>) -> bool,
) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn enabled(h: &Harness<'_, CofferApp>, label: &str) -> bool {
    h.query_by_label(label)
        .is_some_and(|n| !n.accesskit_node().is_disabled())
}

fn click_and_wait(h: &mut Harness<'_, CofferApp>, label: &str) -> coffer::gui::Message {
    h.get_by_label(label).click();
    // One frame takes the click and starts the job.
    h.step();
    h.step();
    step_until(h, &format!("the end of \"{label}\""), |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    h.state().message().unwrap().clone()
}

/// Waits for the disk cards and for "Sync all" to be ready.
fn ready(h: &mut Harness<'_, CofferApp>) {
    step_until(h, "both cards and Sync all", |h| {
        enabled(h, "Sync Blue") && enabled(h, "Sync Red") && enabled(h, "Sync all connected disks")
    });
    assert!(
        h.query_by_label("Sync Green").is_none(),
        "the other set's disk has no card"
    );
}

// -------------------------------------------------------------------- both

/// What a sync of every connected disk left: each disk's objects.
struct Synced {
    blue: BTreeMap<ObjectId, u64>,
    red: BTreeMap<ObjectId, u64>,
}

fn check_synced(s: &Scene, watched: &mut Watched, who: &str) -> Synced {
    let changed = watched.changes();
    assert!(
        changed.is_empty(),
        "{who}: the other set's disk or the plain folder changed: {changed:?}"
    );
    assert_eq!(s.snapshots(), 1, "{who}: one scan for both disks");
    let want: std::collections::BTreeSet<ObjectId> =
        files().iter().map(|(_, b)| ObjectId::of(b)).collect();
    let blue = assert_store_consistent(&s.blue);
    let red = assert_store_consistent(&s.red);
    for (name, held) in [("Blue", &blue), ("Red", &red)] {
        // Two copies wanted, two disks: each holds every file.
        let got: std::collections::BTreeSet<ObjectId> = held.keys().copied().collect();
        assert_eq!(got, want, "{who}: what {name} holds");
    }
    assert_catalog_opens(&s.blue);
    assert_catalog_opens(&s.red);
    Synced { blue, red }
}

/// What a verify of Blue left: the damaged object, the catalog copy's
/// generation before and after and what it lists then.
struct Verified {
    before: u64,
    after: u64,
    listed: BTreeMap<ObjectId, bool>,
    bad: ObjectId,
}

fn check_verified(s: &Scene, v: &Verified, who: &str) {
    assert!(
        v.after > v.before,
        "{who}: Blue's catalog copy was not rewritten (generation {} → {})",
        v.before,
        v.after
    );
    assert!(
        !v.listed.contains_key(&v.bad),
        "{who}: Blue's catalog copy still lists the bad object"
    );
    assert_eq!(
        v.listed.len(),
        files().len() - 1,
        "{who}: Blue's catalog copy lists every good object"
    );
    assert!(
        v.listed.values().all(|verified| *verified),
        "{who}: Blue's catalog copy says each good object was verified"
    );
    assert_eq!(moved_aside(&s.blue), 1, "{who}: the bad object moved aside");
}

#[test]
fn the_window_and_the_cli_sync_every_disk_of_the_set_and_verify_alike() {
    // The window.
    let win = scene();
    let mut watched = win.watched();
    let mut h = harness(&win.w);
    ready(&mut h);
    let m = click_and_wait(&mut h, "Sync all connected disks");
    assert!(m.ok, "{m:?}");
    assert_eq!(m.title, "Sync of 2 disks done", "{m:?}");
    let by_window = check_synced(&win, &mut watched, "window");
    let bad = win.damage_blue();
    let (before, _) = catalog_copy(&win.blue);
    step_until(&mut h, "Verify Blue", |h| enabled(h, "Verify Blue"));
    let m = click_and_wait(&mut h, "Verify Blue");
    assert!(!m.ok, "{m:?}");
    assert!(m.title.ends_with(": 1 bad, 0 missing"), "{m:?}");
    let (after, listed) = catalog_copy(&win.blue);
    let window_verify = Verified {
        before,
        after,
        listed,
        bad,
    };
    check_verified(&win, &window_verify, "window");
    assert!(
        watched.changes().is_empty(),
        "window: verify wrote elsewhere"
    );

    // The command line.
    let cli = scene();
    let mut watched = cli.watched();
    let o = cli.w.run(exe(), &["--json", "sync"]);
    assert_eq!(code(&o), 0, "coffer sync: {}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let labels: Vec<&str> = v["result"]["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Blue", "Red"], "{v}");
    let by_cli = check_synced(&cli, &mut watched, "CLI");
    let bad = cli.damage_blue();
    let (before, _) = catalog_copy(&cli.blue);
    let o = cli.w.run(exe(), &["--json", "verify", "Blue"]);
    assert_eq!(code(&o), 1, "a bad object fails the verify: {}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["result"][0]["report"]["bad"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    let (after, listed) = catalog_copy(&cli.blue);
    let cli_verify = Verified {
        before,
        after,
        listed,
        bad,
    };
    check_verified(&cli, &cli_verify, "CLI");
    assert!(watched.changes().is_empty(), "CLI: verify wrote elsewhere");

    // The same outcome.
    assert_eq!(by_window.blue, by_cli.blue, "Blue after the sync");
    assert_eq!(by_window.red, by_cli.red, "Red after the sync");
    assert_eq!(
        window_verify.listed, cli_verify.listed,
        "Blue's catalog copy after the verify"
    );
    assert_eq!(
        window_verify.after - window_verify.before,
        cli_verify.after - cli_verify.before,
        "catalog copies written by the verify"
    );
}
