//! Looking after the disks themselves: renaming one, changing its quota,
//! switching its sync on plug-in, and forgetting one that is lost (with
//! what that costs). Written once for the command line and the window.
//!
//! A disk's name and quota live in its identity file, so changing them
//! needs the disk plugged in: it is claimed (this backup set, its lock)
//! like for any write, and the catalog is told after the disk. Auto-sync
//! is this computer's setting and lives in the catalog alone. Only a disk
//! that is not connected can be forgotten: a connected one would be
//! registered again at once.
//!
//! Invariant: nothing here writes a disk of another backup set or a disk
//! another Coffer process is writing; the identity file is rewritten only
//! with an identity that reads back.

use std::path::PathBuf;

use super::Error;
use crate::catalog::{Catalog, DiskRow};
use crate::config::Profile;
use crate::disk::{self, Disk};
use crate::redundancy::ForgetCost;
use crate::volumes::{self, MountSource};

/// A disk the catalog knows, and where it is mounted when connected.
#[derive(Clone, Debug)]
pub struct Known {
    pub row: DiskRow,
    pub root: Option<PathBuf>,
}

/// The known disk `name` names: its label (in any case), the path it is
/// mounted at, or its id.
pub fn find(catalog: &Catalog, source: &MountSource, name: &str) -> crate::Result<Known> {
    let rows = catalog.disks()?;
    let present = volumes::present(source, &rows);
    let root_of = |id: uuid::Uuid| {
        present
            .iter()
            .find(|v| v.identity.as_ref().is_ok_and(|i| i.disk_id == id))
            .map(|v| v.root.clone())
    };
    let by_path = present.iter().find_map(|v| match &v.identity {
        Ok(i) if v.root == std::path::Path::new(name) => Some(i.disk_id),
        _ => None,
    });
    let found = rows.iter().find(|r| {
        Some(r.id) == by_path || r.label.eq_ignore_ascii_case(name) || r.id.to_string() == name
    });
    match found {
        Some(row) => Ok(Known {
            root: root_of(row.id),
            row: row.clone(),
        }),
        None => Err(Error::UnknownDisk {
            name: name.to_string(),
            known: rows.iter().map(|r| r.label.clone()).collect(),
        }
        .into()),
    }
}

/// The known disk, connected: opened and claimed for this backup set, to
/// write its identity.
fn claimed(known: &Known, profile: &Profile, what: &'static str) -> crate::Result<Disk> {
    let Some(root) = &known.root else {
        return Err(Error::NotConnected {
            label: known.row.label.clone(),
            what,
        }
        .into());
    };
    let disk = Disk::open(root, crate::disk::io::real())?;
    disk.claim(profile.set_id)?;
    Ok(disk)
}

/// Where the known disk is mounted, once it is sure no Coffer job writes
/// it: its lock is taken and let go again (a job of another process holds
/// it for as long as it writes). For ejecting.
pub fn idle_root(known: &Known, profile: &Profile) -> crate::Result<PathBuf> {
    let Some(root) = &known.root else {
        return Err(Error::NotConnected {
            label: known.row.label.clone(),
            what: "ejected",
        }
        .into());
    };
    let disk = Disk::open(root, crate::disk::io::real())?;
    disk.claim(profile.set_id)?;
    disk.release();
    Ok(root.clone())
}

/// Gives the disk `name` a new label, on the disk and in the catalog.
pub fn rename(
    catalog: &Catalog,
    profile: &Profile,
    source: &MountSource,
    name: &str,
    label: &str,
) -> crate::Result<DiskRow> {
    let known = find(catalog, source, name)?;
    let label = label.trim();
    if label.is_empty() || label.len() > disk::MAX_LABEL || label.chars().any(char::is_control) {
        return Err(Error::BadLabel {
            max: disk::MAX_LABEL,
        }
        .into());
    }
    let mut disk = claimed(&known, profile, "renamed")?;
    disk.identity.label = label.to_string();
    disk.write_identity()?;
    disk.release();
    Ok(catalog.register(&disk, None)?)
}

/// Sets (or with `None` removes) the most space Coffer may use on the disk
/// `name`, on the disk and in the catalog.
pub fn set_quota(
    catalog: &Catalog,
    profile: &Profile,
    source: &MountSource,
    name: &str,
    quota: Option<u64>,
) -> crate::Result<DiskRow> {
    let known = find(catalog, source, name)?;
    let mut disk = claimed(&known, profile, "given a new quota")?;
    disk.identity.quota = quota;
    disk.write_identity()?;
    disk.release();
    Ok(catalog.register(&disk, None)?)
}

/// Switches syncing the disk `name` as soon as it is plugged in.
pub fn set_auto_sync(
    catalog: &Catalog,
    source: &MountSource,
    name: &str,
    on: bool,
) -> crate::Result<DiskRow> {
    let mut row = find(catalog, source, name)?.row;
    row.auto_sync = on;
    catalog.upsert_disk(&row)?;
    Ok(row)
}

/// What forgetting the disk `name` would cost, and the disk.
pub fn forget_cost(
    catalog: &Catalog,
    profile: &Profile,
    source: &MountSource,
    name: &str,
) -> crate::Result<(Known, ForgetCost)> {
    let known = find(catalog, source, name)?;
    let cost = crate::redundancy::forget_cost(catalog, profile, known.row.id)?;
    Ok((known, cost))
}

/// Forgets the disk `name` (lost for good): the catalog no longer counts
/// its copies, so the next syncs of the other disks make up for them.
/// Refused while it is connected.
pub fn forget(
    catalog: &Catalog,
    profile: &Profile,
    source: &MountSource,
    name: &str,
) -> crate::Result<(DiskRow, ForgetCost)> {
    let (known, cost) = forget_cost(catalog, profile, source, name)?;
    if known.root.is_some() {
        return Err(Error::Connected {
            label: known.row.label,
        }
        .into());
    }
    catalog.forget_disk(known.row.id)?;
    Ok((known.row, cost))
}

/// What forgetting costs, in words: "12 files (3.4 MB) would have no copy
/// left; 40 files (1.2 GB) would have fewer copies than wanted; 3 older
/// versions (20 MB) kept only there would be gone", or that nothing would.
pub fn cost_words(cost: &ForgetCost) -> String {
    use crate::human::{bytes, count};
    let mut parts = Vec::new();
    if cost.only_copy.files > 0 {
        parts.push(format!(
            "{} ({}) would have no copy left",
            count(cost.only_copy.files, "file"),
            bytes(cost.only_copy.bytes)
        ));
    }
    if cost.fewer_than_wanted.files > 0 {
        parts.push(format!(
            "{} ({}) would have fewer copies than wanted until the next syncs",
            count(cost.fewer_than_wanted.files, "file"),
            bytes(cost.fewer_than_wanted.bytes)
        ));
    }
    if cost.old_versions.files > 0 {
        parts.push(format!(
            "{} ({}) kept only there could no longer be restored",
            count(cost.old_versions.files, "older version"),
            bytes(cost.old_versions.bytes)
        ));
    }
    if parts.is_empty() {
        "every file keeps all its wanted copies on the other disks".into()
    } else {
        parts.join("; ")
    }
}
