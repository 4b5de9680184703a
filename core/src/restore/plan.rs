//! A restore as a plan: what it will write, from which disks, what it finds
//! at the destination and does with it, and what it cannot restore, all
//! computed before anything is written, from the same selection, names,
//! destination look and set cover the run then carries out.
//! [`restore_from`](super::restore_from) builds a plan and executes that
//! very plan, so what a plan says and what a run does cannot drift;
//! `coffer restore --dry-run` and the window's summary line show a plan
//! and stop there.
//!
//! Invariant: building a plan writes nothing, not even the destination
//! folder; a plan executes only with the disks it was made with, and only
//! into the destination it looked at.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use super::cover::{Holders, holders, plan_next};
use super::dest::Dest;
use super::names::handle_collisions;
use super::select::{self, Entry, State};
use super::{At, DiskNeed, Error, NotHeld, Options, Source, check, fs_kind_of, links};
use crate::catalog::{Catalog, Kind};
use crate::object::ObjectId;
use crate::task::{Phase, Progress};

/// A path that exists at the destination and differs from what the
/// snapshot holds, and what the chosen policy does with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AtDest {
    pub path: PathBuf,
    pub then: Then,
}

/// What happens to a path that exists at the destination.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Left as it is (and what lies under a folder left as it is).
    Kept,
    /// The regular file there is replaced.
    Replaced,
    /// Kept, and the restored file goes beside it, at this path.
    Beside(PathBuf),
}

/// Everything a restore will do, before it does any of it.
#[derive(Debug, serde::Serialize)]
pub struct RestorePlan {
    pub snapshot: i64,
    pub snapshot_time: i64,
    /// Where the files go (resolved; made when the run starts if missing).
    pub dest: PathBuf,
    /// Whether the destination folder exists already.
    pub dest_exists: bool,
    /// The destination's file system, in the words of messages.
    pub file_system: String,
    /// Files to write (with those made as another link of one), and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Folders to make.
    pub dirs: u64,
    pub symlinks: u64,
    /// FIFOs and device nodes to make.
    pub special: u64,
    /// Files to make as another link of a file restored (counted in `files`).
    pub links: u64,
    /// Files already at the destination with the right content.
    pub already_done: u64,
    /// Paths at the destination that differ, and what is done with each.
    pub at_dest: Vec<AtDest>,
    /// Names changed: (catalog path, restored as).
    pub renamed: Vec<(PathBuf, PathBuf)>,
    /// The connected disks read, with what each provides (the first disk
    /// holding a file is the one it is read from).
    pub read_from: Vec<DiskNeed>,
    /// Disks to plug in next, in order, for what no connected disk holds.
    pub plug_next: Vec<DiskNeed>,
    /// Files whose content is on no known disk.
    pub unavailable: Vec<PathBuf>,
    /// Files that will still be missing after the run.
    pub missing_files: u64,
    pub missing_bytes: u64,
    /// What the destination is known, before the run, not to hold: what
    /// its file system (FAT32, exFAT) lacks, and device nodes kept out. The
    /// run may find more (attributes or modes a file system refuses).
    pub not_held: NotHeld,
    #[serde(skip)]
    pub(super) run: Prepared,
}

/// What the run takes from the plan as it is, so it does what the plan said.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) workstation: Option<uuid::Uuid>,
    pub(super) keep_special: bool,
    pub(super) fs: crate::disk::fs::Kind,
    pub(super) entries: Vec<Entry>,
    /// For each entry that is another link of an earlier one, that one's index.
    pub(super) followers: HashMap<usize, usize>,
    /// For each file entry to write, the connected disks to read it from,
    /// in order (`None`: an empty file, read from nowhere).
    pub(super) sources: HashMap<usize, Vec<Option<usize>>>,
    pub(super) holders: Holders,
    /// The ids of the disks the plan was made with, in order.
    pub(super) disk_ids: Vec<uuid::Uuid>,
    /// The destination as asked for, and open when it existed.
    pub(super) dest_asked: PathBuf,
    pub(super) dest: Option<Dest>,
}

/// Plans what `opts` asks for from `disks` (connected disks and reachable
/// bucket disks), writing nothing. `workstation` is as for
/// [`restore_from`](super::restore_from).
pub fn plan(
    catalog: &Catalog,
    workstation: Option<uuid::Uuid>,
    disks: &[&dyn Source],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<RestorePlan> {
    progress.phase(Phase::Planning, 0, 0);
    let snap = select::resolve_snapshot(catalog, opts.at.unwrap_or(At::Latest))?;
    let versions = select::select(catalog, snap.id, &opts.paths)?;
    if versions.is_empty() {
        return Err(Error::NothingSelected {
            snapshot: snap.id,
            paths: opts.paths.clone(),
        }
        .into());
    }
    let keep_special = workstation.is_some() || opts.keep_special_bits;
    let (dest_asked, mut entries) = select::place(versions, opts)?;

    // The destination folder as it is now: open when it exists (a symlink
    // the user named is resolved once, here), else where it will be made.
    let dest = Dest::open(&dest_asked)?;
    let dest_root = match &dest {
        Some(d) => d.root().to_path_buf(),
        None => Dest::would_create(&dest_asked)?,
    };
    let fs = fs_kind_of(&dest_root);
    let mut renamed = Vec::new();
    if opts.case_insensitive || fs.case_insensitive() {
        renamed = handle_collisions(&mut entries, opts.rename_collisions)?;
    }

    // Look before writing anything: unsafe parents and conflicts. A
    // destination that is not there yet holds nothing.
    let mut at_dest = Vec::new();
    if let Some(d) = &dest {
        let looked = check::look(&mut entries, d, opts, progress)?;
        at_dest = looked.at_dest;
        renamed.extend(looked.renamed);
    }
    let followers = links::groups(&entries);
    let holders = holders(catalog, disks)?;

    let mut p = RestorePlan {
        snapshot: snap.id,
        snapshot_time: snap.started_at,
        dest: dest_root,
        dest_exists: dest.is_some(),
        file_system: match fs {
            crate::disk::fs::Kind::Other(_) => "this file system".into(),
            k => k.name().into(),
        },
        files: 0,
        bytes: 0,
        dirs: 0,
        symlinks: 0,
        special: 0,
        links: 0,
        already_done: 0,
        at_dest,
        renamed,
        read_from: Vec::new(),
        plug_next: Vec::new(),
        unavailable: Vec::new(),
        missing_files: 0,
        missing_bytes: 0,
        not_held: NotHeld::default(),
        run: Prepared {
            workstation,
            keep_special,
            fs,
            entries: Vec::new(),
            followers: HashMap::new(),
            sources: HashMap::new(),
            holders,
            disk_ids: disks.iter().map(|d| d.id()).collect(),
            dest_asked,
            dest,
        },
    };
    p.count(catalog, disks, &entries, &followers)?;
    p.run.entries = entries;
    p.run.followers = followers;
    progress.flush();
    Ok(p)
}

impl RestorePlan {
    /// Fills in the figures: what each entry will be, which disk each file
    /// is read from, and, for what no connected disk holds, the disks to
    /// plug in next.
    fn count(
        &mut self,
        catalog: &Catalog,
        disks: &[&dyn Source],
        entries: &[Entry],
        followers: &HashMap<usize, usize>,
    ) -> crate::Result<()> {
        let unix = self.run.fs.unix();
        let trusted = self.run.keep_special;
        let root = crate::meta::owner::is_root();
        let mut per_disk: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        let mut missing: BTreeMap<ObjectId, (u64, u64)> = BTreeMap::new();
        let mut missing_paths: BTreeMap<ObjectId, Vec<PathBuf>> = BTreeMap::new();
        // Files no connected disk holds: their other links cannot be made.
        let mut lacking: HashSet<usize> = HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            let v = &e.version;
            if v.kind == Kind::File && e.state == State::Done {
                self.already_done += 1;
            }
            if !matches!(e.state, State::ToDo | State::Replace) {
                continue;
            }
            match v.kind {
                Kind::Dir => self.dirs += 1,
                Kind::Symlink if unix => self.symlinks += 1,
                Kind::Symlink => self.not_held.symlinks += 1,
                Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                    let device = v.kind != Kind::Fifo;
                    if device && !trusted {
                        self.not_held.withheld += 1;
                    } else if device && !root {
                        self.not_held.devices_not_root += 1;
                    } else if !unix {
                        self.not_held.special += 1;
                    } else {
                        self.special += 1;
                    }
                }
                Kind::File => {
                    let hash = v.hash.unwrap_or_else(|| ObjectId::of(b""));
                    let lost =
                        |missing: &mut BTreeMap<ObjectId, (u64, u64)>,
                         paths: &mut BTreeMap<ObjectId, Vec<PathBuf>>| {
                            missing.entry(hash).or_insert((v.size, 0)).1 += 1;
                            paths.entry(hash).or_default().push(v.path.clone());
                        };
                    if let Some(first) = followers.get(&i) {
                        if lacking.contains(first) {
                            lost(&mut missing, &mut missing_paths);
                            continue;
                        }
                        if unix {
                            self.links += 1;
                        } else {
                            self.not_held.links_copied += 1;
                        }
                    } else {
                        let empty = v.size == 0 && hash == ObjectId::of(b"");
                        let sources: Vec<Option<usize>> = if empty {
                            vec![None]
                        } else {
                            self.run
                                .holders
                                .connected
                                .iter()
                                .filter(|(_, set)| set.contains(&hash))
                                .map(|(d, _)| Some(*d))
                                .collect()
                        };
                        let Some(first) = sources.first() else {
                            lacking.insert(i);
                            lost(&mut missing, &mut missing_paths);
                            continue;
                        };
                        if let Some(d) = first {
                            let n = per_disk.entry(*d).or_default();
                            n.0 += 1;
                            n.1 += v.size;
                        }
                        self.run.sources.insert(i, sources);
                    }
                    self.files += 1;
                    self.bytes += v.size;
                    if !unix {
                        self.not_held.holes += u64::from(v.attrs.sparse);
                        self.not_held.xattrs += u64::from(v.attrs.xattrs.is_some());
                    }
                }
            }
        }
        self.read_from = per_disk
            .into_iter()
            .filter_map(|(d, (files, bytes))| {
                let disk = disks.get(d)?;
                Some(DiskNeed {
                    disk_id: disk.id(),
                    label: disk.label().to_string(),
                    files,
                    bytes,
                })
            })
            .collect();
        let (plug, uncovered) = plan_next(catalog, &self.run.holders.others, &missing)?;
        self.plug_next = plug;
        for h in &uncovered {
            self.unavailable
                .extend(missing_paths.get(h).cloned().unwrap_or_default());
        }
        self.missing_files = missing.values().map(|(_, n)| n).sum();
        self.missing_bytes = missing.values().map(|(s, n)| s * n).sum();
        Ok(())
    }

    /// True when the run would put everything asked for at the destination.
    pub fn complete(&self) -> bool {
        self.missing_files == 0
    }

    /// How many existing paths the policy does each thing with: (kept,
    /// replaced, kept beside).
    pub fn existing_counts(&self) -> (u64, u64, u64) {
        let mut n = (0, 0, 0);
        for a in &self.at_dest {
            match a.then {
                Then::Kept => n.0 += 1,
                Then::Replaced => n.1 += 1,
                Then::Beside(_) => n.2 += 1,
            }
        }
        n
    }

    /// The plan in one line, in the words the CLI and the window show:
    /// `Restores 12 files (3.4 MB) and 2 folders into /tmp/x from disk
    /// "Blue"; 3 exist and will be kept as both`.
    pub fn summary(&self) -> String {
        use crate::human::{bytes, count};
        let mut what = vec![format!(
            "{} ({})",
            count(self.files, "file"),
            bytes(self.bytes)
        )];
        if self.dirs > 0 {
            what.push(count(self.dirs, "folder"));
        }
        if self.symlinks > 0 {
            what.push(count(self.symlinks, "symlink"));
        }
        if self.special > 0 {
            what.push(count(self.special, "FIFO or device node"));
        }
        let what = match what.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        let nothing = self.files + self.dirs + self.symlinks + self.special == 0;
        let mut s = if nothing {
            format!("Nothing to write into {}", crate::human::path(&self.dest))
        } else {
            format!("Restores {what} into {}", crate::human::path(&self.dest))
        };
        if !self.read_from.is_empty() {
            let labels: Vec<String> = self
                .read_from
                .iter()
                .map(|d| format!("\"{}\"", d.label))
                .collect();
            s.push_str(&format!(
                " from {} {}",
                if labels.len() == 1 { "disk" } else { "disks" },
                labels.join(" and ")
            ));
        }
        let (kept, replaced, beside) = self.existing_counts();
        for (n, then) in [
            (kept, "left as they are"),
            (replaced, "replaced"),
            (beside, "kept as both"),
        ] {
            if n > 0 {
                let verb = if n == 1 { "exists" } else { "exist" };
                let then = if n == 1 {
                    then.replace("they are", "it is")
                } else {
                    then.to_string()
                };
                s.push_str(&format!("; {n} {verb} and will be {then}"));
            }
        }
        if self.already_done > 0 {
            s.push_str(&format!(
                "; {} already there",
                count(self.already_done, "file")
            ));
        }
        if !self.complete() {
            let lacking = format!(
                "{} ({})",
                count(self.missing_files, "file"),
                bytes(self.missing_bytes)
            );
            match self.plug_next.first() {
                None => s.push_str(&format!("; {lacking} on no known disk")),
                Some(n) => {
                    s.push_str(&format!("; {lacking} need disk \"{}\"", n.label));
                    if self.plug_next.len() > 1 {
                        s.push_str(&format!(" and {} more", self.plug_next.len() - 1));
                    }
                    if !self.unavailable.is_empty() {
                        s.push_str(&format!(
                            " ({} on no known disk)",
                            count(self.unavailable.len() as u64, "file")
                        ));
                    }
                }
            }
        }
        s
    }
}
