//! Bucket disks in jobs: named by their URL (`s3://BUCKET/PREFIX`) where a
//! local disk is named by its mount path, reached with the standard AWS
//! variables and files (`bucket::Settings::from_env`).
//!
//! Invariant: a bucket disk is opened unlocked or not at all, and only one
//! of this backup set is written.

use std::path::{Path, PathBuf};

use crate::bucket::{Bucket, BucketDisk, Location, Settings};
use crate::disk::Passphrases;

/// Whether a job's disk `root` names a bucket.
pub fn is_bucket(root: &Path) -> bool {
    root.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Reaches the bucket disk at `url` and reads its identity (nothing is
/// unlocked or written).
fn reach(url: &str) -> crate::Result<BucketDisk> {
    let loc = Location::parse(url).map_err(|e| crate::Error::Failed(e.to_string()))?;
    let bucket =
        Bucket::connect(&loc, &Settings::from_env()).map_err(crate::bucket::DiskError::from)?;
    Ok(BucketDisk::open(bucket)?)
}

/// Opens the bucket disk at `url`, unlocked with `pass` when encrypted,
/// and checks that it belongs to the backup set `set` (when given).
pub fn open_bucket(
    url: &str,
    pass: &Passphrases,
    set: Option<uuid::Uuid>,
) -> crate::Result<BucketDisk> {
    let disk = reach(url)?;
    if let Some(set) = set
        && !disk.identity.sets.contains(&set)
    {
        return Err(crate::Error::Failed(format!(
            "{} belongs to another backup set; nothing was written",
            disk.bucket().location()
        )));
    }
    disk.unlock_with(&*pass.0)?;
    Ok(disk)
}

/// The bucket disks `catalog` knows that answer now, unlocked with `pass`
/// (one that does not unlock, or does not answer, is left out).
pub fn open_known(catalog: &crate::Catalog, pass: &Passphrases) -> crate::Result<Vec<BucketDisk>> {
    let mut out = Vec::new();
    for row in catalog.disks()? {
        let Some(url) = row.last_mount.as_deref().and_then(|p| p.to_str()) else {
            continue;
        };
        if !url.starts_with("s3://") {
            continue;
        }
        if let Ok(d) = open_bucket(url, pass, None)
            && d.identity.disk_id == row.id
        {
            out.push(d);
        }
    }
    Ok(out)
}

/// The URLs of the bucket disks `catalog` knows.
pub fn known_urls(catalog: &crate::Catalog) -> crate::Result<Vec<std::path::PathBuf>> {
    Ok(catalog
        .disks()?
        .into_iter()
        .filter_map(|r| r.last_mount)
        .filter(|p| is_bucket(p))
        .collect())
}

/// A bucket disk that did not answer, and why.
pub type Away = (PathBuf, String);

/// The bucket disks of the backup set `set` that `catalog` knows: those
/// that answer now (by URL), and those that do not, with why. A bucket is
/// connected whenever it is reachable, so "every connected disk" takes the
/// first; nothing is unlocked or written here.
pub fn of_set(
    catalog: &crate::Catalog,
    set: uuid::Uuid,
) -> crate::Result<(Vec<PathBuf>, Vec<Away>)> {
    let (mut reachable, mut away) = (Vec::new(), Vec::new());
    for url in known_urls(catalog)? {
        let opened = url
            .to_str()
            .ok_or_else(|| "not a URL".to_string())
            .and_then(|s| reach(s).map_err(|e| e.to_string()));
        match opened {
            Ok(d) if d.identity.sets.contains(&set) => reachable.push(url),
            // Another set's bucket is not this set's to sync.
            Ok(_) => {}
            Err(why) => away.push((url, why)),
        }
    }
    Ok((reachable, away))
}
