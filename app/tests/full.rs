#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! A disk too small for everything is filled in one sync, to the last
//! object that fits, and says what was left out and what to do; a second
//! disk then takes the rest.

use std::path::Path;

use coffer_tests::mount::{Mount, content};
use coffer_tests::{World, assert_store_consistent, both, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");

fn ok(w: &World, args: &[&str]) -> String {
    let o = w.run(Path::new(EXE), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn free(p: &Path) -> u64 {
    let st = rustix::fs::statvfs(p).unwrap();
    st.f_bavail * st.f_frsize
}

#[test]
fn a_small_disk_fills_to_the_last_object_that_fits_and_a_second_takes_the_rest() {
    let w = World::new();
    let small = w.mounts().join("small");
    let Some(m) = Mount::tmpfs(&small, "64m") else {
        eprintln!("skipped: a size-limited tmpfs needs root");
        return;
    };
    // 200 MB of files between 64 KiB and 1.2 MB: small next to the disk.
    let mut total = 0u64;
    for i in 0..260u64 {
        let len = (64 << 10) + (i as usize * 7919 * 13) % (1100 << 10);
        w.write(&format!("Photos/{}/p{i}.jpg", i % 9), content(i, len));
        total += len as u64;
    }
    assert!(total > 150_000_000, "{total}");
    ok(
        &w,
        &[
            "source",
            "add",
            w.home().join("Photos").to_str().unwrap(),
            "--copies",
            "1",
        ],
    );
    ok(
        &w,
        &["disk", "init", small.to_str().unwrap(), "--label", "Small"],
    );
    let room = free(&small);
    let o = w.run(Path::new(EXE), &["sync", "Small"]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("\"Small\"")
            && text.contains("is full")
            && text.contains("left out")
            && text.contains("more needed")
            && text.contains("another disk"),
        "{text}"
    );
    let used = room - free(&small);
    assert!(
        used as f64 >= 0.95 * room as f64,
        "one sync used {used} of {room} bytes ({:.1} %)",
        100.0 * used as f64 / room as f64
    );
    eprintln!(
        "one sync used {:.1} % of the disk's room",
        100.0 * used as f64 / room as f64
    );
    let on_small = assert_store_consistent(&small);
    assert!(on_small.len() < 260);
    assert_eq!(
        std::fs::read_dir(small.join("coffer/tmp")).unwrap().count(),
        0
    );

    // A second, bigger disk takes everything else.
    let big = w.plug("big");
    ok(
        &w,
        &["disk", "init", big.to_str().unwrap(), "--label", "Big"],
    );
    ok(&w, &["sync", "Big"]);
    let on_big = assert_store_consistent(&big);
    assert_eq!(
        on_small.len() + on_big.len(),
        260,
        "every file on one disk or the other"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&w.run(Path::new(EXE), &["--json", "status"]).stdout).unwrap();
    assert_eq!(v["result"]["sources"][0]["by_copies"][0]["files"], 0, "{v}");
    drop(m);
}
