//! Running a [`RestorePlan`]: the folders, symlinks, special files and
//! files it lists, each file read from the disks the plan chose for it
//! (batches on all cores, one flush each), the other links of each file,
//! then the folders' modes and times, deepest first.
//!
//! Invariant: the run writes only what its plan lists, into the
//! destination the plan looked at; a disk that proves bad for a file is
//! not read for it again, and what could not be read is reported with the
//! disks to plug in for it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::attrs::Fidelity;
use super::batch::{Batch, BatchCtx, FileJob, Writing, settle};
use super::cover::plan_next;
use super::dest::{Dest, Dir};
use super::plan::{RestorePlan, Then};
use super::select::{Entry, State};
use super::{Error, Report, Source, links, plug_in_next};
use crate::catalog::{Catalog, Kind};
use crate::object::ObjectId;
use crate::task::{Phase, Progress};

impl RestorePlan {
    /// Carries out this plan with the `disks` it was made with (the same
    /// ones, in the same order), reading `catalog`, the one it was made
    /// from (a bad copy found is removed from it when it is the
    /// workstation's own).
    pub fn execute(
        self,
        catalog: &mut Catalog,
        disks: &[&dyn Source],
        progress: &Progress,
    ) -> crate::Result<Report> {
        let mut run = self.run;
        let same_disks = disks.len() == run.disk_ids.len()
            && disks.iter().zip(&run.disk_ids).all(|(d, id)| d.id() == *id);
        if !same_disks {
            return Err(crate::Error::Failed(
                "the disks changed since this restore was planned; plan it again".into(),
            ));
        }
        // The destination folder itself: made now if the plan found it
        // missing, and then it must be where the plan said it would be.
        let dest = match run.dest.take() {
            Some(d) => d,
            None => {
                let (d, _) = Dest::create(&run.dest_asked)?;
                if d.root() != self.dest {
                    return Err(Error::Unsafe {
                        path: self.dest.clone(),
                        reason: format!(
                            "the destination changed since the restore was planned (it is now {})",
                            crate::human::path(d.root())
                        ),
                    }
                    .into());
                }
                d
            }
        };
        let mut report = Report {
            snapshot: self.snapshot,
            snapshot_time: self.snapshot_time,
            dest: dest.root().to_path_buf(),
            renamed: self.renamed.clone(),
            skipped_existing: self
                .at_dest
                .iter()
                .filter(|a| a.then == Then::Kept)
                .map(|a| a.path.clone())
                .collect(),
            already_done: self.already_done,
            ..Report::default()
        };
        let fid = Fidelity::new(catalog, &run.entries, run.keep_special, run.fs)?;
        let walk = Walk {
            entries: &run.entries,
            plan: &run,
            dest: &dest,
            fid: &fid,
            disks,
            progress,
        };
        progress.phase(Phase::Restoring, self.files, self.bytes);

        let mut bad: HashSet<(usize, ObjectId)> = HashSet::new();
        let mut missing: BTreeMap<ObjectId, (u64, u64)> = BTreeMap::new();
        let mut missing_paths: BTreeMap<ObjectId, Vec<PathBuf>> = BTreeMap::new();
        let mut cx = BatchCtx {
            catalog: &mut *catalog,
            workstation: run.workstation,
            disks,
            dest: &dest,
            progress,
            report: &mut report,
            bad: &mut bad,
            missing: &mut missing,
            missing_paths: &mut missing_paths,
        };
        let dirty_dirs = walk.write(&mut cx)?;

        // Folders last, deepest first, so their contents do not change their
        // mtime. Folders that were already there (an earlier run) get theirs too.
        let dirs: Vec<&Entry> = run
            .entries
            .iter()
            .filter(|e| e.version.kind == Kind::Dir && e.state != State::Skipped)
            .collect();
        for e in dirs.into_iter().rev() {
            if let Some(d) = dest.dir(&e.rel, false)? {
                fid.apply(std::os::fd::AsFd::as_fd(&d), &e.version);
                d.set_meta(e.version.mode, e.version.mtime_ns, run.keep_special)?;
                fid.mode_kept(std::os::fd::AsFd::as_fd(&d), &e.version);
            }
        }
        report.not_held = fid.not_held();
        for n in fid.notices() {
            progress.notice(n);
        }
        if dirty_dirs {
            dest.flush()?;
        }

        // What is left, and which disks to plug in for it.
        let bad_hashes: HashSet<ObjectId> = bad.iter().map(|(_, h)| *h).collect();
        let (plug, uncovered) = plan_next(catalog, &run.holders.others, &missing)?;
        report.plug_next = plug;
        for h in &uncovered {
            report
                .unavailable
                .extend(missing_paths.get(h).cloned().unwrap_or_default());
        }
        report.missing_files = missing.values().map(|(_, n)| n).sum();
        report.missing_bytes = missing.values().map(|(s, n)| s * n).sum();
        for h in uncovered {
            if !bad_hashes.contains(&h) {
                for p in missing_paths.get(&h).into_iter().flatten() {
                    progress.warn(Some(p), "its content is on no known disk");
                }
            }
        }
        for need in &report.plug_next {
            progress.notice(plug_in_next(need));
        }
        progress.flush();
        Ok(report)
    }
}

/// What the walk over a plan's entries reads.
struct Walk<'a> {
    entries: &'a [Entry],
    plan: &'a super::plan::Prepared,
    dest: &'a Dest,
    fid: &'a Fidelity,
    disks: &'a [&'a dyn Source],
    progress: &'a Progress,
}

impl Walk<'_> {
    /// Writes every entry the plan lists, then the other links of each
    /// file. True when a folder's contents changed (a flush is due).
    fn write(&self, cx: &mut BatchCtx<'_>) -> crate::Result<bool> {
        let (progress, keep_special) = (self.progress, self.plan.keep_special);
        let mut dirty_dirs = false;
        let mut batch = Batch::default();
        // Batches are written (on all cores) by a helper thread while the batch
        // before is flushed and renamed here. On an error, what was already
        // written is still put in place: it is whole and checked.
        std::thread::scope(|s| -> crate::Result<()> {
            let mut inflight: Option<Writing<'_, '_>> = None;
            let walked = (|| -> crate::Result<()> {
                for (i, e) in self.entries.iter().enumerate() {
                    progress.check()?;
                    if e.version.kind == Kind::Dir && e.state == State::Done {
                        // A folder an earlier run finished (and made read-only,
                        // maybe) must take the rest of its files; its mode is
                        // set again at the end.
                        if let Some(d) = self.dest.dir(&e.rel, false)? {
                            d.make_writable();
                        }
                    }
                    if !matches!(e.state, State::ToDo | State::Replace) {
                        continue;
                    }
                    let Some(job) = self.entry(i, e, cx, &mut batch, &mut dirty_dirs)? else {
                        continue;
                    };
                    batch.bytes += e.version.size;
                    batch.jobs.push(job);
                    if batch.full() {
                        let before = inflight.take();
                        inflight = Some(Writing::start(
                            s,
                            std::mem::take(&mut batch),
                            self.disks,
                            keep_special,
                            self.fid,
                            progress,
                        )?);
                        dirty_dirs |= settle(before, cx)?;
                    }
                }
                dirty_dirs |= settle(inflight.take(), cx)?;
                let last = std::mem::take(&mut batch);
                let written = last.write(self.disks, keep_special, self.fid, progress);
                dirty_dirs |= last.finish(written, cx)?;
                // The other links of each file, now that it is in place.
                dirty_dirs |= links::make_links(
                    self.entries,
                    &self.plan.followers,
                    &mut links::LinkCtx {
                        dest: self.dest,
                        fid: self.fid,
                        keep_special,
                        report: cx.report,
                        missing: cx.missing,
                        missing_paths: cx.missing_paths,
                        progress,
                    },
                )?;
                Ok(())
            })();
            if walked.is_err() {
                let _ = settle(inflight.take(), cx);
            }
            walked
        })?;
        Ok(dirty_dirs)
    }

    /// Makes entry `i` when it is a folder, symlink or special file; for a
    /// file to read from a disk, the job that writes it (with the batch's
    /// folder descriptor).
    fn entry<'e>(
        &self,
        i: usize,
        e: &'e Entry,
        cx: &mut BatchCtx<'_>,
        batch: &mut Batch<'e>,
        dirty_dirs: &mut bool,
    ) -> crate::Result<Option<FileJob<'e>>> {
        let (dest, fid, keep_special) = (self.dest, self.fid, self.plan.keep_special);
        let target = dest.root().join(&e.rel);
        self.progress.current(&target);
        let parent = e.rel.parent().unwrap_or(Path::new(""));
        let name = e.rel.file_name().unwrap_or_default();
        let vanished = || Error::Unsafe {
            path: target.clone(),
            reason: "its folder vanished".into(),
        };
        let open =
            |create| -> crate::Result<Dir> { Ok(dest.dir(parent, create)?.ok_or_else(vanished)?) };
        match e.version.kind {
            Kind::Dir => {
                if open(true)?.make_dir(name, &target)? {
                    cx.report.dirs += 1;
                    *dirty_dirs = true;
                }
            }
            // FAT32 and exFAT have no symlinks: counted and told.
            Kind::Symlink if !fid.unix => fid.symlink_not_held(),
            Kind::Symlink => {
                let link_target = e.version.target.clone().unwrap_or_default();
                open(true)?.make_symlink(
                    link_target.as_os_str(),
                    name,
                    e.version.mtime_ns,
                    e.state == State::Replace,
                    &target,
                    |d, n| fid.chown_at(d, n, &e.version),
                )?;
                cx.report.symlinks += 1;
            }
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                use rustix::fs::FileType as T;
                let (kind, device) = match e.version.kind {
                    Kind::CharDevice => (T::CharacterDevice, true),
                    Kind::BlockDevice => (T::BlockDevice, true),
                    _ => (T::Fifo, false),
                };
                // A device node from a catalog that is not this
                // computer's could open any disk: like setuid.
                if device && !fid.trusted {
                    fid.device_withheld();
                    return Ok(None);
                }
                let node = super::dest::Node {
                    kind,
                    rdev: e.version.attrs.rdev,
                    mode: e.version.mode,
                    mtime_ns: e.version.mtime_ns,
                    keep_special,
                    replace: e.state == State::Replace,
                };
                match open(true)?
                    .make_node(name, &node, &target, |d, n| fid.chown_at(d, n, &e.version))?
                {
                    Ok(()) => cx.report.special += 1,
                    Err(err) => fid.node_refused(device, err),
                }
            }
            Kind::File if self.plan.followers.contains_key(&i) => {}
            Kind::File => {
                let hash = e.version.hash.unwrap_or_else(|| ObjectId::of(b""));
                // The disks the plan chose that have not proved bad for it.
                let sources: Vec<Option<usize>> = self
                    .plan
                    .sources
                    .get(&i)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|d| d.is_none_or(|d| !cx.bad.contains(&(d, hash))))
                    .collect();
                if sources.is_empty() {
                    cx.missing.entry(hash).or_insert((e.version.size, 0)).1 += 1;
                    cx.missing_paths
                        .entry(hash)
                        .or_default()
                        .push(e.version.path.clone());
                    return Ok(None);
                }
                let dir = match batch.dirs.get(parent) {
                    Some(d) => Arc::clone(d),
                    None => {
                        let d = Arc::new(open(true)?);
                        batch.dirs.insert(parent.to_path_buf(), Arc::clone(&d));
                        d
                    }
                };
                return Ok(Some(FileJob {
                    entry: e,
                    dir,
                    target,
                    hash,
                    sources,
                }));
            }
        }
        Ok(None)
    }
}
