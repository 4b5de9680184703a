//! The archive member reader (`member::check_stream`, every check `archive
//! verify` makes) on mutated archives. It never panics, and a volume it
//! accepts holds exactly what the manifest lists for it: as many members,
//! and as many content bytes.
//!
//! Input layout: one mode byte, then the body. With the mode's low bit
//! clear the body is the uncompressed tar stream, gzipped here, so that
//! mutations reach the tar headers, the manifest and the member data
//! rather than dying in the gzip checksum; with it set the body is the
//! `.tar.gz` itself (truncated, bit-flipped or bomb gzip). The manifest the
//! stream must match is its own first member when that parses (else a
//! fixed one, and the reader refuses the stream at its first member
//! anyway); the mode's next bits pick the volume.
#![no_main]

use std::borrow::Cow;
use std::io::{Read, Write};

use coffer_core::archive::manifest::{self, EntryKind, How, MANIFEST_NAME, Manifest};
use coffer_core::archive::member;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

/// Most decompressed bytes looked at to find the stream's own manifest.
const PEEK: u64 = 4 << 20;

/// A valid manifest of nothing, for streams whose first member is not one.
const FALLBACK: &str = r#"{"format":1,"id":"00000000-0000-0000-0000-000000000001","kind":"full","prefix":"t","sequence":1,"created_at":0,"basepath":"/","sources":[],"block_size":4096,"volumes":1,"dumps":[],"entries":[]}"#;

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), Compression::fast());
    e.write_all(body).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// The manifest the tar stream `tar` starts with, if it is a valid one.
fn own_manifest(tar: &[u8]) -> Option<Manifest> {
    let mut ar = tar::Archive::new(tar);
    let mut first = ar.entries().ok()?.next()?.ok()?;
    if first.path_bytes().as_ref() != MANIFEST_NAME.as_bytes() {
        return None;
    }
    let mut bytes = Vec::new();
    first.by_ref().take(PEEK).read_to_end(&mut bytes).ok()?;
    manifest::parse(&bytes).ok()
}

/// What the reader must find in volume `v` when it accepts it: members
/// after the manifest, and content bytes.
fn expected(m: &Manifest, v: u32) -> (u64, u64) {
    let (mut members, mut bytes) = (0u64, 0u64);
    if v == 1 {
        members += m
            .entries
            .iter()
            .filter(|e| e.kind != EntryKind::File)
            .count() as u64;
    }
    for e in m.members_in_volume(v) {
        members += 1;
        bytes += match (&e.delta, e.how) {
            (Some(d), Some(How::Delta)) => d.size,
            _ => e.size,
        };
    }
    for d in m.dumps.iter().filter(|d| d.volume == v) {
        members += 1;
        bytes += d.size;
    }
    (members, bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (gz, tar): (Cow<[u8]>, Cow<[u8]>) = if mode & 1 == 0 {
        (Cow::Owned(gzip(body)), Cow::Borrowed(body))
    } else {
        let mut tar = Vec::new();
        let _ = MultiGzDecoder::new(body).take(PEEK).read_to_end(&mut tar);
        (Cow::Borrowed(body), Cow::Owned(tar))
    };
    let m = own_manifest(&tar)
        .unwrap_or_else(|| manifest::parse(FALLBACK.as_bytes()).expect("the fallback parses"));
    let v = 1 + u32::from(mode >> 1) % m.volumes.min(4);
    match member::check_stream(&gz[..], &m, v) {
        Ok((members, bytes)) => {
            assert_eq!((members, bytes), expected(&m, v), "accepted volume {v}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
