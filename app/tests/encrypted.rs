#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Encrypted disks through the real binary: `disk init --encrypt`, sync,
//! verify, restore on a new machine, and what a wrong, missing or tampered
//! key or object does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coffer_tests::{World, both, bytes, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");
const PASS: &str = "correct horse battery staple";
/// A string in every source file that no byte on the disk may show.
const MARKER: &str = "MARKER-c0ffer-9d1e-this-text-must-stay-secret";

/// The command in its own session, so no terminal can be asked: what a
/// script or a service sees.
fn command(w: &World, pass: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new("setsid");
    c.arg("-w").arg(EXE).args(args);
    w.env(&mut c);
    c.env_remove("COFFER_PASSPHRASE");
    if let Some(p) = pass {
        c.env("COFFER_PASSPHRASE", p);
    }
    c
}

fn run(w: &World, pass: Option<&str>, args: &[&str]) -> Output {
    command(w, pass, args).output().unwrap()
}

fn ok(w: &World, args: &[&str]) -> Output {
    let o = run(w, Some(PASS), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    o
}

/// Every regular file under `root`, with its bytes.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if e.file_type().unwrap().is_file() {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Files under home/docs, each holding the marker: small ones, one of
/// several chunks, an empty one and two equal ones.
fn world_with_an_encrypted_disk() -> (World, PathBuf) {
    let w = World::new();
    for i in 0..6u64 {
        let mut b = format!("{MARKER} file {i}\n").into_bytes();
        b.extend(bytes(i, 3000 * (i as usize + 1)));
        w.write(&format!("docs/f{i}.txt"), b);
    }
    let mut big = MARKER.repeat(20_000).into_bytes();
    big.extend(bytes(99, 100_000));
    w.write("docs/big.bin", big);
    w.write("docs/empty", "");
    w.write("docs/same-1.txt", format!("{MARKER} twice"));
    w.write("docs/same-2.txt", format!("{MARKER} twice"));
    let docs = w.home().join("docs");
    ok(
        &w,
        &["source", "add", docs.to_str().unwrap(), "--copies", "1"],
    );
    let disk = w.plug("Vault");
    let o = ok(
        &w,
        &[
            "disk",
            "init",
            disk.to_str().unwrap(),
            "--label",
            "Vault",
            "--encrypt",
            "--kdf-memory-mib",
            "8",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Encrypted disk"),
        "{}",
        both(&o)
    );
    ok(&w, &["sync", "Vault"]);
    (w, disk)
}

#[test]
fn nothing_on_an_encrypted_disk_shows_content_or_its_hashes() {
    let (w, disk) = world_with_an_encrypted_disk();
    let docs = w.home().join("docs");
    let hashes: Vec<String> = files(&docs).values().map(|b| sha256_hex(b)).collect();
    let stored = files(&disk);
    let objects = stored
        .keys()
        .filter(|p| p.starts_with("coffer/objects"))
        .count();
    // Ten files, two of them equal: nine objects.
    assert_eq!(objects, 9, "{:?}", stored.keys().collect::<Vec<_>>());
    for (path, b) in &stored {
        assert!(
            !holds(b, MARKER.as_bytes()),
            "{} holds the marker",
            path.display()
        );
        for h in &hashes {
            let shown = path.to_string_lossy();
            assert!(!shown.contains(h.as_str()), "{shown} is a content hash");
        }
    }
    // The catalog slots are sealed too: no SQLite header.
    let slots: Vec<_> = stored
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "sqlite"))
        .collect();
    assert!(!slots.is_empty());
    for (p, b) in slots {
        assert!(
            !b.starts_with(b"SQLite format 3"),
            "{} is plain",
            p.display()
        );
    }
    // The identity says encrypted, holds the salt and the check, no key.
    let id = std::fs::read_to_string(disk.join("coffer-disk.json")).unwrap();
    assert!(
        id.contains("\"format\": 2") && id.contains("argon2id") && id.contains("key_check"),
        "{id}"
    );
    assert!(!id.contains(PASS), "{id}");

    // A sync with nothing new copies nothing; a verify reads every object.
    let o = ok(&w, &["--json", "sync", "Vault"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["disks"][0]["copied_files"], 0, "{v}");
    let o = ok(&w, &["--json", "verify", "Vault"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"][0]["report"]["checked"], 9, "{v}");
    assert_eq!(v["result"][0]["report"]["bad"].as_array().unwrap().len(), 0);
}

#[test]
fn a_wrong_or_missing_passphrase_is_refused_and_nothing_is_written() {
    let (w, disk) = world_with_an_encrypted_disk();
    w.write("docs/new.txt", format!("{MARKER} new"));
    let before = files(&disk);
    for args in [&["sync", "Vault"][..], &["verify", "Vault"][..]] {
        let o = run(&w, Some("not the passphrase"), args);
        assert_eq!(code(&o), 1, "{}", both(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("wrong passphrase") && err.contains("Vault"),
            "{err}"
        );
        // No terminal, no variable, no file: locked, said so.
        let o = run(&w, None, args);
        assert_eq!(code(&o), 1, "{}", both(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("is encrypted"), "{err}");
        assert!(err.contains("passphrase-file"), "{err}");
    }
    assert_eq!(files(&disk), before, "the disk was written");
    // The right one in a file works.
    let file = w.dir.path().join("pass.txt");
    std::fs::write(&file, format!("{PASS}\n")).unwrap();
    let o = run(
        &w,
        None,
        &["--passphrase-file", file.to_str().unwrap(), "sync", "Vault"],
    );
    assert_eq!(code(&o), 0, "{}", both(&o));
}

#[test]
fn an_encrypted_disk_restores_on_a_new_machine_with_its_passphrase() {
    let (w, disk) = world_with_an_encrypted_disk();
    let docs = w.home().join("docs");
    // A new machine: no catalog, no config.
    std::fs::remove_dir_all(w.data_dir()).unwrap();
    std::fs::remove_dir_all(w.config_dir()).unwrap();
    std::fs::create_dir_all(w.data_dir()).unwrap();
    std::fs::create_dir_all(w.config_dir()).unwrap();
    let out = w.dir.path().join("out");
    let args = [
        "restore",
        "--from-disk",
        disk.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ];
    let o = run(&w, Some("guess"), &args);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"),
        "{}",
        both(&o)
    );
    assert!(!out.join("docs").exists());
    ok(&w, &args);
    let back = out.join(docs.strip_prefix("/").unwrap());
    let got = if back.exists() {
        files(&back)
    } else {
        files(&out.join("docs"))
    };
    assert_eq!(got, files(&docs));
}

/// The object files on the disk, largest first.
fn object_files(disk: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = files(disk)
        .into_iter()
        .filter(|(p, _)| p.starts_with("coffer/objects"))
        .map(|(p, b)| (b.len() as u64, disk.join(p)))
        .collect();
    v.sort();
    v.reverse();
    v.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn tampered_and_swapped_objects_are_found_named_and_healed() {
    let (w, disk) = world_with_an_encrypted_disk();
    let objects = object_files(&disk);
    // A flipped byte in the big object's second chunk.
    let big = &objects[0];
    let mut b = std::fs::read(big).unwrap();
    b[70_000] ^= 0x01;
    std::fs::write(big, b).unwrap();
    // One cut short, as a torn write would leave it.
    let cut = &objects[1];
    let b = std::fs::read(cut).unwrap();
    std::fs::write(cut, &b[..b.len() - 100]).unwrap();
    // Two small objects swapped (each authenticates on its own).
    let (x, y) = (&objects[2], &objects[3]);
    let (bx, by) = (std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
    std::fs::write(x, &by).unwrap();
    std::fs::write(y, &bx).unwrap();

    let o = run(&w, Some(PASS), &["--json", "verify", "Vault"]);
    assert_ne!(code(&o), 0, "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bad = v["result"][0]["report"]["bad"].as_array().unwrap().clone();
    assert_eq!(bad.len(), 4, "{v}");
    let reasons: Vec<String> = bad
        .iter()
        .map(|b| b["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("does not authenticate") && r.contains(&*big.to_string_lossy())),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("cut short") && r.contains(&*cut.to_string_lossy())),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("does not match its name"))
            .count(),
        2,
        "{reasons:?}"
    );
    // Warnings name the object files.
    let warned = v["warnings"].to_string();
    for p in [big, cut, x, y] {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(warned.contains(&name), "{name} not in {warned}");
    }
    // The next sync copies them again from the source; a verify is clean.
    ok(&w, &["sync", "Vault"]);
    let o = ok(&w, &["--json", "verify", "Vault"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"][0]["report"]["checked"], 9, "{v}");
}
