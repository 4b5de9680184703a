#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Hostile archives, part 1 (issue 14 item 7): members that climb out,
//! links, devices, lying sizes and names, bombs, deltas, and destinations
//! that hold traps of their own.
//!
//! Each case starts from real archives the binary wrote (see
//! `coffer_tests::hostile::archive::template`), tampers with their members
//! byte by byte, and runs `coffer archive ls`, `verify` and `restore` under
//! a timeout and an address-space cap. Nothing outside the destination may
//! change, pre-existing files in it stay as they were, nothing special (a
//! device, a hard link, a setuid bit, a temp file) is left in it, and where
//! the manifest does not list a member it must stay exactly as it was.

use std::ffi::OsString;
use std::path::Path;

use coffer_tests::hostile::archive::{Plan, Scene, Template, play, template};
use coffer_tests::hostile::tarball::{
    self, Data, EntryType, Member, delta, delta_copy, delta_literal, device, empty, file,
    file_entry, link, long_name, pax, sparse,
};
use coffer_tests::hostile::{Expect, Findings, fails, ok_or_fails};
use serde_json::json;

fn exe() -> &'static Path {
    coffer_tests::hostile::binary(env!("CARGO_BIN_EXE_coffer"))
}

const FULL: &str = "home-1.tar.gz";
const INC: &str = "home-1-to-2.tar.gz";
const DELTA: &str = ".coffer-delta/docs/sub/b.bin";
const MIB: u64 = 1 << 20;

type Build = fn(&Template, &Scene) -> Plan;

/// The full archive with one member added at the end, not in the manifest.
fn unlisted(t: &Template, s: &Scene, m: Member, needles: &[&str]) -> Plan {
    let mut a = t.full.clone();
    a.members.push(m);
    Plan::bad_member(s.put(FULL, &a), 1, needles)
}

/// The full archive with a file entry for `path` and the member `m`.
fn listed(t: &Template, s: &Scene, path: &str, data: &[u8], m: Member) -> Plan {
    let mut a = t.full.clone();
    a.add_entry(file_entry(path, data, 0o644));
    a.members.push(m);
    Plan::bad_member(s.put(FULL, &a), 1, &[path]).may_write()
}

/// A symlink entry `docs/s` (named `name` in the manifest and the tar)
/// pointing outside, then a file `docs/s/x`, both listed.
fn link_then_file(t: &Template, s: &Scene, name: &str) -> Plan {
    let mut a = t.full.clone();
    let target = s.outside.to_str().unwrap();
    a.add_entry(json!({
        "path": name, "kind": "symlink", "size": 0,
        "mtime_ns": 0, "mode": 0o777, "target": target,
    }));
    a.add_entry(file_entry("docs/s/x", b"through the link", 0o644));
    a.members
        .push(link(name.as_bytes(), EntryType::Symlink, target.as_bytes()));
    a.members.push(file(b"docs/s/x", b"through the link"));
    Plan::refused(s.put(FULL, &a), 1, &["docs/s"])
}

/// The full archive with a 1 GiB file `docs/holes.img` listed as a
/// sparse member (format 2) whose map is `map`, with `data` after it.
fn sparse_listed(t: &Template, s: &Scene, map: &str, data: &[u8]) -> Plan {
    let mut a = t.full.clone();
    let path = "docs/holes.img";
    let (header, member, stored) = sparse(path, "1073741824", map, data);
    let mut e = file_entry(path, b"", 0o644);
    e["size"] = json!(1u64 << 30);
    // The SHA-256 of what the map would make matters not: the map is
    // refused before any of it is written.
    e["sparse"] = json!(stored);
    a.add_entry(e);
    a.edit_manifest(|m| m["format"] = json!(2));
    a.members.push(header);
    a.members.push(member);
    Plan::bad_member(s.put(FULL, &a), 1, &[path]).may_write()
}

/// The incremental with its delta member replaced by `d` (the manifest's
/// delta size and SHA-256 made to match), next to the real full archive.
fn with_delta(t: &Template, s: &Scene, d: Vec<u8>) -> Plan {
    s.put_bytes(FULL, &t.full_gz);
    let mut a = t.inc.clone();
    a.edit_entry("docs/sub/b.bin", |e| {
        e["delta"]["sha256"] = json!(tarball::sha(&d));
        e["delta"]["size"] = json!(d.len());
    });
    a.member_mut(DELTA).set_bytes(d);
    Plan::bad_member(s.put(INC, &a), 2, &["docs/sub/b.bin"])
        .verify(Expect::Any)
        .may_write()
}

/// The real delta of the template's incremental.
fn real_delta(t: &Template) -> Vec<u8> {
    let i = t.inc.find(DELTA).unwrap();
    t.inc.members[i].bytes().to_vec()
}

fn cases() -> Vec<(&'static str, Build)> {
    vec![
        ("member ../x, not in the manifest", |t, s| {
            unlisted(t, s, file(b"../x", b"escaped"), &["../x"])
        }),
        ("absolute member, not in the manifest", |t, s| {
            let p = s.outside.join("abs-escaped");
            unlisted(
                t,
                s,
                file(p.to_str().unwrap().as_bytes(), b"escaped"),
                &["abs-escaped"],
            )
        }),
        ("member a/../../x, not in the manifest", |t, s| {
            unlisted(t, s, file(b"a/../../x", b"escaped"), &["a/../../x"])
        }),
        (
            "symlink docs/s to outside, then file docs/s/x, both listed",
            |t, s| link_then_file(t, s, "docs/s"),
        ),
        (
            "symlink named docs/s/ (trailing slash), then docs/s/x",
            |t, s| link_then_file(t, s, "docs/s/"),
        ),
        ("symlink named docs/s/. then docs/s/x", |t, s| {
            link_then_file(t, s, "docs/s/.")
        }),
        (
            "symlink docs/s to outside listed, docs/s/x not listed",
            |t, s| {
                let mut a = t.full.clone();
                let target = s.outside.to_str().unwrap();
                a.add_entry(json!({
                    "path": "docs/s", "kind": "symlink", "size": 0,
                    "mtime_ns": 0, "mode": 0o777, "target": target,
                }));
                a.members
                    .push(link(b"docs/s", EntryType::Symlink, target.as_bytes()));
                a.members.push(file(b"docs/s/x", b"through the link"));
                Plan::bad_member(s.put(FULL, &a), 1, &["docs/s/x"])
            },
        ),
        (
            "hard link member to an outside file, listed as a file",
            |t, s| {
                let target = s.outside.join("precious.txt");
                let data = std::fs::read(&target).unwrap();
                let m = link(
                    b"docs/h",
                    EntryType::Link,
                    target.to_str().unwrap().as_bytes(),
                );
                listed(t, s, "docs/h", &data, m)
            },
        ),
        (
            "hard link member to /etc/passwd, listed as a file",
            |t, s| {
                let data = std::fs::read("/etc/passwd").unwrap_or_default();
                let m = link(b"docs/h", EntryType::Link, b"/etc/passwd");
                listed(t, s, "docs/h", &data, m).watch(Path::new("/etc/passwd"))
            },
        ),
        ("duplicate members with different content", |t, s| {
            let mut a = t.full.clone();
            a.insert_after("docs/a.txt", file(b"docs/a.txt", b"evil!\n"));
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/a.txt"]).may_write()
        }),
        ("a PAX size bigger than the data", |t, s| {
            let mut a = t.full.clone();
            a.insert_after("docs/sub", pax(&[("size", "100000")]));
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/a.txt", FULL]).may_write()
        }),
        ("a PAX size smaller than the data", |t, s| {
            let mut a = t.full.clone();
            a.insert_after("docs/sub", pax(&[("size", "2")]));
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/a.txt", FULL]).may_write()
        }),
        ("a GNU long name of 5000 characters, not listed", |t, s| {
            let mut a = t.full.clone();
            let name = format!("docs/{}", "n".repeat(4995));
            a.members.push(long_name(name.as_bytes()));
            a.members.push(file(&name.as_bytes()[..100], b"x"));
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/nnnnnnnnnnnnnnnnnnnn"])
        }),
        (
            "a GNU long name of 5000 characters in one component, listed",
            |t, s| {
                let mut a = t.full.clone();
                let name = format!("docs/{}", "n".repeat(4995));
                a.add_entry(file_entry(&name, b"x", 0o644));
                a.members.push(long_name(name.as_bytes()));
                a.members.push(file(&name.as_bytes()[..100], b"x"));
                Plan::bad_member(s.put(FULL, &a), 1, &["docs/nnnnnnnnnnnnnnnnnnnn"])
                    .ls(Expect::Any)
                    .verify(Expect::Any)
                    .may_write()
            },
        ),
        (
            "a GNU long-name header declaring 2^40 bytes, then 600 MiB of zeros",
            |t, s| {
                let mut a = t.full.clone();
                a.members.push(Member {
                    header: tarball::header(
                        b"././@LongLink",
                        EntryType::GNULongName,
                        1 << 40,
                        0o644,
                    ),
                    data: Data::ZerosThenEnd(600 * MIB),
                });
                Plan::bad_member(s.put(FULL, &a), 1, &[FULL, "LongLink", "long name"]).may_write()
            },
        ),
        ("a character device member listed as a file", |t, s| {
            listed(
                t,
                s,
                "docs/dev",
                b"",
                device(b"docs/dev", EntryType::Char, 1, 5),
            )
        }),
        ("a block device member listed as a file", |t, s| {
            listed(
                t,
                s,
                "docs/dev",
                b"",
                device(b"docs/dev", EntryType::Block, 8, 0),
            )
        }),
        ("a FIFO member listed as a file", |t, s| {
            listed(
                t,
                s,
                "docs/fifo",
                b"",
                empty(b"docs/fifo", EntryType::Fifo, 0o644),
            )
        }),
        ("a character device member not listed", |t, s| {
            unlisted(
                t,
                s,
                device(b"docs/zero", EntryType::Char, 1, 5),
                &["docs/zero"],
            )
        }),
        ("a folder member where the manifest says file", |t, s| {
            let mut a = t.full.clone();
            *a.member_mut("docs/a.txt") = empty(b"docs/a.txt", EntryType::Directory, 0o755);
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/a.txt"]).may_write()
        }),
        ("a file member where the manifest says folder", |t, s| {
            let mut a = t.full.clone();
            *a.member_mut("docs/empty") = file(b"docs/empty", b"surprise");
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/empty"]).may_write()
        }),
        ("a member not in the manifest", |t, s| {
            unlisted(t, s, file(b"docs/extra.txt", b"extra"), &["docs/extra.txt"])
        }),
        ("a manifest file with no member", |t, s| {
            let mut a = t.full.clone();
            a.add_entry(file_entry("docs/ghost.txt", b"ghost", 0o644));
            Plan::bad_member(s.put(FULL, &a), 1, &["docs/ghost.txt"]).may_write()
        }),
        (
            "a member inflating to 1 GiB while the manifest says 6 bytes",
            |t, s| {
                let mut a = t.full.clone();
                let m = a.member_mut("docs/a.txt");
                m.header.set_size(1 << 30);
                m.header.set_cksum();
                m.data = Data::Zeros(1 << 30);
                Plan::bad_member(s.put(FULL, &a), 1, &["docs/a.txt"]).may_write()
            },
        ),
        (
            "setuid, setgid and sticky bits (dropped by default)",
            |t, s| {
                let mut a = t.full.clone();
                for (path, mode) in [
                    ("docs/a.txt", 0o4755),
                    ("docs/sub", 0o2755),
                    ("docs/empty", 0o1777),
                ] {
                    a.edit_entry(path, |e| e["mode"] = json!(mode));
                    let m = a.member_mut(path);
                    m.header.set_mode(mode);
                    m.header.set_cksum();
                }
                Plan::good(s.put(FULL, &a), 1).content(&t.files1)
            },
        ),
        ("an unlisted member named with ESC and a newline", |t, s| {
            let name = "docs/evil\u{1b}[2J\nfake line: all good.txt";
            unlisted(t, s, file(name.as_bytes(), b"x"), &["evil"])
        }),
        (
            "the destination holds a symlink at a parent path, pointing outside",
            |t, s| {
                let victim = s.outside.join("victim-dest");
                std::fs::create_dir_all(&victim).unwrap();
                std::fs::write(victim.join("theirs.txt"), "theirs").unwrap();
                std::os::unix::fs::symlink(&victim, s.dest.join("docs")).unwrap();
                let p = s.put_bytes(FULL, &t.full_gz);
                Plan::good(p, 1).restore(fails(&["docs"])).untouched()
            },
        ),
        (
            "the destination holds a file at a restored path (no --overwrite)",
            |t, s| {
                std::fs::create_dir_all(s.dest.join("docs")).unwrap();
                std::fs::write(s.dest.join("docs/a.txt"), "mine").unwrap();
                let p = s.put_bytes(FULL, &t.full_gz);
                Plan::good(p, 1).restore(fails(&["a.txt"])).untouched()
            },
        ),
        (
            "a delta whose file declares a result of 2^62 bytes",
            |t, s| {
                s.put_bytes(FULL, &t.full_gz);
                let mut a = t.inc.clone();
                a.edit_entry("docs/sub/b.bin", |e| e["size"] = json!(1u64 << 62));
                Plan::bad_member(s.put(INC, &a), 2, &["docs/sub/b.bin"])
                    .ls(Expect::Any)
                    .verify(Expect::Any)
                    .may_write()
            },
        ),
        ("a 512 MiB delta member of zeros", |t, s| {
            s.put_bytes(FULL, &t.full_gz);
            let mut a = t.inc.clone();
            a.edit_entry("docs/sub/b.bin", |e| e["delta"]["size"] = json!(512 * MIB));
            let m = a.member_mut(DELTA);
            m.header.set_size(512 * MIB);
            m.header.set_cksum();
            m.data = Data::Zeros(512 * MIB);
            // The manifest's delta size is a lie a reader may catch up front.
            Plan::bad_member(s.put(INC, &a), 2, &["docs/sub/b.bin"])
                .ls(ok_or_fails(&["docs/sub/b.bin"]))
                .may_write()
        }),
        ("a sparse map claiming 2^40 extents", |t, s| {
            sparse_listed(t, s, "1099511627776\n0\n4\n", b"data")
        }),
        ("a sparse extent far past the file's size", |t, s| {
            sparse_listed(t, s, "1\n4611686018427387904\n4\n", b"data")
        }),
        ("overlapping sparse extents", |t, s| {
            sparse_listed(t, s, "2\n4096\n4\n4098\n4\n", b"datadata")
        }),
        ("a sparse extent whose end overflows", |t, s| {
            sparse_listed(t, s, "1\n18446744073709551615\n4\n", b"data")
        }),
        ("a sparse map claiming more data than its member", |t, s| {
            sparse_listed(t, s, "1\n0\n1000000\n", b"data")
        }),
        ("a delta that copies past its base", |t, s| {
            with_delta(t, s, delta(&delta_copy(0, 10_000_000)))
        }),
        ("a delta with a bad magic", |t, s| {
            let mut d = real_delta(t);
            d[..4].copy_from_slice(b"NOPE");
            with_delta(t, s, d)
        }),
        ("a truncated delta", |t, s| {
            let d = real_delta(t);
            with_delta(t, s, d[..d.len() / 2].to_vec())
        }),
        ("a delta whose result does not match", |t, s| {
            with_delta(t, s, delta(&delta_literal(b"evil")))
        }),
        ("an incremental whose base id is wrong", |t, s| {
            s.put_bytes(FULL, &t.full_gz);
            let mut a = t.inc.clone();
            a.edit_manifest(|m| m["base_id"] = json!(uuid::Uuid::new_v4()));
            Plan::bad_member(s.put(INC, &a), 2, &["home-1", "base"])
                .ls(Expect::Any)
                .verify(Expect::Any)
        }),
    ]
}

#[test]
fn crafted_archive_members_never_reach_outside_the_destination() {
    let f = Findings::new("hostile archive: members");
    let t = template(exe());
    let cases = cases();
    f.run_cases(
        &cases,
        |c| c.0.to_string(),
        4,
        |&(name, build)| {
            let s = Scene::new();
            let plan = build(t, &s);
            play(&f, name, exe(), &s, &plan);
        },
    );
    f.finish();
}

#[test]
fn control_characters_in_member_names_are_escaped() {
    let f = Findings::new("hostile archive: names");
    let t = template(exe());
    let case = "listed members named with ESC, CR and a newline";
    f.case();
    let s = Scene::new();
    let mut a = t.full.clone();
    let names = [
        "docs/esc\u{1b}[2J\u{1b}[1;1Hx.txt",
        "docs/nl\nfake line: 0 problems.txt",
        "docs/cr\rfake.txt",
    ];
    let mut content = t.files1.clone();
    for n in names {
        a.add_entry(file_entry(n, n.as_bytes(), 0o644));
        a.members.push(file(n.as_bytes(), n.as_bytes()));
        content.insert(n.into(), n.as_bytes().to_vec());
    }
    let plan = Plan::good(s.put(FULL, &a), 1).content(&content);
    play(&f, case, exe(), &s, &plan);
    // Again: every path exists now, and the refusal lists them.
    let again = coffer_tests::hostile::Runner::new(&s.w, exe()).run(&[
        OsString::from("archive"),
        "restore".into(),
        s.nas.clone().into(),
        "--at".into(),
        "1".into(),
        "--to".into(),
        s.dest.clone().into(),
    ]);
    f.check(case, &again, &fails(&["x.txt", "--overwrite"]));
    f.finish();
}

#[test]
fn special_bits_are_kept_only_when_asked() {
    let f = Findings::new("hostile archive: --keep-special-bits");
    let help = coffer_tests::World::new().run(exe(), &["archive", "restore", "--help"]);
    let listed = String::from_utf8_lossy(&help.stdout).contains("--keep-special-bits");
    if !listed {
        f.note("skipped: `coffer archive restore --help` does not list --keep-special-bits yet");
    } else if !coffer_tests::hostile::disk::is_root() {
        f.note("skipped: keeping setuid bits needs root");
    } else {
        let t = template(exe());
        let s = Scene::new();
        let mut a = t.full.clone();
        a.edit_entry("docs/a.txt", |e| e["mode"] = json!(0o4755));
        let m = a.member_mut("docs/a.txt");
        m.header.set_mode(0o4755);
        m.header.set_cksum();
        s.put(FULL, &a);
        let run = coffer_tests::hostile::Runner::new(&s.w, exe()).run(&[
            OsString::from("archive"),
            "restore".into(),
            s.nas.clone().into(),
            "--at".into(),
            "1".into(),
            "--to".into(),
            s.dest.clone().into(),
            "--keep-special-bits".into(),
        ]);
        let case = "a setuid file restored with --keep-special-bits as root";
        f.case();
        f.check(case, &run, &Expect::Ok);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dest.join("docs/a.txt"))
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0);
        if mode != 0o4755 {
            f.fail(
                case,
                format!("docs/a.txt restored with mode {mode:o}, expected 4755"),
            );
        }
    }
    f.finish();
}

/// The template itself must pass every check, or the cases prove nothing.
#[test]
fn the_untampered_archives_restore_cleanly() {
    let f = Findings::new("hostile archive: controls");
    let t = template(exe());
    let s = Scene::new();
    s.put_bytes(FULL, &t.full_gz);
    let inc = s.put(INC, &t.inc);
    let plan = Plan::good(inc, 2).content(&t.files2);
    f.case();
    play(&f, "the template's full and incremental", exe(), &s, &plan);
    f.finish();
}
