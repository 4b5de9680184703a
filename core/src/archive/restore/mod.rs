//! Restoring from archives: archive N (with its chain of bases) or some of
//! its paths, into a folder, through the destination writer restores from
//! disks use, in the same two steps: a plan ([`plan`]), then its execution.
//!
//! The chain's manifests say which member of which volume of which archive
//! each file needs (whole, or a delta on the content before). The plan
//! checks the destination; then every needed volume is read to its
//! end through the member reader (the checks of `archive verify`), the
//! files it needs staged in a private folder inside the destination
//! (deltas applied as they stream). Only when every volume was read and
//! checked do files take their names, folders appear, and modes and times
//! get set; special bits only when asked.
//!
//! Invariant: extraction never writes outside the destination; when a
//! restore fails before files take their names, the destination holds
//! exactly what it held before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Error;
use super::manifest::{Entry, EntryKind};
use super::member::{self, Reading, Want};
use super::open;
use super::stage::{Staged, Stager};
use super::verify::manifest_of;
use crate::restore::dest::{Dest, Dir, Staging, move_in};
use crate::task::{Phase, Progress};

mod plan;

pub use plan::{ArchivePlan, plan};

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Sequence number to restore.
    pub at: u64,
    /// Prefix of the archives; needed only when the folder holds several.
    pub prefix: Option<String>,
    /// Relative paths (files or folders) as listed in the manifest; all when empty.
    pub paths: Vec<String>,
    /// Replace existing files (never folders).
    pub overwrite: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default, as GNU tar
    /// does for ordinary users).
    pub keep_special_bits: bool,
}

/// A dump restored, with the command that loads it back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RestoredDump {
    pub name: String,
    pub path: PathBuf,
    pub load_command: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreReport {
    pub sequence: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// The archive files read, in order.
    pub read: Vec<PathBuf>,
    pub dumps: Vec<RestoredDump>,
}

/// What to do at a path of the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Put {
    New,
    /// Replace the regular file there (the user chose so).
    Replace,
    /// The folder, or the same symlink, is already there.
    Keep,
}

/// Folders this restore made for the destination itself; removed again
/// (when still empty) unless the restore succeeds.
struct MadeDirs {
    dirs: Vec<PathBuf>,
    keep: bool,
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        if !self.keep {
            for d in self.dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

fn corrupt(path: &Path, message: impl std::fmt::Display, files: Vec<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
        files,
    }
}

/// Restores the tree (or `paths`) of archive `at` from `dir` into `dest`:
/// plans it, then executes that plan.
pub fn restore(
    dir: &Path,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> crate::Result<RestoreReport> {
    plan(dir, dest, opts, progress)?.execute(progress)
}

impl ArchivePlan {
    /// Does what the plan says: reads every volume it named to its end,
    /// staging the files, and only then puts them in place.
    pub fn execute(self, progress: &Progress) -> crate::Result<RestoreReport> {
        let mut run = self.run;
        // The destination folder itself: made now if the plan found it
        // missing, and then it must be where the plan said it would be.
        let (dest_w, made) = match run.dest.take() {
            Some(d) => (d, Vec::new()),
            None => {
                let (d, made) = Dest::create(&run.dest_asked)?;
                if d.root() != self.dest {
                    return Err(crate::restore::Error::Unsafe {
                        path: self.dest.clone(),
                        reason: format!(
                            "the destination changed since the restore was planned (it is now {})",
                            crate::human::path(d.root())
                        ),
                    }
                    .into());
                }
                (d, made)
            }
        };
        let mut made = MadeDirs {
            dirs: made,
            keep: false,
        };
        let dest_root = dest_w.root().to_path_buf();
        if !self.dest_exists
            && let Some(free) = dest_w.free_bytes()
            && self.room > free
        {
            return Err(Error::NoRoom {
                dest: dest_root,
                needed: self.room,
                free,
            }
            .into());
        }
        let target = run.target();
        let selected: Vec<&Entry> = run.selected.iter().map(|&i| &target.entries[i]).collect();

        // Read every needed volume to its end, staging what it holds for us.
        progress.phase(Phase::Restoring, run.plain.len() as u64, self.bytes);
        let mut report = RestoreReport {
            sequence: self.sequence,
            ..RestoreReport::default()
        };
        let staging = dest_w.staging()?;
        let mut staged: HashMap<String, Staged> = HashMap::new();
        for (i, (found, m, digest)) in run.chain.iter().enumerate() {
            let Some(needs) = run.needs.get(i).filter(|n| !n.is_empty()) else {
                continue;
            };
            let mut done: HashSet<String> = HashSet::new();
            for &v in run.vols.get(i).into_iter().flat_map(BTreeMap::keys) {
                let path = found.volume_path(&run.dir, v);
                let file = open::open_file(&path)?;
                let mut sink = Stager {
                    archive: &path,
                    dest_root: &dest_root,
                    staging: staging.dir(),
                    needs,
                    staged: &mut staged,
                    done: &mut done,
                    pending: None,
                    keep_special: run.keep_special,
                    progress,
                };
                let read = member::read_volume(
                    file,
                    &path,
                    Want::Exactly(m, *digest),
                    v,
                    &mut sink,
                    progress,
                    Reading::Restore,
                );
                if let Err(crate::Error::Archive(Error::ManifestDiffers { .. })) = &read
                    && let Ok((other, _)) = manifest_of(&path)
                    && other.id != m.id
                {
                    // A volume of another archive under this one's name.
                    return Err(Error::WrongBase {
                        path,
                        sequence: m.sequence,
                        expected: m.id,
                        found: other.id,
                    }
                    .into());
                }
                read?;
                report.read.push(path);
            }
            // Every member asked of this archive must have been found.
            for (mp, step) in needs {
                if !done.contains(mp) {
                    return Err(corrupt(
                        found.first(),
                        format!("member for {} not found", step.file),
                        vec![step.file.clone()],
                    )
                    .into());
                }
            }
        }

        // Everything was read and checked: flush it, then put it in place.
        dest_w.flush()?;
        let placing = Placing {
            dest: &dest_w,
            staging: &staging,
            plain: &run.plain,
            selected: &selected,
            keep_special: run.keep_special,
        };
        place(&placing, &mut staged, &mut report, progress)?;
        dest_w.flush()?;
        made.keep = true;
        drop(staging);
        for &i in &run.dumps {
            let d = &target.dumps[i];
            report.dumps.push(RestoredDump {
                name: d.name.clone(),
                path: dest_root.join(d.member_path()),
                load_command: d.load_command.clone(),
            });
        }
        Ok(report)
    }
}

/// What is put in place once every volume was read and checked.
struct Placing<'a> {
    dest: &'a Dest,
    staging: &'a Staging<'a>,
    /// Every path to restore, its kind, and what to do at it.
    plain: &'a [(String, EntryKind, Put)],
    /// The manifest's entries selected (for symlink targets, modes, times).
    selected: &'a [&'a Entry],
    /// Setuid, setgid and sticky bits kept.
    keep_special: bool,
}

/// Puts everything in place: folders (0700 until the end), staged files
/// renamed in, symlinks, then folders' modes and times, deepest first.
fn place(
    placing: &Placing<'_>,
    staged: &mut HashMap<String, Staged>,
    report: &mut RestoreReport,
    progress: &Progress,
) -> crate::Result<()> {
    let Placing {
        dest,
        staging,
        plain,
        selected,
        keep_special,
    } = *placing;
    let by_path: HashMap<&str, &Entry> = selected.iter().map(|e| (e.path.as_str(), *e)).collect();
    let mut parent_dir: Option<(PathBuf, Dir)> = None;
    for (p, kind, put) in plain {
        let rel = Path::new(p.as_str());
        let shown = dest.root().join(rel);
        if *kind == EntryKind::Dir {
            dest.dir(rel, true)?;
            progress.advance(1, 0);
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = match parent_dir.take() {
            Some((at, d)) if at == parent => d,
            _ => dest
                .dir(parent, true)?
                .ok_or_else(|| crate::restore::Error::Unsafe {
                    path: shown.clone(),
                    reason: "its folder vanished".into(),
                })?,
        };
        let name = rel.file_name().unwrap_or_default();
        let entry = by_path.get(p.as_str());
        match kind {
            EntryKind::File => {
                let st = staged
                    .remove(p)
                    .ok_or_else(|| crate::Error::Panic(format!("{p} was not staged")))?;
                move_in(
                    staging.dir(),
                    &st.name,
                    &dir,
                    name,
                    *put == Put::Replace,
                    &shown,
                )?;
                if let Some(e) = entry {
                    report.files += 1;
                    report.bytes += e.size;
                }
            }
            EntryKind::Symlink if *put != Put::Keep => {
                if let Some(e) = entry {
                    let target = e.target.as_deref().unwrap_or_default();
                    dir.make_symlink(
                        std::ffi::OsStr::new(target),
                        name,
                        e.mtime_ns,
                        *put == Put::Replace,
                        &shown,
                        |_, _| {},
                    )?;
                    report.symlinks += 1;
                }
            }
            _ => {}
        }
        parent_dir = Some((parent.to_path_buf(), dir));
        progress.advance(1, 0);
    }
    drop(parent_dir);
    // Folders last, deepest first, so their mtimes stick.
    let mut dirs: Vec<&Entry> = selected
        .iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .copied()
        .collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
    for e in dirs {
        if let Some(d) = dest.dir(Path::new(&e.path), false)? {
            d.set_meta(e.mode, e.mtime_ns, keep_special)?;
            report.dirs += 1;
        }
    }
    Ok(())
}
