//! A backup disk: its identity, its object store, its catalog slots, its
//! free space and its lock.
//!
//! ```text
//! coffer-disk.json          identity (format, disk id, label, sets, quota)
//! coffer/catalog-a.sqlite   catalog copy, slot A  (+ catalog-a.json: generation, size, sha256)
//! coffer/catalog-b.sqlite   catalog copy, slot B  (+ catalog-b.json)
//! coffer/objects/ab/abcd…   one object per file, named by its SHA-256
//! coffer/objects/ab/abcd….p001, .p002 …  parts of an object above the file size limit
//! coffer/tmp/               copies in flight; emptied when a sync starts
//! coffer/bad-objects/       objects that failed verification
//! coffer/lock               held (flock) by the Coffer process writing the disk
//! ```
//!
//! The pieces: [`root`] (the confined handle every access goes through),
//! [`identity`] (`coffer-disk.json`), [`store`] (objects, temp copies,
//! quarantine), [`slots`] (the catalog copies), [`space`] (room, limits).
//!
//! A disk is hostile input: it may have been plugged into another machine
//! or tampered with. Every access under its root goes through one [`Root`]
//! that never follows a symlink and never leaves the root, reads only
//! regular files and each with a cap. Every write passes one gate,
//! [`Disk::claim`]: valid identity, this backup set, lock held.
//!
//! Invariant: nothing outside a disk's root is ever read or changed through
//! a `Disk`; no write happens on a disk that was not claimed for this set;
//! objects and catalog copies are created 0600 in 0700 folders.

mod copy_in;
pub mod fs;
mod identity;
pub mod io;
mod keyed;
mod leftovers;
pub mod root;
mod slot_pages;
mod slots;
mod space;
mod stage;
mod store;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use identity::{
    FORMAT, FORMAT_ENCRYPTED, IDENTITY_CAP, IDENTITY_FILE, Identity, MAX_LABEL, MAX_SETS,
    MIN_PART_SIZE, read_identity,
};
pub use keyed::{FixedPassphrase, NoPassphrase, Passphrase, Passphrases};
pub use leftovers::Leftover;
pub use root::Root;
pub use slot_pages::{PageSource, PagesWritten};
pub use slots::{CopiedSlot, MAX_GENERATION, SIDECAR_CAP, SLOT_CAP, Slot, SlotMeta};
pub use space::{FAT32_MAX_FILE, Space};
pub use stage::Stage;
pub use store::{CopyInError, Pending, new_tag};

use crate::object::ObjectId;
use io::DiskIo;

const COFFER: &str = "coffer";
const OBJECTS: &str = "coffer/objects";
const TMP: &str = "coffer/tmp";
const BAD: &str = "coffer/bad-objects";
const ARCHIVES: &str = "coffer/archives";
const LOCK: &str = "coffer/lock";

/// Mode of every folder Coffer makes on a disk.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every object, temp file and catalog copy.
pub(crate) const FILE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{root_} is not a Coffer disk (no {IDENTITY_FILE} at its root); set it up with `coffer disk init`", root_ = crate::human::path(.root))]
    NotADisk { root: PathBuf },
    #[error("{path_}: {reason}", path_ = crate::human::path(.path))]
    BadIdentity { path: PathBuf, reason: String },
    #[error("{root_} is already a Coffer disk (\"{label}\")", root_ = crate::human::path(.root))]
    AlreadyInitialized { root: PathBuf, label: String },
    #[error("{root_} is not a folder", root_ = crate::human::path(.root))]
    NotAFolder { root: PathBuf },
    #[error(
        "disk \"{label}\" at {root_} is in use by another Coffer process; wait for it to finish", root_ = crate::human::path(.root))]
    InUse { root: PathBuf, label: String },
    #[error("disk \"{label}\" at {root_} belongs to another backup set; it was not changed", root_ = crate::human::path(.root))]
    WrongSet { root: PathBuf, label: String },
    #[error("disk \"{label}\" at {root_} was opened for reading only; nothing was written", root_ = crate::human::path(.root))]
    NotClaimed { root: PathBuf, label: String },
    #[error("disk \"{label}\" is no longer at {root_} (unplugged?); nothing more was written there", root_ = crate::human::path(.root))]
    Vanished { root: PathBuf, label: String },
    #[error("disk \"{label}\" at {root_} is full (no space left on device){}", full_detail(*needed, *available), root_ = crate::human::path(.root))]
    Full {
        root: PathBuf,
        label: String,
        needed: u64,
        available: u64,
    },
    #[error("{op} {path_}: {source}", path_ = crate::human::path(.path))]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path_} does not hold the bytes its name says (read {actual}); it was moved aside", path_ = crate::human::path(.path))]
    Mismatch { path: PathBuf, actual: ObjectId },
    #[error("source changed while being copied to {root_}: expected {expected}, read {actual}", root_ = crate::human::path(.root))]
    SourceChanged {
        root: PathBuf,
        expected: ObjectId,
        actual: ObjectId,
    },
    #[error("no valid catalog copy on the disk at {root_}: {details}", root_ = crate::human::path(.root))]
    NoCatalog { root: PathBuf, details: String },
    #[error("{path_}: {reason}", path_ = crate::human::path(.path))]
    BadSlot { path: PathBuf, reason: String },
    #[error(
        "{path_} is {what} where Coffer keeps its own files; nothing was read or written through it: remove it from the disk (`coffer verify` moves such things out of the object store)", path_ = crate::human::path(.path))]
    Stray { path: PathBuf, what: &'static str },
    #[error("object {hash} is not on the disk at {root_}", root_ = crate::human::path(.root))]
    Missing { root: PathBuf, hash: ObjectId },
    #[error(
        "disk \"{label}\" at {root_} is encrypted; give its passphrase (terminal, --passphrase-file, COFFER_PASSPHRASE or the keyring)", root_ = crate::human::path(.root))]
    Locked { root: PathBuf, label: String },
    #[error(
        "wrong passphrase for the encrypted disk \"{label}\" at {root_}; nothing was read or written", root_ = crate::human::path(.root))]
    WrongPassphrase { root: PathBuf, label: String },
    #[error("cannot unlock the disk \"{label}\" at {root_}: {source}", root_ = crate::human::path(.root))]
    Crypto {
        root: PathBuf,
        label: String,
        source: crate::crypto::Error,
    },
}

fn full_detail(needed: u64, available: u64) -> String {
    let free = crate::human::bytes(available);
    if needed > 0 {
        format!(
            ": {} more needed to finish, {free} free; nothing partial was kept",
            crate::human::bytes(needed)
        )
    } else {
        format!(": {free} free; nothing partial was kept")
    }
}

impl Error {
    /// `op` failed on `path`. A refusal that names the same path (the
    /// confined root names the one at fault: "X is a symlink, …") says
    /// "it" instead, so the path is printed once.
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        let named = format!("{} ", path.display());
        let source = match source.get_ref().map(|e| e.to_string()) {
            Some(m) if m.starts_with(&named) => {
                std::io::Error::new(source.kind(), format!("it {}", &m[named.len()..]))
            }
            _ => source,
        };
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True for "no space left on device" and quota exhaustion.
    pub fn is_full(&self) -> bool {
        match self {
            Error::Full { .. } => true,
            Error::Io { source, .. } => {
                source.raw_os_error() == Some(28) || source.raw_os_error() == Some(27)
            }
            _ => false,
        }
    }
}

/// The lock and the backup set a disk was claimed for.
#[derive(Debug)]
struct Claim {
    _lock: File,
    set: uuid::Uuid,
}

/// A connected backup disk.
#[derive(Debug)]
pub struct Disk {
    root: Root,
    pub identity: Identity,
    io: Arc<dyn DiskIo>,
    claim: Mutex<Option<Claim>>,
    /// The file system's block size, read once.
    block: std::sync::OnceLock<u64>,
    /// The file system's kind, read once.
    kind: std::sync::OnceLock<fs::Kind>,
    /// The largest file a write found the file system to hold.
    learned: std::sync::atomic::AtomicU64,
    /// The keys of an encrypted disk, once unlocked.
    keys: std::sync::OnceLock<crate::crypto::Keys>,
    /// An encrypted disk's names, mapped back to content hashes.
    names: Mutex<keyed::Names>,
}

fn open_root(root: &Path) -> Result<Root, Error> {
    Root::open(root).map_err(|e| match e.raw_os_error() {
        Some(20) => Error::NotAFolder { root: root.into() },
        Some(2) => Error::NotADisk { root: root.into() },
        _ => Error::io("cannot open", root, e),
    })
}

impl Disk {
    /// Makes `root` a backup disk of the set `set_id`.
    pub fn init(
        root: &Path,
        label: &str,
        set_id: uuid::Uuid,
        quota: Option<u64>,
        io: Arc<dyn DiskIo>,
    ) -> Result<Disk, Error> {
        Disk::init_with(root, label, set_id, quota, io, false)
    }

    /// Like [`init`](Self::init); with `force`, an identity that cannot be
    /// read is replaced by a new one (objects already on the disk are kept
    /// and counted again by the next sync). A readable identity is never
    /// replaced.
    pub fn init_with(
        root: &Path,
        label: &str,
        set_id: uuid::Uuid,
        quota: Option<u64>,
        io: Arc<dyn DiskIo>,
        force: bool,
    ) -> Result<Disk, Error> {
        Disk::init_full(root, label, set_id, quota, io, force, None)
    }

    /// Like [`init_with`](Self::init_with); with `encryption`, the disk is
    /// encrypted (made by [`crate::crypto::Encryption::create`]), and comes
    /// back unlocked with those keys.
    pub fn init_full(
        root: &Path,
        label: &str,
        set_id: uuid::Uuid,
        quota: Option<u64>,
        io: Arc<dyn DiskIo>,
        force: bool,
        encryption: Option<(crate::crypto::Encryption, crate::crypto::Keys)>,
    ) -> Result<Disk, Error> {
        let r = open_root(root)?;
        let fresh = match identity::read(&r) {
            Ok(id) => {
                return Err(Error::AlreadyInitialized {
                    root: r.path().into(),
                    label: id.label,
                });
            }
            Err(Error::NotADisk { .. }) => true,
            Err(_) if force => false,
            Err(e) => return Err(e),
        };
        let label = label.trim();
        if label.is_empty()
            || label.len() > identity::MAX_LABEL
            || label.chars().any(char::is_control)
        {
            return Err(Error::BadIdentity {
                path: r.show(IDENTITY_FILE),
                reason: format!(
                    "a label must be 1 to {} bytes of printable text",
                    identity::MAX_LABEL
                ),
            });
        }
        let (encryption, keys) = encryption.unzip();
        let identity = Identity {
            format: if encryption.is_some() {
                FORMAT_ENCRYPTED
            } else {
                FORMAT
            },
            disk_id: uuid::Uuid::new_v4(),
            label: label.to_string(),
            sets: vec![set_id],
            created_at: crate::now(),
            quota,
            max_file_size: None,
            encryption,
        };
        let disk = Disk::new(r, identity, io);
        if let Some(k) = keys {
            let _ = disk.keys.set(k);
        }
        // The same gate as every other write, minus the identity that is
        // about to be written: the lock, then Coffer's folders.
        disk.take_lock(set_id)?;
        let io = disk.gate()?;
        for d in [OBJECTS, TMP] {
            io.create_dir_all(&disk.root, Path::new(d))
                .map_err(|e| Error::io("cannot create", &disk.root.show(d), e))?;
        }
        disk.write_identity_file(fresh)?;
        disk.release();
        Ok(disk)
    }

    /// Opens the disk at `root` for reading. Writing needs [`claim`](Self::claim).
    pub fn open(root: &Path, io: Arc<dyn DiskIo>) -> Result<Disk, Error> {
        let root = open_root(root)?;
        let identity = identity::read(&root)?;
        let disk = Disk::new(root, identity, io);
        if let Some(m) = disk.identity.max_file_size
            && m > disk.fs_max_file()
        {
            return Err(Error::BadIdentity {
                path: disk.root.show(IDENTITY_FILE),
                reason: format!(
                    "sets max_file_size to {m} bytes, more than this file system can hold in one file ({})",
                    disk.fs_max_file()
                ),
            });
        }
        Ok(disk)
    }

    fn new(root: Root, identity: Identity, io: Arc<dyn DiskIo>) -> Disk {
        Disk {
            root,
            identity,
            io,
            claim: Mutex::default(),
            block: std::sync::OnceLock::new(),
            kind: std::sync::OnceLock::new(),
            learned: std::sync::atomic::AtomicU64::new(u64::MAX),
            keys: std::sync::OnceLock::new(),
            names: Mutex::default(),
        }
    }

    /// The one gate for writing: the identity is still valid and the same,
    /// the disk belongs to the backup set `set`, and this process holds its
    /// lock. Claiming again for the same set is a no-op.
    pub fn claim(&self, set: uuid::Uuid) -> Result<(), Error> {
        if let Some(c) = self.lock_claim().as_ref() {
            return if c.set == set {
                self.check_identity()
            } else {
                Err(self.wrong_set())
            };
        }
        self.check_identity()?;
        if !self.identity.sets.contains(&set) {
            return Err(self.wrong_set());
        }
        self.take_lock(set)
    }

    /// Whether the disk was claimed (and so may be written).
    pub fn claimed(&self) -> bool {
        self.lock_claim().is_some()
    }

    /// Gives up the lock.
    pub fn release(&self) {
        *self.lock_claim() = None;
    }

    fn wrong_set(&self) -> Error {
        Error::WrongSet {
            root: self.root.path().into(),
            label: self.identity.label.clone(),
        }
    }

    fn lock_claim(&self) -> std::sync::MutexGuard<'_, Option<Claim>> {
        self.claim.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `coffer/lock` (the one write that does not go through the
    /// seam: the file holds no data).
    fn take_lock(&self, set: uuid::Uuid) -> Result<(), Error> {
        let shown = self.root.show(LOCK);
        self.root
            .create_dir_all(Path::new(COFFER), DIR_MODE)
            .map_err(|e| Error::io("cannot create", &self.root.show(COFFER), e))?;
        let f = self
            .root
            .open_rw(Path::new(LOCK), true)
            .map_err(|e| Error::io("cannot open", &shown, e))?;
        match f.try_lock() {
            Ok(()) => {
                *self.lock_claim() = Some(Claim { _lock: f, set });
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse {
                root: self.root.path().into(),
                label: self.identity.label.clone(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", &shown, e)),
        }
    }

    /// The write seam, once the gate let us through.
    fn gate(&self) -> Result<&dyn DiskIo, Error> {
        if self.claimed() {
            Ok(&*self.io)
        } else {
            Err(Error::NotClaimed {
                root: self.root.path().into(),
                label: self.identity.label.clone(),
            })
        }
    }

    /// Rewrites the identity file (label and quota changes).
    pub fn write_identity(&self) -> Result<(), Error> {
        self.gate()?;
        self.write_identity_file(false)
    }

    fn write_identity_file(&self, fresh: bool) -> Result<(), Error> {
        let io = self.gate()?;
        let rel = Path::new(IDENTITY_FILE);
        let path = self.root.show(IDENTITY_FILE);
        let mut bytes = serde_json::to_vec_pretty(&self.identity)
            .map_err(|e| Error::io("cannot encode", &path, std::io::Error::other(e)))?;
        bytes.push(b'\n');
        // Never write an identity that reading would refuse.
        Identity::parse(&bytes).map_err(|reason| Error::BadIdentity {
            path: path.clone(),
            reason,
        })?;
        let mut f = if fresh {
            io.create_new(&self.root, rel)
        } else {
            io.rewrite(&self.root, rel)
        }
        .map_err(|e| Error::io("cannot write", &path, e))?;
        f.write_all(&bytes)
            .map_err(|e| Error::io("cannot write", &path, e))?;
        f.sync_all()
            .map_err(|e| Error::io("cannot flush", &path, e))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The confined handle on the disk's root.
    pub fn handle(&self) -> &Root {
        &self.root
    }

    pub fn id(&self) -> uuid::Uuid {
        self.identity.disk_id
    }

    pub fn label(&self) -> &str {
        &self.identity.label
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.root.show(OBJECTS)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.show(TMP)
    }

    pub fn bad_dir(&self) -> PathBuf {
        self.root.show(BAD)
    }

    pub fn archives_dir(&self) -> PathBuf {
        self.root.show(ARCHIVES)
    }

    /// Checks that the disk we opened is still the one mounted at its root.
    ///
    /// An unplugged disk can leave its mount point as an empty, writable
    /// folder on the system disk; this is called before each batch of writes.
    pub fn check_identity(&self) -> Result<(), Error> {
        let same = self.root.still_at_path()
            && identity::read(&self.root).is_ok_and(|id| id.disk_id == self.identity.disk_id);
        if same {
            Ok(())
        } else {
            Err(Error::Vanished {
                root: self.root.path().into(),
                label: self.identity.label.clone(),
            })
        }
    }
}

#[cfg(test)]
mod sealed_tests;
#[cfg(test)]
mod tests;
