//! Sparse members: an archive of a file with holes written small and
//! restored with its holes, through a chain; and sparse members built by
//! hand whose PAX records or map lie, each refused naming the member.

use std::os::unix::fs::{FileExt, MetadataExt};

use super::super::manifest::{How, Manifest};
use super::super::{Mode, Options, create};
use super::*;
use crate::config::{Profile, Source};

const MIB: u64 = 1 << 20;

/// A PAX header member holding `records`.
fn pax(records: &[(&str, &str)]) -> Raw {
    let mut data = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    raw("PaxHeaders/x", tar::EntryType::XHeader, &data)
}

/// The data of a sparse member: `map` padded to 512 bytes, then `data`.
fn member_data(map: &str, data: &[u8]) -> Vec<u8> {
    let mut m = map.as_bytes().to_vec();
    m.resize(m.len().div_ceil(512) * 512, 0);
    m.extend_from_slice(data);
    m
}

fn records<'a>(name: &'a str, realsize: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.name", name),
        ("GNU.sparse.realsize", realsize),
    ]
}

/// A format 2 manifest listing `f` (`logical`) as a sparse member of
/// `stored` bytes.
fn sparse_manifest(logical: &[u8], stored: u64) -> Manifest {
    let mut e = file("f", logical);
    e.sparse = Some(stored);
    Manifest {
        format: 2,
        ..manifest(vec![e])
    }
}

/// A 64 KiB file with "data" at 8 KiB and nothing else: its map is one
/// extent and its member 512 + 4 bytes.
fn good() -> (Vec<u8>, String, Vec<u8>) {
    let mut logical = vec![0u8; 64 << 10];
    logical[8192..8196].copy_from_slice(b"data");
    let map = "2\n8192\n4\n65536\n0\n".to_string();
    (logical, map, b"data".to_vec())
}

#[test]
fn a_sparse_member_built_by_hand_restores_with_its_holes() {
    let w = world();
    let (logical, map, data) = good();
    let body = member_data(&map, &data);
    let m = sparse_manifest(&logical, body.len() as u64);
    let mut members = vec![pax(&records("f", "65536"))];
    members.push(raw("GNUSparseFile.0/f", tar::EntryType::Regular, &body));
    let p = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
    verify(&p, &Progress::silent()).unwrap();
    w.restore(1, RestoreOptions::default()).unwrap();
    assert_eq!(std::fs::read(w.dest.join("f")).unwrap(), logical);
}

#[test]
fn hostile_sparse_members_are_refused_naming_the_member() {
    let w = world();
    let (logical, map, data) = good();
    let size = logical.len().to_string();
    // Case, PAX records, map, data after it, what the error must say.
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        String,
        Vec<u8>,
        Vec<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "2^40 extents claimed",
            records("f", &size),
            "1099511627776\n0\n4\n".into(),
            data.clone(),
            vec!["`f`", "extents"],
        ),
        (
            "overlapping extents",
            records("f", &size),
            "2\n8192\n4\n8194\n0\n".into(),
            data.clone(),
            vec!["`f`", "overlaps"],
        ),
        (
            "an extent whose end overflows",
            records("f", &size),
            "1\n18446744073709551615\n4\n".into(),
            data.clone(),
            vec!["`f`", "beyond any size"],
        ),
        (
            "an extent past the real size",
            records("f", &size),
            "1\n65534\n4\n".into(),
            data.clone(),
            vec!["`f`", "past the file's size"],
        ),
        (
            "a map claiming more data than the member holds",
            records("f", &size),
            "1\n0\n4000\n".into(),
            data.clone(),
            vec!["`f`", "the member has"],
        ),
        (
            "a map that is not numbers",
            records("f", &size),
            "1\n0x10\n4\n".into(),
            data.clone(),
            vec!["`f`", "other than numbers"],
        ),
        (
            "a real size other than the manifest's",
            records("f", "65537"),
            map.clone(),
            data.clone(),
            vec!["`f`", "65537"],
        ),
        (
            "sparse format 0.1",
            vec![
                ("GNU.sparse.major", "0"),
                ("GNU.sparse.minor", "1"),
                ("GNU.sparse.name", "f"),
                ("GNU.sparse.realsize", &size),
            ],
            map.clone(),
            data.clone(),
            vec!["PAX 1.0"],
        ),
        (
            "a GNU.sparse.map record",
            vec![("GNU.sparse.map", "0,4")],
            map.clone(),
            data.clone(),
            vec!["GNU.sparse.map"],
        ),
        (
            "a real size that is not a number",
            records("f", "-1"),
            map.clone(),
            data.clone(),
            vec!["realsize"],
        ),
        (
            "a sparse name that climbs out",
            records("../f", &size),
            map.clone(),
            data.clone(),
            vec!["../f"],
        ),
        (
            "extents whose content does not match the hash",
            records("f", &size),
            map.clone(),
            b"evil".to_vec(),
            vec!["`f`", "SHA-256"],
        ),
        (
            "no sparse records for a member the manifest lists sparse",
            Vec::new(),
            map.clone(),
            data.clone(),
            vec!["`f`", "stored whole"],
        ),
    ];
    for (case, recs, map, data, want) in cases {
        let body = member_data(&map, &data);
        let m = sparse_manifest(&logical, body.len() as u64);
        let mut members = Vec::new();
        let mut name = "f";
        if !recs.is_empty() {
            members.push(pax(&recs));
            name = "GNUSparseFile.0/f";
        }
        members.push(raw(name, tar::EntryType::Regular, &body));
        let p = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
        w.refused(case, &p, 1, &want);
    }
    // A sparse member the manifest lists whole.
    let body = member_data(&map, &data);
    let mut e = file("f", &logical);
    e.size = body.len() as u64;
    let m = manifest(vec![e]);
    let members = [
        pax(&records("f", &size)),
        raw("GNUSparseFile.0/f", tar::EntryType::Regular, &body),
    ];
    let p = w.put("t-1.tar.gz", &archive_bytes(&m, &members));
    w.refused(
        "a sparse member listed whole",
        &p,
        1,
        &["`f`", "sparse member"],
    );
}

#[test]
fn the_manifest_bounds_sparse_members() {
    let (logical, _, _) = good();
    let mut m = sparse_manifest(&logical, 516);
    m.format = 1;
    let err = super::super::manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
    assert!(err.to_string().contains("format 1"), "{err}");
    for stored in [0, logical.len() as u64, u64::MAX] {
        let m = sparse_manifest(&logical, stored);
        let err = super::super::manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(err.to_string().contains("not smaller"), "{stored}: {err}");
    }
}

fn profile(base: &Path, src: &Path) -> Profile {
    Profile {
        set_id: uuid::Uuid::nil(),
        name: "t".into(),
        basepath: base.to_path_buf(),
        copies: 1,
        sources: vec![Source {
            path: src.to_path_buf(),
            excludes: vec![],
            copies: None,
            priority: 0,
            outside_basepath: false,
        }],
        excludes: vec![],
        dumps: vec![],
        before_sync: None,
        after_sync: None,
    }
}

/// Writes `bytes` at each offset of a file of `len` bytes made of holes.
fn holes_with(path: &Path, len: u64, data: &[(u64, &[u8])]) -> Vec<u8> {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    for (at, b) in data {
        f.write_all_at(b, *at).unwrap();
    }
    std::fs::read(path).unwrap()
}

#[test]
fn a_sparse_file_is_archived_small_and_restored_with_its_holes_through_a_chain() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let nas = t.path().join("nas");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&nas).unwrap();
    let img = src.join("disk.img");
    let v1 = holes_with(
        &img,
        256 * MIB,
        &[
            (0, b"boot"),
            (100 * MIB, b"middle"),
            (256 * MIB - 4, b"tail"),
        ],
    );
    std::fs::write(src.join("plain.txt"), b"plain").unwrap();
    let p = profile(t.path(), &src);
    let silent = Progress::silent();
    let r1 = create(&p, &nas, Mode::Full, &Options::default(), &silent).unwrap();
    assert!(
        r1.compressed_bytes < 64 << 10,
        "a 256 MiB file with 14 bytes of data took {} bytes compressed",
        r1.compressed_bytes
    );
    assert!(
        r1.stored_bytes < 20 << 10,
        "{} bytes stored",
        r1.stored_bytes
    );
    let m1 = super::super::read_manifest(&r1.files[0]).unwrap();
    assert_eq!(m1.format, 2);
    let e = m1
        .entries
        .iter()
        .find(|e| e.path == "src/disk.img")
        .unwrap();
    assert_eq!((e.size, e.how), (256 * MIB, Some(How::New)));
    assert!(e.sparse.is_some_and(|s| s < 20 << 10));
    assert!(e.signature.is_some());
    // The plain file keeps format 1's way.
    let plain = m1
        .entries
        .iter()
        .find(|e| e.path == "src/plain.txt")
        .unwrap();
    assert_eq!(plain.sparse, None);

    // Unchanged: carried from the base. Changed: stored again, sparse.
    std::fs::write(src.join("plain.txt"), b"plain, changed").unwrap();
    let r2 = create(
        &p,
        &nas,
        Mode::Incremental { since: None },
        &Options::default(),
        &silent,
    )
    .unwrap();
    let m2 = super::super::read_manifest(&r2.files[0]).unwrap();
    let e2 = m2
        .entries
        .iter()
        .find(|e| e.path == "src/disk.img")
        .unwrap();
    assert_eq!((e2.how, e2.sparse), (Some(How::Same), None));
    let v3 = holes_with(&img, 256 * MIB, &[(0, b"boot"), (200 * MIB, b"moved")]);
    let r3 = create(
        &p,
        &nas,
        Mode::Incremental { since: None },
        &Options::default(),
        &silent,
    )
    .unwrap();
    let m3 = super::super::read_manifest(&r3.files[0]).unwrap();
    let e3 = m3
        .entries
        .iter()
        .find(|e| e.path == "src/disk.img")
        .unwrap();
    assert_eq!(e3.how, Some(How::Whole));
    assert!(e3.sparse.is_some());
    assert!(r3.compressed_bytes < 64 << 10, "{}", r3.compressed_bytes);

    for (at, want) in [(1u64, &v1), (2, &v1), (3, &v3)] {
        let dest = t.path().join(format!("dest{at}"));
        let opts = RestoreOptions {
            at,
            ..RestoreOptions::default()
        };
        super::super::restore(&nas, &dest, &opts, &silent).unwrap();
        let out = dest.join("src/disk.img");
        assert!(
            std::fs::read(&out).unwrap() == **want,
            "archive {at}: content differs"
        );
        let blocks = std::fs::metadata(&out).unwrap().blocks();
        assert!(
            blocks * 512 <= 256 << 10,
            "archive {at}: restored with {blocks} blocks allocated"
        );
    }
}
