//! Hashing one file: read until it holds still, copied into a disk's stage
//! on the same read when there is room, journaled as it goes.
//!
//! Invariant: a hash is only given for bytes read while the file's size,
//! mtime and inode stayed as they were.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use super::{Found, Kind};
use crate::catalog::{Cached, Journal, Note, Staging};
use crate::disk::{CopyInError, Stage};
use crate::object::{self, ObjectId};
use crate::task::Progress;

/// Hashes a file, reading it again if it changes while read. Updates `f`
/// with the metadata the hash belongs to. With a stage that has room, the
/// same read also copies the file there.
pub(super) fn hash_settled(
    f: &mut Found,
    stage: Option<&Stage>,
    journal: &Journal,
    scratch: &std::path::Path,
    progress: &Progress,
) -> Result<ObjectId, String> {
    if f.live {
        match hash_live(f, stage, scratch, progress) {
            Ok(h) => return Ok(h),
            Err(msg) => progress.warn(
                Some(&f.path),
                format!("looks like a live SQLite database but cannot be copied as one ({msg}); read as plain bytes"),
            ),
        }
    }
    const TRIES: usize = 3;
    let mut tries = 0;
    while tries < TRIES {
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&f.path)
            .map_err(|e| format!("cannot be read ({e})"))?;
        let before = file
            .metadata()
            .map_err(|e| format!("cannot be read ({e})"))?;
        if !before.is_file() {
            return Err("is no longer a regular file".into());
        }
        let each = |n: u64| {
            progress.advance(0, n);
            progress.check()
        };
        if let Some(s) = stage {
            s.wait_for_room();
        }
        // Holes are given as zeros without being read.
        let mut reader = crate::meta::sparse::Sparse::new(&file, before.len(), before.blocks());
        let (hash, n, staged) = match stage.filter(|s| s.reserve(before.len())) {
            Some(stage) => {
                // Journaled first: a copy a kill interrupts can be resumed.
                let tag = crate::disk::new_tag();
                journal.note(Note::Staging {
                    disk: stage.disk().id(),
                    staging: Staging {
                        name: tag.clone(),
                        path: f.path.clone(),
                        size: before.len(),
                        mtime_ns: before.mtime() * 1_000_000_000 + before.mtime_nsec(),
                        inode: before.ino(),
                    },
                });
                match stage.disk().stage_as(&tag, &mut reader, each) {
                    Ok(p) => (p.hash, p.size, Some((stage, p))),
                    Err(e) => {
                        stage.unreserve(before.len());
                        match e {
                            CopyInError::Read(e) => return Err(format!("cannot be read ({e})")),
                            CopyInError::Other(crate::Error::Cancelled) => {
                                return Err("cancelled".into());
                            }
                            CopyInError::Other(_) => {
                                // The disk failed: stop staging and just
                                // hash. The sync that follows meets the
                                // disk's trouble and reports it.
                                stage.stop();
                                continue;
                            }
                        }
                    }
                }
            }
            None => {
                let (hash, n) = object::hash_reader(&mut reader, |n| {
                    each(n).map_err(|_| std::io::Error::other("cancelled"))
                })
                .map_err(|e| format!("cannot be read ({e})"))?;
                (hash, n, None)
            }
        };
        tries += 1;
        let after =
            std::fs::symlink_metadata(&f.path).map_err(|e| format!("vanished while read ({e})"));
        let settled = after.as_ref().is_ok_and(|after| {
            after.len() == n
                && before.len() == n
                && after.mtime() == before.mtime()
                && after.mtime_nsec() == before.mtime_nsec()
                && after.ino() == before.ino()
        });
        if let Some((stage, p)) = staged {
            if settled {
                stage.keep(p, Some(&f.path));
            } else {
                stage.unreserve(p.size);
                stage.disk().discard_pending(p);
            }
        }
        let after = after?;
        if settled {
            // The attributes were listed after the walk's stat: its ctime
            // is the one they are known to be as new as.
            let (xattrs, set, ctime) = (f.xattrs.take(), f.attrs.xattrs, f.attrs.ctime_ns);
            *f = Found::from_meta(f.path.clone(), &after, Kind::File, None);
            (f.xattrs, f.attrs.xattrs, f.attrs.ctime_ns) = (xattrs, set, ctime);
            journal.note(Note::Hashed {
                path: f.path.clone(),
                cached: Cached {
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                    inode: f.inode,
                    hash,
                },
            });
            return Ok(hash);
        }
    }
    Err(format!("kept changing while it was read ({TRIES} tries)"))
}

/// Hashes (and stages) a consistent copy of a live SQLite database, made
/// through the backup API in `scratch`; `f` takes the copy's size.
fn hash_live(
    f: &mut Found,
    stage: Option<&Stage>,
    scratch: &std::path::Path,
    progress: &Progress,
) -> Result<ObjectId, String> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| format!("cannot make {} ({e})", scratch.display()))?;
    let copy = scratch.join(format!("live-{}.sqlite", crate::disk::new_tag()));
    struct Gone<'a>(&'a std::path::Path);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _gone = Gone(&copy);
    crate::live::copy_sqlite(&f.path, &copy)?;
    let mut file = std::fs::File::open(&copy).map_err(|e| format!("cannot read its copy ({e})"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read its copy ({e})"))?
        .len();
    let each = |n: u64| {
        progress.advance(0, n);
        progress.check()
    };
    let hash = match stage.filter(|s| s.reserve(len)) {
        Some(stage) => match stage.disk().stage(&mut file, each) {
            Ok(p) => {
                let h = p.hash;
                stage.keep(p, Some(&f.path));
                h
            }
            Err(e) => {
                stage.unreserve(len);
                return Err(match e {
                    CopyInError::Read(e) => format!("cannot read its copy ({e})"),
                    CopyInError::Other(e) => e.to_string(),
                });
            }
        },
        None => {
            object::hash_reader(&mut file, |n| {
                each(n).map_err(|_| std::io::Error::other("cancelled"))
            })
            .map_err(|e| format!("cannot read its copy ({e})"))?
            .0
        }
    };
    f.size = len;
    Ok(hash)
}
