//! Which connected disks a job works on.
//!
//! Invariant: a disk is chosen by its mount path, by its label, or as one
//! of "every connected disk of this backup set"; listing never writes.

use std::path::{Path, PathBuf};

use super::Error;
use crate::catalog::Catalog;
use crate::disk::{Disk, Passphrases};
use crate::volumes::{self, MountSource};

/// The disks to work on: the one at the path or with the label `name`, or
/// (no name) every connected disk of the backup set `set`.
pub fn choose(
    catalog: &Catalog,
    source: &MountSource,
    name: Option<&str>,
    set: uuid::Uuid,
) -> crate::Result<Vec<PathBuf>> {
    if let Some(n) = name {
        let p = Path::new(n);
        if p.is_dir() {
            return Ok(vec![p.to_path_buf()]);
        }
    }
    let present = volumes::present(source, &catalog.disks()?);
    let mut found = Vec::new();
    let mut labels = Vec::new();
    for v in &present {
        let Ok(id) = &v.identity else { continue };
        labels.push(id.label.clone());
        let wanted = match name {
            Some(n) => id.label.eq_ignore_ascii_case(n),
            None => id.sets.contains(&set),
        };
        if wanted {
            found.push(v.root.clone());
        }
    }
    if found.is_empty() {
        return Err(match name {
            Some(n) => Error::NoSuchDisk {
                name: n.to_string(),
                connected: labels,
            },
            None => Error::NoDisk,
        }
        .into());
    }
    Ok(found)
}

/// Every connected disk of the backup set `set`, the bucket disks that
/// answer among them (after the local ones), and the bucket disks of the
/// set that did not answer, with why: what "sync every connected disk"
/// syncs from every front end. A bucket that does not answer is like a disk
/// not plugged in; no disk at all is [`Error::NoDisk`].
pub fn every_connected(
    catalog: &Catalog,
    source: &MountSource,
    set: uuid::Uuid,
) -> crate::Result<(Vec<PathBuf>, Vec<super::bucket::Away>)> {
    let (buckets, away) = super::bucket::of_set(catalog, set)?;
    let mut roots = match choose(catalog, source, None, set) {
        Ok(r) => r,
        Err(crate::Error::Jobs(Error::NoDisk)) if !buckets.is_empty() => Vec::new(),
        Err(e) => return Err(e),
    };
    roots.extend(buckets);
    Ok((roots, away))
}

/// Opens the disk at `root`, unlocked with `pass` when it is encrypted (a
/// wrong or missing passphrase is an error).
pub fn open(root: &Path, pass: &Passphrases) -> crate::Result<Disk> {
    let d = Disk::open(root, crate::disk::io::real())?;
    d.unlock_with(&*pass.0)?;
    Ok(d)
}

/// Opens the disk at `root` to serve as a source: an encrypted disk that
/// `pass` cannot unlock is left out (`None`), since it cannot be read.
pub fn open_source(root: &Path, pass: &Passphrases) -> Option<Disk> {
    let d = Disk::open(root, crate::disk::io::real()).ok()?;
    d.unlock_with(&*pass.0).ok()?;
    Some(d)
}

/// The connected disks `catalog` knows (plus the one at `extra`), opened
/// for reading: what a restore may read from. The disk at `extra` must
/// unlock; another encrypted disk that does not is left out.
pub fn open_known(
    catalog: &Catalog,
    source: &MountSource,
    extra: Option<&Path>,
    pass: &Passphrases,
) -> crate::Result<Vec<Disk>> {
    let known = catalog.disks()?;
    let mut out: Vec<Disk> = Vec::new();
    if let Some(p) = extra {
        out.push(open(p, pass)?);
    }
    for v in volumes::present(source, &known) {
        let Ok(id) = &v.identity else { continue };
        if known.iter().any(|d| d.id == id.disk_id) && !out.iter().any(|d| d.id() == id.disk_id) {
            let d = Disk::open(&v.root, crate::disk::io::real())?;
            if d.unlock_with(&*pass.0).is_ok() {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// What a restore reads: the connected disks a catalog knows and the bucket
/// disks it knows that answer, each unlocked (see [`Readers::open`]).
pub struct Readers {
    pub disks: Vec<Disk>,
    pub buckets: Vec<crate::bucket::BucketDisk>,
}

impl Readers {
    /// The connected disks `catalog` knows (plus the one at `extra`, which
    /// must unlock: [`open_known`]) and its bucket disks that answer
    /// ([`super::bucket::open_known`]), unlocked with `pass`; an encrypted
    /// one `pass` does not unlock is left out.
    pub fn open(
        catalog: &Catalog,
        source: &MountSource,
        extra: Option<&Path>,
        pass: &Passphrases,
    ) -> crate::Result<Readers> {
        Ok(Readers {
            disks: open_known(catalog, source, extra, pass)?,
            buckets: super::bucket::open_known(catalog, pass)?,
        })
    }

    /// Every one of them as a restore reads it, the disks first.
    pub fn sources(&self) -> Vec<&dyn crate::restore::Source> {
        let disks = self.disks.iter().map(|d| d as &dyn crate::restore::Source);
        let buckets = self
            .buckets
            .iter()
            .map(|b| b as &dyn crate::restore::Source);
        disks.chain(buckets).collect()
    }
}

/// Connected disks of the backup set `set`, by id and mount point.
pub fn of_set(
    source: &MountSource,
    catalog: &Catalog,
    set: uuid::Uuid,
) -> crate::Result<Vec<(uuid::Uuid, PathBuf)>> {
    Ok(volumes::present(source, &catalog.disks()?)
        .into_iter()
        .filter_map(|v| match v.identity {
            Ok(id) if id.sets.contains(&set) => Some((id.disk_id, v.root)),
            _ => None,
        })
        .collect())
}
