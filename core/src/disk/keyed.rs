//! An encrypted disk's keys and names.
//!
//! An encrypted disk is opened locked: its identity says how its key is
//! derived, and nothing under `objects/` or in a catalog slot can be read
//! or written until [`Disk::unlock`] was given the passphrase. Objects are
//! stored under keyed names (HMAC of the content hash), which cannot be
//! turned back into hashes: a listing is mapped back through the hashes the
//! catalog knows ([`Disk::learn`]). A name no known hash gives is listed
//! as itself (an "opaque" object: content no catalog of this set knows), so
//! the planner can remove it like any unreferenced object.
//!
//! Invariant: a plain disk's names are its objects' hashes, untouched; an
//! encrypted disk is never listed before its names were learned, and never
//! read or written while locked.

use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};
use zeroize::Zeroizing;

use super::{Disk, Error, Identity};
use crate::crypto::Keys;
use crate::object::ObjectId;

/// Where the passphrase of an encrypted disk comes from: a file, the
/// environment, the keyring, a terminal or a window.
pub trait Passphrase: Send + Sync {
    /// The passphrase to try for the disk `identity` found at `at`, on the
    /// `attempt`-th try (from 0, the one before was wrong); `None` when
    /// there is none (more) to try.
    fn passphrase(&self, identity: &Identity, at: &Path, attempt: u32)
    -> Option<Zeroizing<String>>;

    /// The passphrase unlocked the disk (a source may remember it).
    fn unlocked(&self, _identity: &Identity, _passphrase: &str) {}
}

/// No passphrase at all: encrypted disks stay locked.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPassphrase;

impl Passphrase for NoPassphrase {
    fn passphrase(&self, _: &Identity, _: &Path, _: u32) -> Option<Zeroizing<String>> {
        None
    }
}

/// A passphrase given once (from a file or the environment): offered on
/// the first try only, so a wrong one is not tried again and again.
pub struct FixedPassphrase(Zeroizing<String>);

impl FixedPassphrase {
    pub fn new(passphrase: Zeroizing<String>) -> FixedPassphrase {
        FixedPassphrase(passphrase)
    }

    /// The passphrase in `COFFER_PASSPHRASE`, when it is set and not empty
    /// (for scripts and tests).
    pub fn from_env() -> Option<FixedPassphrase> {
        let v = std::env::var("COFFER_PASSPHRASE").ok()?;
        (!v.is_empty()).then(|| FixedPassphrase(Zeroizing::new(v)))
    }
}

impl Passphrase for FixedPassphrase {
    fn passphrase(&self, _: &Identity, _: &Path, attempt: u32) -> Option<Zeroizing<String>> {
        (attempt == 0).then(|| self.0.clone())
    }
}

/// A passphrase source shared by the jobs of one command or window: a job
/// carries it and every encrypted disk it opens is unlocked through it.
#[derive(Clone)]
pub struct Passphrases(pub std::sync::Arc<dyn Passphrase>);

impl Passphrases {
    pub fn new(source: impl Passphrase + 'static) -> Passphrases {
        Passphrases(std::sync::Arc::new(source))
    }

    /// `COFFER_PASSPHRASE` when it is set, else none.
    pub fn from_env() -> Passphrases {
        match FixedPassphrase::from_env() {
            Some(p) => Passphrases::new(p),
            None => Passphrases::default(),
        }
    }
}

impl Default for Passphrases {
    fn default() -> Passphrases {
        Passphrases::new(NoPassphrase)
    }
}

impl std::fmt::Debug for Passphrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrases(..)")
    }
}

/// Most passphrases tried on one disk before giving up.
const ATTEMPTS: u32 = 3;

/// An encrypted disk's names, as far as they are known.
#[derive(Debug, Default)]
pub(super) struct Names {
    learned: bool,
    /// Disk name → content hash.
    hashes: FxHashMap<ObjectId, ObjectId>,
    /// Names listed that no known hash gives.
    opaque: FxHashSet<ObjectId>,
}

impl Disk {
    /// Whether the disk is encrypted.
    pub fn encrypted(&self) -> bool {
        self.identity.encryption.is_some()
    }

    /// Whether the disk can be read and written: plain, or unlocked.
    pub fn unlocked(&self) -> bool {
        !self.encrypted() || self.keys.get().is_some()
    }

    /// Unlocks an encrypted disk with `passphrase` (a plain disk needs
    /// none). A wrong one is refused at once, by the identity's key check.
    pub fn unlock(&self, passphrase: &str) -> Result<(), Error> {
        let Some(enc) = &self.identity.encryption else {
            return Ok(());
        };
        if self.keys.get().is_some() {
            return Ok(());
        }
        match enc.unlock(passphrase.as_bytes()) {
            Ok(Some(keys)) => {
                let _ = self.keys.set(keys);
                Ok(())
            }
            Ok(None) => Err(Error::WrongPassphrase {
                root: self.root().into(),
                label: self.identity.label.clone(),
            }),
            Err(source) => Err(Error::Crypto {
                root: self.root().into(),
                label: self.identity.label.clone(),
                source,
            }),
        }
    }

    /// Unlocks an encrypted disk with what `source` gives, trying again
    /// (up to three times) while it has more to offer.
    pub fn unlock_with(&self, source: &dyn Passphrase) -> Result<(), Error> {
        if self.unlocked() {
            return Ok(());
        }
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let Some(pw) = source.passphrase(&self.identity, self.root(), attempt) else {
                break;
            };
            match self.unlock(&pw) {
                Ok(()) => {
                    source.unlocked(&self.identity, &pw);
                    return Ok(());
                }
                Err(e @ Error::WrongPassphrase { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.locked()))
    }

    fn locked(&self) -> Error {
        Error::Locked {
            root: self.root().into(),
            label: self.identity.label.clone(),
        }
    }

    /// The keys to seal and open with: `None` on a plain disk; an error on
    /// an encrypted disk that is still locked.
    pub(super) fn sealing(&self) -> Result<Option<&Keys>, Error> {
        match (self.encrypted(), self.keys.get()) {
            (false, _) => Ok(None),
            (true, Some(k)) => Ok(Some(k)),
            (true, None) => Err(self.locked()),
        }
    }

    pub(super) fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Learns the names of content `hashes` (all a catalog knows), so an
    /// encrypted disk's listing can say which content each object holds.
    /// A plain disk needs nothing.
    pub fn learn(&self, hashes: impl IntoIterator<Item = ObjectId>) -> Result<(), Error> {
        let Some(keys) = self.sealing()? else {
            return Ok(());
        };
        let mut names = self.names();
        for h in hashes {
            names.hashes.insert(keys.name(&h), h);
        }
        names.learned = true;
        Ok(())
    }

    /// The name an object of content `hash` has on the disk.
    pub(super) fn disk_name(&self, hash: &ObjectId) -> ObjectId {
        match self.keys.get() {
            None => *hash,
            Some(k) => {
                if self.names().opaque.contains(hash) {
                    *hash
                } else {
                    k.name(hash)
                }
            }
        }
    }

    /// The content a name listed on the disk holds: the name itself on a
    /// plain disk; on an encrypted one, the known hash that gives it, or the
    /// name itself, remembered as opaque.
    pub(super) fn listed(&self, name: ObjectId) -> Result<ObjectId, Error> {
        if self.sealing()?.is_none() {
            return Ok(name);
        }
        let mut names = self.names();
        if !names.learned {
            return Err(Error::Locked {
                root: self.root().into(),
                label: format!(
                    "{} (its object names were not learned from a catalog)",
                    self.identity.label
                ),
            });
        }
        if let Some(h) = names.hashes.get(&name) {
            return Ok(*h);
        }
        names.opaque.insert(name);
        Ok(name)
    }
}

impl Disk {
    /// A sealer for one new object, on an encrypted disk.
    pub(super) fn object_sealer(&self) -> Result<Option<crate::crypto::Sealer>, Error> {
        match self.sealing()? {
            None => Ok(None),
            Some(k) => k
                .sealer(crate::crypto::OBJECT_CONTEXT)
                .map(Some)
                .map_err(|source| Error::Crypto {
                    root: self.root().into(),
                    label: self.identity.label.clone(),
                    source,
                }),
        }
    }

    /// An object's stored bytes as its content: opened on an encrypted
    /// disk (each chunk authenticated), as they are on a plain one.
    pub(super) fn unsealed(
        &self,
        raw: Box<dyn std::io::Read + Send>,
        hash: &ObjectId,
    ) -> Box<dyn std::io::Read + Send> {
        match self.keys.get() {
            None => raw,
            Some(k) => {
                Box::new(k.opener(raw, crate::crypto::OBJECT_CONTEXT, self.object_path(hash)))
            }
        }
    }

    /// An encrypted disk's listing (disk names, sealed sizes) as content
    /// hashes and plain sizes; a size no sealed stream has is torn
    /// (`u64::MAX`).
    pub(super) fn unsealed_listing(
        &self,
        listed: std::collections::BTreeMap<ObjectId, u64>,
    ) -> Result<std::collections::BTreeMap<ObjectId, u64>, Error> {
        let mut out = std::collections::BTreeMap::new();
        for (name, size) in listed {
            let plain = if size == u64::MAX {
                u64::MAX
            } else {
                crate::crypto::plain_len(size).unwrap_or(u64::MAX)
            };
            out.insert(self.listed(name)?, plain);
        }
        Ok(out)
    }
}

impl Disk {
    /// Whether an object listed as `listed` rightly holds content
    /// `content`: the same hash, or (an encrypted disk's object no catalog
    /// knows) a name that content's keyed name is.
    pub fn holds_as(&self, listed: &ObjectId, content: &ObjectId) -> bool {
        listed == content || self.keys.get().is_some_and(|k| k.name(content) == *listed)
    }
}
