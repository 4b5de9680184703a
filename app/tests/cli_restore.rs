#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! `coffer restore` and friends, the real binary over a temp world.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coffer_tests::{World, both, bytes, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");

fn run(w: &World, args: &[&str]) -> std::process::Output {
    w.run(Path::new(EXE), args)
}

fn ok(w: &World, args: &[&str]) -> std::process::Output {
    let o = run(w, args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    o
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Ten files under home/docs, one copy each, split over disks A (small) and B.
fn world_over_two_disks() -> World {
    let w = World::new();
    for i in 0..10 {
        w.write(&format!("docs/sub{}/f{i}.bin", i % 2), bytes(i, 4000));
    }
    w.write("docs/élan ☕.txt", "unicode");
    let docs = w.home().join("docs");
    ok(
        &w,
        &["source", "add", docs.to_str().unwrap(), "--copies", "1"],
    );
    let a = w.plug("A");
    let b = w.plug("B");
    ok(
        &w,
        &[
            "disk",
            "init",
            a.to_str().unwrap(),
            "--label",
            "A",
            "--quota",
            "20000",
        ],
    );
    ok(&w, &["disk", "init", b.to_str().unwrap(), "--label", "B"]);
    // A first (it fills up), then B takes the rest.
    let o = run(&w, &["sync", "A"]);
    assert!(matches!(code(&o), 0 | 3), "{}", both(&o));
    ok(&w, &["sync", "B", "--no-scan"]);
    w
}

#[test]
fn restore_with_both_disks_gives_an_identical_tree() {
    let w = world_over_two_disks();
    let docs = w.home().join("docs");
    let out = w.dir.path().join("out");
    ok(
        &w,
        &[
            "restore",
            docs.to_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(files(&docs), files(&out.join("docs")));

    // Listing commands see the same backup.
    let o = ok(&w, &["snapshots"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("11 files"),
        "{}",
        both(&o)
    );
    let o = ok(&w, &["find", "*.txt"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("élan ☕.txt"),
        "{}",
        both(&o)
    );
    let o = ok(&w, &["ls", docs.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("sub0/"),
        "{}",
        both(&o)
    );
    let f0 = docs.join("sub0/f0.bin");
    let o = ok(&w, &["versions", f0.to_str().unwrap()]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("on: A") || s.contains("on: B"), "{s}");
    let o = ok(&w, &["--json", "whereis", docs.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["files"], 11);
    assert_eq!(v["result"]["by_copies"][1], 11, "{v}");

    // Without --to: back to the original place, nothing else touched.
    let before = std::fs::read(&f0).unwrap();
    std::fs::remove_file(&f0).unwrap();
    ok(&w, &["restore", f0.to_str().unwrap()]);
    assert_eq!(std::fs::read(&f0).unwrap(), before);
    // A changed file there is a conflict, refused.
    std::fs::write(&f0, "edited").unwrap();
    let o = run(&w, &["restore", docs.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert_eq!(std::fs::read(&f0).unwrap(), b"edited");
}

#[test]
fn a_missing_disk_exits_3_and_names_the_disk_to_plug_in() {
    let w = world_over_two_disks();
    w.unplug("B");
    let out = w.dir.path().join("out");
    let o = run(&w, &["restore", "--to", out.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    assert!(both(&o).contains("plug in \"B\""), "{}", both(&o));

    // Plugged in, the same command finishes the job.
    w.replug("B");
    let o = ok(&w, &["restore", "--to", out.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("already there"),
        "{}",
        both(&o)
    );
    assert_eq!(files(&w.home().join("docs")), files(&out.join("docs")));
}

#[test]
fn json_output_has_the_report() {
    let w = world_over_two_disks();
    let out = w.dir.path().join("out");
    let o = ok(&w, &["--json", "restore", "--to", out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit"], 0);
    assert_eq!(v["result"]["files"], 11);
    assert_eq!(v["result"]["missing_files"], 0);
    assert!(v["result"]["plug_next"].as_array().unwrap().is_empty());
    assert!(v["result"]["snapshot"].as_i64().unwrap() >= 1);
}

#[test]
fn a_conflict_is_refused_and_named() {
    let w = world_over_two_disks();
    let out = w.dir.path().join("out");
    let mine = out.join("docs/sub1/f1.bin");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, "mine").unwrap();
    let o = run(&w, &["restore", "--to", out.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(both(&o).contains(mine.to_str().unwrap()), "{}", both(&o));
    assert_eq!(std::fs::read(&mine).unwrap(), b"mine");
    assert_eq!(files(&out).len(), 1, "nothing else written");

    ok(
        &w,
        &["restore", "--to", out.to_str().unwrap(), "--overwrite"],
    );
    assert_eq!(files(&w.home().join("docs")), files(&out.join("docs")));
}

#[test]
fn from_disk_alone_needs_no_local_catalog() {
    let w = world_over_two_disks();
    // A's catalog copy must know B's copies: sync A once more.
    let o = run(&w, &["sync", "A", "--no-scan"]);
    assert!(matches!(code(&o), 0 | 3), "{}", both(&o));
    let want = files(&w.home().join("docs"));
    std::fs::remove_dir_all(w.data_dir()).unwrap();
    std::fs::remove_dir_all(w.config_dir()).unwrap();
    std::fs::remove_dir_all(w.home()).unwrap();
    let a = w.mounts().join("A");
    w.unplug("B");
    let out = w.dir.path().join("rescued");
    let o = run(
        &w,
        &[
            "restore",
            "--from-disk",
            a.to_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 3, "{}", both(&o));
    assert!(both(&o).contains("plug in \"B\""), "{}", both(&o));
    assert!(
        !w.data_dir().join("catalog.sqlite").exists(),
        "no local catalog was created"
    );
    let b = w.replug("B");
    ok(
        &w,
        &[
            "restore",
            "--from-disk",
            b.to_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(want, files(&out.join("docs")));
}

#[test]
fn wait_continues_when_the_next_disk_is_plugged_in() {
    let w = world_over_two_disks();
    w.unplug("B");
    let out = w.dir.path().join("out");
    let child = w
        .command(
            Path::new(EXE),
            &["restore", "--wait", "--to", out.to_str().unwrap()],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first part is written (A's files), plug B in.
    let docs = w.home().join("docs");
    for _ in 0..1200 {
        if out.join("docs").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.replug("B");
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", both(&o));
    assert!(both(&o).contains("waiting for \"B\""), "{}", both(&o));
    assert_eq!(files(&docs), files(&out.join("docs")));
}

#[test]
fn a_catalog_read_from_a_disk_drops_special_bits_unless_kept() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let tool = w.write("docs/tool", "#!/bin/sh\n");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let a = w.plug("A");
    ok(&w, &["disk", "init", a.to_str().unwrap(), "--label", "A"]);
    ok(&w, &["sync", "A"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let out = w.dir.path().join("own");
    ok(&w, &["restore", "--to", out.to_str().unwrap()]);
    assert_eq!(
        mode(&out.join("docs/tool")),
        0o4755,
        "this computer's catalog"
    );
    for (flag, want) in [(None, 0o755), (Some("--keep-special-bits"), 0o4755)] {
        let to = w.dir.path().join(format!("from-disk-{}", flag.is_some()));
        let mut args = vec!["restore", "--from-disk", a.to_str().unwrap(), "--to"];
        args.push(to.to_str().unwrap());
        args.extend(flag);
        ok(&w, &args);
        assert_eq!(mode(&to.join("docs/tool")), want, "{flag:?}");
    }
}

#[test]
fn keep_both_restores_beside_an_existing_file_and_a_second_run_adds_nothing() {
    let w = World::new();
    w.write("docs/report.pdf", b"the backed-up report");
    w.write("docs/same.txt", b"unchanged");
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let d = w.plug("blue");
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Blue"],
    );
    ok(&w, &["sync"]);
    let out = w.dir.path().join("out");
    ok(&w, &["restore", "--to", out.to_str().unwrap()]);
    let docs = out.join("docs");
    std::fs::write(docs.join("report.pdf"), b"my own edit").unwrap();
    // Refused by default; kept both when asked.
    assert_eq!(
        code(&run(&w, &["restore", "--to", out.to_str().unwrap()])),
        1
    );
    let o = ok(
        &w,
        &["restore", "--to", out.to_str().unwrap(), "--keep-both"],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("report (restored).pdf"), "{text}");
    assert_eq!(
        std::fs::read(docs.join("report.pdf")).unwrap(),
        b"my own edit"
    );
    assert_eq!(
        std::fs::read(docs.join("report (restored).pdf")).unwrap(),
        b"the backed-up report"
    );
    assert!(
        !docs.join("same (restored).txt").exists(),
        "an identical file is left as it is"
    );
    // Again: the kept copy is found, not written a second time.
    ok(
        &w,
        &["restore", "--to", out.to_str().unwrap(), "--keep-both"],
    );
    assert!(!docs.join("report (restored 2).pdf").exists());
    let names: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn a_dry_run_says_what_a_restore_would_do_and_writes_nothing() {
    let w = world_over_two_disks();
    let out = w.dir.path().join("out");
    let to = out.to_str().unwrap();
    let history = |w: &World| {
        let o = ok(w, &["--json", "history"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["result"]["jobs"].as_array().unwrap().len()
    };
    let jobs = history(&w);

    // Both disks: the whole plan could run, exit 0, nothing written.
    let o = ok(&w, &["restore", "--to", to, "--dry-run"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("Restores 11 files ("), "{text}");
    assert!(text.contains("does not exist yet"), "{text}");
    assert!(text.contains("Nothing was written (--dry-run)"), "{text}");
    assert!(!out.exists(), "not even the destination folder was made");
    assert_eq!(history(&w), jobs, "a dry run is no job in the history");

    // B unplugged: the exit code a restore would give, and B named.
    w.unplug("B");
    let o = run(&w, &["--json", "restore", "--to", to, "--dry-run"]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let plan = &v["result"]["plan"];
    assert_eq!(v["result"]["dry_run"], true);
    assert_eq!(plan["plug_next"][0]["label"], "B", "{v}");
    let (planned, missing) = (plan["files"].clone(), plan["missing_files"].clone());
    assert_eq!(
        planned.as_u64().unwrap() + missing.as_u64().unwrap(),
        11,
        "{v}"
    );
    assert!(!out.exists());

    // The run then does what the plan said.
    let o = run(&w, &["--json", "restore", "--to", to]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["files"], planned, "{v}");
    assert_eq!(v["result"]["missing_files"], missing, "{v}");

    // A changed file: refused as the run would refuse it, then planned
    // beside it with --keep-both; nothing written either time.
    w.replug("B");
    let mine = out.join("docs/sub0/f0.bin");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, "mine").unwrap();
    let before = files(&out);
    let o = run(&w, &["restore", "--to", to, "--dry-run"]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        both(&o).contains("already exist at the destination"),
        "{}",
        both(&o)
    );
    let o = ok(&w, &["restore", "--to", to, "--dry-run", "--keep-both"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("1 exists and will be kept as both"), "{text}");
    assert!(text.contains("(restored)"), "{text}");
    assert_eq!(files(&out), before, "nothing written");
}
