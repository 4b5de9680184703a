//! Copying a plan's objects onto the disk in batches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::SyncRun;
use crate::catalog::Catalog;
use crate::disk::{self, Disk, Pending};
use crate::object::ObjectId;
use crate::task::Progress;

/// Copies the objects in batches. Each batch is copied by all cores at once
/// (hashing is the CPU cost), then flushed and renamed into place by a
/// committer thread while the next batch is copied, so the disk's flush
/// overlaps the next batch's reading and hashing; the catalog records each
/// batch once the committer has made it durable.
impl SyncRun<'_, '_> {
    pub(super) fn copy_all(
        &mut self,
        paths: &HashMap<ObjectId, &[PathBuf]>,
        copies: &[(ObjectId, u64)],
    ) -> crate::Result<()> {
        let (disk, others, stage, opts, progress) =
            (self.disk, self.others, self.stage, self.opts, self.progress);
        let catalog = &mut *self.catalog;
        let report = &mut *self.report;
        type Committed = Result<Vec<(ObjectId, u64)>, disk::Error>;
        let mut outcome: crate::Result<()> = Ok(());
        // The first real error wins over the stops it caused.
        let fail = |outcome: &mut crate::Result<()>, e: crate::Error| {
            let stopped = matches!(outcome, Err(crate::Error::Cancelled));
            if outcome.is_ok() || (stopped && !matches!(e, crate::Error::Cancelled)) {
                *outcome = Err(e);
            }
        };
        let mut record =
            |catalog: &mut Catalog, done: Committed, outcome: &mut crate::Result<()>| {
                let r = done.map_err(crate::Error::from).and_then(|done| {
                    let now = crate::now();
                    let rows: Vec<(ObjectId, Option<i64>)> =
                        done.iter().map(|d| (d.0, Some(now))).collect();
                    catalog.add_copies(disk.id(), &rows)?;
                    report.copied_files += done.len() as u64;
                    report.copied_bytes += done.iter().map(|d| d.1).sum::<u64>();
                    Ok(())
                });
                if let Err(e) = r {
                    fail(outcome, e);
                }
            };
        std::thread::scope(|s| {
            // One batch waits while one is committed: at most three batches of
            // temp copies exist at once.
            let (to_commit, batches) = std::sync::mpsc::sync_channel::<Vec<Pending>>(1);
            let (committed, done) = std::sync::mpsc::channel::<Committed>();
            let committer = std::thread::Builder::new()
                .name("commit".into())
                .spawn_scoped(s, move || {
                    let mut failed = false;
                    for batch in batches {
                        if failed {
                            // After a failed commit nothing more is trusted to
                            // this disk in this run.
                            for p in batch {
                                disk.discard_pending(p);
                            }
                            continue;
                        }
                        let sizes: HashMap<ObjectId, u64> =
                            batch.iter().map(|p| (p.hash, p.size)).collect();
                        let r = disk.commit(batch).map(|done| {
                            done.into_iter()
                                .map(|h| (h, sizes.get(&h).copied().unwrap_or(0)))
                                .collect()
                        });
                        failed = r.is_err();
                        if committed.send(r).is_err() {
                            break;
                        }
                    }
                });
            let committer = match committer {
                Ok(c) => c,
                Err(e) => {
                    outcome = Err(crate::Error::Panic(format!("cannot start a thread: {e}")));
                    return;
                }
            };
            let mut rest = copies;
            while !rest.is_empty() && outcome.is_ok() {
                while let Ok(d) = done.try_recv() {
                    record(catalog, d, &mut outcome);
                }
                if let Err(e) = disk.check_identity() {
                    fail(&mut outcome, e.into());
                    break;
                }
                let mut n = 0;
                let mut bytes = 0u64;
                while n < rest.len() && n < opts.batch_files && (n == 0 || bytes < opts.batch_bytes)
                {
                    bytes += rest[n].1;
                    n += 1;
                }
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let stop = AtomicBool::new(false);
                let results: Vec<(u64, crate::Result<Option<Pending>>)> = chunk
                    .par_iter()
                    // One object per task: sizes vary wildly, so every one is up for stealing.
                    .with_max_len(1)
                    .map(|(hash, size)| {
                        if stop.load(Ordering::Relaxed) {
                            return (*size, Err(crate::Error::Cancelled));
                        }
                        if let Some(p) = stage.and_then(|s| s.take(hash)) {
                            progress.advance(0, *size);
                            return (*size, Ok(Some(p)));
                        }
                        let srcs = paths.get(hash).copied().unwrap_or(&[]);
                        let r = progress
                            .check()
                            .and_then(|()| copy_one(disk, others, hash, srcs, progress));
                        if r.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        (*size, r)
                    })
                    .collect();
                let mut batch: Vec<Pending> = Vec::new();
                for (size, r) in results {
                    match r {
                        Ok(Some(p)) => {
                            batch.push(p);
                            progress.advance(1, 0);
                        }
                        Ok(None) => {
                            report.skipped_files += 1;
                            progress.advance(1, size);
                        }
                        Err(e) => fail(&mut outcome, e),
                    }
                }
                // Whatever was copied completely is kept, even when the sync stops early.
                if !batch.is_empty() && to_commit.send(batch).is_err() {
                    break;
                }
            }
            drop(to_commit);
            for d in done.iter() {
                record(catalog, d, &mut outcome);
            }
            if committer.join().is_err() {
                fail(
                    &mut outcome,
                    crate::Error::Panic("the commit thread panicked".into()),
                );
            }
        });
        outcome
    }
}

/// Copies one object into the disk's tmp/, from a source file that still
/// holds it or from another connected disk. `Ok(None)`: no source has it now.
fn copy_one(
    disk: &Disk,
    others: &[&Disk],
    hash: &ObjectId,
    paths: &[PathBuf],
    progress: &Progress,
) -> crate::Result<Option<Pending>> {
    let each = |n: u64| {
        progress.advance(0, n);
        progress.check()
    };
    for path in paths {
        let Ok(mut f) = open_source(path).and_then(crate::meta::sparse::Sparse::of) else {
            continue;
        };
        progress.current(path);
        match disk.write_tmp(hash, &mut f, each) {
            Ok(p) => return Ok(Some(p)),
            Err(crate::Error::Disk(disk::Error::SourceChanged { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    for other in others {
        if other.id() == disk.id() {
            continue;
        }
        let Ok(mut r) = other.open_object(hash) else {
            continue;
        };
        progress.current(&other.object_path(hash));
        match disk.write_tmp(hash, &mut r, each) {
            Ok(p) => return Ok(Some(p)),
            Err(crate::Error::Disk(disk::Error::SourceChanged { .. })) => {
                progress.warn(
                    Some(&other.object_path(hash)),
                    "does not match its name on that disk; run `coffer verify` on it",
                );
            }
            Err(e) => return Err(e),
        }
    }
    let shown = paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from(hash.to_hex()));
    progress.warn(
        Some(&shown),
        "changed or gone since the last scan; it will be copied after the next scan",
    );
    Ok(None)
}

pub(super) fn open_source(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}
