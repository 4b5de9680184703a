//! The real binary's packaging side: the hidden asset commands, the log
//! file under `$COFFER_DATA_DIR/logs/`, and `--verbose`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use coffer_tests::{World, both, code};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

#[test]
fn completions_and_man_are_hidden_but_work() {
    let w = World::new();
    let help = w.run(exe(), &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        !help.contains("completions") && !help.contains("man "),
        "{help}"
    );

    let bash = w.run(exe(), &["completions", "bash"]);
    assert_eq!(code(&bash), 0, "{}", both(&bash));
    assert!(String::from_utf8_lossy(&bash.stdout).contains("complete -F _coffer"));

    let json = w.run(exe(), &["--json", "completions", "fish"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(
        v["result"]["script"]
            .as_str()
            .unwrap()
            .contains("complete -c coffer")
    );

    let man = w.run(exe(), &["man"]);
    assert_eq!(code(&man), 0, "{}", both(&man));
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH coffer 1"));

    let bad = w.run(exe(), &["completions", "tcsh"]);
    assert_eq!(code(&bad), 2, "{}", both(&bad));

    // Build-time commands leave no log behind.
    assert!(!w.data_dir().join("logs").exists());
}

#[test]
fn man_out_dir_writes_every_page() {
    let w = World::new();
    let dir = w.dir.path().join("man");
    let o = w.run(exe(), &["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", both(&o));
    for page in ["coffer.1", "coffer-sync.1", "coffer-disk-init.1"] {
        assert!(dir.join(page).is_file(), "{page}: {}", both(&o));
    }
}

#[test]
fn each_command_logs_its_start_outcome_and_errors() {
    let w = World::new();
    let ok = w.run(exe(), &["source", "list"]);
    assert_eq!(code(&ok), 0, "{}", both(&ok));
    assert!(
        !String::from_utf8_lossy(&ok.stderr).contains("started"),
        "without --verbose nothing is echoed: {}",
        both(&ok)
    );
    let missing = w.home().join("no-such-folder");
    let bad = w.run(exe(), &["source", "add", missing.to_str().unwrap()]);
    assert_eq!(code(&bad), 1, "{}", both(&bad));

    let log = std::fs::read_to_string(w.data_dir().join("logs/coffer.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    assert!(lines[0].contains("INFO") && lines[0].ends_with("started: coffer source list"));
    assert!(lines[1].ends_with("finished: exit 0 (Ok)"), "{log}");
    assert!(lines[2].contains("started: coffer source add"), "{log}");
    assert!(
        lines[3].contains("ERROR") && lines[3].contains("no-such-folder"),
        "{log}"
    );
    assert!(lines[4].ends_with("finished: exit 1 (Failed)"), "{log}");
}

#[test]
fn verbose_echoes_info_lines_on_stderr() {
    let w = World::new();
    let o = w.run(exe(), &["--verbose", "source", "list"]);
    assert_eq!(code(&o), 0, "{}", both(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("coffer: started: coffer --verbose source list"),
        "{}",
        both(&o)
    );
    assert!(err.contains("coffer: finished: exit 0"), "{}", both(&o));
}
