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
//! anyway); the mode's next two bits pick the volume. Its top five bits,
//! when not zero, name a member (header and data) that is cut out of a raw
//! tar stream before it is gzipped: byte mutations rarely remove exactly a
//! 512-byte block, so without this a volume that lacks one member of its
//! manifest, and nothing else, would hardly ever be tried.
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

/// `tar` without its `k`-th member (from 1, extension headers counting as
/// members), or as it is when it has no such member.
fn without_member(tar: &[u8], k: usize) -> Cow<'_, [u8]> {
    let mut ar = tar::Archive::new(tar);
    let Ok(entries) = ar
        .entries()
        .and_then(|e| e.raw(true).nth(k - 1).transpose())
    else {
        return Cow::Borrowed(tar);
    };
    let Some(e) = entries else {
        return Cow::Borrowed(tar);
    };
    let start = e.raw_header_position();
    let end = e
        .raw_file_position()
        .saturating_add(e.size().div_ceil(512) * 512);
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return Cow::Borrowed(tar);
    };
    if start >= end || end > tar.len() {
        return Cow::Borrowed(tar);
    }
    let mut out = tar[..start].to_vec();
    out.extend_from_slice(&tar[end..]);
    Cow::Owned(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (gz, tar): (Cow<[u8]>, Cow<[u8]>) = if mode & 1 == 0 {
        let tar = match usize::from(mode >> 3) {
            0 => Cow::Borrowed(body),
            k => without_member(body, k),
        };
        (Cow::Owned(gzip(&tar)), tar)
    } else {
        let mut tar = Vec::new();
        let _ = MultiGzDecoder::new(body).take(PEEK).read_to_end(&mut tar);
        (Cow::Borrowed(body), Cow::Owned(tar))
    };
    let m = own_manifest(&tar)
        .unwrap_or_else(|| manifest::parse(FALLBACK.as_bytes()).expect("the fallback parses"));
    let v = 1 + u32::from((mode >> 1) & 3) % m.volumes.min(4);
    match member::check_stream(&gz[..], &m, v) {
        Ok((members, bytes)) => {
            assert_eq!((members, bytes), expected(&m, v), "accepted volume {v}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
