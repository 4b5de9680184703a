//! Batches of files restored from disks: written on all cores, each to a
//! temp name in its folder and hashed on the way, then one `syncfs` for the
//! batch, then each renamed into place. A helper thread writes the next
//! batch while one is flushed and renamed.
//!
//! Invariant: a file takes its name only after its bytes matched the
//! catalog's SHA-256 and were flushed; a temp file never survives a
//! mismatch or an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Source;
use super::attrs::Fidelity;
use super::dest::{Dest, Dir, put_in_place, set_file_meta};
use super::select::{Entry, State};
use super::{BadCopy, Error, Report, io_err};
use crate::catalog::Catalog;
use crate::meta::sparse::HoleWriter;
use crate::object::{Hasher, ObjectId};
use crate::task::Progress;

/// One file to restore, prepared in order and written with others.
pub(super) struct FileJob<'e> {
    pub(super) entry: &'e Entry,
    pub(super) dir: Arc<Dir>,
    pub(super) target: PathBuf,
    pub(super) hash: ObjectId,
    /// Connected disks to read it from, in order (`None`: an empty file).
    pub(super) sources: Vec<Option<usize>>,
}

/// Files written together: all cores write and hash them to temp names,
/// one flush of the destination covers them all, then they are renamed
/// into place. The same durability as a flush per file, at a fraction of
/// the cost.
#[derive(Default)]
pub(super) struct Batch<'e> {
    pub(super) jobs: Vec<FileJob<'e>>,
    pub(super) bytes: u64,
    /// Folder descriptors of this batch, by destination-relative path.
    pub(super) dirs: HashMap<PathBuf, Arc<Dir>>,
}

/// What writing one file gave: its temp name (`None`: no good copy on a
/// connected disk) and the disks whose copy did not match its hash.
pub(super) type Written = crate::Result<(Option<OsString>, Vec<(usize, ObjectId)>)>;

/// A batch being written by a helper thread.
pub(super) struct Writing<'s, 'e> {
    thread: std::thread::ScopedJoinHandle<'s, (Batch<'e>, Vec<Written>)>,
}

impl<'s, 'e> Writing<'s, 'e> {
    pub(super) fn start<'env>(
        scope: &'s std::thread::Scope<'s, 'env>,
        batch: Batch<'e>,
        disks: &'env [&'env dyn Source],
        keep_special: bool,
        fid: &'env Fidelity,
        progress: &'env Progress,
    ) -> crate::Result<Self>
    where
        'e: 's,
    {
        let thread = std::thread::Builder::new()
            .name("restore-write".into())
            .spawn_scoped(scope, move || {
                let written = batch.write(disks, keep_special, fid, progress);
                (batch, written)
            })
            .map_err(|e| crate::Error::Panic(format!("cannot start a thread: {e}")))?;
        Ok(Writing { thread })
    }
}

/// Waits for a batch's writing to end, then finishes it.
pub(super) fn settle(
    writing: Option<Writing<'_, '_>>,
    cx: &mut BatchCtx<'_>,
) -> crate::Result<bool> {
    let Some(w) = writing else {
        return Ok(false);
    };
    let (batch, written) = w
        .thread
        .join()
        .map_err(|_| crate::Error::Panic("a restore writer panicked".into()))?;
    batch.finish(written, cx)
}

/// What a batch needs from the restore around it.
pub(super) struct BatchCtx<'a> {
    pub(super) catalog: &'a mut Catalog,
    /// The backup set of the workstation's own catalog, when that is the
    /// catalog restored from.
    pub(super) workstation: Option<uuid::Uuid>,
    pub(super) disks: &'a [&'a dyn Source],
    pub(super) dest: &'a Dest,
    pub(super) progress: &'a Progress,
    pub(super) report: &'a mut Report,
    pub(super) bad: &'a mut HashSet<(usize, ObjectId)>,
    pub(super) missing: &'a mut BTreeMap<ObjectId, (u64, u64)>,
    pub(super) missing_paths: &'a mut BTreeMap<ObjectId, Vec<PathBuf>>,
}

impl Batch<'_> {
    pub(super) fn full(&self) -> bool {
        // Few enough folders that their descriptors stay well under limits
        // with three batches alive (one built, two written).
        self.jobs.len() >= 2000 || self.bytes >= 256 << 20 || self.dirs.len() >= 100
    }

    /// Writes the batch's files to temp names and checks them, on all
    /// cores: for each, its temp name (`None`: no connected disk had a good
    /// copy) and the disks whose copy proved damaged.
    pub(super) fn write(
        &self,
        disks: &[&dyn Source],
        keep_special: bool,
        fid: &Fidelity,
        progress: &Progress,
    ) -> Vec<Written> {
        use rayon::prelude::*;
        let stop = AtomicBool::new(false);
        self.jobs
            .par_iter()
            // One file per task: sizes vary wildly, so every one is up for stealing.
            .with_max_len(1)
            .map(|j| {
                let mut mismatches = Vec::new();
                let holes = fid.holes_for(&j.entry.version);
                for src in &j.sources {
                    if stop.load(Ordering::Relaxed) {
                        return Err(crate::Error::Cancelled);
                    }
                    let disk = src.and_then(|d| disks.get(d).copied());
                    match write_tmp(j, disk, keep_special, holes, fid, progress) {
                        Ok(Ok(tmp)) => return Ok((Some(tmp), mismatches)),
                        Ok(Err(actual)) => mismatches.extend(src.map(|d| (d, actual))),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
                Ok((None, mismatches))
            })
            .collect()
    }

    /// Records what [`write`](Self::write) found, flushes the destination
    /// and renames the batch's files into place. True when something was
    /// written.
    pub(super) fn finish(
        self,
        results: Vec<Written>,
        cx: &mut BatchCtx<'_>,
    ) -> crate::Result<bool> {
        let mut staged: Vec<(&FileJob<'_>, OsString)> = Vec::new();
        let mut failed: Option<crate::Error> = None;
        for (j, r) in self.jobs.iter().zip(results) {
            match r {
                Ok((tmp, mismatches)) => {
                    for (d, actual) in mismatches {
                        cx.bad_copy(j, d, actual)?;
                    }
                    match tmp {
                        Some(t) => staged.push((j, t)),
                        None => {
                            let m = cx
                                .missing
                                .entry(j.hash)
                                .or_insert((j.entry.version.size, 0));
                            m.1 += 1;
                            cx.missing_paths
                                .entry(j.hash)
                                .or_default()
                                .push(j.entry.version.path.clone());
                        }
                    }
                }
                // The first real error wins over the stops it caused.
                Err(e) => {
                    let stopped = matches!(failed, Some(crate::Error::Cancelled));
                    if failed.is_none() || (stopped && !matches!(e, crate::Error::Cancelled)) {
                        failed = Some(e);
                    }
                }
            }
        }
        let unlink_from = |staged: &[(&FileJob<'_>, OsString)]| {
            for (j, tmp) in staged {
                j.dir.remove(tmp);
            }
        };
        if let Some(e) = failed {
            unlink_from(&staged);
            return Err(e);
        }
        if staged.is_empty() {
            return Ok(false);
        }
        if let Err(e) = cx.dest.flush() {
            unlink_from(&staged);
            return Err(e.into());
        }
        for (i, (j, tmp)) in staged.iter().enumerate() {
            let name = j.entry.rel.file_name().unwrap_or_default();
            let replace = j.entry.state == State::Replace;
            if let Err(err) = put_in_place(&j.dir, tmp, &j.dir, name, replace, &j.target) {
                unlink_from(staged.get(i..).unwrap_or_default());
                return Err(err.into());
            }
            cx.report.files += 1;
            cx.report.bytes += j.entry.version.size;
            cx.progress.advance(1, 0);
        }
        Ok(true)
    }
}

impl BatchCtx<'_> {
    /// A copy on a disk did not match its hash: reported once, and moved
    /// aside when the catalog is the workstation's own.
    fn bad_copy(&mut self, j: &FileJob<'_>, d: usize, actual: ObjectId) -> crate::Result<()> {
        if !self.bad.insert((d, j.hash)) {
            return Ok(());
        }
        let Some(disk) = self.disks.get(d).copied() else {
            return Ok(());
        };
        let hash = j.hash;
        let mut quarantined = false;
        if let Some(set) = self.workstation {
            self.catalog.remove_copies(disk.id(), &[hash])?;
            // Through the write gate: a disk in use by a sync, or of another
            // set, keeps its copy; the catalog no longer counts it anyway.
            quarantined = disk.set_aside(set, &hash);
        }
        self.progress.warn(
            Some(&j.entry.version.path),
            format!(
                "the copy on disk \"{}\" is damaged (expected {hash}, read {actual}){}",
                disk.label(),
                if quarantined {
                    "; it was moved aside and removed from the catalog"
                } else {
                    ""
                }
            ),
        );
        self.report.bad_copies.push(BadCopy {
            path: j.entry.version.path.clone(),
            disk: disk.label().to_string(),
            hash,
            actual,
            quarantined,
        });
        Ok(())
    }
}

/// Writes one file from `disk` (or an empty file) under a temp name in its
/// folder (with holes for whole blocks of zeros when `holes`), checks its
/// hash, and gives it its owner, attributes, mode and mtime. `Ok(Ok(name))`:
/// the temp file, ready for the batch's flush; `Ok(Err(actual))`: the
/// disk's copy is damaged. The temp file never survives a mismatch or an
/// error.
fn write_tmp(
    j: &FileJob<'_>,
    disk: Option<&dyn Source>,
    keep_special: bool,
    holes: bool,
    fid: &Fidelity,
    progress: &Progress,
) -> crate::Result<Result<OsString, ObjectId>> {
    let (dir, e, hash, target) = (&j.dir, j.entry, j.hash, j.target.as_path());
    let (tmp, out) = dir.create_tmp(target)?;
    let result = (|| -> crate::Result<Result<(), ObjectId>> {
        let mut h = Hasher::default();
        let mut sparse = holes.then(|| HoleWriter::new(&out));
        if let Some(disk) = disk {
            let mut r = disk.open(&hash)?;
            crate::object::with_buffer(|buf| -> crate::Result<()> {
                loop {
                    progress.check()?;
                    let n = match r.read(buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(err) => {
                            return Err(Error::Io {
                                op: "cannot read from disk for",
                                path: target.to_path_buf(),
                                source: err,
                            }
                            .into());
                        }
                    };
                    let chunk = buf.get(..n).unwrap_or_default();
                    h.update(chunk);
                    match sparse.as_mut() {
                        Some(w) => w.write(chunk),
                        None => (&out).write_all(chunk),
                    }
                    .map_err(io_err("cannot write", target))?;
                    progress.advance(0, n as u64);
                }
            })?;
        }
        if let Some(w) = sparse {
            w.finish().map_err(io_err("cannot write", target))?;
        }
        let actual = h.finish();
        if actual != hash {
            return Ok(Err(actual));
        }
        // Start writing it out now, so the batch's flush finds it done.
        let _ = rustix::fs::fadvise(out.as_fd(), 0, None, rustix::fs::Advice::DontNeed);
        fid.apply(out.as_fd(), &e.version);
        set_file_meta(
            &out,
            e.version.mode,
            Some(e.version.mtime_ns),
            keep_special,
            target,
        )?;
        fid.mode_kept(out.as_fd(), &e.version);
        Ok(Ok(()))
    })();
    drop(out);
    match result {
        Ok(Ok(())) => Ok(Ok(tmp)),
        other => {
            dir.remove(&tmp);
            other.map(|r| r.map(|()| OsString::new()))
        }
    }
}
