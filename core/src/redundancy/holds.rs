//! What a source holds beyond plain files and folders (hard links,
//! extended attributes and ACLs, sparse files, FIFOs and device nodes,
//! several owners, symlinks, private or executable modes, names FAT cannot
//! hold or that differ only in case), and what a backup disk's file system
//! cannot hold of it: what `coffer status` and the window's disk cards say
//! about each disk. The disk itself keeps all of it (its objects are named
//! by hash, the rest is in its catalog copy); a restore onto such a file
//! system is what loses it.
//!
//! Invariant: computed from the catalog alone; a disk whose file system is
//! not known yet (not seen since this was recorded) is said nothing about.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::catalog::{Catalog, Kind, Version};
use crate::config::Profile;

/// One source's things beyond plain content, in its latest snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Holdings {
    pub path: PathBuf,
    /// Files with more than one link (each link counts).
    pub hard_links: u64,
    /// Files and folders with extended attributes (ACLs included).
    pub xattr_files: u64,
    /// Of those, with an access or default ACL.
    pub acl_files: u64,
    pub sparse_files: u64,
    /// The logical size of the sparse files.
    pub sparse_bytes: u64,
    /// FIFOs and device nodes.
    pub special: u64,
    /// Distinct owners of its files and folders.
    pub owners: u64,
    pub symlinks: u64,
    /// Files and folders whose mode FAT32 and exFAT cannot give back:
    /// executable files, and anything not readable by other accounts.
    pub modes: u64,
    /// Names FAT32 and exFAT cannot hold (`:`, `?`, `\`, a trailing dot
    /// or space, `CON`, …).
    pub fat_names: u64,
    /// Names that differ only in case from another in the same folder.
    pub case_clashes: u64,
}

impl Holdings {
    /// What it holds, in words ("12 hard links and 40 files with
    /// extended attributes"); `None` when nothing beyond plain content.
    pub fn described(&self) -> Option<String> {
        let count = crate::human::count;
        let mut parts = Vec::new();
        if self.hard_links > 0 {
            parts.push(count(self.hard_links, "hard link"));
        }
        if self.xattr_files > 0 {
            let acl = if self.acl_files > 0 {
                format!(" ({} with ACLs)", self.acl_files)
            } else {
                String::new()
            };
            parts.push(format!(
                "{} with extended attributes{acl}",
                count(self.xattr_files, "file")
            ));
        }
        if self.sparse_files > 0 {
            parts.push(count(self.sparse_files, "sparse file"));
        }
        if self.special > 0 {
            parts.push(count(self.special, "FIFO or device node"));
        }
        if self.owners > 1 {
            parts.push(format!("files of {} owners", self.owners));
        }
        join(&parts, "and")
    }

    /// The names FAT32 and exFAT cannot take as they are, in words.
    fn names(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.fat_names > 0 {
            parts.push(format!(
                "{} FAT cannot hold",
                crate::human::count(self.fat_names, "name")
            ));
        }
        if self.case_clashes > 0 {
            parts.push(format!(
                "{} differing only in case",
                crate::human::count(self.case_clashes, "name")
            ));
        }
        join(&parts, "and")
    }

    /// What a disk on `fs` (`FAT32`, `exFAT`) cannot hold of it, in one
    /// sentence with the disk's `label`; `None` when it holds everything.
    pub fn on_disk(&self, label: &str, fs: &str) -> Option<String> {
        if !matches!(fs, "FAT32" | "exFAT") {
            return None;
        }
        let mut cannot = Vec::new();
        let mut what = Vec::new();
        let count = crate::human::count;
        if self.hard_links > 0 {
            cannot.push("links");
            what.push(count(self.hard_links, "hard link"));
        }
        if self.xattr_files > 0 {
            cannot.push(if self.acl_files > 0 {
                "xattrs or ACLs"
            } else {
                "xattrs"
            });
            what.push(format!(
                "{} with extended attributes",
                count(self.xattr_files, "file")
            ));
        }
        if self.special > 0 {
            cannot.push("FIFOs or device nodes");
            what.push(count(self.special, "FIFO or device node"));
        }
        if self.owners > 1 {
            cannot.push("owners");
            what.push(format!("files of {} owners", self.owners));
        }
        if self.symlinks > 0 {
            cannot.push("symlinks");
            what.push(count(self.symlinks, "symlink"));
        }
        if self.modes > 0 {
            cannot.push("Unix modes");
            let n = match self.modes {
                1 => "1 file or folder".to_string(),
                k => format!("{k} files and folders"),
            };
            what.push(format!("{n} with private or executable modes"));
        }
        let mut s = String::new();
        if let (Some(what), Some(cannot)) = (join(&what, "and"), join(&cannot, "or")) {
            s = format!(
                "{what}; {label} ({fs}) cannot hold {cannot}: the disk keeps them in its catalog copy, a restore onto {fs} loses them"
            );
        }
        if self.sparse_files > 0 {
            let take = if self.sparse_files == 1 {
                "takes its"
            } else {
                "take their"
            };
            let holes = format!(
                "{} {take} full {} on {label} ({fs}), which cannot hold holes",
                count(self.sparse_files, "sparse file"),
                crate::human::bytes(self.sparse_bytes)
            );
            s = if s.is_empty() {
                holes
            } else {
                format!("{s}; {holes}")
            };
        }
        if let Some(names) = self.names() {
            let rename =
                format!("{names}: a restore onto {fs} must rename them (--rename-collisions)");
            s = if s.is_empty() {
                rename
            } else {
                format!("{s}; {rename}")
            };
        }
        (!s.is_empty()).then_some(s)
    }
}

fn join<S: AsRef<str>>(parts: &[S], word: &str) -> Option<String> {
    match parts {
        [] => None,
        [one] => Some(one.as_ref().to_string()),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            Some(format!("{} {word} {}", rest.join(", "), last.as_ref()))
        }
    }
}

/// Tallies `versions` (one snapshot's) under `root`.
pub fn tally(root: &std::path::Path, versions: &[Version], acl_sets: &HashSet<i64>) -> Holdings {
    let mut h = Holdings {
        path: root.to_path_buf(),
        ..Holdings::default()
    };
    let mut owners = HashSet::new();
    let mut folded: HashMap<String, u64> = HashMap::new();
    for v in versions.iter().filter(|v| v.path.starts_with(root)) {
        h.symlinks += u64::from(v.kind == Kind::Symlink);
        let private = v.mode & 0o004 == 0 && v.kind != Kind::Symlink;
        let exec = v.kind == Kind::File && v.mode & 0o111 != 0;
        h.modes += u64::from(private || exec);
        // The source itself is named by the user; only what lies in it is
        // restored under its own name.
        if v.path != root {
            let name = v.path.file_name().unwrap_or_default();
            h.fat_names += u64::from(crate::restore::names::fat_invalid(name).is_some());
            let key = String::from_utf8_lossy(v.path.as_os_str().as_encoded_bytes()).to_lowercase();
            *folded.entry(key).or_default() += 1;
        }
        if let Some(u) = v.attrs.uid {
            owners.insert(u);
        }
        if v.kind == Kind::File && v.attrs.nlink > 1 {
            h.hard_links += 1;
        }
        if let Some(id) = v.attrs.xattrs {
            h.xattr_files += 1;
            h.acl_files += u64::from(acl_sets.contains(&id));
        }
        if v.kind == Kind::File && v.attrs.sparse {
            h.sparse_files += 1;
            h.sparse_bytes += v.size;
        }
        h.special += u64::from(v.kind.is_special());
    }
    h.owners = owners.len() as u64;
    h.case_clashes = folded.values().filter(|n| **n > 1).sum();
    h
}

/// Each source's holdings in the latest snapshot.
pub fn holdings(catalog: &Catalog, profile: &Profile) -> crate::Result<Vec<Holdings>> {
    let Some(latest) = catalog.latest_snapshot()? else {
        return Ok(Vec::new());
    };
    let versions = catalog.versions_in(latest.id)?;
    let acl = catalog.xattr_sets_with_acl()?;
    Ok(profile
        .sources
        .iter()
        .map(|s| tally(&s.path, &versions, &acl))
        .collect())
}

/// What one disk cannot hold of one source.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limit {
    pub disk_id: uuid::Uuid,
    pub disk: String,
    pub fs: String,
    pub source: PathBuf,
    pub message: String,
}

/// For every disk whose file system is known, what it cannot hold of each
/// source.
pub fn limits(catalog: &Catalog, holdings: &[Holdings]) -> crate::Result<Vec<Limit>> {
    let mut out = Vec::new();
    for d in catalog.disks()? {
        let Some(fs) = catalog.disk_fs(d.id)? else {
            continue;
        };
        for h in holdings {
            if let Some(message) = h.on_disk(&d.label, &fs) {
                out.push(Limit {
                    disk_id: d.id,
                    disk: d.label.clone(),
                    fs: fs.clone(),
                    source: h.path.clone(),
                    message,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentences_name_what_a_fat_disk_loses() {
        let h = Holdings {
            path: "/h".into(),
            hard_links: 12,
            xattr_files: 40,
            ..Holdings::default()
        };
        assert_eq!(
            h.described().unwrap(),
            "12 hard links and 40 files with extended attributes"
        );
        assert_eq!(
            h.on_disk("Blue", "FAT32").unwrap(),
            "12 hard links and 40 files with extended attributes; Blue (FAT32) cannot hold links or xattrs: the disk keeps them in its catalog copy, a restore onto FAT32 loses them"
        );
        assert_eq!(h.on_disk("Red", "other"), None);
        let s = Holdings {
            sparse_files: 1,
            sparse_bytes: 1 << 30,
            ..Holdings::default()
        };
        assert_eq!(
            s.on_disk("Blue", "exFAT").unwrap(),
            "1 sparse file takes its full 1.1 GB on Blue (exFAT), which cannot hold holes"
        );
        assert_eq!(Holdings::default().described(), None);
        assert_eq!(Holdings::default().on_disk("Blue", "FAT32"), None);
        let n = Holdings {
            symlinks: 2,
            modes: 3,
            fat_names: 1,
            case_clashes: 2,
            ..Holdings::default()
        };
        assert_eq!(
            n.on_disk("Blue", "FAT32").unwrap(),
            "2 symlinks and 3 files and folders with private or executable modes; Blue (FAT32) cannot hold symlinks or Unix modes: the disk keeps them in its catalog copy, a restore onto FAT32 loses them; 1 name FAT cannot hold and 2 names differing only in case: a restore onto FAT32 must rename them (--rename-collisions)"
        );
        assert_eq!(n.on_disk("Red", "ext4"), None);
    }

    fn v(path: &str, kind: Kind, mode: u32) -> Version {
        Version {
            id: 0,
            path: path.into(),
            kind,
            size: 0,
            mtime_ns: 0,
            inode: 0,
            mode,
            target: None,
            hash: None,
            first_snapshot: 1,
            last_snapshot: 1,
            attrs: crate::catalog::Attrs::default(),
        }
    }

    #[test]
    fn a_tally_counts_symlinks_modes_and_names_fat_cannot_take() {
        let versions = [
            v("/h", Kind::Dir, 0o755),
            v("/h/ok.txt", Kind::File, 0o644),
            v("/h/run.sh", Kind::File, 0o755),
            v("/h/secret", Kind::File, 0o600),
            v("/h/.ssh", Kind::Dir, 0o700),
            v("/h/link", Kind::Symlink, 0o777),
            v("/h/what?.txt", Kind::File, 0o644),
            v("/h/CON.txt", Kind::File, 0o644),
            v("/h/Notes", Kind::File, 0o644),
            v("/h/notes", Kind::File, 0o644),
            v("/elsewhere/a:b", Kind::File, 0o600),
        ];
        let h = tally(std::path::Path::new("/h"), &versions, &HashSet::new());
        assert_eq!(
            (h.symlinks, h.modes, h.fat_names, h.case_clashes),
            (1, 3, 2, 2),
            "{h:?}"
        );
    }
}
