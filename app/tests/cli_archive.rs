#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! `coffer archive …` and `coffer dump …` through the real binary.

use std::path::Path;

use coffer_tests::{World, both, bytes, code};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

fn ok(w: &World, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = w.run(exe(), &all);
    assert_eq!(code(&o), 0, "{args:?}\n{}", both(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn full_inc_ls_verify_restore_and_dumps() {
    let w = World::new();
    w.write("docs/a.txt", "alpha");
    w.write("docs/sub/big.bin", bytes(1, 300_000));
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let nas_s = nas.to_str().unwrap();
    let docs = w.home().join("docs");
    ok(&w, &["source", "add", docs.to_str().unwrap()]);
    ok(
        &w,
        &[
            "dump",
            "add",
            "hello",
            "--command",
            "echo hi",
            "--load",
            "cat",
        ],
    );
    let v = ok(&w, &["dump", "list"]);
    assert_eq!(v["result"]["dumps"][0]["name"], "hello");

    let v = ok(&w, &["archive", "full", "--to", nas_s]);
    assert_eq!(v["result"]["sequence"], 1);
    assert!(nas.join("home-1.tar.gz").exists());

    w.write("docs/a.txt", "alpha, changed");
    let v = ok(&w, &["archive", "inc", "--to", nas_s]);
    assert_eq!(v["result"]["base_sequence"], 1);
    assert!(nas.join("home-1-to-2.tar.gz").exists());
    // A cutoff after every archive: against the newest, number 2.
    w.write("docs/new.txt", "new");
    let v = ok(
        &w,
        &["archive", "inc", "--to", nas_s, "--since", "@9999999999"],
    );
    assert_eq!(v["result"]["base_sequence"], 2);
    let o = w.run(
        exe(),
        &["archive", "inc", "--to", nas_s, "--since", "1 day"],
    );
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no archive"),
        "{}",
        both(&o)
    );

    let v = ok(&w, &["archive", "ls", nas_s]);
    assert_eq!(v["result"]["archives"].as_array().unwrap().len(), 3);
    let o = w.run(exe(), &["archive", "ls", nas_s]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("incremental against 1"),
        "{}",
        both(&o)
    );

    let dest = w.dir.path().join("r");
    let o = w.run(
        exe(),
        &[
            "archive",
            "restore",
            nas_s,
            "--at",
            "2",
            "--to",
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("load it back with: cat"),
        "{}",
        both(&o)
    );
    assert_eq!(
        std::fs::read(dest.join("docs/a.txt")).unwrap(),
        b"alpha, changed"
    );
    assert_eq!(
        std::fs::read(dest.join("docs/sub/big.bin")).unwrap(),
        bytes(1, 300_000)
    );
    assert_eq!(std::fs::read(dest.join("dumps/hello")).unwrap(), b"hi\n");

    // Restoring again does not clobber; --overwrite does.
    std::fs::write(dest.join("docs/a.txt"), "mine").unwrap();
    let o = w.run(
        exe(),
        &[
            "archive",
            "restore",
            nas_s,
            "--at",
            "1",
            "docs/a.txt",
            "--to",
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--overwrite"),
        "{}",
        both(&o)
    );
    assert_eq!(std::fs::read(dest.join("docs/a.txt")).unwrap(), b"mine");
    ok(
        &w,
        &[
            "archive",
            "restore",
            nas_s,
            "--at",
            "1",
            "docs/a.txt",
            "--to",
            dest.to_str().unwrap(),
            "--overwrite",
        ],
    );
    assert_eq!(std::fs::read(dest.join("docs/a.txt")).unwrap(), b"alpha");

    ok(
        &w,
        &[
            "archive",
            "verify",
            nas.join("home-1.tar.gz").to_str().unwrap(),
        ],
    );
    let full = std::fs::read(nas.join("home-1.tar.gz")).unwrap();
    std::fs::write(nas.join("home-1.tar.gz"), &full[..full.len() / 2]).unwrap();
    let o = w.run(
        exe(),
        &[
            "archive",
            "verify",
            nas.join("home-1.tar.gz").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("home-1.tar.gz"),
        "{}",
        both(&o)
    );

    // A failing dump fails the archive; nothing new is left in the folder.
    ok(&w, &["dump", "remove", "hello"]);
    ok(
        &w,
        &["dump", "add", "bad", "--command", "echo broken >&2; exit 2"],
    );
    let before = std::fs::read_dir(&nas).unwrap().count();
    let o = w.run(exe(), &["archive", "full", "--to", nas_s]);
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("broken"),
        "{}",
        both(&o)
    );
    assert_eq!(std::fs::read_dir(&nas).unwrap().count(), before);
}

#[test]
fn volumes_from_the_command_line() {
    let w = World::new();
    for i in 0..6 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 50_000));
    }
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    let v = ok(
        &w,
        &[
            "archive",
            "full",
            "--to",
            nas.to_str().unwrap(),
            "--prefix",
            "dvd",
            "--volume-size",
            "60k",
        ],
    );
    let files = v["result"]["files"].as_array().unwrap();
    assert!(files.len() >= 6, "{v}");
    assert!(nas.join("dvd-1.vol001.tar.gz").exists());
    let dest = w.dir.path().join("r");
    ok(
        &w,
        &[
            "archive",
            "restore",
            nas.to_str().unwrap(),
            "--at",
            "1",
            "--to",
            dest.to_str().unwrap(),
        ],
    );
    for i in 0..6 {
        assert_eq!(
            std::fs::read(dest.join(format!("docs/f{i}.bin"))).unwrap(),
            bytes(i, 50_000)
        );
    }
}

#[test]
fn restoring_more_files_than_open_descriptors_allowed_works() {
    // Staged files are closed until put in place: with a limit of 64 open
    // files, a restore of 300 files from a full and an incremental archive
    // must still complete.
    let w = World::new();
    for i in 0..300u64 {
        w.write(&format!("docs/d{}/f{i}.txt", i % 7), bytes(i + 1, 3000));
    }
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let nas_s = nas.to_str().unwrap();
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    ok(&w, &["archive", "full", "--to", nas_s]);
    w.write("docs/d0/f0.txt", bytes(1000, 3100));
    ok(&w, &["archive", "inc", "--to", nas_s]);
    let dest = w.dir.path().join("restored");
    let mut c = std::process::Command::new("sh");
    c.args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(exe())
        .args(["archive", "restore", nas_s, "--at", "2", "--to"])
        .arg(&dest);
    w.env(&mut c);
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", both(&o));
    let got = std::fs::read(dest.join("docs/d0/f0.txt")).unwrap();
    assert_eq!(got, bytes(1000, 3100));
    fn files_under(p: &Path) -> usize {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    files_under(&e.path())
                } else {
                    1
                }
            })
            .sum()
    }
    assert_eq!(files_under(&dest), 300);
}

#[test]
fn special_bits_are_dropped_unless_kept() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let tool = w.write("docs/tool", "#!/bin/sh\n");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let nas_s = nas.to_str().unwrap();
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    ok(&w, &["archive", "full", "--to", nas_s]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for (flag, want) in [(None, 0o755), (Some("--keep-special-bits"), 0o4755)] {
        let to = w.dir.path().join(format!("out-{}", flag.is_some()));
        let mut args = vec!["archive", "restore", nas_s, "--at", "1", "--to"];
        args.push(to.to_str().unwrap());
        args.extend(flag);
        ok(&w, &args);
        assert_eq!(mode(&to.join("docs/tool")), want, "{flag:?}");
    }
}

#[test]
fn a_dry_run_plans_the_archive_restore_and_writes_nothing() {
    // Full then incremental: the plan reads both archive files, counts
    // what it would write, and names the file it would replace; the
    // destination is not even made. The same plan then runs for real.
    let w = World::new();
    w.write("docs/a.txt", "alpha");
    w.write("docs/sub/b.bin", bytes(2, 40_000));
    let nas = w.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let nas_s = nas.to_str().unwrap();
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    ok(&w, &["archive", "full", "--to", nas_s]);
    w.write("docs/a.txt", "alpha, changed");
    ok(&w, &["archive", "inc", "--to", nas_s]);

    let dest = w.dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let args = ["archive", "restore", nas_s, "--at", "2", "--to", dest_s];
    let plan = ok(&w, &[&args[..], &["--dry-run"]].concat());
    assert_eq!(plan["result"]["dry_run"], true, "{plan}");
    let p = &plan["result"]["plan"];
    assert_eq!(p["files"], 2, "{p}");
    assert_eq!(p["bytes"], 40_000 + 14, "{p}");
    assert_eq!(p["dest_exists"], false, "{p}");
    assert_eq!(p["read"].as_array().unwrap().len(), 2, "{p}");
    assert!(!dest.exists(), "a dry run made the destination");

    // In words, without --json.
    let o = w.run(exe(), &[&args[..], &["--dry-run"]].concat());
    assert_eq!(code(&o), 0, "{}", both(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Would restore archive 2: 2 files"), "{text}");
    assert!(text.contains("Nothing was written (--dry-run)"), "{text}");

    ok(&w, &args);
    assert_eq!(
        std::fs::read(dest.join("docs/a.txt")).unwrap(),
        b"alpha, changed"
    );
    // Now a.txt is there: refused without --overwrite (as the run would
    // be), named as replaced with it.
    let o = w.run(exe(), &[&args[..], &["--dry-run"]].concat());
    assert_eq!(code(&o), 1, "{}", both(&o));
    assert!(both(&o).contains("a.txt"), "{}", both(&o));
    let plan = ok(&w, &[&args[..], &["--dry-run", "--overwrite"]].concat());
    let p = &plan["result"]["plan"];
    assert_eq!(p["replaced"].as_array().unwrap().len(), 2, "{p}");
    assert_eq!(p["kept"], 2, "the two folders: {p}");
}
