//! Reading a manifest: JSON, then every check restore and verify rely on,
//! in one pure function ([`parse`]) that a fuzzer can drive.
//!
//! Invariant: [`parse`] accepts only what Coffer itself writes: canonical
//! paths (relative, `/`-separated, no empty, `.` or `..` component, no
//! NUL, at most 4096 bytes and 255 per name), each once, none under a
//! symlink or a file of the tree, none reserved; sizes, modes, targets,
//! volumes, block size and chain numbers within bounds; every hash 64 hex
//! digits; a sparse member only in format 2, on a file stored whole here,
//! and smaller than the file.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{DELTA_DIR, DUMPS_DIR, EntryKind, FORMAT_VERSION, How, Kind, MANIFEST_NAME, Manifest};

/// Largest `manifest.json` read. The manifest repeats the whole tree with
/// each file's rsync signature: about 450 bytes an entry for 16 KiB files
/// and 720 for 64 KiB ones (24 hex digits a block, blocks near √(256·size)),
/// so a tree of a million files of 64 KiB needs about 0.75 GB. A smaller cap
/// would refuse archives that Coffer writes; the cap bounds the memory a
/// hostile manifest can take to this, allocated only as its bytes arrive.
pub const MANIFEST_CAP: u64 = 1 << 30;

/// Longest path, and longest name in a path (Linux's `PATH_MAX` and
/// `NAME_MAX`).
pub const MAX_PATH: usize = 4096;
pub const MAX_NAME: usize = 255;
/// Largest file (256 TiB), and the most all sizes may add up to.
pub const MAX_SIZE: u64 = 1 << 48;
const MAX_TOTAL: u64 = 1 << 56;
pub const MAX_VOLUMES: u32 = 1_000_000;
const BLOCK_SIZES: std::ops::RangeInclusive<u32> = 64..=(16 << 20);

/// Why a manifest was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("bad manifest.json: {0}")]
    Json(String),
    #[error("written by a newer Coffer (format {0})")]
    Newer(u32),
    /// What is wrong, and the path (or `manifest.json`) it is wrong in.
    #[error("`{path}`: {reason}")]
    Entry { path: String, reason: String },
}

/// A tar member name as a canonical path: `.` components, empty components
/// and a trailing `/` dropped (`./a`, `a/`, `a/.` and `a//` are `a`);
/// absolute paths, `..`, NUL and names that are not UTF-8 refused.
pub fn normalize(name: &[u8]) -> Result<String, &'static str> {
    let s = std::str::from_utf8(name).map_err(|_| "its name is not UTF-8")?;
    if s.contains('\0') {
        return Err("NUL in path");
    }
    if s.starts_with('/') {
        return Err("absolute path");
    }
    let mut out = String::with_capacity(s.len());
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("`..` in path"),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        return Err("empty path");
    }
    Ok(out)
}

/// Checks that `path` is already canonical and within the length limits.
fn canonical(path: &str) -> Result<(), String> {
    let n = normalize(path.as_bytes())?;
    if n != path {
        return Err("the path is not canonical (`.`, `//` or a `/` at an end)".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("the path is longer than {MAX_PATH} bytes"));
    }
    if path.split('/').any(|c| c.len() > MAX_NAME) {
        return Err(format!(
            "a name in the path is longer than {MAX_NAME} bytes"
        ));
    }
    Ok(())
}

fn is_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_hex(s: &str) -> bool {
    s.len().is_multiple_of(2) && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses `manifest.json` and checks it whole.
pub fn parse(bytes: &[u8]) -> Result<Manifest, Invalid> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| Invalid::Json(e.to_string()))?;
    check(&m)?;
    Ok(m)
}

/// [`parse`], with the error naming the archive file `archive`.
pub(crate) fn parse_in(archive: &Path, bytes: &[u8]) -> Result<Manifest, crate::archive::Error> {
    use crate::archive::Error;
    parse(bytes).map_err(|e| match e {
        Invalid::Json(message) => Error::NotAnArchive {
            path: archive.to_path_buf(),
            message: format!("bad manifest.json: {message}"),
        },
        Invalid::Newer(found) => Error::NewerFormat {
            path: archive.to_path_buf(),
            found,
        },
        Invalid::Entry { path, reason } => Error::Unsafe {
            path: archive.to_path_buf(),
            member: path,
            reason,
        },
    })
}

fn bad(path: &str, reason: impl Into<String>) -> Invalid {
    Invalid::Entry {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn check(m: &Manifest) -> Result<(), Invalid> {
    let top = |reason: String| bad(MANIFEST_NAME, reason);
    if m.format > FORMAT_VERSION {
        return Err(Invalid::Newer(m.format));
    }
    if m.format == 0 {
        return Err(top("format 0 does not exist".into()));
    }
    if crate::archive::check_prefix(&m.prefix).is_err() {
        return Err(top(format!("bad prefix {:?}", m.prefix)));
    }
    if m.sequence == 0 {
        return Err(top("archive number 0 does not exist".into()));
    }
    match (m.kind, m.base_sequence, m.base_id) {
        (Kind::Full, None, None) => {}
        (Kind::Incremental, Some(b), Some(_)) if b > 0 && b < m.sequence => {}
        (Kind::Full, _, _) => return Err(top("a full archive names a base".into())),
        (Kind::Incremental, _, _) => {
            return Err(top(
                "an incremental must name a base numbered below its own".into(),
            ));
        }
    }
    if m.volumes == 0 || m.volumes > MAX_VOLUMES {
        return Err(top(format!(
            "{} volumes (1 to {MAX_VOLUMES} are possible)",
            m.volumes
        )));
    }
    if !BLOCK_SIZES.contains(&m.block_size) {
        return Err(top(format!("block size {} is out of range", m.block_size)));
    }
    let in_volumes = |v: Option<u32>| v.is_some_and(|v| v >= 1 && v <= m.volumes);
    let mut total = 0u64;
    let mut add = |size: u64, path: &str| -> Result<(), Invalid> {
        if size > MAX_SIZE {
            return Err(bad(
                path,
                format!("a size of {size} bytes is beyond {MAX_SIZE}"),
            ));
        }
        total = total
            .checked_add(size)
            .filter(|t| *t <= MAX_TOTAL)
            .ok_or_else(|| bad(path, "the sizes add up to more than any archive holds"))?;
        Ok(())
    };

    let mut kinds: HashMap<&str, EntryKind> = HashMap::with_capacity(m.entries.len());
    for e in &m.entries {
        let p = e.path.as_str();
        canonical(p).map_err(|r| bad(p, r))?;
        let first = p.split('/').next().unwrap_or_default();
        if p == MANIFEST_NAME || first == DUMPS_DIR || first == DELTA_DIR {
            return Err(bad(p, "the name is reserved inside archives"));
        }
        if e.mode > 0o7777 {
            return Err(bad(
                p,
                format!("mode {:o} is not a permission mode", e.mode),
            ));
        }
        if kinds.insert(p, e.kind).is_some() {
            return Err(bad(p, "listed twice"));
        }
        add(e.size, p)?;
        match e.kind {
            EntryKind::File => check_file(m, e, in_volumes)?,
            EntryKind::Dir | EntryKind::Symlink => {
                let extra = e.size != 0
                    || e.sha256.is_some()
                    || e.how.is_some()
                    || e.delta.is_some()
                    || e.volume.is_some()
                    || e.signature.is_some()
                    || e.sparse.is_some();
                if extra {
                    return Err(bad(p, "a folder or symlink with a size, hash or content"));
                }
            }
        }
        match (e.kind, e.target.as_deref()) {
            (EntryKind::Symlink, Some(t)) => {
                if t.is_empty() || t.len() > MAX_PATH || t.contains('\0') {
                    return Err(bad(p, "the symlink target is empty, too long or holds NUL"));
                }
            }
            (EntryKind::Symlink, None) => return Err(bad(p, "a symlink without a target")),
            (_, Some(_)) => return Err(bad(p, "a target on something not a symlink")),
            (_, None) => {}
        }
        if let Some(d) = &e.delta {
            add(d.size, p)?;
        }
    }
    // Nothing may be written through a symlink of the tree, or under a file.
    for e in &m.entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            match kinds.get(parent) {
                Some(EntryKind::Symlink) => {
                    return Err(bad(
                        &e.path,
                        format!("lies under a symlink of the archive (`{parent}`)"),
                    ));
                }
                Some(EntryKind::File) => {
                    return Err(bad(
                        &e.path,
                        format!("lies under a file of the archive (`{parent}`)"),
                    ));
                }
                _ => {}
            }
            p = parent;
        }
    }
    let mut names = HashSet::new();
    for d in &m.dumps {
        let path = d.member_path();
        let plain = !d.name.is_empty()
            && d.name.len() <= MAX_NAME
            && !d.name.starts_with('.')
            && d.name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if !plain {
            return Err(bad(&path, "bad dump name"));
        }
        if !names.insert(d.name.as_str()) {
            return Err(bad(&path, "listed twice"));
        }
        if !is_sha(&d.sha256) {
            return Err(bad(&path, "its SHA-256 is not 64 hex digits"));
        }
        if !in_volumes(Some(d.volume)) {
            return Err(bad(
                &path,
                format!("volume {} is not in the archive", d.volume),
            ));
        }
        add(d.size, &path)?;
    }
    for d in &m.deleted {
        canonical(&d.path).map_err(|r| bad(&d.path, r))?;
    }
    Ok(())
}

/// The fields of a file entry, for how its content is stored.
fn check_file(
    m: &Manifest,
    e: &super::Entry,
    in_volumes: impl Fn(Option<u32>) -> bool,
) -> Result<(), Invalid> {
    let p = e.path.as_str();
    let Some(how) = e.how else {
        return Err(bad(p, "a file that does not say where its content is"));
    };
    if !e.sha256.as_deref().is_some_and(is_sha) {
        return Err(bad(p, "its SHA-256 is not 64 hex digits"));
    }
    if e.signature.as_deref().is_some_and(|s| !is_hex(s)) {
        return Err(bad(p, "its signature is not hex"));
    }
    if m.kind == Kind::Full && matches!(how, How::Same | How::Delta) {
        return Err(bad(p, "a full archive refers to a base"));
    }
    match (how, &e.delta) {
        (How::Delta, Some(d)) => {
            if !is_sha(&d.sha256) || !is_sha(&d.base_sha256) {
                return Err(bad(p, "a delta hash is not 64 hex digits"));
            }
            // A delta is stored only when it is smaller than the file.
            if d.size > e.size {
                return Err(bad(
                    p,
                    format!(
                        "its delta of {} bytes is larger than the file ({} bytes)",
                        d.size, e.size
                    ),
                ));
            }
        }
        (How::Delta, None) => return Err(bad(p, "a delta without its size and hashes")),
        (_, Some(_)) => return Err(bad(p, "delta details on a file not stored as one")),
        (_, None) => {}
    }
    if let Some(stored) = e.sparse {
        if m.format < 2 {
            return Err(bad(p, "a sparse member in a manifest of format 1"));
        }
        if !matches!(how, How::New | How::Whole) {
            return Err(bad(p, "a sparse member for content not stored whole here"));
        }
        // A file is stored sparse only when that takes less room: a map
        // of one block at least, and less than the file.
        if stored < 512 || stored >= e.size {
            return Err(bad(
                p,
                format!(
                    "its sparse member of {stored} bytes is not smaller than the file ({} bytes)",
                    e.size
                ),
            ));
        }
    }
    match (how.stored_here(), e.volume) {
        (true, v) if in_volumes(v) => Ok(()),
        (true, v) => Err(bad(
            p,
            format!(
                "its volume {} is not in the archive",
                v.map_or("(none)".to_string(), |v| v.to_string())
            ),
        )),
        (false, None) => Ok(()),
        (false, Some(_)) => Err(bad(p, "a volume for content that is not stored here")),
    }
}
