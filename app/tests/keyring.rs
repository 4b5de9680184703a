//! The desktop keyring against a real Secret Service: gnome-keyring in a
//! D-Bus session of the test's own (`dbus-run-session`), its login keyring
//! unlocked with a known password and kept in the test's temp world, so
//! the user's real keyring is never read or written.
//!
//! The command line remembers a passphrase (`coffer disk
//! remember-passphrase`), takes it from the keyring when nothing else gives
//! one, and forgets it (`coffer disk forget-passphrase`). A missing `gnome-keyring-daemon` or `dbus-run-session` is a
//! failure that says how to install them, never a skipped test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use coffer_tests::{World, both, code};
use common::gui::{config, plugged_encrypted_disk};

const PASS: &str = "correct horse battery staple";

/// A command that runs `script` (sh) in a new D-Bus session whose keyring
/// is unlocked; `$COFFER` is the binary. The keyring's files live in `w`.
fn in_session(w: &World, script: &str) -> Command {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} is missing: run scripts/setup.sh (Debian: apt-get install dbus-daemon gnome-keyring)"
        );
    }
    let keyring_home = w.dir.path().join("keyring");
    for d in ["data", "cache", "run"] {
        std::fs::create_dir_all(keyring_home.join(d)).unwrap();
    }
    let mut c = Command::new("dbus-run-session");
    c.args(["--", "sh", "-c"]).arg(format!(
        "printf %s test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n{script}"
    ));
    w.env(&mut c);
    c.env_remove("COFFER_KEYRING")
        .env("COFFER", common::exe())
        .env("XDG_DATA_HOME", keyring_home.join("data"))
        .env("XDG_CACHE_HOME", keyring_home.join("cache"))
        .env("XDG_RUNTIME_DIR", keyring_home.join("run"));
    c
}

/// `KEY=code` lines a script printed, as (key, code).
fn codes(o: &Output) -> Vec<(String, i32)> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("exit "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect()
}

/// An encrypted disk "Blue" of the world's set, known to its catalog.
fn blue(w: &World) -> std::path::PathBuf {
    let cfg = config(w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let root = plugged_encrypted_disk(w, &cfg, "blue", "Blue", PASS);
    let cat = coffer_core::Catalog::open(&common::gui::paths(w).catalog_file()).unwrap();
    let disk = coffer_core::Disk::open(&root, coffer_core::disk::io::real()).unwrap();
    cat.register(&disk, Some(0)).unwrap();
    root
}

#[test]
fn the_command_line_remembers_uses_and_forgets_a_passphrase() {
    let w = World::new();
    blue(&w);
    // Each sync runs in a session of its own (setsid), so no terminal can
    // be asked: only the keyring can unlock the disk.
    let script = format!(
        "COFFER_PASSPHRASE='{PASS}' \"$COFFER\" disk remember-passphrase Blue; echo \"exit remember=$?\"\n\
         setsid -w \"$COFFER\" sync; echo \"exit sync=$?\"\n\
         \"$COFFER\" disk forget-passphrase Blue; echo \"exit forget=$?\"\n\
         \"$COFFER\" disk forget-passphrase Blue; echo \"exit again=$?\"\n\
         setsid -w \"$COFFER\" sync; echo \"exit locked=$?\"\n"
    );
    let o = in_session(&w, &script).output().unwrap();
    let out = both(&o);
    let codes = codes(&o);
    let code_of = |k: &str| codes.iter().find(|(n, _)| n == k).map(|(_, c)| *c);
    assert_eq!(code_of("remember"), Some(0), "{out}");
    assert!(
        out.contains("The passphrase of disk \"Blue\" is kept in the desktop keyring"),
        "{out}"
    );
    assert_eq!(code_of("sync"), Some(0), "the keyring unlocked it\n{out}");
    assert_eq!(code_of("forget"), Some(0), "{out}");
    assert!(
        out.contains("The passphrase of disk \"Blue\" is no longer kept in the desktop keyring"),
        "{out}"
    );
    assert_eq!(code_of("again"), Some(0), "{out}");
    assert!(
        out.contains("The desktop keyring kept no passphrase for disk \"Blue\""),
        "{out}"
    );
    assert_ne!(
        code_of("locked"),
        Some(0),
        "forgotten: the disk stays locked\n{out}"
    );
    assert!(out.contains("is encrypted; give its passphrase"), "{out}");
}

#[test]
fn a_keyring_that_is_not_there_is_skipped() {
    let w = World::new();
    blue(&w);
    // No session bus at all: the keyring is skipped, and the disk stays
    // locked as it would without one (the job says so; nothing crashes).
    let mut c = Command::new("setsid");
    c.args(["-w"]).arg(common::exe()).arg("sync");
    w.env(&mut c);
    c.env_remove("COFFER_KEYRING").env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/coffer-test-bus",
    );
    let o = c.output().unwrap();
    assert_ne!(code(&o), 0, "{}", both(&o));
    assert!(
        both(&o).contains("is encrypted; give its passphrase"),
        "{}",
        both(&o)
    );
    let log = std::fs::read_to_string(common::gui::log_file(&w)).unwrap_or_default();
    assert!(log.contains("keyring skipped for disk"), "{log}");
}
