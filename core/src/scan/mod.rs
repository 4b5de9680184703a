//! Walking the sources, applying exclusions, detecting changes and hashing.
//!
//! A scan compares what it finds with the latest snapshot: a file whose
//! size, mtime (to the nanosecond) and inode are unchanged keeps its hash; a
//! file found under a new path with the inode, size and mtime of a known file
//! is a move and is not read again; everything else is hashed, on all cores.
//! A file that changes while it is read is read again, and reported if it
//! never settles.
//!
//! As it hashes, a scan journals each hash (and each copy it stages on a
//! disk), so that a scan killed half-way resumes: a file still as it was
//! when the killed scan read it is not read again.
//!
//! The pieces: `walk` (the sources), `pass` (comparing, then reading and
//! recording: a [`Pass`]), `hash` (reading one file until it holds still).
//!
//! Invariant: what cannot be read (a folder, a file, a whole missing source)
//! is reported and carried forward unchanged, never recorded as deleted. A
//! scan that finds nothing changed writes no new snapshot.

mod hash;
mod pass;
mod walk;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::catalog::{Attrs, Catalog, Journal, Kind, NewVersion, Version};
use crate::config::Profile;
use crate::disk::Stage;
use crate::object::ObjectId;
use crate::task::Progress;

pub use pass::Pass;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the profile has no sources; add a folder first (coffer source add PATH)")]
    NoSources,
    #[error("bad exclusion rules for {path_}: {message}", path_ = crate::human::path(.path))]
    Rules { path: PathBuf, message: String },
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The snapshot that now describes the sources.
    pub snapshot: i64,
    /// False when nothing changed and the previous snapshot still holds.
    pub new_snapshot: bool,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub moved: u64,
    pub hashed_files: u64,
    pub hashed_bytes: u64,
    /// Files not read again because an interrupted scan had read them
    /// (unchanged since).
    pub resumed_files: u64,
}

/// One thing found on the workstation.
#[derive(Clone, Debug)]
struct Found {
    path: PathBuf,
    kind: Kind,
    size: u64,
    mtime_ns: i64,
    inode: u64,
    mode: u32,
    target: Option<PathBuf>,
    /// Owner, links, device number, holes.
    attrs: Attrs,
    /// Extended attributes and ACLs as read, with the digest of their
    /// encoding. Not read when the inode's ctime is the one recorded: then
    /// `attrs.xattrs` is the recorded set's id.
    xattrs: Option<(std::sync::Arc<crate::meta::Xattrs>, [u8; 32])>,
    /// A SQLite database with a `-wal`, `-shm` or `-journal` beside it:
    /// being written, so copied through the backup API, and read again at
    /// every scan (its main file may not change when its log does).
    live: bool,
}

impl Found {
    fn from_meta(
        path: PathBuf,
        meta: &std::fs::Metadata,
        kind: Kind,
        target: Option<PathBuf>,
    ) -> Found {
        let size = if kind == Kind::File { meta.len() } else { 0 };
        Found {
            path,
            kind,
            size,
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            inode: meta.ino(),
            mode: meta.mode() & 0o7777,
            target,
            attrs: Attrs {
                uid: Some(meta.uid()),
                gid: Some(meta.gid()),
                dev: meta.dev(),
                nlink: meta.nlink(),
                rdev: if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
                    meta.rdev()
                } else {
                    0
                },
                sparse: kind == Kind::File
                    && crate::meta::sparse::may_have_holes(size, meta.blocks()),
                xattrs: None,
                ctime_ns: Some(meta.ctime() * 1_000_000_000 + meta.ctime_nsec()),
            },
            xattrs: None,
            live: false,
        }
    }

    /// A file with other links, by device and inode.
    fn link_key(&self) -> Option<(u64, u64)> {
        (self.kind == Kind::File && self.attrs.nlink > 1).then_some((self.attrs.dev, self.inode))
    }

    fn version(&self, hash: Option<ObjectId>) -> NewVersion {
        NewVersion {
            path: self.path.clone(),
            kind: self.kind,
            size: self.size,
            mtime_ns: self.mtime_ns,
            inode: self.inode,
            mode: self.mode,
            target: self.target.clone(),
            hash,
            attrs: self.attrs.clone(),
            xattrs: self.xattrs.as_ref().map(|x| std::sync::Arc::clone(&x.0)),
        }
    }

    /// Same content for sure, without reading: size, mtime and inode agree.
    fn same_content(&self, v: &Version) -> bool {
        v.kind == self.kind
            && v.size == self.size
            && v.mtime_ns == self.mtime_ns
            && v.inode == self.inode
    }

    /// Same content, mode, target, owner, links and attributes: nothing to
    /// record. `digests` names the catalog's attribute sets.
    fn same_everything(&self, v: &Version, digests: &FxHashMap<i64, [u8; 32]>) -> bool {
        let xattrs_same = match &self.xattrs {
            Some((_, d)) => v.attrs.xattrs.and_then(|id| digests.get(&id)) == Some(d),
            // None read, or the recorded set taken over.
            None => v.attrs.xattrs == self.attrs.xattrs,
        };
        self.same_content(v)
            && v.mode == self.mode
            && v.target == self.target
            && self.attrs.same_as(&v.attrs, xattrs_same)
    }
}

/// Builds the exclusion matcher of one source (shared with `archive`).
pub(crate) fn matcher(
    profile: &Profile,
    root: &Path,
    rules: &[String],
) -> Result<ignore::gitignore::Gitignore, Error> {
    let mut b = ignore::gitignore::GitignoreBuilder::new(root);
    for rule in profile.excludes.iter().chain(rules) {
        b.add_line(None, rule).map_err(|e| Error::Rules {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    b.build().map_err(|e| Error::Rules {
        path: root.to_path_buf(),
        message: e.to_string(),
    })
}

/// Takes a snapshot of the profile's sources into `catalog`.
pub fn scan(
    catalog: &mut Catalog,
    profile: &Profile,
    progress: &Progress,
) -> crate::Result<Report> {
    scan_into(catalog, profile, None, None, progress)
}

/// Takes a snapshot like [`scan`], and copies each file it reads into
/// `stage` (a disk's `tmp/`) on the same read, as far as the stage has room.
/// What it learns goes into `journal` (or a journal of its own).
pub fn scan_into(
    catalog: &mut Catalog,
    profile: &Profile,
    stage: Option<&Stage>,
    journal: Option<&Journal>,
    progress: &Progress,
) -> crate::Result<Report> {
    Pass::begin(catalog, profile, stage, journal, progress)?.finish(catalog)
}

#[cfg(test)]
mod tests;
