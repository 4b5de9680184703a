//! Walking the sources: parallel `read_dir`, entries stat'ed relative to
//! their folder, exclusions applied, symlinks recorded and never followed;
//! FIFOs and device nodes recorded as what they are (never opened), sockets
//! left out without a word (they are made by the program that listens);
//! then the extended attributes of files and folders whose inode changed
//! since the last snapshot, one `llistxattr` each (`attach_xattrs`).
//!
//! Invariant: what cannot be read is listed as unreadable (and warned
//! about), never left out as if it were gone.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Found, matcher};
use crate::catalog::Kind;
use crate::config::Profile;
use crate::task::Progress;

/// What walking the sources found.
#[derive(Default)]
pub(super) struct Walked {
    pub(super) found: Vec<Found>,
    /// Folders whose contents could not be listed: what they held stays as it was.
    pub(super) unreadable: Vec<PathBuf>,
}

impl Walked {
    fn merge(&mut self, other: Walked) {
        self.found.extend(other.found);
        self.unreadable.extend(other.unreadable);
    }
}

/// Walks every source (symlinks are recorded, never followed), applying
/// the exclusions. Only a cancel is an error: what cannot be read is
/// warned about and listed as unreadable.
pub(super) fn walk_sources(
    profile: &Profile,
    own_dir: Option<&Path>,
    progress: &Progress,
) -> crate::Result<Walked> {
    let mut all = Walked::default();
    for source in &profile.sources {
        progress.check()?;
        let root = &source.path;
        let meta = match std::fs::symlink_metadata(root) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => {
                progress.warn(
                    Some(root),
                    "source is no longer a folder; its files are kept as they were",
                );
                all.unreadable.push(root.clone());
                continue;
            }
            Err(e) => {
                progress.warn(
                    Some(root),
                    format!("source folder cannot be read ({e}); its files are kept as they were"),
                );
                all.unreadable.push(root.clone());
                continue;
            }
        };
        let rules = matcher(profile, root, &source.excludes)?;
        let walk = Walk {
            rules: &rules,
            own_dir,
            progress,
        };
        all.found
            .push(Found::from_meta(root.clone(), &meta, Kind::Dir, None));
        progress.advance(1, 0);
        all.merge(walk.dir(root)?);
    }
    Ok(all)
}

struct Walk<'a> {
    rules: &'a ignore::gitignore::Gitignore,
    own_dir: Option<&'a Path>,
    progress: &'a Progress,
}

/// Lists the extended attributes of the files and folders found, on all
/// cores (Linux allows no `user.*` on symlinks or special files). Where
/// `recorded` gives the set of the version before, whose inode has not
/// changed since (same ctime: any attribute, mode, owner or link change
/// moves it), that set is taken without asking the kernel. What cannot be
/// read is warned about and left out.
pub(super) fn attach_xattrs(
    found: &mut [Found],
    recorded: impl Fn(&Found) -> Option<Option<i64>> + Sync,
    progress: &Progress,
) {
    // As root, `security.*` and `trusted.*` are recorded too.
    let root = crate::meta::owner::is_root();
    found
        .par_iter_mut()
        .filter(|f| matches!(f.kind, Kind::File | Kind::Dir))
        .for_each(|f| {
            if let Some(set) = recorded(f) {
                f.attrs.xattrs = set;
                return;
            }
            match crate::meta::xattr::read_path(&f.path, root) {
                Ok(x) if !x.is_empty() => {
                    let d = x.digest();
                    f.xattrs = Some((std::sync::Arc::new(x), d));
                }
                Ok(_) => {}
                Err(e) => progress.warn(Some(&f.path), format!("{e}; recorded without them")),
            }
        });
}

impl Walk<'_> {
    /// Everything under `dir`, its subfolders walked in parallel. Entries
    /// are stat'ed relative to their folder (no path lookups).
    fn dir(&self, dir: &Path) -> crate::Result<Walked> {
        let mut w = Walked::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) => {
                self.progress
                    .warn(Some(dir), format!("cannot be read ({e}); kept as it was"));
                w.unreadable.push(dir.to_path_buf());
                return Ok(w);
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            self.progress.check()?;
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.progress
                        .warn(Some(dir), format!("cannot be read ({e}); kept as it was"));
                    w.unreadable.push(dir.to_path_buf());
                    break;
                }
            };
            let path = entry.path();
            let ft = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    self.progress
                        .warn(Some(&path), format!("cannot be read ({e}); kept as it was"));
                    w.unreadable.push(path);
                    continue;
                }
            };
            if self.own_dir == Some(path.as_path())
                || self.rules.matched(&path, ft.is_dir()).is_ignore()
            {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    self.progress
                        .warn(Some(&path), format!("cannot be read ({e}); kept as it was"));
                    w.unreadable.push(path);
                    continue;
                }
            };
            let f = if ft.is_dir() {
                subdirs.push(path.clone());
                Found::from_meta(path, &meta, Kind::Dir, None)
            } else if ft.is_symlink() {
                match std::fs::read_link(&path) {
                    Ok(t) => Found::from_meta(path, &meta, Kind::Symlink, Some(t)),
                    Err(e) => {
                        self.progress.warn(
                            Some(&path),
                            format!("cannot read the link ({e}); kept as it was"),
                        );
                        w.unreadable.push(path);
                        continue;
                    }
                }
            } else if ft.is_file() {
                Found::from_meta(path, &meta, Kind::File, None)
            } else if ft.is_fifo() {
                Found::from_meta(path, &meta, Kind::Fifo, None)
            } else if ft.is_char_device() {
                Found::from_meta(path, &meta, Kind::CharDevice, None)
            } else if ft.is_block_device() {
                Found::from_meta(path, &meta, Kind::BlockDevice, None)
            } else if ft.is_socket() {
                // A socket is made by the program listening on it, and
                // means nothing restored: left out, as tar and restic do.
                continue;
            } else {
                self.progress.warn(
                    Some(&path),
                    "not a regular file, folder, symlink or special file; skipped",
                );
                continue;
            };
            self.progress.advance(1, f.size);
            w.found.push(f);
        }
        mark_live_databases(&mut w.found);
        let below: Vec<crate::Result<Walked>> = subdirs.par_iter().map(|d| self.dir(d)).collect();
        for b in below {
            w.merge(b?);
        }
        Ok(w)
    }
}

/// Among the files of one folder, marks the SQLite databases that have a
/// `-wal`, `-shm` or `-journal` beside them as live, and leaves those out:
/// the database's consistent copy holds what they hold, and a stale log
/// restored beside it would be replayed into it.
fn mark_live_databases(found: &mut Vec<Found>) {
    use std::collections::HashSet;
    let names: HashSet<Vec<u8>> = found
        .iter()
        .filter(|f| f.kind == Kind::File)
        .filter_map(|f| f.path.file_name())
        .map(|n| n.as_encoded_bytes().to_vec())
        .collect();
    let sidecar_of = |name: &[u8]| {
        crate::live::SIDECARS.iter().find_map(|s| {
            name.strip_suffix(s.as_bytes())
                .filter(|main| names.contains(*main))
                .map(<[u8]>::to_vec)
        })
    };
    let mut mains: HashSet<Vec<u8>> = HashSet::new();
    for n in &names {
        if let Some(main) = sidecar_of(n) {
            mains.insert(main);
        }
    }
    if mains.is_empty() {
        return;
    }
    let mut live: HashSet<Vec<u8>> = HashSet::new();
    for f in found.iter_mut() {
        let name = f.path.file_name().map(|n| n.as_encoded_bytes().to_vec());
        if f.kind == Kind::File
            && name.as_ref().is_some_and(|n| mains.contains(n))
            && crate::live::looks_like_sqlite(&f.path)
        {
            f.live = true;
            live.extend(name);
        }
    }
    found.retain(|f| {
        let name = f.path.file_name().map(|n| n.as_encoded_bytes().to_vec());
        !(f.kind == Kind::File
            && name
                .as_deref()
                .and_then(sidecar_of)
                .is_some_and(|main| live.contains(&main)))
    });
}
