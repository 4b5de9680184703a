//! Where a restore reads objects from: a connected disk, or a reachable
//! bucket disk. Both list what they really hold and hand out readers of
//! content; only a local disk moves a damaged copy aside (a bucket's is
//! dropped from the catalog's count and left for `verify`).
//!
//! Invariant: a source is only read; the one write, moving a damaged copy
//! aside, goes through the disk's write gate for the set.

use std::collections::HashSet;
use std::io::Read;

use crate::bucket::BucketDisk;
use crate::catalog::Catalog;
use crate::disk::Disk;
use crate::object::ObjectId;

/// A disk a restore may read from.
pub trait Source: Sync {
    fn id(&self) -> uuid::Uuid;
    fn label(&self) -> &str;
    /// What it holds, by content hash.
    fn holds(&self, catalog: &Catalog) -> crate::Result<HashSet<ObjectId>>;
    /// A reader of the content `hash`.
    fn open(&self, hash: &ObjectId) -> crate::Result<Box<dyn Read + Send>>;
    /// Moves a copy that proved damaged aside, if this source can and the
    /// disk belongs to `set`; whether it did.
    fn set_aside(&self, set: uuid::Uuid, hash: &ObjectId) -> bool;
}

impl Source for Disk {
    fn id(&self) -> uuid::Uuid {
        Disk::id(self)
    }

    fn label(&self) -> &str {
        Disk::label(self)
    }

    fn holds(&self, catalog: &Catalog) -> crate::Result<HashSet<ObjectId>> {
        catalog.teach(self)?;
        Ok(self.objects()?.into_keys().collect())
    }

    fn open(&self, hash: &ObjectId) -> crate::Result<Box<dyn Read + Send>> {
        Ok(self.open_object(hash)?)
    }

    fn set_aside(&self, set: uuid::Uuid, hash: &ObjectId) -> bool {
        self.claim(set).and_then(|()| self.quarantine(hash)).is_ok()
    }
}

impl Source for BucketDisk {
    fn id(&self) -> uuid::Uuid {
        self.identity.disk_id
    }

    fn label(&self) -> &str {
        &self.identity.label
    }

    fn holds(&self, catalog: &Catalog) -> crate::Result<HashSet<ObjectId>> {
        Ok(self.objects(catalog.known_hashes()?)?.into_keys().collect())
    }

    fn open(&self, hash: &ObjectId) -> crate::Result<Box<dyn Read + Send>> {
        match self.open_object(hash)? {
            Some(r) => Ok(r),
            None => Err(crate::Error::Failed(format!(
                "{} is missing from the bucket",
                self.bucket()
                    .location()
                    .url(&self.object_key(hash).unwrap_or_default())
            ))),
        }
    }

    fn set_aside(&self, _: uuid::Uuid, _: &ObjectId) -> bool {
        false
    }
}

/// The newest catalog copy in a bucket disk that opens as a catalog, in a
/// private temp folder (dropped with the folder), and what was wrong with
/// the slots passed over.
pub fn open_bucket_catalog(
    disk: &BucketDisk,
) -> crate::Result<(Catalog, tempfile::TempDir, Vec<String>)> {
    let failed = |e: std::io::Error| {
        crate::Error::Failed(format!(
            "cannot make a folder for the catalog of {}: {e}",
            disk.bucket().location()
        ))
    };
    let tmp = tempfile::Builder::new()
        .prefix("coffer-restore-")
        .tempdir()
        .map_err(failed)?;
    let copy = tmp.path().join("catalog.sqlite");
    let (_, problems) = disk.copy_catalog(&copy)?;
    let cat = Catalog::open_copy(&copy)?;
    cat.snapshots()?;
    Ok((cat, tmp, problems))
}
