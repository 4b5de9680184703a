#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Hostile archives, part 2 (issue 14 item 7): damaged gzip streams,
//! manifests that lie or are missing, volumes, and files that are not
//! archives at all.
//!
//! Same harness as `hostile_archive_members.rs`: real archives tampered
//! with, `coffer archive ls`, `verify` and `restore` under a timeout and an
//! address-space cap, the world outside the destination hashed around each
//! command, and the destination left exactly as it was wherever the fault
//! shows before anything needs writing.

use std::io::Write;
use std::path::Path;

use coffer_tests::hostile::archive::{Plan, Scene, Template, play, template};
use coffer_tests::hostile::disk;
use coffer_tests::hostile::tarball::{self, Data, file_entry};
use coffer_tests::hostile::{Expect, Findings, ok_or_fails};
use serde_json::json;

fn exe() -> &'static Path {
    coffer_tests::hostile::binary(env!("CARGO_BIN_EXE_coffer"))
}

const FULL: &str = "home-1.tar.gz";

type Build = fn(&Template, &Scene) -> Plan;

/// The full archive with its manifest edited by `f`; every command must
/// refuse it naming one of `needles`.
fn manifest_edit(
    t: &Template,
    s: &Scene,
    needles: &[&str],
    f: impl FnOnce(&mut serde_json::Value),
) -> Plan {
    let mut a = t.full.clone();
    a.edit_manifest(f);
    Plan::refused(s.put(FULL, &a), 1, needles)
}

/// A manifest of `n` folder entries, gzip-compressed as one stream, as
/// the first member of an archive: small on disk, huge once parsed.
fn manifest_bomb(t: &Template, n: usize) -> Vec<u8> {
    let mut m = t.full.manifest();
    m["entries"] = json!([]);
    let head = serde_json::to_string(&m).unwrap();
    let (before, after) = head.split_once("\"entries\":[]").unwrap();
    let mut json = Vec::with_capacity(n * 64);
    json.extend_from_slice(before.as_bytes());
    json.extend_from_slice(b"\"entries\":[");
    for i in 0..n {
        if i > 0 {
            json.push(b',');
        }
        write!(
            json,
            "{{\"path\":\"d/{i:08}\",\"kind\":\"dir\",\"mtime_ns\":0,\"mode\":493}}"
        )
        .unwrap();
    }
    json.push(b']');
    json.extend_from_slice(after.as_bytes());
    tarball::gz_one_member(b"manifest.json", &json)
}

fn cases() -> Vec<(&'static str, Build)> {
    vec![
        ("truncated gzip", |t, s| {
            let p = s.put_bytes(FULL, &t.full_gz[..t.full_gz.len() / 2]);
            Plan::bad_member(p, 1, &[FULL]).ls(Expect::Any).may_write()
        }),
        ("bit-flipped gzip", |t, s| {
            let mut b = t.full_gz.clone();
            let i = b.len() * 2 / 3;
            b[i] ^= 0x5a;
            b[i + 1] ^= 0xa5;
            let p = s.put_bytes(FULL, &b);
            Plan::bad_member(p, 1, &[FULL]).ls(Expect::Any).may_write()
        }),
        ("trailing garbage after the gzip stream", |t, s| {
            let mut b = t.full_gz.clone();
            b.extend_from_slice(b"GARBAGE, not gzip at all");
            let p = s.put_bytes(FULL, &b);
            Plan::bad_member(p, 1, &[FULL])
                .ls(Expect::Any)
                .restore(ok_or_fails(&[FULL]))
                .content(&t.files1)
                .may_write()
        }),
        (
            "data after the end of the tar, inside the gzip stream",
            |t, s| {
                let mut a = t.full.clone();
                a.tail = b"hidden payload after the end blocks".to_vec();
                Plan::bad_member(s.put(FULL, &a), 1, &[FULL])
                    .restore(ok_or_fails(&[FULL]))
                    .content(&t.files1)
                    .may_write()
            },
        ),
        ("manifest not the first member", |t, s| {
            let mut a = t.full.clone();
            let m = a.members.remove(0);
            a.members.insert(2, m);
            Plan::refused(s.put(FULL, &a), 1, &["manifest.json", FULL])
        }),
        ("no manifest", |t, s| {
            let mut a = t.full.clone();
            a.members.remove(0);
            Plan::refused(s.put(FULL, &a), 1, &["manifest.json", FULL])
        }),
        ("invalid manifest JSON", |t, s| {
            let mut a = t.full.clone();
            a.members[0].set_bytes(b"{\"format\": 1, \"entries\": [".to_vec());
            Plan::refused(s.put(FULL, &a), 1, &["manifest.json", FULL])
        }),
        ("a manifest member declaring 2^40 bytes", |t, s| {
            let mut a = t.full.clone();
            a.members[0].header.set_size(1 << 40);
            a.members[0].header.set_cksum();
            a.members[0].data = Data::ZerosThenEnd(0);
            Plan::refused(s.put(FULL, &a), 1, &["manifest.json", FULL])
        }),
        ("a manifest gzip bomb of 4 million entries", |t, s| {
            let p = s.put_bytes(FULL, &manifest_bomb(t, 4_000_000));
            Plan::refused(p, 1, &["manifest.json", FULL])
        }),
        ("manifest path ..", |t, s| {
            manifest_edit(t, s, &["../evil"], |m| {
                m["entries"]
                    .as_array_mut()
                    .unwrap()
                    .push(file_entry("../evil", b"x", 0o644))
            })
        }),
        ("manifest path absolute", |t, s| {
            let abs = s.outside.join("abs-evil");
            let abs = abs.to_str().unwrap().to_string();
            let mut a = t.full.clone();
            a.add_entry(file_entry(&abs, b"x", 0o644));
            Plan::refused(s.put(FULL, &a), 1, &["abs-evil"])
        }),
        ("manifest path holding \\u0000", |t, s| {
            manifest_edit(t, s, &["docs/a"], |m| {
                m["entries"]
                    .as_array_mut()
                    .unwrap()
                    .push(file_entry("docs/a\u{0}b", b"x", 0o644))
            })
        }),
        ("manifest path with a trailing /", |t, s| {
            let mut a = t.full.clone();
            a.edit_entry("docs/a.txt", |e| e["path"] = json!("docs/a.txt/"));
            Plan::good(s.put(FULL, &a), 1)
                .ls(Expect::Any)
                .verify(ok_or_fails(&["docs/a.txt"]))
                .restore(ok_or_fails(&["docs/a.txt"]))
                .content(&t.files1)
        }),
        ("manifest format 99", |t, s| {
            manifest_edit(t, s, &[FULL], |m| m["format"] = json!(99))
        }),
        ("manifest dump named ../x", |t, s| {
            manifest_edit(t, s, &["../x"], |m| {
                m["dumps"] = json!([{
                    "name": "../x", "command": "true", "size": 0,
                    "sha256": tarball::sha(b""), "volume": 1,
                }])
            })
        }),
        ("manifest sizes that overflow a sum", |t, s| {
            let mut a = t.full.clone();
            for p in ["docs/a.txt", "docs/sub/b.bin"] {
                a.edit_entry(p, |e| e["size"] = json!(u64::MAX / 2 + 7));
            }
            Plan::refused(s.put(FULL, &a), 1, &["docs/a.txt", "docs/sub/b.bin", FULL])
                .ls(Expect::Any)
                .may_write()
        }),
        ("a missing volume", |t, s| {
            let p = s.put("vol-1.vol001.tar.gz", &t.vol1);
            Plan::good(p, 1)
                .ls(Expect::Any)
                .restore(Expect::Fails(vec!["vol002".into()]))
                .may_write()
        }),
        ("a volume whose manifest differs", |t, s| {
            let v1 = s.put("vol-1.vol001.tar.gz", &t.vol1);
            let mut v2 = t.vol2.clone();
            v2.edit_manifest(|m| m["id"] = json!(uuid::Uuid::new_v4()));
            s.put("vol-1.vol002.tar.gz", &v2);
            Plan::good(v1, 1)
                .ls(Expect::Any)
                .restore(Expect::Fails(vec!["vol002".into()]))
                .may_write()
        }),
        ("a 0-byte archive", |_, s| {
            Plan::refused(s.put_bytes(FULL, b""), 1, &[FULL])
        }),
        ("an archive that is a FIFO", |_, s| {
            let p = s.nas.join(FULL);
            disk::mkfifo(&p);
            Plan::refused(p, 1, &[FULL])
        }),
        ("a symlink to /dev/zero named like an archive", |_, s| {
            let p = s.nas.join(FULL);
            std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
            Plan::refused(p, 1, &[FULL])
        }),
        ("a folder named x-1.tar.gz", |_, s| {
            let p = s.nas.join("x-1.tar.gz");
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("inside"), "x").unwrap();
            Plan::refused(p, 1, &["x-1.tar.gz"]).ls(ok_or_fails(&["x-1.tar.gz"]))
        }),
    ]
}

#[test]
fn damaged_streams_and_lying_manifests_are_refused() {
    let f = Findings::new("hostile archive: streams and manifests");
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
