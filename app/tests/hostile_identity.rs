#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Hostile disks, part 3: malformed identity files (issue 14, "at least 30
//! malformed identity files").
//!
//! Each case puts something other than a valid `coffer-disk.json` at the
//! root of a real synced disk. `coffer disks` must report the disk as
//! unreadable (exit 3, naming the file); `sync`, `verify` and `restore
//! --from-disk` on it must fail naming it; none may hang; and nothing on the
//! disk, nor outside it, may change. A worker reuses its synced world from
//! case to case while the disk stays untouched, and builds a new one after
//! a case changed it.

use std::path::Path;

use coffer_tests::hostile::disk::{self, Cmd, DiskWorld};
use coffer_tests::hostile::{Expect, Findings, Tree, fails};
use serde_json::{Value, json};

fn exe() -> &'static Path {
    coffer_tests::hostile::binary(env!("CARGO_BIN_EXE_coffer"))
}

/// What to put at `coffer-disk.json`.
enum Make {
    Bytes(Vec<u8>),
    Fifo,
    Socket,
    Folder,
    /// A symlink to a valid identity outside the disk.
    LinkToValid,
    Dangling,
    /// A character device like `/dev/zero` (root only).
    CharDevice,
    /// Valid JSON at the start of a 100 MB sparse file.
    Sparse,
}

type Build = fn(&Value) -> Make;

fn text(s: &str) -> Make {
    Make::Bytes(s.as_bytes().to_vec())
}

fn json_of(v: &Value) -> Make {
    Make::Bytes(serde_json::to_vec_pretty(v).unwrap())
}

fn with(v: &Value, key: &str, value: Value) -> Make {
    let mut v = v.clone();
    v[key] = value;
    json_of(&v)
}

fn without(v: &Value, key: &str) -> Make {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove(key);
    json_of(&v)
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

fn cases() -> Vec<(&'static str, Build)> {
    vec![
        ("empty file", |_| text("")),
        ("whitespace only", |_| text("  \n\t \r\n")),
        ("truncated JSON", |v| {
            let b = pretty(v);
            Make::Bytes(b[..b.len() / 2].to_vec())
        }),
        ("null", |_| text("null")),
        ("an empty array", |_| text("[]")),
        ("an array holding the identity", |v| json_of(&json!([v]))),
        ("a number", |_| text("42")),
        ("a string", |_| text("\"coffer\"")),
        ("an object without format", |v| without(v, "format")),
        ("format as a string", |v| with(v, "format", json!("1"))),
        ("format 0", |v| with(v, "format", json!(0))),
        ("format 2 (newer)", |v| with(v, "format", json!(2))),
        ("format -1", |v| with(v, "format", json!(-1))),
        ("format 1.5", |v| with(v, "format", json!(1.5))),
        ("format 2^70", |v| {
            let s = String::from_utf8(pretty(v)).unwrap();
            text(&s.replace("\"format\": 1", "\"format\": 1180591620717411303424"))
        }),
        ("format null", |v| with(v, "format", Value::Null)),
        ("missing disk_id", |v| without(v, "disk_id")),
        ("disk_id not a UUID", |v| {
            with(v, "disk_id", json!("not-a-uuid"))
        }),
        ("disk_id a number", |v| with(v, "disk_id", json!(12345))),
        ("missing label", |v| without(v, "label")),
        ("empty label", |v| with(v, "label", json!(""))),
        ("label of spaces", |v| with(v, "label", json!("   "))),
        ("label a number", |v| with(v, "label", json!(7))),
        ("label of 1 MB (file over the cap)", |v| {
            with(v, "label", json!("L".repeat(1 << 20)))
        }),
        ("sets not an array", |v| {
            with(v, "sets", json!("all of them"))
        }),
        ("sets holding non-UUIDs", |v| {
            with(v, "sets", json!(["nope", 3]))
        }),
        ("missing sets", |v| without(v, "sets")),
        ("created_at a string", |v| {
            with(v, "created_at", json!("yesterday"))
        }),
        ("quota negative", |v| with(v, "quota", json!(-5))),
        ("quota a string", |v| with(v, "quota", json!("lots"))),
        ("max_file_size negative", |v| {
            with(v, "max_file_size", json!(-1))
        }),
        ("a UTF-8 BOM before the JSON", |v| {
            let mut b = vec![0xef, 0xbb, 0xbf];
            b.extend(pretty(v));
            Make::Bytes(b)
        }),
        ("duplicate keys: two disk_ids", |v| {
            let s = String::from_utf8(pretty(v)).unwrap();
            let other = uuid::Uuid::new_v4();
            text(&s.replacen('{', &format!("{{\n  \"disk_id\": \"{other}\","), 1))
        }),
        ("10 000 nested [", |_| text(&"[".repeat(10_000))),
        ("a label nested 10 000 objects deep", |v| {
            let deep = format!("{}0{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
            let t = String::from_utf8(pretty(&with_label(v, "PLACEHOLDER"))).unwrap();
            text(&t.replace("\"PLACEHOLDER\"", &deep))
        }),
        ("trailing garbage", |v| {
            let mut b = pretty(v);
            b.extend_from_slice(b"\n}garbage{");
            Make::Bytes(b)
        }),
        ("NUL bytes after the JSON (a torn write)", |v| {
            let mut b = pretty(v);
            b.extend(std::iter::repeat_n(0u8, 4096));
            Make::Bytes(b)
        }),
        ("a raw NUL inside the label", |v| {
            let s = String::from_utf8(pretty(&with_label(v, "PLACEHOLDER"))).unwrap();
            text(&s.replace("PLACEHOLDER", "a\u{0}b"))
        }),
        ("invalid UTF-8 inside the label", |v| {
            let s = String::from_utf8(pretty(&with_label(v, "PLACEHOLDER"))).unwrap();
            let (head, tail) = s.split_once("PLACEHOLDER").unwrap();
            let mut b = head.as_bytes().to_vec();
            b.extend_from_slice(&[0xff, 0xfe, 0xc3]);
            b.extend_from_slice(tail.as_bytes());
            Make::Bytes(b)
        }),
        ("UTF-16LE with a BOM", |v| {
            let s = String::from_utf8(pretty(v)).unwrap();
            let mut b = vec![0xff, 0xfe];
            for u in s.encode_utf16() {
                b.extend_from_slice(&u.to_le_bytes());
            }
            Make::Bytes(b)
        }),
        ("a 100 MB sparse file", |_| Make::Sparse),
        ("a FIFO", |_| Make::Fifo),
        ("a Unix socket", |_| Make::Socket),
        ("a folder", |_| Make::Folder),
        ("a symlink to a valid identity elsewhere", |_| {
            Make::LinkToValid
        }),
        ("a dangling symlink", |_| Make::Dangling),
        ("a character device like /dev/zero", |_| Make::CharDevice),
    ]
}

fn with_label(v: &Value, label: &str) -> Value {
    let mut v = v.clone();
    v["label"] = json!(label);
    v
}

/// Puts `make` at the identity's place. False when the case needs root and
/// the tests do not run as root.
fn install(dw: &DiskWorld, make: Make, valid: &[u8]) -> bool {
    let id = dw.identity();
    disk::remove(&id);
    match make {
        Make::Bytes(b) => std::fs::write(&id, b).unwrap(),
        Make::Fifo => disk::mkfifo(&id),
        Make::Socket => disk::socket(&id),
        Make::Folder => {
            std::fs::create_dir(&id).unwrap();
            std::fs::write(id.join("inside.json"), valid).unwrap();
        }
        Make::LinkToValid => {
            let elsewhere = dw.outside.join("identity-copy.json");
            std::fs::write(&elsewhere, valid).unwrap();
            disk::symlink(&elsewhere, &id);
        }
        Make::Dangling => disk::symlink(&dw.outside.join("no-such-identity.json"), &id),
        Make::CharDevice => {
            if !disk::is_root() {
                return false;
            }
            disk::mknod_zero(&id);
        }
        Make::Sparse => {
            std::fs::write(&id, valid).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&id)
                .unwrap()
                .set_len(100 << 20)
                .unwrap();
        }
    }
    true
}

#[test]
fn malformed_identity_files_are_reported_and_nothing_is_written() {
    let f = Findings::new("hostile disk: identity files");
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "issue 14 asks for at least 30 identity cases"
    );
    let id = "coffer-disk.json";
    f.run_cases_with(
        &cases,
        |c| c.0.to_string(),
        6,
        || None::<DiskWorld>,
        |state, &(name, build)| {
            let dw = state.get_or_insert_with(|| DiskWorld::new(exe()));
            let valid = std::fs::read(dw.identity()).unwrap();
            let value: Value = serde_json::from_slice(&valid).unwrap();
            if !install(dw, build(&value), &valid) {
                f.note(format!("skipped (needs root): {name}"));
                return;
            }
            let before = (Tree::of(&dw.disk), Tree::of(&dw.outside));
            let steps = vec![
                (Cmd::Disks, Expect::Exit(3, vec![id.into()])),
                (Cmd::Sync, fails(&[id])),
                (Cmd::Verify, fails(&[id])),
                (Cmd::Restore, fails(&[id])),
            ];
            dw.play(&f, name, steps, &[&dw.disk, &dw.outside]);
            let dirty = before != (Tree::of(&dw.disk), Tree::of(&dw.outside));
            // Put the valid identity back for the next case, or start a
            // new world if this one was written to.
            disk::remove(&dw.identity());
            std::fs::write(dw.identity(), &valid).unwrap();
            disk::remove(&dw.outside.join("identity-copy.json"));
            if dirty {
                *state = None;
            }
        },
    );
    f.finish();
}
