//! A bucket laid out as a Coffer disk: the same identity file
//! (`coffer-disk.json`, parsed by the same `Identity::parse`), the same
//! object names (`coffer/objects/xx/NAME`, keyed names and sealed bytes on
//! an encrypted disk, through the same `crypto` keys and stream), so a
//! bucket is one more disk in the redundancy count.
//!
//! Writes differ from a local disk's only where S3 differs from a file
//! system: nothing is renamed (a PUT or a completed multipart upload makes
//! an object visible whole), so an object is uploaded under its final key
//! while it is hashed, and removed again at once when what was read does
//! not hash to the content it was copied for (a file that changed while
//! read). The identity is created only where none is (a conditional PUT).
//!
//! Invariant: what is read from a bucket is hostile input, capped and
//! checked like a disk's; an encrypted bucket is never read or written
//! while locked, and no plain byte or content hash reaches it.

use std::collections::BTreeMap;
use std::io::Read;

use super::{Bucket, Condition, Error};
use crate::crypto::{Encryption, Keys};
use crate::disk::{FORMAT, FORMAT_ENCRYPTED, IDENTITY_CAP, IDENTITY_FILE, Identity};
use crate::object::{Hasher, ObjectId};

/// Where objects live under the prefix.
const OBJECTS: &str = "coffer/objects";

/// Why a bucket disk cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Bucket(#[from] Error),
    #[error("{url} is not a Coffer disk (it has no {IDENTITY_FILE})")]
    NotADisk { url: String },
    #[error("{url} is already a Coffer disk")]
    AlreadyADisk { url: String },
    #[error("{url}: {reason}")]
    BadIdentity { url: String, reason: String },
    #[error(
        "the bucket disk at {url} is encrypted; give its passphrase (terminal, --passphrase-file or COFFER_PASSPHRASE)"
    )]
    Locked { url: String },
    #[error("wrong passphrase for the encrypted bucket disk at {url}; nothing was read or written")]
    WrongPassphrase { url: String },
    #[error("cannot unlock the bucket disk at {url}")]
    Crypto {
        url: String,
        source: crate::crypto::Error,
    },
    #[error("{url}: what was read hashes to {got}, not {want}; the upload was removed")]
    Changed {
        url: String,
        want: ObjectId,
        got: ObjectId,
    },
    #[error("{url}: {source}")]
    Stream { url: String, source: std::io::Error },
}

/// A bucket that holds a Coffer disk.
pub struct BucketDisk {
    bucket: Bucket,
    pub identity: Identity,
    keys: std::sync::OnceLock<Keys>,
    /// Names listed on an encrypted disk that no known hash gives: content
    /// no catalog of this set knows, addressed by the name itself (so the
    /// planner can remove it like any unreferenced object).
    opaque: std::sync::Mutex<std::collections::HashSet<ObjectId>>,
}

impl std::fmt::Debug for BucketDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BucketDisk({}, {:?})",
            self.bucket.location(),
            self.identity.label
        )
    }
}

impl BucketDisk {
    /// Makes the bucket location a disk labelled `label` of the set `set`,
    /// encrypted with `encryption` when given. Refused where an identity is
    /// already (another writer's included: the create is conditional).
    pub fn init(
        bucket: Bucket,
        label: &str,
        set: uuid::Uuid,
        quota: Option<u64>,
        encryption: Option<(Encryption, Keys)>,
    ) -> Result<BucketDisk, DiskError> {
        let (encryption, keys) = encryption.unzip();
        let identity = Identity {
            format: if encryption.is_some() {
                FORMAT_ENCRYPTED
            } else {
                FORMAT
            },
            disk_id: uuid::Uuid::new_v4(),
            label: label.to_string(),
            sets: vec![set],
            created_at: crate::now(),
            quota,
            max_file_size: None,
            encryption,
        };
        let url = bucket.location().url(IDENTITY_FILE);
        let mut bytes =
            serde_json::to_vec_pretty(&identity).map_err(|e| DiskError::BadIdentity {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        bytes.push(b'\n');
        // Never write an identity that reading would refuse.
        Identity::parse(&bytes).map_err(|reason| DiskError::BadIdentity {
            url: url.clone(),
            reason,
        })?;
        if bucket
            .put_bytes(IDENTITY_FILE, bytes, Condition::Absent)?
            .is_none()
        {
            return Err(DiskError::AlreadyADisk {
                url: bucket.location().url(""),
            });
        }
        let disk = BucketDisk {
            bucket,
            identity,
            keys: std::sync::OnceLock::new(),
            opaque: Default::default(),
        };
        if let Some(k) = keys {
            let _ = disk.keys.set(k);
        }
        Ok(disk)
    }

    /// Opens the disk in `bucket`: its identity read (capped) and checked.
    pub fn open(bucket: Bucket) -> Result<BucketDisk, DiskError> {
        let url = bucket.location().url(IDENTITY_FILE);
        let Some(bytes) = bucket.get_all(IDENTITY_FILE, IDENTITY_CAP)? else {
            return Err(DiskError::NotADisk {
                url: bucket.location().url(""),
            });
        };
        let identity =
            Identity::parse(&bytes).map_err(|reason| DiskError::BadIdentity { url, reason })?;
        Ok(BucketDisk {
            bucket,
            identity,
            keys: std::sync::OnceLock::new(),
            opaque: Default::default(),
        })
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    fn url(&self, key: &str) -> String {
        self.bucket.location().url(key)
    }

    pub fn encrypted(&self) -> bool {
        self.identity.encryption.is_some()
    }

    /// Unlocks an encrypted disk (a plain one needs nothing); a wrong
    /// passphrase is refused by the identity's key check.
    pub fn unlock(&self, passphrase: &str) -> Result<(), DiskError> {
        let Some(enc) = &self.identity.encryption else {
            return Ok(());
        };
        if self.keys.get().is_some() {
            return Ok(());
        }
        match enc.unlock(passphrase.as_bytes()) {
            Ok(Some(k)) => {
                let _ = self.keys.set(k);
                Ok(())
            }
            Ok(None) => Err(DiskError::WrongPassphrase { url: self.url("") }),
            Err(source) => Err(DiskError::Crypto {
                url: self.url(""),
                source,
            }),
        }
    }

    /// Unlocks an encrypted disk with what `source` gives, trying again
    /// (up to three times) while it has more to offer.
    pub fn unlock_with(&self, source: &dyn crate::disk::Passphrase) -> Result<(), DiskError> {
        if !self.encrypted() || self.keys.get().is_some() {
            return Ok(());
        }
        let at = std::path::PathBuf::from(self.url(""));
        let mut last = None;
        for attempt in 0..3 {
            let Some(pw) = source.passphrase(&self.identity, &at, attempt) else {
                break;
            };
            match self.unlock(&pw) {
                Ok(()) => {
                    source.unlocked(&self.identity, &pw);
                    return Ok(());
                }
                Err(e @ DiskError::WrongPassphrase { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(DiskError::Locked { url: self.url("") }))
    }

    /// The keys of an unlocked encrypted disk (`None`: a plain disk).
    pub(super) fn keys_for_slots(&self) -> Result<Option<&Keys>, DiskError> {
        self.sealing()
    }

    fn sealing(&self) -> Result<Option<&Keys>, DiskError> {
        match (self.encrypted(), self.keys.get()) {
            (false, _) => Ok(None),
            (true, Some(k)) => Ok(Some(k)),
            (true, None) => Err(DiskError::Locked { url: self.url("") }),
        }
    }

    /// The key an object of content `hash` is stored under.
    pub fn object_key(&self, hash: &ObjectId) -> Result<String, DiskError> {
        let opaque = || {
            self.opaque
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(hash)
        };
        let name = match self.sealing()? {
            None => *hash,
            Some(_) if opaque() => *hash,
            Some(k) => k.name(hash),
        };
        Ok(format!("{OBJECTS}/{}/{}", name.prefix(), name.to_hex()))
    }

    /// Uploads the content `hash` from `src`; `each` sees the bytes read.
    /// Returns the bytes of content stored.
    pub fn put_object(
        &self,
        hash: &ObjectId,
        src: &mut dyn Read,
        each: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> Result<u64, DiskError> {
        let key = self.object_key(hash)?;
        let mut hashing = HashingReader {
            inner: src,
            hasher: Hasher::default(),
            size: 0,
        };
        match self.sealing()? {
            None => self.bucket.put(&key, &mut hashing, each)?,
            Some(k) => {
                let sealer = k.sealer(crate::crypto::OBJECT_CONTEXT).map_err(|source| {
                    DiskError::Crypto {
                        url: self.url(&key),
                        source,
                    }
                })?;
                let mut sealed = SealingReader::new(&mut hashing, sealer);
                self.bucket.put(&key, &mut sealed, each)?
            }
        };
        let got = hashing.hasher.finish();
        if got != *hash {
            self.bucket.delete(&key)?;
            return Err(DiskError::Changed {
                url: self.url(&key),
                want: *hash,
                got,
            });
        }
        Ok(hashing.size)
    }

    /// The content of object `hash`, each chunk authenticated on an
    /// encrypted disk; `None` when it is not there.
    pub fn open_object(&self, hash: &ObjectId) -> Result<Option<Box<dyn Read + Send>>, DiskError> {
        let key = self.object_key(hash)?;
        let Some(raw) = self.bucket.get(&key)? else {
            return Ok(None);
        };
        Ok(Some(match self.sealing()? {
            None => Box::new(raw),
            Some(k) => {
                Box::new(k.opener(raw, crate::crypto::OBJECT_CONTEXT, self.url(&key).into()))
            }
        }))
    }

    /// Moves object `hash` aside to `coffer/bad-objects/` (copied there
    /// inside the bucket, then removed): never deleted unseen.
    pub fn quarantine(&self, hash: &ObjectId) -> Result<(), DiskError> {
        let key = self.object_key(hash)?;
        let name = key.rsplit('/').next().unwrap_or_default();
        let aside = format!(
            "coffer/bad-objects/{name}.{}",
            uuid::Uuid::new_v4().simple()
        );
        self.bucket.copy(&key, &aside)?;
        Ok(self.bucket.delete(&key)?)
    }

    /// The URL of object `hash`, for messages.
    pub fn object_url(&self, hash: &ObjectId) -> String {
        match self.object_key(hash) {
            Ok(k) => self.url(&k),
            Err(_) => self.url(&format!("{OBJECTS}/…")),
        }
    }

    /// Removes object `hash`.
    pub fn remove_object(&self, hash: &ObjectId) -> Result<(), DiskError> {
        let key = self.object_key(hash)?;
        Ok(self.bucket.delete(&key)?)
    }

    /// The objects stored, by content hash with their content sizes, as
    /// far as `known` (the hashes a catalog knows) tells an encrypted
    /// disk's names apart; names no known hash gives are listed as
    /// themselves, and a size no sealed stream has as `u64::MAX` (torn).
    pub fn objects(
        &self,
        known: impl IntoIterator<Item = ObjectId>,
    ) -> Result<BTreeMap<ObjectId, u64>, DiskError> {
        let keys = self.sealing()?;
        let names: std::collections::HashMap<ObjectId, ObjectId> = match keys {
            None => Default::default(),
            Some(k) => known.into_iter().map(|h| (k.name(&h), h)).collect(),
        };
        let mut out = BTreeMap::new();
        for (key, size) in self.bucket.list(&format!("{OBJECTS}/"))? {
            let Some(name) = key
                .rsplit('/')
                .next()
                .and_then(|n| n.parse::<ObjectId>().ok())
            else {
                continue;
            };
            if keys.is_none() {
                out.insert(name, size);
                continue;
            }
            let plain = crate::crypto::plain_len(size).unwrap_or(u64::MAX);
            let content = match names.get(&name) {
                Some(h) => *h,
                None => {
                    self.opaque
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(name);
                    name
                }
            };
            out.insert(content, plain);
        }
        Ok(out)
    }
}

/// Hashes and counts what passes through.
struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    hasher: Hasher,
    size: u64,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Seals what it reads from `inner`.
pub(super) struct SealingReader<'a, R: Read> {
    inner: &'a mut R,
    sealer: Option<crate::crypto::Sealer>,
    out: Vec<u8>,
    pos: usize,
    buf: Vec<u8>,
}

impl<'a, R: Read> SealingReader<'a, R> {
    pub(super) fn new(inner: &'a mut R, sealer: crate::crypto::Sealer) -> Self {
        SealingReader {
            inner,
            sealer: Some(sealer),
            out: Vec::new(),
            pos: 0,
            buf: vec![0u8; crate::crypto::CHUNK],
        }
    }
}

impl<R: Read> Read for SealingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.out.len() {
            let Some(s) = self.sealer.as_mut() else {
                return Ok(0);
            };
            self.out.clear();
            self.pos = 0;
            let n = self.inner.read(&mut self.buf)?;
            let out = &mut self.out;
            let mut put = |b: &[u8]| {
                out.extend_from_slice(b);
                Ok(())
            };
            if n == 0 {
                if let Some(s) = self.sealer.take() {
                    s.finish(&mut put)?;
                }
            } else {
                s.push(&self.buf[..n], &mut put)?;
            }
        }
        let n = (self.out.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
