//! The real `coffer` binary over real folders: exit codes, JSON, a sync
//! killed with SIGKILL, a disk in use, a full disk.
#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer_tests::{World, assert_catalog_opens, assert_store_consistent, both, bytes, code};
use serde_json::Value;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

fn ok(w: &World, args: &[&str]) -> String {
    let o = w.run(exe(), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(w: &World, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = w.run(exe(), &a);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(&o)));
    (code(&o), v)
}

/// A world with one source of `n` files of `size` bytes and one disk.
fn setup(n: usize, size: usize) -> (World, PathBuf) {
    let w = World::new();
    for i in 0..n {
        w.write(
            &format!("Photos/{}/img{i}.jpg", i % 4),
            bytes(i as u64 + 7, size),
        );
    }
    ok(
        &w,
        &["source", "add", w.home().join("Photos").to_str().unwrap()],
    );
    let d = w.plug("blue");
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Blue WD"],
    );
    (w, d)
}

#[test]
fn sync_copies_everything_and_reports_in_json() {
    let (w, d) = setup(6, 5000);
    let (c, v) = json(&w, &["sync"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["result"]["disks"][0]["copied_files"], 6);
    assert_eq!(v["result"]["scan"]["files"], 6);
    assert_eq!(assert_store_consistent(&d).len(), 6);
    assert_catalog_opens(&d);
    // A second sync has nothing to do.
    let (c, v) = json(&w, &["sync", "Blue WD"]);
    assert_eq!(
        (c, v["result"]["disks"][0]["copied_files"].as_u64()),
        (0, Some(0)),
        "{v}"
    );
    let (c, v) = json(&w, &["status"]);
    assert_eq!(c, 0);
    assert_eq!(v["result"]["sources"][0]["by_copies"][1]["files"], 6, "{v}");
    let (c, v) = json(&w, &["verify"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["result"][0]["report"]["checked"], 6);
}

#[test]
fn dry_run_shows_the_plan_and_writes_no_object() {
    let (w, d) = setup(3, 1000);
    let out = ok(&w, &["sync", "--dry-run"]);
    assert!(out.contains("copy 3 files"), "{out}");
    assert!(assert_store_consistent(&d).is_empty());
}

#[test]
fn a_source_outside_the_basepath_is_refused_with_the_reason() {
    let w = World::new();
    let outside = w.dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let o = w.run(exe(), &["source", "add", outside.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("outside the storage basepath") && err.contains("elsewhere"),
        "{err}"
    );
    ok(
        &w,
        &[
            "source",
            "add",
            outside.to_str().unwrap(),
            "--outside-basepath",
        ],
    );
}

#[test]
fn usage_errors_exit_2_and_unknown_disks_exit_1() {
    let (w, _) = setup(1, 10);
    assert_eq!(code(&w.run(exe(), &["sync", "--no-such-flag"])), 2);
    let o = w.run(exe(), &["sync", "Green"]);
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Green"),
        "{}",
        both(&o)
    );
}

#[test]
fn a_malformed_disk_json_is_a_clear_error() {
    let (w, d) = setup(1, 10);
    std::fs::write(d.join("coffer-disk.json"), b"{\"format\": 1, \"disk_").unwrap();
    let o = w.run(exe(), &["sync", d.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("coffer-disk.json") && err.contains("not valid JSON"),
        "{err}"
    );
}

#[test]
fn a_second_process_on_the_same_disk_is_refused_with_disk_in_use() {
    let (w, d) = setup(2, 100);
    ok(&w, &["sync"]);
    // Hold the disk's lock as another Coffer process would.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(d.join("coffer/lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let o = w.run(exe(), &["sync", d.to_str().unwrap()]);
    assert_eq!(code(&o), 4, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use"),
        "{}",
        both(&o)
    );
    drop(lock);
    ok(&w, &["sync", d.to_str().unwrap()]);
}

#[test]
fn two_real_syncs_at_once_one_is_refused_or_both_complete_consistently() {
    let (w, d) = setup(40, 256 * 1024);
    let mut first = w
        .command(exe(), &["sync", d.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Start the second once the first holds the disk (its tmp/ has work in flight
    // or objects appeared), so they overlap for real.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let busy = std::fs::read_dir(d.join("coffer/tmp"))
            .map(|r| r.count() > 0)
            .unwrap_or(false)
            || std::fs::read_dir(d.join("coffer/objects"))
                .map(|r| r.count() > 0)
                .unwrap_or(false);
        if busy {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = w.run(exe(), &["sync", d.to_str().unwrap()]);
    let first = first.wait().unwrap();
    assert_eq!(first.code(), Some(0));
    // If the first was still running, the second must have been refused.
    assert!(matches!(code(&second), 0 | 4), "{}", both(&second));
    assert_eq!(assert_store_consistent(&d).len(), 40);
}

#[test]
fn a_sync_killed_with_sigkill_is_completed_by_the_next_run() {
    let (w, d) = setup(48, 1 << 20);
    let mut child = w
        .command(exe(), &["sync", d.to_str().unwrap()])
        .spawn()
        .unwrap();
    let objects = d.join("coffer/objects");
    let t0 = Instant::now();
    // Kill it once some objects are in place but (most likely) not all.
    loop {
        let n: usize = std::fs::read_dir(&objects)
            .map(|r| {
                r.flatten()
                    .map(|e| std::fs::read_dir(e.path()).map(|x| x.count()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        let in_tmp = std::fs::read_dir(d.join("coffer/tmp"))
            .map(|r| r.count())
            .unwrap_or(0);
        if n > 0 || in_tmp > 3 || t0.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none() || status.code() == Some(0),
        "{status:?}"
    );
    // Whatever is on the disk is correct…
    assert_store_consistent(&d);
    // …and the next run completes the job.
    ok(&w, &["sync", d.to_str().unwrap()]);
    assert_eq!(assert_store_consistent(&d).len(), 48);
    assert_catalog_opens(&d);
    assert_eq!(std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(), 0);
}

#[test]
fn a_full_tmpfs_gives_a_clear_error_and_nothing_partial() {
    // Needs root and tmpfs: a real file system with a real size limit.
    let w = World::new();
    let d = w.plug("tiny");
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=12m",
            "tmpfs",
            d.to_str().unwrap(),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipped: cannot mount tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(d.clone());
    assert!(
        std::process::Command::new("mountpoint")
            .arg("-q")
            .arg(&d)
            .status()
            .unwrap()
            .success()
    );
    for i in 0..16 {
        w.write(&format!("Videos/v{i}.bin"), bytes(i, 1 << 20));
    }
    ok(
        &w,
        &["source", "add", w.home().join("Videos").to_str().unwrap()],
    );
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Tiny"],
    );
    let o = w.run(exe(), &["sync", d.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("\"Tiny\"") && text.contains("is full") && text.contains("more needed"),
        "{text}"
    );
    let on_disk = assert_store_consistent(&d);
    assert!(
        !on_disk.is_empty() && on_disk.len() < 16,
        "{} objects",
        on_disk.len()
    );
    assert_eq!(std::fs::read_dir(d.join("coffer/tmp")).unwrap().count(), 0);
    assert_catalog_opens(&d);
}

#[test]
fn disks_lists_connected_and_unplugged_disks() {
    let (w, _) = setup(2, 100);
    ok(&w, &["sync"]);
    let out = ok(&w, &["disks"]);
    assert!(
        out.contains("Blue WD") && out.contains("connected at"),
        "{out}"
    );
    w.unplug("blue");
    let (c, v) = json(&w, &["disks"]);
    assert_eq!(c, 0);
    assert_eq!(v["result"]["disks"][0]["connected"], false, "{v}");
    let o = w.run(exe(), &["sync"]);
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no backup disk"),
        "{}",
        both(&o)
    );
}
