//! Looking at the destination before anything is written: what is already
//! there with the right content (an earlier run), what the user chose to
//! leave or replace, and the conflicts that stop the restore.
//!
//! Invariant: nothing here writes; a path that is there and differs is
//! either the user's choice (skip, replace a regular file) or a conflict.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::dest::{Dest, file_type};
use super::plan::{AtDest, Then};
use super::select::{Entry, State};
use super::{Error, Existing, Options, names};
use crate::catalog::Kind;

/// What a look at the destination found.
#[derive(Default)]
pub(super) struct Looked {
    /// Paths there that differ, and what the policy does with each.
    pub(super) at_dest: Vec<AtDest>,
    /// Files kept beside an existing one: (catalog path, restored as).
    pub(super) renamed: Vec<(PathBuf, PathBuf)>,
}

/// Marks each entry done, skipped or to replace; the conflicts stop the
/// restore before anything is written.
pub(super) fn look(
    entries: &mut [Entry],
    dest: &Dest,
    opts: &Options,
    progress: &crate::task::Progress,
) -> crate::Result<Looked> {
    let dest_root = dest.root().to_path_buf();
    let mut out = Looked::default();
    let mut conflicts = Vec::new();
    let mut taken: HashSet<PathBuf> = entries.iter().map(|e| e.rel.clone()).collect();
    for e in entries.iter_mut() {
        progress.check()?;
        let parent = e.rel.parent().unwrap_or(Path::new(""));
        let Some(dir) = dest.dir(parent, false)? else {
            continue;
        };
        let name = e.rel.file_name().unwrap_or_default();
        let Some(st) = dir.stat(name) else {
            continue;
        };
        let ft = file_type(&st);
        use rustix::fs::FileType as T;
        let v = &e.version;
        let same = match v.kind {
            Kind::Dir => ft == T::Directory,
            Kind::Symlink => ft == T::Symlink && dir.link_target(name) == v.target,
            Kind::File => {
                ft == T::RegularFile
                    && st.st_size as u64 == v.size
                    && dir.holds(name, v.size, v.hash)
            }
            Kind::Fifo => ft == T::Fifo,
            Kind::CharDevice => ft == T::CharacterDevice && st.st_rdev == v.attrs.rdev,
            Kind::BlockDevice => ft == T::BlockDevice && st.st_rdev == v.attrs.rdev,
        };
        if same {
            e.state = State::Done;
            continue;
        }
        match opts.existing {
            Existing::Skip => {
                e.state = State::Skipped;
                out.at_dest.push(AtDest {
                    path: dest_root.join(&e.rel),
                    then: Then::Kept,
                });
            }
            Existing::Overwrite if ft == T::RegularFile && v.kind != Kind::Dir => {
                e.state = State::Replace;
                out.at_dest.push(AtDest {
                    path: dest_root.join(&e.rel),
                    then: Then::Replaced,
                });
            }
            Existing::KeepBoth if ft == T::RegularFile && v.kind == Kind::File => {
                // The first free name, or one an earlier run of this same
                // restore already wrote with this very content.
                let found = (1..=1000).find_map(|n| {
                    let kept = names::kept_name(name, n);
                    let rel = parent.join(&kept);
                    match dir.stat(&kept) {
                        None if !taken.contains(&rel) => Some((rel, State::ToDo)),
                        Some(s)
                            if file_type(&s) == T::RegularFile
                                && dir.holds(&kept, v.size, v.hash) =>
                        {
                            Some((rel, State::Done))
                        }
                        _ => None,
                    }
                });
                match found {
                    Some((rel, state)) => {
                        out.at_dest.push(AtDest {
                            path: dest_root.join(&e.rel),
                            then: Then::Beside(dest_root.join(&rel)),
                        });
                        out.renamed
                            .push((e.version.path.clone(), dest_root.join(&rel)));
                        taken.insert(rel.clone());
                        e.rel = rel;
                        e.state = state;
                    }
                    None => conflicts.push(dest_root.join(&e.rel)),
                }
            }
            _ => conflicts.push(dest_root.join(&e.rel)),
        }
    }
    // Children of a skipped folder that is not a folder cannot be restored.
    let blocked: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.state == State::Skipped && e.version.kind == Kind::Dir)
        .map(|e| e.rel.clone())
        .collect();
    for e in entries.iter_mut() {
        if e.state != State::Skipped && blocked.iter().any(|b| e.rel.starts_with(b) && &e.rel != b)
        {
            e.state = State::Skipped;
            out.at_dest.push(AtDest {
                path: dest_root.join(&e.rel),
                then: Then::Kept,
            });
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts { paths: conflicts }.into());
    }
    Ok(out)
}
