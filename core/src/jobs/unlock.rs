//! A disk, USB or bucket, opened only to check passphrases against its key
//! check, before a job that needs it starts (the window's Unlock dialog).
//!
//! Invariant: nothing is written and nothing but the identity is read; a
//! passphrase is taken only when the identity's key check accepts it.

use std::path::Path;

use super::bucket;
use crate::bucket::BucketDisk;
use crate::disk::{self, Disk, Identity};

/// A disk whose passphrase can be checked.
pub enum Lockable {
    Usb(Disk),
    Bucket(BucketDisk),
}

/// Opens the disk at `root` (a mount path, or a bucket's `s3://` URL) to
/// check passphrases; an error when it cannot be read or reached now.
pub fn reach(root: &Path) -> crate::Result<Lockable> {
    if bucket::is_bucket(root) {
        let url = root
            .to_str()
            .ok_or_else(|| crate::Error::Failed("a bucket's address is not text".into()))?;
        // Asked while a person waits: a bucket that does not answer within
        // seconds is not connected now.
        return Ok(Lockable::Bucket(bucket::reach_quickly(url)?));
    }
    Ok(Lockable::Usb(Disk::open(root, disk::io::real())?))
}

impl Lockable {
    pub fn identity(&self) -> &Identity {
        match self {
            Lockable::Usb(d) => &d.identity,
            Lockable::Bucket(d) => &d.identity,
        }
    }

    pub fn encrypted(&self) -> bool {
        self.identity().encryption.is_some()
    }

    /// Whether `passphrase` opens it, by its key check (a plain disk takes
    /// any). Err only when the check itself cannot be made.
    pub fn opens(&self, passphrase: &str) -> crate::Result<bool> {
        match self {
            Lockable::Usb(d) => match d.unlock(passphrase) {
                Ok(()) => Ok(true),
                Err(disk::Error::WrongPassphrase { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
            Lockable::Bucket(d) => match d.unlock(passphrase) {
                Ok(()) => Ok(true),
                Err(crate::bucket::DiskError::WrongPassphrase { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_is_no_disk_cannot_be_reached() {
        let t = tempfile::tempdir().unwrap();
        assert!(reach(t.path()).is_err());
    }

    #[test]
    fn a_bucket_address_that_is_not_one_is_refused_before_any_request() {
        let e = reach(Path::new("s3://")).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| !e.is_empty()));
    }
}
