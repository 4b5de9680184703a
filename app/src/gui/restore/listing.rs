//! What the Restore tab lists: the catalog it reads (this computer's, or a
//! connected disk's own copy), its snapshots, and one snapshot's entries as
//! a tree; a file's versions with the disks holding each. All of it is read
//! on `core::task` threads; the tab only draws what came back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_core::catalog::{Snapshot, Version};
use coffer_core::disk::Passphrases;
use coffer_core::restore::{self, Held};
use coffer_core::{Catalog, Disk, disk::io};

/// Which catalog the tab reads and restores from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// This computer's catalog.
    #[default]
    Workstation,
    /// The newest valid catalog copy on a connected disk: what a new
    /// machine, or one whose catalog is lost, restores from.
    Disk { root: PathBuf, label: String },
}

/// The catalog file a listing was read from, for the tasks that follow it
/// (a file's versions, the restore). A disk's copy lives in a private temp
/// folder that is removed when the last listing holding it is dropped.
#[derive(Clone)]
pub enum CatalogFile {
    Workstation(PathBuf),
    Copy {
        path: PathBuf,
        /// The disk it was copied from.
        root: PathBuf,
        _dir: Arc<tempfile::TempDir>,
    },
}

impl CatalogFile {
    pub fn open(&self) -> coffer_core::Result<Catalog> {
        Ok(match self {
            CatalogFile::Workstation(p) => Catalog::open(p)?,
            CatalogFile::Copy { path, .. } => Catalog::open_copy(path)?,
        })
    }
}

/// What the listing task read from the catalog.
#[derive(Default)]
pub struct Listing {
    /// Where it was read from; `None` while nothing was (no catalog yet).
    pub catalog: Option<CatalogFile>,
    pub snapshots: Vec<Snapshot>,
    /// The snapshot shown (the newest when none was asked for).
    pub snapshot: Option<i64>,
    /// Its entries, sorted by path.
    pub entries: Vec<Version>,
    /// Indices of each folder's children, by the folder's path.
    pub children: HashMap<PathBuf, Vec<usize>>,
    /// Entries whose parent is not in the snapshot (the sources).
    pub roots: Vec<usize>,
    /// Each entry's path in lower case, made once for the search box
    /// (which filters on every frame).
    pub lower: Vec<String>,
}

impl Listing {
    /// Indices of the entries whose path contains `query` (lower case).
    pub fn search<'a>(&'a self, query: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.lower
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.contains(query))
            .map(|(i, _)| i)
    }
}

/// Reads the snapshots and the entries of `want` (the newest when `None`)
/// from the catalog `origin` names.
pub fn load(
    origin: &Origin,
    workstation: &Path,
    want: Option<i64>,
    passphrases: &Passphrases,
) -> coffer_core::Result<Listing> {
    match origin {
        Origin::Workstation => {
            if !workstation.exists() {
                return Ok(Listing::default());
            }
            let file = CatalogFile::Workstation(workstation.to_path_buf());
            listing(&file.open()?, file, want)
        }
        Origin::Disk { root, .. } => {
            let disk = Disk::open(root, io::real())?;
            // An encrypted disk's copy is sealed.
            disk.unlock_with(&*passphrases.0)?;
            // A damaged slot is no news here: the other one was read.
            let (cat, dir, _problems) = restore::open_disk_catalog(&disk)?;
            let file = CatalogFile::Copy {
                path: cat.path().to_path_buf(),
                root: root.clone(),
                _dir: Arc::new(dir),
            };
            listing(&cat, file, want)
        }
    }
}

fn listing(cat: &Catalog, file: CatalogFile, want: Option<i64>) -> coffer_core::Result<Listing> {
    let mut snapshots = cat.snapshots()?;
    snapshots.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    let snapshot = want
        .filter(|w| snapshots.iter().any(|s| s.id == *w))
        .or_else(|| snapshots.first().map(|s| s.id));
    let Some(id) = snapshot else {
        return Ok(Listing {
            catalog: Some(file),
            snapshots,
            ..Listing::default()
        });
    };
    let entries = restore::select(cat, id, &[])?;
    let index: HashMap<&Path, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, v)| (v.path.as_path(), i))
        .collect();
    let mut children: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, v) in entries.iter().enumerate() {
        match v.path.parent().filter(|p| index.contains_key(p)) {
            Some(p) => children.entry(p.to_path_buf()).or_default().push(i),
            None => roots.push(i),
        }
    }
    let lower = lower_paths(&entries);
    Ok(Listing {
        catalog: Some(file),
        snapshots,
        snapshot,
        entries,
        children,
        roots,
        lower,
    })
}

/// Each entry's path in lower case, for [`Listing::search`].
fn lower_paths(entries: &[Version]) -> Vec<String> {
    entries
        .iter()
        .map(|v| v.path.to_string_lossy().to_lowercase())
        .collect()
}

/// Every version of `path` with the disks holding each, newest first.
pub fn versions_of(catalog: &CatalogFile, path: &Path) -> coffer_core::Result<Vec<Held>> {
    let mut out = restore::versions_held(&catalog.open()?, path)?;
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::catalog::Kind as EntryKind;

    #[test]
    fn search_matches_any_part_of_the_path_in_any_case() {
        let version = |path: &str| Version {
            id: 0,
            path: PathBuf::from(path),
            kind: EntryKind::File,
            size: 0,
            mtime_ns: 0,
            inode: 0,
            mode: 0o644,
            target: None,
            hash: None,
            first_snapshot: 1,
            last_snapshot: 1,
            attrs: Default::default(),
        };
        let entries = vec![
            version("/home/me/Photos"),
            version("/home/me/Photos/IMG_1.JPG"),
            version("/home/me/Letters/img.txt"),
        ];
        let lower = lower_paths(&entries);
        let l = Listing {
            entries,
            lower,
            ..Listing::default()
        };
        assert_eq!(l.search("img").collect::<Vec<_>>(), [1, 2]);
        assert_eq!(l.search("photos").collect::<Vec<_>>(), [0, 1]);
        assert_eq!(l.search("letters/img").collect::<Vec<_>>(), [2]);
        assert_eq!(l.search("nothing").count(), 0);
    }
}
