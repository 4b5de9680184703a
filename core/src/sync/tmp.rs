//! A disk's `tmp/` across interruptions: settling what an interrupted sync
//! left there, and committing the scan's staged copies while it runs.
//!
//! Settling: each temp copy is read back and hashed. A whole copy is
//! adopted under the hash of its bytes (the plan later keeps it only if it
//! wants that content); one the journal says was being made from a file
//! that has not changed since is resumed: its bytes are checked against the
//! same bytes of the file, then the rest of the file is added. Resumed and
//! adopted files go into the scan's cache, so the scan does not read them
//! again. Nothing else stays in `tmp/`.
//!
//! Committing early: when the disk has room for everything new (and for
//! every object that has no copy anywhere), the plan would copy all of it,
//! so staged copies of content with no copy anywhere are committed in
//! batches while the scan still reads: a sync killed half-way keeps them.
//!
//! Invariant: a copy is committed early only if the plan would copy it to
//! this disk; nothing in `tmp/` is trusted before its bytes were hashed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::catalog::{Cached, Catalog, Journal, Note};
use crate::config::Profile;
use crate::disk::{CopyInError, Disk, Leftover, Stage};
use crate::task::{Phase, Progress};

/// What an open file is now: size, mtime (ns) and inode.
fn ident(m: &std::fs::Metadata) -> (u64, i64, u64) {
    (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.ino())
}

fn open_source(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Settles `disk`'s `tmp/` into `stage` (see the module's text).
pub(super) fn settle(
    catalog: &mut Catalog,
    disk: &Disk,
    stage: &Stage<'_>,
    progress: &Progress,
) -> crate::Result<()> {
    let (leftovers, junk) = disk.leftovers()?;
    disk.remove_tmp(&junk)?;
    if leftovers.is_empty() {
        return Ok(());
    }
    let journal = catalog.staging_on(disk.id())?;
    progress.phase(
        Phase::Resuming,
        leftovers.len() as u64,
        leftovers.iter().map(Leftover::size).sum(),
    );
    let each = |n: u64| {
        progress.advance(0, n);
        progress.check()
    };
    let mut notes = Vec::new();
    for l in leftovers {
        progress.check()?;
        progress.advance(1, 0);
        if !l.contiguous {
            disk.discard_leftover(l)?;
            continue;
        }
        let made_from = l.tag.as_ref().and_then(|t| journal.get(t));
        let Some(s) = made_from else {
            // No file known: adopted for its content, if whole.
            let expected = l.expected;
            let Some(p) = disk.adopt(l, each)? else {
                continue;
            };
            if expected.is_none_or(|e| e == p.hash) {
                stage.adopt(p, None);
            } else {
                disk.discard_pending(p);
            }
            continue;
        };
        let Ok(mut src) = open_source(&s.path) else {
            // The file is gone; what was copied of it may still be wanted.
            if let Some(p) = disk.adopt(l, each)? {
                stage.adopt(p, None);
            }
            continue;
        };
        let before = src.metadata().map(|m| ident(&m)).ok();
        let steady_since = before == Some((s.size, s.mtime_ns, s.inode));
        let pending = if !steady_since {
            if let Some(p) = disk.adopt(l, each)? {
                stage.adopt(p, None);
            }
            continue;
        } else if l.size() == s.size || disk.encrypted() {
            // A sealed copy is adopted whole or not at all (its size on the
            // disk is not the file's).
            disk.adopt(l, each)?
        } else if l.size() < s.size && l.single() {
            match disk.resume(l, &mut src, each) {
                Ok(p) => p,
                Err(CopyInError::Read(_)) => None,
                Err(CopyInError::Other(e)) => return Err(e),
            }
        } else {
            disk.discard_leftover(l)?;
            None
        };
        let Some(p) = pending else { continue };
        let after = std::fs::symlink_metadata(&s.path).map(|m| ident(&m)).ok();
        if after != before || p.size != s.size {
            disk.discard_pending(p);
            continue;
        }
        notes.push(Note::Hashed {
            path: s.path.clone(),
            cached: Cached {
                size: s.size,
                mtime_ns: s.mtime_ns,
                inode: s.inode,
                hash: p.hash,
            },
        });
        stage.adopt(p, Some(&s.path));
    }
    catalog.write_notes_now(&notes)?;
    Ok(())
}

/// How often the committer looks for staged copies while the scan runs:
/// it commits whatever gathered while it flushed the batch before, so the
/// batches grow as large as the disk is slow.
const COMMIT_EVERY: Duration = Duration::from_millis(100);
const COMMIT_FILES: usize = 5000;

/// Scans into `stage`, committing staged copies as the scan goes when the
/// stage is eager. Returns the scan's report and what was committed (files,
/// bytes).
pub(super) fn scan_committing(
    catalog: &mut Catalog,
    profile: &Profile,
    stage: &Stage<'_>,
    journal: &Journal,
    progress: &Progress,
) -> crate::Result<(crate::scan::Report, (u64, u64))> {
    let disk = stage.disk();
    let copied = catalog.copied_hashes()?;
    stage.also_needed(catalog.uncopied_bytes()?);
    // Dropping the sender wakes the committer at once when the scan ends.
    let (done, stopped) = std::sync::mpsc::channel::<()>();
    let early = Mutex::new((0u64, 0u64));
    let commit_now = |all: bool| {
        let batch = stage.take_where(if all { usize::MAX } else { COMMIT_FILES }, |h, path| {
            !copied.contains(h) && path.is_some_and(|p| profile.wanted_for(p).0 > 0)
        });
        if batch.is_empty() {
            stage.passed();
            return false;
        }
        let sizes: rustc_hash::FxHashMap<_, _> = batch.iter().map(|p| (p.hash, p.size)).collect();
        match disk.commit(batch) {
            Ok(hashes) => {
                let bytes: u64 = hashes.iter().filter_map(|h| sizes.get(h)).sum();
                if let Ok(mut e) = early.lock() {
                    e.0 += hashes.len() as u64;
                    e.1 += bytes;
                }
                journal.note(Note::Copied {
                    disk: disk.id(),
                    hashes,
                });
                stage.passed();
                true
            }
            Err(_) => {
                // The disk is in trouble: stage no more. The batch was
                // dropped; the sync that follows copies it again, or meets
                // the same trouble and says what it is.
                stage.stop();
                false
            }
        }
    };
    let pass = crate::scan::Pass::begin(catalog, profile, Some(stage), Some(journal), progress)?;
    // What an interrupted sync left and this one adopted is committed
    // before new copies start filling the disk's cache: the flush is short,
    // and each run keeps the work of the run before even if killed soon.
    if stage.eager() {
        commit_now(true);
    }
    let scanned = std::thread::scope(|s| {
        let committer = std::thread::Builder::new()
            .name("commit-early".into())
            .spawn_scoped(s, move || {
                // Back to back while there is something to commit, so
                // the commits keep up with the disk; else a look now and then.
                let mut busy = false;
                loop {
                    // A breath between commits, so small files gather into
                    // batches rather than each costing a flush.
                    let wait = if busy { COMMIT_EVERY / 5 } else { COMMIT_EVERY };
                    match stopped.recv_timeout(wait) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                    busy = stage.eager() && commit_now(false);
                }
                if stage.eager() {
                    commit_now(true);
                }
            });
        let r = pass.finish(catalog);
        drop(done);
        if let Ok(c) = committer {
            let _ = c.join();
        }
        r
    });
    let scanned = scanned?;
    let early = early.into_inner().unwrap_or_default();
    Ok((scanned, early))
}
