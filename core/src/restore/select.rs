//! Selection: which catalog, which snapshot, which versions of it, and
//! where each goes under the destination.
//!
//! Invariant: every entry's destination path is relative and made of plain
//! names, so it cannot lead outside the destination; a catalog read from a
//! disk is a private copy, opened read-only.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::names::check_rel;
use super::{At, Error, Options};
use crate::catalog::{Catalog, Snapshot, Version};
use crate::disk::Disk;

/// One thing to restore, with where it goes (relative to the destination).
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) version: Version,
    pub(super) rel: PathBuf,
    pub(super) state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    ToDo,
    /// Already there with the right content.
    Done,
    Skipped,
    /// Overwrite an existing regular file.
    Replace,
}

/// The snapshot `at` designates.
pub fn resolve_snapshot(catalog: &Catalog, at: At) -> crate::Result<Snapshot> {
    Ok(match at {
        At::Latest => catalog.latest_snapshot()?.ok_or(Error::NoSnapshot)?,
        At::Snapshot(id) => catalog.snapshot(id)?,
        At::Time(t) => catalog.snapshot_at(t)?.ok_or_else(|| Error::NoSnapshotAt {
            when: crate::human::time(t),
        })?,
    })
}

/// True when `path` is `prefix` or lies under it (component-wise).
pub fn is_under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}

/// The versions of snapshot `id` under `prefixes` (all when empty), sorted by path.
pub fn select(catalog: &Catalog, id: i64, prefixes: &[PathBuf]) -> crate::Result<Vec<Version>> {
    let mut v: Vec<Version> = catalog
        .versions_in(id)?
        .into_iter()
        .filter(|v| prefixes.is_empty() || prefixes.iter().any(|p| is_under(&v.path, p)))
        .collect();
    v.sort_by(|a, b| {
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
    Ok(v)
}

/// Copies the newest valid catalog slot of `disk` to a private temp file
/// (through the disk's confined handle, checked against its sidecar on the
/// same read) and opens it read-only. The workstation catalog is never
/// involved. Errors name the slot on the disk, not the private copy; what
/// was wrong with the other slot, if anything, is in the third value.
pub fn open_disk_catalog(disk: &Disk) -> crate::Result<(Catalog, tempfile::TempDir, Vec<String>)> {
    let tmp = tempfile::Builder::new()
        .prefix("coffer-restore-")
        .tempdir()
        .map_err(|source| Error::CopyCatalog {
            path: disk.root().to_path_buf(),
            source,
        })?;
    let copy = tmp.path().join("catalog.sqlite");
    // A slot whose checksum holds but that is no catalog this Coffer reads
    // (foreign, newer, damaged inside) is passed over for the other one.
    let copied = disk.copy_catalog_checked(&copy, |p| {
        let cat = Catalog::open_copy(p).map_err(|e| reason(&e))?;
        cat.snapshots().map(|_| ()).map_err(|e| reason(&e))
    })?;
    let slot = copied.path.clone();
    let named = |e: crate::catalog::Error| match e {
        crate::catalog::Error::Foreign { .. } => {
            crate::catalog::Error::Foreign { path: slot.clone() }
        }
        crate::catalog::Error::TooNew { found, known, .. } => crate::catalog::Error::TooNew {
            path: slot.clone(),
            found,
            known,
        },
        crate::catalog::Error::Sqlite { source, .. } => crate::catalog::Error::Sqlite {
            path: slot.clone(),
            source,
        },
        crate::catalog::Error::BadValue { what, value, .. } => crate::catalog::Error::BadValue {
            path: slot.clone(),
            what,
            value,
        },
        other => other,
    };
    let cat = Catalog::open_copy(&copy).map_err(named)?;
    // A catalog that opens but cannot be queried is damaged too.
    cat.snapshots().map_err(named)?;
    Ok((cat, tmp, copied.problems))
}

/// An error's words without the private copy's path (the caller names the
/// slot on the disk).
fn reason(e: &crate::catalog::Error) -> String {
    use crate::catalog::Error as E;
    match e {
        E::Foreign { .. } => "not a Coffer catalog".into(),
        E::TooNew { found, known, .. } => {
            format!("written by a newer Coffer (schema {found}, this one knows {known})")
        }
        E::Sqlite { source, .. } => format!("damaged ({source})"),
        other => other.to_string(),
    }
}

/// Where each version goes: the destination root, and each version's path
/// under it. Into a folder, paths keep what lies below the deepest folder
/// that holds every selected path; to the original place, what lies below
/// the basepath (anything outside it is refused).
pub(super) fn place(
    versions: Vec<Version>,
    opts: &Options,
) -> crate::Result<(PathBuf, Vec<Entry>)> {
    let (dest_root, strip) = match &opts.dest {
        None => {
            let base = opts.within.clone().unwrap_or_else(|| PathBuf::from("/"));
            (base.clone(), base)
        }
        Some(d) => {
            let parents: Vec<PathBuf> = if opts.paths.is_empty() {
                versions.iter().map(|v| v.path.clone()).collect()
            } else {
                opts.paths.clone()
            };
            let mut common: Option<PathBuf> = None;
            for p in &parents {
                let par = p.parent().unwrap_or(Path::new("/")).to_path_buf();
                common = Some(match common {
                    None => par,
                    Some(c) => {
                        let mut out = PathBuf::new();
                        for (a, b) in c.components().zip(par.components()) {
                            if a != b {
                                break;
                            }
                            out.push(a);
                        }
                        out
                    }
                });
            }
            (d.clone(), common.unwrap_or_else(|| PathBuf::from("/")))
        }
    };
    let mut entries = Vec::new();
    for v in versions {
        let rel = match v.path.strip_prefix(&strip) {
            Ok(r) => r.to_path_buf(),
            Err(_) => {
                return Err(Error::Unsafe {
                    path: v.path.clone(),
                    reason: if opts.dest.is_none() {
                        format!(
                            "it lies outside {}, the storage basepath; restore it into a folder with --to",
                            strip.display()
                        )
                    } else {
                        format!("it does not lie under {}", strip.display())
                    },
                }
                .into());
            }
        };
        check_rel(&v.path, &rel)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        entries.push(Entry {
            version: v,
            rel,
            state: State::ToDo,
        });
    }
    Ok((dest_root, entries))
}
