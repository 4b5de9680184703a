//! Reading an archive's manifest, and `archive verify`: a volume read to its
//! very end through the member reader, every member checked.
//!
//! Invariant: verify and restore make the same checks through the same
//! reader, so what verify calls bad in a volume, a restore reading that
//! volume refuses, with two exceptions that cannot be otherwise: a member
//! restore does not write is not hashed by it (nothing of it is written),
//! and a delta's COPY past its base is found only when the delta is
//! applied (the base lies in another archive file; verify checks the
//! delta's commands and the size it makes).

use std::path::{Path, PathBuf};

use super::manifest::{self, Manifest};
use super::member::{self, Discard, Reading, Want};
use super::open::{self, SLACK};
use super::{Error, Name};
use crate::object::ObjectId;
use crate::task::Progress;

/// Reads the first member of an archive file (any volume carries it):
/// the parsed manifest and the SHA-256 of its bytes. Reads only the start
/// of the file.
pub(crate) fn manifest_of(path: &Path) -> Result<(Manifest, ObjectId), Error> {
    let file = open::open_file(path)?;
    let (stream, grant) = open::stream(file, member::PER_MEMBER + SLACK);
    let mut ar = tar::Archive::new(stream);
    let mut entries = ar
        .entries()
        .map_err(|e| member::damaged(path, &e, Vec::new()))?
        .raw(true);
    let (bytes, digest) = member::read_manifest_member(&mut entries, path, &grant, true)?;
    let m = manifest::parse_in(path, &bytes)?;
    Ok((m, digest))
}

/// The manifest of an archive file (any volume carries it).
pub fn read_manifest(path: &Path) -> Result<Manifest, Error> {
    manifest_of(path).map(|(m, _)| m)
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub sequence: u64,
    pub kind: super::Kind,
    pub volume: u32,
    pub volumes: u32,
    pub members: u64,
    pub bytes: u64,
}

/// Reads one archive file to its end and checks every member against the
/// manifest it starts with.
pub fn verify(path: &Path, progress: &Progress) -> crate::Result<VerifyReport> {
    let volume = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(Name::parse)
        .and_then(|n| n.volume)
        .unwrap_or(1);
    let file = open::open_file(path)?;
    let c = member::read_volume(
        file,
        path,
        Want::Own,
        volume,
        &mut Discard,
        progress,
        Reading::Verify,
    )?;
    let m = c
        .manifest
        .ok_or_else(|| crate::Error::Panic("verify parsed no manifest".into()))?;
    Ok(VerifyReport {
        path: path.to_path_buf(),
        sequence: m.sequence,
        kind: m.kind,
        volume,
        volumes: m.volumes,
        members: c.members,
        bytes: c.bytes,
    })
}

/// Reads volume `v` at `path` to its end: the manifest must be exactly
/// the bytes of SHA-256 `digest` (which parse to `m`), and every member must
/// be expected and match its hash. Errors name `shown` (the final name of a
/// temp file).
pub(crate) fn verify_volume(
    path: &Path,
    shown: &Path,
    m: &Manifest,
    digest: ObjectId,
    v: u32,
    progress: &Progress,
) -> crate::Result<(u64, u64)> {
    let file = open::open_file(path)?;
    let c = member::read_volume(
        file,
        shown,
        Want::Exactly(m, digest),
        v,
        &mut Discard,
        progress,
        Reading::Verify,
    )?;
    Ok((c.members, c.bytes))
}
