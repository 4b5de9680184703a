//! Room on a disk, the file system's limits, and a cheap summary of the
//! object store's folders.
//!
//! Invariant: everything here is read through the disk's root descriptor
//! (`fstatvfs`, `fstatfs`, stat relative to it); nothing is written.

use std::path::Path;

use serde::Serialize;

use super::{Disk, Error, OBJECTS};
use crate::object::ObjectId;

/// The largest file FAT32 can hold.
pub const FAT32_MAX_FILE: u64 = 4 * 1024 * 1024 * 1024 - 1;

/// Space on a disk, as Coffer may use it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Space {
    /// Size of the file system.
    pub total: u64,
    /// Free bytes on the file system.
    pub free: u64,
    /// Bytes in Coffer's objects.
    pub used: u64,
    pub quota: Option<u64>,
}

impl Space {
    /// Bytes Coffer may still write: free space, capped by the quota.
    pub fn room(&self) -> u64 {
        match self.quota {
            Some(q) => self.free.min(q.saturating_sub(self.used)),
            None => self.free,
        }
    }
}

impl Disk {
    /// The file system's type (`statfs` magic), if it can be read.
    pub(super) fn fs_magic(&self) -> Option<i64> {
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
        self.root.statfs().ok().map(|s| s.f_type as i64)
    }

    /// The disk's file system, as far as its limits go (read once).
    pub fn fs_kind(&self) -> super::fs::Kind {
        *self
            .kind
            .get_or_init(|| super::fs::kind_of(self.root.path(), self.fs_magic().unwrap_or(0)))
    }

    /// The largest file the disk's file system can hold (or was found to
    /// hold, when a write met its limit).
    pub fn fs_max_file(&self) -> u64 {
        self.fs_kind()
            .max_file()
            .min(self.learned.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// A write was refused at `size` bytes for its size: the file system
    /// holds no more in one file, and later objects are cut before that.
    pub(super) fn learn_max_file(&self, size: u64) {
        self.learned
            .fetch_min(size, std::sync::atomic::Ordering::Relaxed);
    }

    /// The file system's allocation unit (what one small file takes).
    pub fn block_size(&self) -> u64 {
        *self.block.get_or_init(|| {
            self.root
                .statvfs()
                .map(|s| s.f_frsize.max(s.f_bsize).clamp(512, 1 << 20))
                .unwrap_or(4096)
        })
    }

    /// Free space and Coffer's use of it.
    pub fn space(&self, used: u64) -> Result<Space, Error> {
        let st = self
            .root
            .statvfs()
            .map_err(|e| Error::io("cannot stat", self.root.path(), e))?;
        Ok(Space {
            total: st.f_blocks.saturating_mul(st.f_frsize),
            free: st.f_bavail.saturating_mul(st.f_frsize),
            used,
            quota: self.identity.quota,
        })
    }

    /// Objects above this size are written in parts.
    pub fn max_file_size(&self) -> u64 {
        let fs = self.fs_max_file();
        match self.identity.max_file_size {
            Some(m) => m.clamp(1, fs),
            None => fs,
        }
    }

    /// A summary of the object store's folders (identity and change times
    /// of `objects/` and each fan-out folder) that changes whenever an
    /// object is added, removed or renamed, without listing a single object.
    /// `None` when a folder changed too recently for its timestamp to tell
    /// (within the file system's timestamp granularity, 2 s on FAT): then
    /// only a full listing can tell.
    pub fn objects_token(&self) -> Result<Option<String>, Error> {
        let window: i64 = match self.fs_magic() {
            // ext4, xfs, btrfs, tmpfs, f2fs: nanosecond stamps, coarse ticks.
            Some(0xEF53 | 0x5846_5342 | 0x9123_683E | 0x0102_1994 | 0xF2F5_2010) => 100_000_000,
            _ => 2_000_000_000,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let mut summary = Vec::new();
        let mut add = |name: &[u8], m: &rustix::fs::Stat| -> bool {
            let mtime = m.st_mtime * 1_000_000_000 + m.st_mtime_nsec as i64;
            let ctime = m.st_ctime * 1_000_000_000 + m.st_ctime_nsec as i64;
            summary.extend_from_slice(name);
            for n in [m.st_ino as i64, mtime, ctime, m.st_size, m.st_nlink as i64] {
                summary.extend_from_slice(&n.to_le_bytes());
            }
            mtime.max(ctime) < now - window
        };
        let shown = self.root.show(OBJECTS);
        let top = match self.root.stat(Path::new(OBJECTS)) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some("empty".into())),
            Err(e) => return Err(Error::io("cannot read", &shown, e)),
        };
        let mut settled = add(b".", &top);
        let mut subs = self
            .root
            .list_stat(Path::new(OBJECTS))
            .map_err(|e| Error::io("cannot list", &shown, e))?;
        subs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in &subs {
            settled &= add(name.as_encoded_bytes(), meta);
        }
        Ok(settled.then(|| ObjectId::of(&summary).to_hex()))
    }
}
