#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Bucket disks through the real binary, against a real S3 server (moto on
//! 127.0.0.1): `disk init s3://…`, `sync s3://…`, encryption.

use std::process::{Command, Output};

use coffer_tests::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use coffer_tests::{World, both, bytes, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");
const MARKER: &str = "MARKER-s3-cli-77aa-this-text-must-stay-secret";

fn run(w: &World, s3: &S3Server, pass: Option<&str>, args: &[&str]) -> Output {
    // Its own session: no terminal to ask.
    let mut c = Command::new("setsid");
    c.arg("-w").arg(EXE).args(args);
    w.env(&mut c);
    c.env("AWS_ENDPOINT_URL", s3.endpoint())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env_remove("COFFER_PASSPHRASE");
    if let Some(p) = pass {
        c.env("COFFER_PASSPHRASE", p);
    }
    c.output().unwrap()
}

fn ok(w: &World, s3: &S3Server, args: &[&str]) -> Output {
    let o = run(w, s3, Some("pw"), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    o
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn an_encrypted_bucket_disk_is_initialised_and_synced_from_the_command_line() {
    let s3 = S3Server::start();
    s3.create_bucket("cli-bucket");
    let w = World::new();
    for i in 0..8u64 {
        let mut b = format!("{MARKER} {i}\n").into_bytes();
        b.extend(bytes(i, 5000 * (i as usize + 1)));
        w.write(&format!("docs/f{i}.txt"), b);
    }
    let docs = w.home().join("docs");
    ok(
        &w,
        &s3,
        &["source", "add", docs.to_str().unwrap(), "--copies", "1"],
    );
    let url = "s3://cli-bucket/laptop";
    let o = ok(
        &w,
        &s3,
        &[
            "disk",
            "init",
            url,
            "--label",
            "Cloud",
            "--encrypt",
            "--kdf-memory-mib",
            "8",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Encrypted bucket disk"),
        "{}",
        both(&o)
    );
    // A second init of the same place is refused.
    let o = run(
        &w,
        &s3,
        Some("pw"),
        &["disk", "init", url, "--label", "Again"],
    );
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already a Coffer disk"),
        "{}",
        both(&o)
    );

    let v = json(&ok(&w, &s3, &["--json", "sync", url]));
    assert_eq!(v["result"]["disks"][0]["copied_files"], 8, "{v}");
    let v = json(&ok(&w, &s3, &["--json", "sync", url]));
    assert_eq!(v["result"]["disks"][0]["copied_files"], 0, "{v}");
    // Nothing in the bucket shows the content.
    let keys = s3.list("cli-bucket", "laptop/");
    assert_eq!(
        keys.iter().filter(|(k, _)| k.contains("/objects/")).count(),
        8,
        "{keys:?}"
    );
    for (k, _) in &keys {
        let raw = s3.get("cli-bucket", k);
        assert!(
            !raw.windows(MARKER.len()).any(|x| x == MARKER.as_bytes()),
            "{k}"
        );
    }
    // A wrong or missing passphrase: refused, nothing written.
    w.write("docs/new.txt", format!("{MARKER} new"));
    for pass in [Some("nope"), None] {
        let o = run(&w, &s3, pass, &["sync", url]);
        assert_eq!(code(&o), 1, "{}", both(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("s3://cli-bucket/laptop") && err.contains("passphrase"),
            "{err}"
        );
    }
    assert_eq!(s3.list("cli-bucket", "laptop/"), keys);
    // The disk is listed.
    let o = ok(&w, &s3, &["disks"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Cloud"),
        "{}",
        both(&o)
    );
}

#[test]
fn verify_finds_a_flipped_byte_in_a_bucket_moves_it_aside_and_sync_heals_it() {
    let s3 = S3Server::start();
    s3.create_bucket("verify-bucket");
    let w = World::new();
    for i in 0..5u64 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 70_000 + i as usize));
    }
    let docs = w.home().join("docs");
    ok(
        &w,
        &s3,
        &["source", "add", docs.to_str().unwrap(), "--copies", "1"],
    );
    let url = "s3://verify-bucket/v";
    ok(
        &w,
        &s3,
        &[
            "disk",
            "init",
            url,
            "--label",
            "Cloud",
            "--encrypt",
            "--kdf-memory-mib",
            "8",
        ],
    );
    ok(&w, &s3, &["sync", url]);
    let v = json(&ok(&w, &s3, &["--json", "verify", url]));
    assert_eq!(v["result"][0]["report"]["checked"], 5, "{v}");
    let objects: Vec<String> = s3
        .list("verify-bucket", "v/coffer/objects/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(objects.len(), 5);
    let victim = &objects[2];
    let mut raw = s3.get("verify-bucket", victim);
    raw[1000] ^= 0x20;
    s3.put("verify-bucket", victim, &raw);

    let o = run(&w, &s3, Some("pw"), &["--json", "verify", url]);
    assert_ne!(code(&o), 0, "{}", both(&o));
    let v = json(&o);
    let bad = v["result"][0]["report"]["bad"].as_array().unwrap().clone();
    assert_eq!(bad.len(), 1, "{v}");
    assert!(
        bad[0]["reason"].as_str().unwrap().contains("authenticate"),
        "{v}"
    );
    let name = victim.rsplit('/').next().unwrap();
    assert!(v["warnings"].to_string().contains(name), "{v}");
    // Moved aside, not deleted.
    let aside = s3.list("verify-bucket", "v/coffer/bad-objects/");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].0.contains(name));
    assert!(
        !s3.list("verify-bucket", "v/coffer/objects/")
            .iter()
            .any(|(k, _)| k == victim)
    );
    // The next sync uploads it again; verify is clean.
    let v = json(&ok(&w, &s3, &["--json", "sync", url, "--no-scan"]));
    assert_eq!(v["result"]["disks"][0]["copied_files"], 1, "{v}");
    let v = json(&ok(&w, &s3, &["--json", "verify", url]));
    assert_eq!(v["result"][0]["report"]["checked"], 5, "{v}");
    assert_eq!(
        v["result"][0]["report"]["bad"].as_array().unwrap().len(),
        0,
        "{v}"
    );
}

#[test]
fn a_sync_killed_mid_upload_is_completed_by_the_next_and_a_quota_is_kept() {
    let s3 = S3Server::start();
    s3.create_bucket("kill-bucket");
    let w = World::new();
    for i in 0..40u64 {
        w.write(&format!("docs/f{i:02}.bin"), bytes(i, 300_000));
    }
    let docs = w.home().join("docs");
    ok(
        &w,
        &s3,
        &["source", "add", docs.to_str().unwrap(), "--copies", "1"],
    );
    let url = "s3://kill-bucket/k";
    ok(&w, &s3, &["disk", "init", url, "--label", "Cloud"]);
    // Killed as soon as the first objects landed.
    let mut c = Command::new(EXE);
    c.args(["sync", url]);
    w.env(&mut c);
    c.env("AWS_ENDPOINT_URL", s3.endpoint())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s3.list("kill-bucket", "k/coffer/objects/").len() < 3 {
        assert!(std::time::Instant::now() < deadline, "nothing was uploaded");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // A PUT the server had whole when the client died may still land.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let landed = s3.list("kill-bucket", "k/coffer/objects/").len();
    assert!(landed < 40, "the sync ended before it was killed");
    // Every object there is whole: the next sync counts them, uploads the rest.
    let v = json(&ok(&w, &s3, &["--json", "sync", url]));
    let copied = v["result"]["disks"][0]["copied_files"].as_u64().unwrap() as usize;
    assert!(copied <= 40 - landed, "{landed} landed, {v}");
    assert_eq!(s3.list("kill-bucket", "k/coffer/objects/").len(), 40);
    let v = json(&ok(&w, &s3, &["--json", "verify", url]));
    assert_eq!(v["result"][0]["report"]["checked"], 40, "{v}");

    // Another machine's bucket disk with a quota of ten objects' worth.
    let w2 = World::new();
    for i in 0..40u64 {
        w2.write(&format!("docs/f{i:02}.bin"), bytes(i, 300_000));
    }
    let docs2 = w2.home().join("docs");
    ok(
        &w2,
        &s3,
        &["source", "add", docs2.to_str().unwrap(), "--copies", "1"],
    );
    let small = "s3://kill-bucket/small";
    ok(
        &w2,
        &s3,
        &[
            "disk", "init", small, "--label", "Small", "--quota", "3000000",
        ],
    );
    let o = run(&w2, &s3, Some("pw"), &["--json", "sync", small]);
    assert_eq!(code(&o), 3, "{}", both(&o));
    let stored: u64 = s3
        .list("kill-bucket", "small/coffer/objects/")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!((2_700_000..=3_000_000).contains(&stored), "{stored} bytes");
}

#[test]
fn sync_without_a_disk_takes_the_buckets_that_answer_and_says_which_did_not() {
    let s3 = S3Server::start();
    s3.create_bucket("all-bucket");
    let w = World::new();
    for i in 0..4u64 {
        w.write(&format!("docs/f{i}.txt"), bytes(i, 3000));
    }
    let docs = w.home().join("docs");
    ok(
        &w,
        &s3,
        &["source", "add", docs.to_str().unwrap(), "--copies", "2"],
    );
    let url = "s3://all-bucket/home";
    ok(&w, &s3, &["disk", "init", url, "--label", "Cloud"]);
    let usb = w.plug("usb");
    ok(
        &w,
        &s3,
        &["disk", "init", usb.to_str().unwrap(), "--label", "Usb"],
    );

    // Both the plugged disk and the bucket are connected: both are synced.
    let v = json(&ok(&w, &s3, &["--json", "sync"]));
    let disks = v["result"]["disks"].as_array().unwrap();
    let labels: Vec<&str> = disks.iter().map(|d| d["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Usb", "Cloud"], "{v}");
    assert!(disks.iter().all(|d| d["copied_files"] == 4), "{v}");

    // The bucket alone, with the disk unplugged.
    w.unplug("usb");
    w.write("docs/new.txt", bytes(9, 3000));
    let v = json(&ok(&w, &s3, &["--json", "sync"]));
    let disks = v["result"]["disks"].as_array().unwrap();
    assert_eq!(
        (disks.len(), disks[0]["copied_files"].clone()),
        (1, 1.into()),
        "{v}"
    );

    // A bucket that does not answer is like a disk not plugged in: said,
    // not a failure, and the disk that is there is synced.
    w.replug("usb");
    let endpoint = s3.endpoint();
    drop(s3);
    let mut c = Command::new("setsid");
    c.arg("-w").arg(EXE).arg("sync");
    w.env(&mut c);
    c.env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION);
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", both(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("s3://all-bucket/home did not answer") && out.contains("not synced this time"),
        "{}",
        both(&o)
    );
}
