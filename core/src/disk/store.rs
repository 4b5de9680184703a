//! The object store on a disk: `coffer/objects/ab/abcd…` (or its parts
//! `….p001`, `….p002` above the file size limit), copies in flight in
//! `coffer/tmp/`, bad objects moved to `coffer/bad-objects/`.
//!
//! Invariant: a name under `objects/` only appears by renaming a temp file
//! whose bytes were hashed on the way in and flushed (`syncfs`), so it holds
//! exactly the bytes its name says. Only regular files count as objects:
//! anything else under an object's name is treated as missing.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use super::{BAD, Disk, Error, OBJECTS, TMP};
use crate::object::{Hasher, ObjectId};

/// Most parts one object may have (64 TiB at the smallest part size).
const MAX_PARTS: usize = 1 << 20;
/// How the scan's temp copies are named: `staged.TAG.p001`, …
pub(super) const STAGED: &str = "staged";

/// A fresh tag for a temp copy's name: random per process, then counted (a
/// random draw per small file was measurable, and names only need to differ
/// from every other run's).
pub fn new_tag() -> String {
    static RUN: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..20].to_string());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}{n:x}", *RUN)
}

/// Where a copy into `tmp/` starts: from nothing, or from the parts an
/// interrupted copy left (already hashed, `written` bytes in all).
#[derive(Default)]
pub(super) struct Resume {
    pub hasher: Hasher,
    pub parts: Vec<PathBuf>,
    pub written: u64,
}

/// An object written to `coffer/tmp/`, hashed and waiting to be flushed and
/// renamed into place.
#[derive(Debug)]
pub struct Pending {
    pub hash: ObjectId,
    pub size: u64,
    /// Its temp files, relative to the disk's root.
    pub(super) parts: Vec<PathBuf>,
}

/// Why a copy into `tmp/` failed: reading its source, or anything else
/// (the disk, a cancel).
#[derive(Debug)]
pub enum CopyInError {
    Read(io::Error),
    Other(crate::Error),
}

impl<E: Into<crate::Error>> From<E> for CopyInError {
    fn from(e: E) -> Self {
        CopyInError::Other(e.into())
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// A fan-out folder's name: two lowercase hex digits.
fn is_fan_out(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Whether a name is an object's or one of its parts'.
fn object_name(name: &str) -> bool {
    is_hex64(name)
        || name
            .split_once(".p")
            .is_some_and(|(h, n)| is_hex64(h) && n.parse::<usize>().is_ok())
}

fn is_file(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

impl Disk {
    /// An object's file (or first part), relative to the root.
    pub(super) fn object_rel(&self, hash: &ObjectId) -> PathBuf {
        let name = self.disk_name(hash);
        Path::new(OBJECTS).join(name.prefix()).join(name.to_hex())
    }

    fn part_rel(&self, hash: &ObjectId, n: usize) -> PathBuf {
        let name = self.disk_name(hash);
        Path::new(OBJECTS)
            .join(name.prefix())
            .join(format!("{}.p{n:03}", name.to_hex()))
    }

    /// Where an object (or its first part) lives, for messages and tests.
    pub fn object_path(&self, hash: &ObjectId) -> PathBuf {
        self.root.show(self.object_rel(hash))
    }

    /// Objects on the disk and their sizes (parts summed; `u64::MAX` for an
    /// object whose parts have a gap). Temp files, junk a foreign OS leaves
    /// (`._*`), anything not named like an object and anything that is not
    /// a regular file are left out.
    pub fn objects(&self) -> Result<BTreeMap<ObjectId, u64>, Error> {
        let mut out = BTreeMap::new();
        let shown = self.root.show(OBJECTS);
        let fan = match self.root.list_stat(Path::new(OBJECTS)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("cannot list", &shown, e)),
        };
        let mut parts: BTreeMap<ObjectId, Vec<(usize, u64)>> = BTreeMap::new();
        for (name, st) in fan {
            let Some(name) = name.to_str() else { continue };
            if !is_fan_out(name) {
                continue;
            }
            let t = FileType::from_raw_mode(st.st_mode);
            if t != FileType::Directory {
                return Err(Error::Stray {
                    path: self.root.show(Path::new(OBJECTS).join(name)),
                    what: super::root::describe(t),
                });
            }
            let rel = Path::new(OBJECTS).join(name);
            let files = self
                .root
                .list_stat(&rel)
                .map_err(|e| Error::io("cannot list", &self.root.show(&rel), e))?;
            for (fname, st) in files {
                let Some(fname) = fname.to_str() else {
                    continue;
                };
                if !is_file(&st) {
                    if object_name(fname) {
                        return Err(Error::Stray {
                            path: self.root.show(rel.join(fname)),
                            what: super::root::describe(FileType::from_raw_mode(st.st_mode)),
                        });
                    }
                    continue;
                }
                let size = st.st_size as u64;
                if is_hex64(fname) {
                    if let Ok(h) = fname.parse() {
                        out.insert(h, size);
                    }
                } else if let Some((h, p)) = fname.split_once(".p")
                    && let (true, Ok(n), Ok(h)) =
                        (is_hex64(h), p.parse::<usize>(), h.parse::<ObjectId>())
                {
                    parts.entry(h).or_default().push((n, size));
                }
            }
        }
        for (h, mut ps) in parts {
            ps.sort_unstable();
            // Parts must run 1, 2, 3 … with no gap; a gap means a torn copy,
            // which the size check against the catalog will then reject.
            let contiguous = ps.iter().enumerate().all(|(i, (n, _))| *n == i + 1);
            let total = ps.iter().try_fold(0u64, |t, (_, s)| t.checked_add(*s));
            out.insert(
                h,
                match (contiguous, total) {
                    (true, Some(t)) => t,
                    _ => u64::MAX,
                },
            );
        }
        if self.encrypted() {
            return self.unsealed_listing(out);
        }
        Ok(out)
    }

    /// The files an object is stored in, in order, relative to the root.
    fn object_rels(&self, hash: &ObjectId) -> Result<Vec<PathBuf>, Error> {
        self.sealing()?;
        let whole = self.object_rel(hash);
        if self.root.stat(&whole).is_ok_and(|st| is_file(&st)) {
            return Ok(vec![whole]);
        }
        let mut parts = Vec::new();
        for n in 1..=MAX_PARTS {
            let p = self.part_rel(hash, n);
            if !self.root.stat(&p).is_ok_and(|st| is_file(&st)) {
                break;
            }
            parts.push(p);
        }
        if parts.is_empty() {
            return Err(Error::Missing {
                root: self.root.path().into(),
                hash: *hash,
            });
        }
        Ok(parts)
    }

    /// The files an object is stored in, in order (for messages and tests).
    pub fn object_files(&self, hash: &ObjectId) -> Result<Vec<PathBuf>, Error> {
        Ok(self
            .object_rels(hash)?
            .iter()
            .map(|p| self.root.show(p))
            .collect())
    }

    /// Reads an object's bytes (its parts in order). The caller checks the hash.
    /// The holes of a sparse object are given as zeros without being read.
    pub fn open_object(&self, hash: &ObjectId) -> Result<Box<dyn Read + Send>, Error> {
        let mut reader: Box<dyn Read + Send> = Box::new(io::empty());
        for p in self.object_rels(hash)? {
            let f = self
                .root
                .open_file(&p)
                .map_err(|e| Error::io("cannot open", &self.root.show(&p), e))?;
            let f = crate::meta::sparse::Sparse::of(f)
                .map_err(|e| Error::io("cannot open", &self.root.show(&p), e))?;
            reader = Box::new(reader.chain(f));
        }
        Ok(self.unsealed(reader, hash))
    }

    /// Deletes an object (all its parts).
    pub fn remove_object(&self, hash: &ObjectId) -> Result<(), Error> {
        let io = self.gate()?;
        for p in self.object_rels(hash)? {
            io.remove_file(&self.root, &p)
                .map_err(|e| Error::io("cannot delete", &self.root.show(&p), e))?;
        }
        Ok(())
    }

    /// Moves aside, into `bad-objects/`, whatever lies under an object's or
    /// a fan-out folder's name and is not a regular file or a folder
    /// (a symlink, FIFO, device or socket): renaming never follows it.
    /// Returns what was moved.
    pub fn move_strays_aside(&self) -> Result<Vec<(PathBuf, &'static str)>, Error> {
        let io = self.gate()?;
        let mut strays = Vec::new();
        let fan = match self.root.list_stat(Path::new(OBJECTS)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(strays),
            Err(e) => return Err(Error::io("cannot list", &self.root.show(OBJECTS), e)),
        };
        for (name, st) in fan {
            let Some(name) = name.to_str() else { continue };
            if !is_fan_out(name) {
                continue;
            }
            let rel = Path::new(OBJECTS).join(name);
            let t = FileType::from_raw_mode(st.st_mode);
            if t != FileType::Directory {
                strays.push((rel, super::root::describe(t)));
                continue;
            }
            let files = self
                .root
                .list_stat(&rel)
                .map_err(|e| Error::io("cannot list", &self.root.show(&rel), e))?;
            for (fname, st) in files {
                let t = FileType::from_raw_mode(st.st_mode);
                if t != FileType::RegularFile && fname.to_str().is_some_and(object_name) {
                    strays.push((rel.join(fname), super::root::describe(t)));
                }
            }
        }
        if strays.is_empty() {
            return Ok(strays);
        }
        io.create_dir_all(&self.root, Path::new(BAD))
            .map_err(|e| Error::io("cannot create", &self.root.show(BAD), e))?;
        let mut moved = Vec::new();
        for (rel, what) in strays {
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = Path::new(BAD).join(format!("{name}.{}.stray", new_tag()));
            io.rename(&self.root, &rel, &dest)
                .map_err(|e| Error::io("cannot move aside", &self.root.show(&rel), e))?;
            moved.push((self.root.show(&rel), what));
        }
        io.sync_fs(&self.root)
            .map_err(|e| Error::io("cannot flush", self.root.path(), e))?;
        Ok(moved)
    }

    /// Moves a bad object out of `objects/` so it is never served again.
    pub fn quarantine(&self, hash: &ObjectId) -> Result<(), Error> {
        let io = self.gate()?;
        io.create_dir_all(&self.root, Path::new(BAD))
            .map_err(|e| Error::io("cannot create", &self.root.show(BAD), e))?;
        for p in self.object_rels(hash)? {
            let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            let dest = Path::new(BAD).join(name);
            io.rename(&self.root, &p, &dest)
                .map_err(|e| Error::io("cannot move aside", &self.root.show(&p), e))?;
        }
        io.sync_fs(&self.root)
            .map_err(|e| Error::io("cannot flush", self.root.path(), e))
    }

    /// Empties `coffer/tmp/`: leftovers of an interrupted sync. Folders in
    /// it are not Coffer's and are left alone.
    pub fn clean_tmp(&self) -> Result<u64, Error> {
        let io = self.gate()?;
        let shown = self.root.show(TMP);
        io.create_dir_all(&self.root, Path::new(TMP))
            .map_err(|e| Error::io("cannot create", &shown, e))?;
        let mut n = 0;
        let entries = self
            .root
            .list(Path::new(TMP))
            .map_err(|e| Error::io("cannot list", &shown, e))?;
        for e in entries {
            if e.kind == super::root::Kind::Dir {
                continue;
            }
            let rel = Path::new(TMP).join(&e.name);
            io.remove_file(&self.root, &rel)
                .map_err(|err| Error::io("cannot remove", &self.root.show(&rel), err))?;
            n += 1;
        }
        Ok(n)
    }

    /// Copies `src` into `coffer/tmp/`, hashing on the way, and checks the
    /// hash against `expected`. `each` sees every chunk (progress, cancel).
    pub fn write_tmp(
        &self,
        expected: &ObjectId,
        src: &mut dyn Read,
        each: impl FnMut(u64) -> Result<(), crate::Error>,
    ) -> Result<Pending, crate::Error> {
        let p = self
            .copy_in(
                // An encrypted disk's temp names give no content hash away.
                &format!("{}.{}", self.disk_name(expected).to_hex(), new_tag()),
                src,
                Resume::default(),
                each,
            )
            .map_err(|e| match e {
                CopyInError::Read(e) => {
                    Error::io("cannot read the source for", &self.object_path(expected), e).into()
                }
                CopyInError::Other(e) => e,
            })?;
        if p.hash == *expected {
            return Ok(p);
        }
        self.discard(&p.parts);
        Err(Error::SourceChanged {
            root: self.root.path().into(),
            expected: *expected,
            actual: p.hash,
        }
        .into())
    }

    /// Copies `src`, whose hash is not known yet, into `coffer/tmp/`: the
    /// copy is named by the hash of exactly the bytes written. The scan uses
    /// it to read each new file once, for its hash and for this disk.
    pub fn stage(
        &self,
        src: &mut dyn Read,
        each: impl FnMut(u64) -> Result<(), crate::Error>,
    ) -> Result<Pending, CopyInError> {
        self.stage_as(&new_tag(), src, each)
    }

    /// Like [`stage`](Self::stage), under the temp name `staged.TAG`, which
    /// the caller chose (and may have journaled) beforehand.
    pub fn stage_as(
        &self,
        tag: &str,
        src: &mut dyn Read,
        each: impl FnMut(u64) -> Result<(), crate::Error>,
    ) -> Result<Pending, CopyInError> {
        self.copy_in(&format!("{STAGED}.{tag}"), src, Resume::default(), each)
    }

    /// Drops a temp copy that will not be committed.
    pub fn discard_pending(&self, p: Pending) {
        self.discard(&p.parts);
    }

    pub(super) fn discard(&self, paths: &[PathBuf]) {
        // Best effort: the next sync empties tmp/ anyway.
        if let Ok(io) = self.gate() {
            for p in paths {
                let _ = io.remove_file(&self.root, p);
            }
        }
    }

    /// Flushes a batch of temp copies and renames them into place.
    ///
    /// One `syncfs` covers the whole batch, so hundreds of small files cost
    /// one flush rather than one each; a failed flush drops every copy of the
    /// batch (it is never retried and trusted).
    pub fn commit(&self, batch: Vec<Pending>) -> Result<Vec<ObjectId>, Error> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let io = self.gate()?;
        if let Err(e) = self.check_identity().and_then(|()| {
            io.sync_fs(&self.root)
                .map_err(|e| Error::io("cannot flush", self.root.path(), e))
        }) {
            for p in &batch {
                self.discard(&p.parts);
            }
            return Err(e);
        }
        let mut done = Vec::with_capacity(batch.len());
        let mut failed = None;
        let mut made: HashSet<String> = HashSet::new();
        for p in batch {
            if failed.is_some() {
                self.discard(&p.parts);
                continue;
            }
            let prefix = self.disk_name(&p.hash).prefix();
            let dir = Path::new(OBJECTS).join(&prefix);
            let single = p.parts.len() == 1;
            let r = if made.contains(&prefix) {
                Ok(())
            } else {
                io.create_dir_all(&self.root, &dir)
                    .map_err(|e| Error::io("cannot create", &self.root.show(&dir), e))
                    .map(|()| {
                        made.insert(prefix);
                    })
            }
            .and_then(|()| {
                for (i, tmp) in p.parts.iter().enumerate() {
                    let dest = if single {
                        self.object_rel(&p.hash)
                    } else {
                        self.part_rel(&p.hash, i + 1)
                    };
                    io.rename(&self.root, tmp, &dest)
                        .map_err(|e| Error::io("cannot rename into", &self.root.show(&dest), e))?;
                }
                Ok(())
            });
            match r {
                Ok(()) => done.push(p.hash),
                Err(e) => {
                    self.discard(&p.parts);
                    failed = Some(e);
                }
            }
        }
        // Make the new names durable before anyone relies on them.
        let flushed = io
            .sync_fs(&self.root)
            .map_err(|e| Error::io("cannot flush", self.root.path(), e));
        match (failed, flushed) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(done),
        }
    }
}
