//! The manifest parser: every rule, one broken at a time.

use super::*;
use crate::archive::manifest::{DeltaInfo, How, Kind, Manifest};

#[test]
fn manifests_are_checked_whole() {
    use crate::archive::manifest::parse;
    let ok = manifest(vec![dir("a"), file("a/b", b"x"), link("a/l", "/etc")]);
    let text = serde_json::to_vec(&ok).unwrap();
    assert_eq!(parse(&text).unwrap(), ok);
    let bad = |f: &dyn Fn(&mut Manifest), why: &str| {
        let mut m = ok.clone();
        f(&mut m);
        let err = parse(&serde_json::to_vec(&m).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{why}: {err}");
    };
    bad(&|m| m.entries[1].path = "a//b".into(), "not canonical");
    bad(&|m| m.entries[1].path = "a/b/".into(), "not canonical");
    bad(&|m| m.entries[1].path = "./a/b".into(), "not canonical");
    bad(&|m| m.entries[1].path = "/a/b".into(), "absolute");
    bad(&|m| m.entries[1].path = "a/\0".into(), "NUL");
    bad(
        &|m| m.entries[1].path = format!("a/{}", "b".repeat(256)),
        "longer than 255",
    );
    bad(
        &|m| m.entries[1].path = "a/".repeat(2100) + "b",
        "longer than 4096",
    );
    bad(&|m| m.entries[1].path = "a".into(), "listed twice");
    bad(&|m| m.entries[1].path = "dumps/x".into(), "reserved");
    bad(
        &|m| m.entries[1].path = ".coffer-delta/a/b".into(),
        "reserved",
    );
    bad(&|m| m.entries[1].size = (1 << 48) + 1, "beyond");
    bad(&|m| m.entries[1].mode = 0o10644, "not a permission mode");
    bad(
        &|m| m.entries[1].sha256 = Some("00".into()),
        "64 hex digits",
    );
    bad(
        &|m| m.entries[1].volume = Some(2),
        "volume 2 is not in the archive",
    );
    bad(&|m| m.entries[1].how = Some(How::Same), "refers to a base");
    bad(&|m| m.entries[2].target = Some("a\0b".into()), "NUL");
    bad(
        &|m| m.entries[2].target = Some("x".repeat(4097)),
        "too long",
    );
    bad(
        &|m| m.entries[0].size = 5,
        "a folder or symlink with a size",
    );
    bad(
        &|m| m.entries.push(file("a/l/x", b"")),
        "lies under a symlink",
    );
    bad(&|m| m.volumes = 0, "0 volumes");
    bad(&|m| m.block_size = 1 << 30, "block size");
    bad(&|m| m.format = 0, "format 0");
    bad(&|m| m.prefix = "../x".into(), "bad prefix");
    bad(
        &|m| {
            m.kind = Kind::Incremental;
            m.base_sequence = Some(1);
            m.base_id = Some(m.id);
        },
        "numbered below its own",
    );
    bad(
        &|m| {
            m.dumps.push(crate::archive::manifest::DumpEntry {
                name: "../x".into(),
                command: "true".into(),
                load_command: None,
                size: 0,
                sha256: sha(b""),
                volume: 1,
            })
        },
        "bad dump name",
    );
    bad(
        &|m| {
            let mut e = file("a/c", b"0123456789");
            e.how = Some(How::Delta);
            e.delta = Some(DeltaInfo {
                base_sha256: sha(b""),
                sha256: sha(b""),
                size: 512 << 20,
            });
            m.kind = Kind::Incremental;
            m.sequence = 2;
            m.base_sequence = Some(1);
            m.base_id = Some(uuid::Uuid::nil());
            m.entries.push(e);
        },
        "larger than the file",
    );
    assert!(parse(b"").is_err());
    assert!(parse(b"[").is_err());
    assert!(
        parse(&[b'['; 100_000]).is_err(),
        "deep nesting is an error, not a crash"
    );
    assert!(matches!(
        parse(br#"{"format": 99}"#),
        Err(crate::archive::manifest::Invalid::Json(_))
    ));
    let mut newer = ok.clone();
    newer.format = crate::archive::manifest::FORMAT_VERSION + 1;
    assert_eq!(
        parse(&serde_json::to_vec(&newer).unwrap()),
        Err(crate::archive::manifest::Invalid::Newer(newer.format))
    );
    // Format 2 (sparse members) reads format 1's manifests and its own.
    let mut two = ok.clone();
    two.format = 2;
    assert!(parse(&serde_json::to_vec(&two).unwrap()).is_ok());
}

#[test]
fn member_names_are_normalised() {
    use crate::archive::manifest::normalize;
    for (raw, want) in [
        ("a", "a"),
        ("a/", "a"),
        ("a/.", "a"),
        ("./a", "a"),
        ("a//b/./", "a/b"),
    ] {
        assert_eq!(normalize(raw.as_bytes()).unwrap(), want, "{raw}");
    }
    for bad in ["", ".", "./", "/a", "a/../b", "..", "a\0b"] {
        assert!(normalize(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert!(normalize(b"\xff").is_err());
}
