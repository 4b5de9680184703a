//! What a disk, a catalog or an archive says never reaches the terminal, the
//! log or the window raw: a disk label holding escape sequences and a line
//! break, and file names holding them too, through the real binary and the
//! real window.
#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use coffer::gui::CofferApp;
use coffer_core::config::{Config, Paths, Source};
use coffer_core::volumes::MountSource;
use coffer_tests::{World, both, code};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Clears the screen, homes the cursor, then starts a line of its own.
const LABEL: &str = "\u{1b}[2J\u{1b}[1;1H\nfake line";
/// The label as it must be shown.
const SHOWN: &str = "\\x1b[2J\\x1b[1;1H\\nfake line";
/// A source file whose name holds ESC and a newline.
const NAME: &str = "esc\u{1b}[31mred\nfake line.txt";

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

/// Fails if `bytes` hold anything a terminal would act on: ESC, NUL, DEL, a
/// C0 control other than a line break or tab, a C1 control, a
/// bidirectional override, or a line forged to start with "fake line".
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (i, b) in bytes.iter().enumerate() {
        let bad = (*b < 0x20 && *b != b'\n' && *b != b'\t') || *b == 0x7f;
        assert!(!bad, "{what}: raw byte {b:#04x} at {i}:\n{text}");
    }
    let spoof = |c: char| {
        c.is_control() && c != '\n' && c != '\t'
            || matches!(c as u32, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
    };
    assert!(!text.chars().any(spoof), "{what}: {text:?}");
    assert!(
        !text.lines().any(|l| l.starts_with("fake line")),
        "{what}: a forged line:\n{text}"
    );
}

/// Runs `coffer args`, checks both streams are clean and the exit code is
/// `want`; returns stdout.
fn run(w: &World, args: &[&str], want: i32) -> String {
    let o: Output = w.run(exe(), args);
    let what = format!("coffer {args:?}");
    assert_eq!(code(&o), want, "{what}\n{}", both(&o));
    assert_clean(&format!("{what} stdout"), &o.stdout);
    assert_clean(&format!("{what} stderr"), &o.stderr);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Rewrites the label in a disk's identity file, as a tampered disk would.
fn set_label(disk: &Path, label: &str) {
    let path = disk.join("coffer-disk.json");
    let mut id: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    id["label"] = label.into();
    std::fs::write(&path, serde_json::to_vec(&id).unwrap()).unwrap();
}

/// A source with a plain file and a hostile name, and a disk whose label
/// was tampered with.
fn hostile_world() -> (World, PathBuf, PathBuf) {
    let w = World::new();
    w.write("Docs/plain.txt", "plain");
    let hostile = w.write(&format!("Docs/{NAME}"), "hostile");
    let docs = w.home().join("Docs");
    run(&w, &["source", "add", docs.to_str().unwrap()], 0);
    let d = w.plug("evil");
    run(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Evil"],
        0,
    );
    set_label(&d, LABEL);
    (w, d, hostile)
}

#[test]
fn labels_and_names_from_disks_and_catalogs_are_escaped_on_the_terminal_and_in_the_log() {
    let (w, d, hostile) = hostile_world();
    let docs = w.home().join("Docs");
    let (docs_s, hostile_s) = (docs.to_str().unwrap(), hostile.to_str().unwrap());
    let out = run(&w, &["sync"], 0);
    assert!(out.contains(&format!("Synced \"{SHOWN}\"")), "{out}");
    let out = run(&w, &["verify"], 0);
    assert!(out.contains(&format!("Verified \"{SHOWN}\"")), "{out}");
    let out = run(&w, &["disks"], 0);
    assert!(out.starts_with(SHOWN), "{out}");
    run(&w, &["status"], 0);
    run(&w, &["ls"], 0);
    let out = run(&w, &["ls", docs_s], 0);
    assert!(out.contains("esc\\x1b[31mred\\nfake line.txt"), "{out}");
    let out = run(&w, &["find", "*fake*"], 0);
    assert!(out.contains("esc\\x1b[31mred\\nfake line.txt"), "{out}");
    let out = run(&w, &["versions", hostile_s], 0);
    assert!(out.contains(&format!("on: {SHOWN}")), "{out}");
    run(&w, &["whereis", docs_s], 0);
    // An error that names the connected disks, and the --verbose echo of a
    // command line holding the hostile name.
    run(&w, &["sync", "Nope"], 1);
    run(&w, &["--verbose", "versions", hostile_s], 0);

    // Restoring from the disk alone: shown escaped, written byte for byte.
    let to = w.dir.path().join("out");
    run(
        &w,
        &[
            "restore",
            "--from-disk",
            d.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(
        std::fs::read_to_string(to.join("Docs").join(NAME)).unwrap(),
        "hostile"
    );
    // JSON carries the original text, escaped by JSON's own rules.
    let o = w.run(exe(), &["--json", "disks"]);
    assert_clean("coffer --json disks", &o.stdout);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["disks"][0]["disk"]["label"], LABEL);

    let log = std::fs::read(w.data_dir().join("logs/coffer.log")).unwrap();
    assert_clean("the log", &log);
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains(SHOWN), "{log}");
    assert!(log.contains("esc\\x1b[31mred\\nfake line.txt"), "{log}");
}

#[test]
fn member_names_and_load_commands_from_an_archive_are_escaped() {
    let (w, _, _) = hostile_world();
    // A load command is stored in every archive's manifest and shown back
    // at restore.
    run(
        &w,
        &[
            "dump",
            "add",
            "db",
            "--command",
            "echo dumped",
            "--load",
            "psql\u{1b}[2J\nfake line",
        ],
        0,
    );
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let nas_s = nas.to_str().unwrap();
    run(&w, &["archive", "full", "--to", nas_s], 0);
    let out = run(&w, &["archive", "ls", nas_s], 0);
    assert!(out.starts_with("home-1  full"), "{out}");
    let file = nas.join("home-1.tar.gz");
    run(&w, &["archive", "verify", file.to_str().unwrap()], 0);
    let to = w.dir.path().join("restored");
    let out = run(
        &w,
        &[
            "archive",
            "restore",
            nas_s,
            "--at",
            "1",
            "--to",
            to.to_str().unwrap(),
        ],
        0,
    );
    assert!(
        out.contains("load it back with: psql\\x1b[2J\\nfake line <"),
        "{out}"
    );
    let restored: Vec<PathBuf> = walk(&to);
    assert!(
        restored.iter().any(|p| p.ends_with(NAME)),
        "the member keeps its exact name: {restored:?}"
    );
    assert_clean(
        "the log",
        &std::fs::read(w.data_dir().join("logs/coffer.log")).unwrap(),
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_file_name_that_is_not_utf8_is_shown_byte_for_byte_and_stops_nothing() {
    use std::os::unix::ffi::OsStrExt as _;
    let w = World::new();
    let docs = w.home().join("Docs");
    std::fs::create_dir_all(&docs).unwrap();
    let odd = docs.join(std::ffi::OsStr::from_bytes(b"bad\xff\x1b.bin"));
    std::fs::write(&odd, "x").unwrap();
    let docs_s = docs.to_str().unwrap();
    run(&w, &["source", "add", docs_s], 0);
    let d = w.plug("blue");
    run(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Blue"],
        0,
    );
    run(&w, &["sync"], 0);
    let shown = "bad\\xff\\x1b.bin";
    for args in [&["ls", docs_s][..], &["find", "*bad*"], &["status"]] {
        let out = run(&w, args, 0);
        assert!(args == ["status"] || out.contains(shown), "{args:?}: {out}");
    }
    let o = w.command(exe(), &["versions"]).arg(&odd).output().unwrap();
    assert_eq!(code(&o), 0, "{}", both(&o));
    assert_clean("coffer versions", &o.stdout);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(shown),
        "{}",
        both(&o)
    );
    // JSON strings cannot hold the name: a clear error, not a panic.
    let o = w.run(exe(), &["--json", "ls", docs_s]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("not UTF-8"), "{v}");

    // Archives leave the name out with a warning that names it.
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let o = w.run(exe(), &["archive", "full", "--to", nas.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    assert_clean("coffer archive full stderr", &o.stderr);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{shown}: ")), "{err}");
    assert!(!o.stderr.contains(&0xff), "{err}");
    let o = w.run(
        exe(),
        &["--json", "archive", "full", "--to", nas.to_str().unwrap()],
    );
    assert_eq!(code(&o), 3, "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let path = v["warnings"][0]["path"].as_str().unwrap();
    assert!(path.ends_with(shown), "{v}");
}

// ------------------------------------------------------------------ window

fn harness(w: &World) -> Harness<'static, CofferApp> {
    let paths = Paths {
        config_dir: w.config_dir(),
        data_dir: w.data_dir(),
    };
    let mut cfg = Config::load_or_default(&paths).unwrap();
    cfg.profile.basepath = w.home();
    std::fs::create_dir_all(w.home().join("Docs")).unwrap();
    cfg.profile
        .add_source(Source {
            path: w.home().join("Docs"),
            excludes: Vec::new(),
            copies: None,
            priority: 0,
            outside_basepath: false,
        })
        .unwrap();
    cfg.save(&paths).unwrap();
    let disk = w.plug("evil");
    coffer_core::Disk::init(
        &disk,
        "Evil",
        cfg.profile.set_id,
        None,
        coffer_core::disk::io::real(),
    )
    .unwrap();
    set_label(&disk, LABEL);
    let app = CofferApp::new(paths, MountSource::TestRoot(w.mounts())).unwrap();
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
    while !done(h) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No widget's label or value holds a control character.
fn assert_no_raw_controls(h: &Harness<'_, CofferApp>, view: &str) {
    let raw: Vec<String> = h
        .query_all_by(|n| {
            [n.label(), n.value()]
                .into_iter()
                .flatten()
                .any(|t| t.chars().any(char::is_control))
        })
        .map(|n| format!("{n:?}"))
        .collect();
    assert!(raw.is_empty(), "{view}: raw controls in {raw:?}");
}

#[test]
fn the_window_shows_a_hostile_label_escaped() {
    let w = World::new();
    let mut h = harness(&w);
    step_until(&mut h, "the disk card", |h| {
        h.query_by_label(SHOWN).is_some()
    });
    assert!(h.query_by_label(&format!("Sync {SHOWN}")).is_some());
    assert_no_raw_controls(&h, "Disks");
    // The Restore view offers the disk's own catalog by its label.
    h.get_by_label("Restore").click();
    let offer = format!("Restore from disk \"{SHOWN}\" alone");
    step_until(&mut h, "the offer to read the disk's catalog", |h| {
        h.query_by_label(&offer).is_some()
    });
    assert_no_raw_controls(&h, "Restore");
}
