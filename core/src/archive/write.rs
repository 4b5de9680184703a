//! Writing an archive: the tree and its content read from the sources
//! (`source`), placed in volumes, each volume written to a temp name, read
//! back through the member reader, and only then given its final name.
//!
//! Invariant: an archive appears under its final name only after every
//! volume was read back and matched the manifest, and the manifest passes
//! the checks readers make.

use std::collections::HashMap;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::gz::ParGzWriter;
use super::manifest::{
    self, DELTA_DIR, Deleted, Entry, EntryKind, FORMAT_PLAIN, FORMAT_VERSION, How, Kind,
    MANIFEST_NAME, Manifest,
};
use super::source::{BLOCK_SIZE, Content, Item, entry_of, read_content, run_dumps, walk};
use super::sparse::Extents;
use super::{Error, Found, Name, io_err};
use crate::config::Profile;
use crate::object::{Hasher, ObjectId};
use crate::task::{Phase, Progress};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    /// Against the newest archive, or with `since` (Unix seconds), the newest
    /// archive created at or before that time.
    Incremental {
        since: Option<i64>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// File name prefix; the profile's name when absent.
    pub prefix: Option<String>,
    /// Split into volumes holding at most about this many bytes of content.
    pub volume_size: Option<u64>,
}

/// What an archive run wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub kind: Kind,
    pub sequence: u64,
    pub base_sequence: Option<u64>,
    pub files: Vec<PathBuf>,
    pub entries: u64,
    pub new_files: u64,
    pub changed_files: u64,
    pub delta_files: u64,
    pub deleted: u64,
    pub dumps: u64,
    /// Bytes of file content the tree holds, and bytes stored in the archive.
    pub tree_bytes: u64,
    pub stored_bytes: u64,
    pub compressed_bytes: u64,
}

/// Writes an archive of `profile`'s sources into `dir`.
pub fn create(
    profile: &Profile,
    dir: &Path,
    mode: Mode,
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Report> {
    if profile.sources.is_empty() {
        return Err(crate::scan::Error::NoSources.into());
    }
    let prefix = opts.prefix.clone().unwrap_or_else(|| profile.name.clone());
    super::check_prefix(&prefix)?;
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    if !meta.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other("not a folder"),
        }
        .into());
    }
    let existing = super::find(dir, Some(&prefix))?;
    let sequence = existing.iter().map(|f| f.sequence).max().unwrap_or(0) + 1;
    let base = match mode {
        Mode::Full => None,
        Mode::Incremental { since } => Some(pick_base(dir, &prefix, &existing, since)?),
    };

    progress.phase(Phase::Scanning, 0, 0);
    let items = walk(profile, dir, progress)?;
    let base_by_path: HashMap<&str, &Entry> = base
        .as_ref()
        .map(|(_, m)| m.entries.iter().map(|e| (e.path.as_str(), e)).collect())
        .unwrap_or_default();

    // Files whose content must be read: all of them in a full archive; in an
    // incremental, those whose size or mtime differ from the base.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{prefix}-{sequence}.staging-"))
        .tempdir_in(dir)
        .map_err(io_err(dir))?;
    let to_read: Vec<(usize, &Item)> = items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.kind == EntryKind::File)
        .filter(|(_, it)| {
            !base_by_path.get(it.rel.as_str()).is_some_and(|b| {
                b.kind == EntryKind::File
                    && b.size == it.size
                    && b.mtime_ns == it.mtime_ns
                    && b.signature.is_some()
            })
        })
        .collect();
    let read_bytes: u64 = to_read.iter().map(|(_, it)| it.size).sum();
    progress.phase(Phase::Hashing, to_read.len() as u64, read_bytes);
    let read: Vec<(usize, Result<Content, String>)> = to_read
        .into_par_iter()
        // One file per task: sizes vary wildly, so every one is up for stealing.
        .with_max_len(1)
        .map(|(i, it)| {
            progress.current(&it.abs);
            let r = if progress.is_cancelled() {
                Err("cancelled".into())
            } else {
                read_content(it, i, staging.path(), &base_by_path, progress)
            };
            progress.advance(1, 0);
            (i, r)
        })
        .collect();
    progress.check()?;
    let mut contents: HashMap<usize, Content> = HashMap::new();
    let mut skipped: Vec<usize> = Vec::new();
    for (i, r) in read {
        match r {
            Ok(c) => {
                contents.insert(i, c);
            }
            Err(msg) => {
                progress.warn(Some(&items[i].abs), format!("{msg}; not in this archive"));
                skipped.push(i);
            }
        }
    }

    // The tree at this point, in path order.
    let mut entries: Vec<Entry> = Vec::new();
    let mut sources: HashMap<String, PathBuf> = HashMap::new();
    let mut sparse: HashMap<String, Extents> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if skipped.contains(&i) {
            continue;
        }
        let entry = match contents.remove(&i) {
            Some(c) => {
                sources.insert(it.rel.clone(), c.read_from);
                if let Some(x) = c.sparse {
                    sparse.insert(it.rel.clone(), x);
                }
                let mut e = c.entry;
                if let Some(d) = c.delta {
                    let path = staging.path().join(format!("delta-{i}"));
                    std::fs::write(&path, &d).map_err(io_err(&path))?;
                    sources.insert(format!("{DELTA_DIR}/{}", it.rel), path);
                    e.how = Some(How::Delta);
                }
                e
            }
            None if it.kind == EntryKind::File => {
                // Unchanged since the base: carry its hash and signature.
                let b = base_by_path
                    .get(it.rel.as_str())
                    .ok_or_else(|| crate::Error::Panic(format!("no base entry for {}", it.rel)))?;
                Entry {
                    how: Some(How::Same),
                    sha256: b.sha256.clone(),
                    signature: b.signature.clone(),
                    ..entry_of(it)
                }
            }
            None => entry_of(it),
        };
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    let deleted: Vec<Deleted> = match &base {
        Some((_, m)) => {
            let now: std::collections::HashSet<&str> =
                entries.iter().map(|e| e.path.as_str()).collect();
            m.entries
                .iter()
                .filter(|e| !now.contains(e.path.as_str()))
                .map(|e| Deleted {
                    path: e.path.clone(),
                    kind: e.kind,
                })
                .collect()
        }
        None => Vec::new(),
    };

    let mut dumps = run_dumps(profile, staging.path(), progress)?;
    for d in &dumps {
        sources.insert(
            d.member_path(),
            staging.path().join(format!("dump-{}", d.name)),
        );
    }

    // Refuse an archive with nothing to hold.
    let changed = entries.iter().any(|e| {
        base_by_path.get(e.path.as_str()).is_none_or(|b| {
            e.how.is_some_and(How::stored_here)
                || b.kind != e.kind
                || b.mode != e.mode
                || b.mtime_ns != e.mtime_ns
                || b.target != e.target
        })
    });
    match &base {
        None if entries.is_empty() && dumps.is_empty() => {
            return Err(Error::NothingToArchive.into());
        }
        Some((found, _)) if !changed && deleted.is_empty() && dumps.is_empty() => {
            return Err(Error::NothingChanged {
                base: found.first().to_path_buf(),
            }
            .into());
        }
        _ => {}
    }

    // Volumes: each stored member goes where it fits; folders and links in
    // the first.
    let mut volume = 1u32;
    let mut used = 0u64;
    let limit = opts.volume_size.unwrap_or(u64::MAX);
    let mut place = |size: u64| -> u32 {
        let cost = 1536 + size.div_ceil(512) * 512;
        if used > 0 && used.saturating_add(cost) > limit {
            volume += 1;
            used = 0;
        }
        used = used.saturating_add(cost);
        volume
    };
    for e in entries.iter_mut() {
        match e.how {
            Some(How::Delta) => e.volume = Some(place(e.delta.as_ref().map_or(0, |d| d.size))),
            Some(How::New | How::Whole) => e.volume = Some(place(e.stored_size())),
            _ => {}
        }
    }
    for d in dumps.iter_mut() {
        d.volume = place(d.size);
    }
    let volumes = volume;

    let manifest = Manifest {
        // Earlier Coffers read format 1; only a sparse member needs 2.
        format: if sparse.is_empty() {
            FORMAT_PLAIN
        } else {
            FORMAT_VERSION
        },
        id: uuid::Uuid::new_v4(),
        kind: if base.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        },
        prefix: prefix.clone(),
        sequence,
        base_sequence: base.as_ref().map(|(_, m)| m.sequence),
        base_id: base.as_ref().map(|(_, m)| m.id),
        created_at: crate::now(),
        basepath: profile.basepath.clone(),
        sources: profile.sources.iter().map(|s| s.path.clone()).collect(),
        block_size: BLOCK_SIZE,
        volumes,
        dumps,
        entries,
        deleted,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| crate::Error::Panic(format!("manifest: {e}")))?;
    // Readers refuse a manifest that breaks their rules (a path too long, a
    // manifest too large); better not to write an archive nobody can read.
    let first_name = Name {
        prefix: prefix.clone(),
        base: manifest.base_sequence,
        sequence,
        volume: (volumes > 1).then_some(1),
    }
    .file_name();
    if manifest_bytes.len() as u64 > manifest::MANIFEST_CAP {
        return Err(Error::NotAnArchive {
            path: dir.join(&first_name),
            message: format!(
                "its manifest would take {} bytes, more than the {} a reader accepts; archive fewer files at once",
                manifest_bytes.len(),
                manifest::MANIFEST_CAP
            ),
        }
        .into());
    }
    manifest::parse_in(&dir.join(&first_name), &manifest_bytes)?;

    let stored_bytes: u64 = manifest
        .entries
        .iter()
        .map(|e| match e.how {
            Some(How::New | How::Whole) => e.stored_size(),
            Some(How::Delta) => e.delta.as_ref().map_or(0, |d| d.size),
            _ => 0,
        })
        .sum::<u64>()
        + manifest.dumps.iter().map(|d| d.size).sum::<u64>();
    progress.phase(Phase::Archiving, 0, stored_bytes);
    let mut temps = Vec::new();
    let mut compressed = 0u64;
    for v in 1..=volumes {
        let name = Name {
            prefix: prefix.clone(),
            base: manifest.base_sequence,
            sequence,
            volume: (volumes > 1).then_some(v),
        }
        .file_name();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        let from = Sources {
            files: &sources,
            sparse: &sparse,
        };
        compressed += write_volume(&tmp, &manifest, &manifest_bytes, v, &from, progress)?;
        temps.push((tmp, dir.join(name)));
    }
    drop(staging);

    progress.phase(Phase::Verifying, 0, 0);
    for (v, (tmp, final_path)) in temps.iter().enumerate() {
        super::verify::verify_volume(
            tmp.path(),
            final_path,
            &manifest,
            ObjectId::of(&manifest_bytes),
            v as u32 + 1,
            progress,
        )?;
    }
    let mut files = Vec::new();
    for (tmp, final_path) in temps {
        tmp.persist_noclobber(&final_path).map_err(|e| Error::Io {
            path: final_path.clone(),
            source: e.error,
        })?;
        files.push(final_path);
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;

    let count = |h: How| manifest.entries.iter().filter(|e| e.how == Some(h)).count() as u64;
    Ok(Report {
        kind: manifest.kind,
        sequence,
        base_sequence: manifest.base_sequence,
        files,
        entries: manifest.entries.len() as u64,
        new_files: count(How::New),
        changed_files: count(How::Whole) + count(How::Delta),
        delta_files: count(How::Delta),
        deleted: manifest.deleted.len() as u64,
        dumps: manifest.dumps.len() as u64,
        tree_bytes: manifest.total_bytes(),
        stored_bytes,
        compressed_bytes: compressed,
    })
}

/// The base of an incremental: the newest archive, or the newest created at
/// or before `since`.
fn pick_base(
    dir: &Path,
    prefix: &str,
    existing: &[Found],
    since: Option<i64>,
) -> Result<(Found, Manifest), Error> {
    for f in existing.iter().rev() {
        let m = super::verify::read_manifest(f.first())?;
        if since.is_none_or(|t| m.created_at <= t) {
            return Ok((f.clone(), m));
        }
    }
    Err(Error::NoBase {
        dir: dir.to_path_buf(),
        prefix: prefix.to_string(),
        since: since.is_some(),
    })
}

/// A reader that hashes and counts what passes through it.
struct Tee<R> {
    inner: R,
    hasher: Hasher,
    n: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime_ns: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Where the members' bytes come from: the file (or staged copy) for each
/// member path, and the extents of those stored sparse.
struct Sources<'a> {
    files: &'a HashMap<String, PathBuf>,
    sparse: &'a HashMap<String, Extents>,
}

/// Writes volume `v`: the manifest, then (volume 1) folders and links, then
/// the members placed in it. Returns the compressed size.
fn write_volume(
    tmp: &tempfile::NamedTempFile,
    m: &Manifest,
    manifest_bytes: &[u8],
    v: u32,
    sources: &Sources<'_>,
    progress: &Progress,
) -> crate::Result<u64> {
    let path = tmp.path();
    let file = tmp.as_file().try_clone().map_err(io_err(path))?;
    let gz = ParGzWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut tar = tar::Builder::new(gz);
    let mut h = header(
        tar::EntryType::Regular,
        manifest_bytes.len() as u64,
        0o644,
        m.created_at * 1_000_000_000,
    );
    tar.append_data(&mut h, MANIFEST_NAME, manifest_bytes)
        .map_err(io_err(path))?;
    if v == 1 {
        for e in &m.entries {
            match e.kind {
                EntryKind::Dir => {
                    let mut h = header(tar::EntryType::Directory, 0, e.mode, e.mtime_ns);
                    tar.append_data(&mut h, &e.path, std::io::empty())
                        .map_err(io_err(path))?;
                }
                EntryKind::Symlink => {
                    let mut h = header(tar::EntryType::Symlink, 0, e.mode, e.mtime_ns);
                    tar.append_link(&mut h, &e.path, e.target.as_deref().unwrap_or(""))
                        .map_err(io_err(path))?;
                }
                EntryKind::File => {}
            }
        }
    }
    let mut members: Vec<(String, u64, String, u32, i64)> = Vec::new();
    for e in m.members_in_volume(v) {
        let Some(member) = e.member_path() else {
            continue;
        };
        let (size, sha) = match (&e.delta, e.how) {
            (Some(d), Some(How::Delta)) => (d.size, d.sha256.clone()),
            _ => (e.stored_size(), e.sha256.clone().unwrap_or_default()),
        };
        members.push((member, size, sha, e.mode, e.mtime_ns));
    }
    for d in m.dumps.iter().filter(|d| d.volume == v) {
        members.push((
            d.member_path(),
            d.size,
            d.sha256.clone(),
            0o600,
            m.created_at * 1_000_000_000,
        ));
    }
    for (member, size, sha, mode, mtime) in members {
        progress.check()?;
        let from = sources
            .files
            .get(&member)
            .ok_or_else(|| crate::Error::Panic(format!("no source for {member}")))?;
        progress.current(from);
        let f = std::fs::File::open(from).map_err(io_err(from))?;
        if let Some(x) = sources.sparse.get(&member) {
            let (n, got) =
                super::sparse::append(&mut tar, &member, x, &f, (mode, mtime)).map_err(|e| {
                    // A file that became shorter than its extents changed.
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        crate::Error::from(Error::Changed { path: from.clone() })
                    } else {
                        Error::Io {
                            path: path.to_path_buf(),
                            source: e,
                        }
                        .into()
                    }
                })?;
            if n != size || got.to_hex() != sha {
                return Err(Error::Changed { path: from.clone() }.into());
            }
            progress.advance(1, size);
            continue;
        }
        let mut tee = Tee {
            inner: f.take(size),
            hasher: Hasher::default(),
            n: 0,
        };
        let mut h = header(tar::EntryType::Regular, size, mode, mtime);
        tar.append_data(&mut h, &member, &mut tee)
            .map_err(io_err(path))?;
        if tee.n != size || tee.hasher.finish().to_hex() != sha {
            return Err(Error::Changed { path: from.clone() }.into());
        }
        progress.advance(1, size);
    }
    let gz = tar.into_inner().map_err(io_err(path))?;
    let buf = gz.finish().map_err(io_err(path))?;
    let file = buf.into_inner().map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    Ok(len)
}
