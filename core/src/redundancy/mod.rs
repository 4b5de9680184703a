//! How many copies each file has, and what losing one disk would cost.
//!
//! These are the numbers behind `coffer status` and the window's redundancy
//! map: per source folder, files and bytes by number of copies; per disk,
//! the files whose only copy it holds; a one-line headline; and how far back
//! the history on the disks still reaches; and what each source holds
//! beyond plain files that a disk's file system cannot hold (`holds`).
//!
//! Invariant: computed from the catalog alone (disks need not be connected);
//! no I/O beyond catalog queries.

pub mod holds;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, DiskRow, Kind};
use crate::config::Profile;
use crate::object::ObjectId;

/// One current file and its copies.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileCopies {
    pub path: PathBuf,
    pub size: u64,
    pub hash: ObjectId,
    pub wanted: u32,
    pub holders: Vec<uuid::Uuid>,
    pub verified: u32,
}

impl FileCopies {
    pub fn copies(&self) -> u32 {
        self.holders.len() as u32
    }
}

/// Files and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, size: u64) {
        self.files += 1;
        self.bytes += size;
    }

    /// One more file; its bytes only when its content was not counted yet.
    fn add_content(&mut self, size: u64, first: bool) {
        self.files += 1;
        if first {
            self.bytes += size;
        }
    }
}

/// One source folder (or any folder of the map).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FolderStatus {
    pub path: PathBuf,
    pub wanted: u32,
    pub total: Tally,
    /// By number of copies: 0, 1, 2, 3 or more.
    pub by_copies: [Tally; 4],
    /// Files below their wanted copies.
    pub at_risk: Tally,
}

impl FolderStatus {
    fn add(&mut self, f: &FileCopies) {
        self.total.add(f.size);
        self.by_copies[(f.copies() as usize).min(3)].add(f.size);
        if f.copies() < f.wanted {
            self.at_risk.add(f.size);
        }
    }
}

/// What losing one disk would cost.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DiskLoss {
    pub disk: DiskRow,
    /// Files whose only copy is on this disk.
    pub lost: Tally,
    /// Some of those paths, largest first.
    pub examples: Vec<PathBuf>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    pub snapshot: Option<crate::catalog::Snapshot>,
    pub sources: Vec<FolderStatus>,
    pub disks: Vec<DiskLoss>,
    pub headline: String,
    /// The oldest snapshot every file of which still has a copy on some disk.
    pub history_from: Option<crate::catalog::Snapshot>,
    pub no_copy: Tally,
    /// What each source holds beyond plain content.
    pub holdings: Vec<holds::Holdings>,
    /// What a disk's file system cannot hold of a source.
    pub limits: Vec<holds::Limit>,
}

/// Every current file with its copies.
pub fn current_files(catalog: &Catalog, profile: &Profile) -> crate::Result<Vec<FileCopies>> {
    let Some(latest) = catalog.latest_snapshot()? else {
        return Ok(Vec::new());
    };
    let mut holders: HashMap<ObjectId, (Vec<uuid::Uuid>, u32)> = HashMap::new();
    for c in catalog.copies()? {
        let e = holders.entry(c.hash).or_default();
        e.0.push(c.disk_id);
        e.1 += u32::from(c.verified_at.is_some());
    }
    Ok(catalog
        .versions_in(latest.id)?
        .into_iter()
        .filter(|v| v.kind == Kind::File)
        .filter_map(|v| {
            let hash = v.hash?;
            let (h, verified) = holders.get(&hash).cloned().unwrap_or_default();
            Some(FileCopies {
                wanted: profile.wanted_for(&v.path).0,
                path: v.path,
                size: v.size,
                hash,
                holders: h,
                verified,
            })
        })
        .collect())
}

/// Groups files under `roots` (each file counted under the first root that holds it).
pub fn folders(files: &[FileCopies], roots: &[(PathBuf, u32)]) -> Vec<FolderStatus> {
    let mut out: Vec<FolderStatus> = roots
        .iter()
        .map(|(p, w)| FolderStatus {
            path: p.clone(),
            wanted: *w,
            ..Default::default()
        })
        .collect();
    for f in files {
        if let Some(s) = out.iter_mut().find(|s| f.path.starts_with(&s.path)) {
            s.add(f);
        }
    }
    out
}

/// The immediate children of `dir` that hold files, with their tallies.
pub fn children(files: &[FileCopies], dir: &Path) -> Vec<FolderStatus> {
    let mut map: std::collections::BTreeMap<PathBuf, FolderStatus> =
        std::collections::BTreeMap::new();
    for f in files {
        let Ok(rest) = f.path.strip_prefix(dir) else {
            continue;
        };
        let Some(first) = rest.components().next() else {
            continue;
        };
        let child = dir.join(first);
        let entry = map.entry(child.clone()).or_insert_with(|| FolderStatus {
            path: child,
            wanted: f.wanted,
            ..Default::default()
        });
        entry.wanted = entry.wanted.max(f.wanted);
        entry.add(f);
    }
    map.into_values().collect()
}

/// The whole picture for `coffer status` and the window.
pub fn status(catalog: &Catalog, profile: &Profile) -> crate::Result<Status> {
    let files = current_files(catalog, profile)?;
    let roots: Vec<(PathBuf, u32)> = profile
        .sources
        .iter()
        .map(|s| (s.path.clone(), s.copies.unwrap_or(profile.copies)))
        .collect();
    let sources = folders(&files, &roots);
    let disks_rows = catalog.disks()?;
    // Bytes count each content once (two files with the same content take
    // its room once on a disk), so that what a disk's loss costs is never
    // more than the current data it holds.
    let mut loss: HashMap<uuid::Uuid, Loss> = HashMap::new();
    let mut no_copy = Tally::default();
    let mut no_copy_seen = HashSet::new();
    for f in &files {
        match f.holders.as_slice() {
            [] if f.wanted > 0 => no_copy.add_content(f.size, no_copy_seen.insert(f.hash)),
            [only] => {
                let e = loss.entry(*only).or_default();
                let first = e.2.insert(f.hash);
                e.0.add_content(f.size, first);
                e.1.push((f.size, f.path.clone()));
            }
            _ => {}
        }
    }
    let disks: Vec<DiskLoss> = disks_rows
        .into_iter()
        .map(|d| {
            let (lost, mut ex, _) = loss.remove(&d.id).unwrap_or_default();
            ex.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            DiskLoss {
                disk: d,
                lost,
                examples: ex.into_iter().take(5).map(|e| e.1).collect(),
            }
        })
        .collect();
    let snapshot = catalog.latest_snapshot()?;
    let now = crate::now();
    let headline = if snapshot.is_none() {
        "Nothing has been scanned yet: add a folder and sync".to_string()
    } else if no_copy.files > 0 {
        format!(
            "{} in {} has no copy on any disk yet",
            crate::human::bytes(no_copy.bytes),
            crate::human::count(no_copy.files, "file")
        )
    } else if let Some(worst) = disks
        .iter()
        .filter(|d| d.lost.files > 0)
        .max_by_key(|d| d.lost.bytes)
    {
        let seen = worst
            .disk
            .last_seen
            .map(|t| format!(", last seen {}", crate::human::ago(t, now)))
            .unwrap_or_default();
        format!(
            "{} has only one copy (on {}{seen})",
            crate::human::bytes(worst.lost.bytes),
            worst.disk.label
        )
    } else if files.is_empty() {
        "No files in the sources yet".to_string()
    } else {
        "Everything survives the loss of any one disk".to_string()
    };
    let history_from = history_from(catalog)?;
    let holdings = holds::holdings(catalog, profile)?;
    let limits = holds::limits(catalog, &holdings)?;
    Ok(Status {
        snapshot,
        sources,
        disks,
        headline,
        history_from,
        no_copy,
        holdings,
        limits,
    })
}

/// What one disk's loss would cost, as it is counted: the tally, the
/// files (size, path) for examples, and the contents already counted.
type Loss = (Tally, Vec<(u64, PathBuf)>, HashSet<ObjectId>);

/// What forgetting a disk (losing it for good) would cost: the current
/// files whose only copy it holds, those that would fall below their
/// wanted copies, and the old versions kept on it alone. Bytes count each
/// content once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForgetCost {
    /// Current files that would have no copy left.
    pub only_copy: Tally,
    /// Current files that would keep a copy, but fewer than wanted.
    pub fewer_than_wanted: Tally,
    /// Older versions (no longer in the sources) held by this disk alone.
    pub old_versions: Tally,
}

impl ForgetCost {
    pub fn is_free(&self) -> bool {
        self.only_copy.files == 0
            && self.fewer_than_wanted.files == 0
            && self.old_versions.files == 0
    }
}

/// What forgetting `disk` would cost (see [`ForgetCost`]).
pub fn forget_cost(
    catalog: &Catalog,
    profile: &Profile,
    disk: uuid::Uuid,
) -> crate::Result<ForgetCost> {
    let files = current_files(catalog, profile)?;
    let mut cost = ForgetCost::default();
    let (mut seen_only, mut seen_fewer) = (HashSet::new(), HashSet::new());
    let mut current = HashSet::new();
    for f in &files {
        current.insert(f.hash);
        if !f.holders.contains(&disk) {
            continue;
        }
        let left = f.copies() - 1;
        if left == 0 {
            cost.only_copy.add_content(f.size, seen_only.insert(f.hash));
        } else if left < f.wanted {
            cost.fewer_than_wanted
                .add_content(f.size, seen_fewer.insert(f.hash));
        }
    }
    let mut holders: HashMap<ObjectId, Vec<uuid::Uuid>> = HashMap::new();
    for c in catalog.copies()? {
        holders.entry(c.hash).or_default().push(c.disk_id);
    }
    for u in catalog.object_uses()? {
        if !current.contains(&u.hash) && holders.get(&u.hash).is_some_and(|h| h == &[disk]) {
            cost.old_versions.add(u.size);
        }
    }
    Ok(cost)
}

/// The oldest snapshot from which every later snapshot, too, can be
/// restored in full from the disks.
fn history_from(catalog: &Catalog) -> crate::Result<Option<crate::catalog::Snapshot>> {
    let snaps = catalog.snapshots()?;
    if snaps.is_empty() {
        return Ok(None);
    }
    let held: std::collections::HashSet<ObjectId> =
        catalog.copies()?.into_iter().map(|c| c.hash).collect();
    let mut newest_broken = 0i64;
    for v in catalog.all_versions()? {
        if let Some(h) = v.hash
            && !held.contains(&h)
        {
            newest_broken = newest_broken.max(v.last_snapshot);
        }
    }
    Ok(snaps.into_iter().find(|s| s.id > newest_broken))
}
