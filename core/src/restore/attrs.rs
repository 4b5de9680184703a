//! What a restored thing gets beyond its bytes, mode and mtime: its owner
//! (as root; by recorded name where this computer knows the name, else by
//! id), its extended attributes and ACLs, holes where it had them;
//! and the tally of what the destination could not hold, told at the end
//! in one line per kind.
//!
//! Order matters on each descriptor: owner first (`chown` clears setuid
//! and setgid), then the attributes (an access ACL sets the group bits),
//! then the mode, whose group bits are the ACL's mask again.
//!
//! Invariant: privileged attributes (`security.*`, `trusted.*`) and device
//! nodes come only from this computer's own catalog, or when the user keeps
//! special bits; nothing here fails a restore because the destination
//! cannot hold something: that is counted and told.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;

use super::select::Entry;
use crate::catalog::{Catalog, Version};
use crate::meta::Xattrs;
use crate::meta::owner::{Of, local_id};
use crate::meta::xattr::apply_fd;

/// What a destination could not hold, counted as the restore goes.
#[derive(Debug, Default)]
pub(super) struct Tally {
    xattrs: AtomicU64,
    acls: AtomicU64,
    owners: AtomicU64,
    pub(super) links: AtomicU64,
    holes: AtomicU64,
    nodes: AtomicU64,
    symlinks: AtomicU64,
    modes: AtomicU64,
    devices_not_root: AtomicU64,
    withheld: AtomicU64,
    xattr_failed: AtomicU64,
}

fn add(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

/// What a restore gives back beyond bytes, and where it may.
pub(super) struct Fidelity {
    /// Running as root: owners are given back, device nodes made.
    pub(super) root: bool,
    /// The catalog is this computer's own, or the user keeps special bits:
    /// privileged attributes and device nodes may be restored.
    pub(super) trusted: bool,
    /// The destination's file system holds links, attributes, holes,
    /// special files and owners (not FAT32 or exFAT).
    pub(super) unix: bool,
    pub(super) fs_name: &'static str,
    sets: HashMap<i64, Arc<Xattrs>>,
    /// Recorded ids to the ids given back: by recorded name where this
    /// computer knows it, else the same id.
    uids: HashMap<u32, u32>,
    gids: HashMap<u32, u32>,
    pub(super) tally: Tally,
}

impl Fidelity {
    /// Loads the attribute sets the entries refer to (decoded under caps:
    /// a catalog copy from a disk may hold anything).
    pub(super) fn new(
        catalog: &Catalog,
        entries: &[Entry],
        trusted: bool,
        fs: crate::disk::fs::Kind,
    ) -> crate::Result<Fidelity> {
        let mut sets = HashMap::new();
        for id in entries.iter().filter_map(|e| e.version.attrs.xattrs) {
            if let std::collections::hash_map::Entry::Vacant(v) = sets.entry(id)
                && let Some(x) = catalog.xattr_set(id)?
            {
                v.insert(Arc::new(x));
            }
        }
        let (mut uids, mut gids) = (HashMap::new(), HashMap::new());
        for e in entries {
            if let Some(u) = e.version.attrs.uid
                && !uids.contains_key(&u)
            {
                let name = catalog.owner_name(Of::User, u)?;
                uids.insert(u, local_id(Of::User, u, name.as_deref()));
            }
            if let Some(g) = e.version.attrs.gid
                && !gids.contains_key(&g)
            {
                let name = catalog.owner_name(Of::Group, g)?;
                gids.insert(g, local_id(Of::Group, g, name.as_deref()));
            }
        }
        Ok(Fidelity {
            root: crate::meta::owner::is_root(),
            trusted,
            unix: fs.unix(),
            fs_name: match fs {
                crate::disk::fs::Kind::Other(_) => "this file system",
                k => k.name(),
            },
            sets,
            uids,
            gids,
            tally: Tally::default(),
        })
    }

    /// The owner and group `v` is given back, when they are (as root, for a
    /// version that recorded them).
    fn owner(&self, v: &Version) -> Option<(rustix::fs::Uid, rustix::fs::Gid)> {
        let (uid, gid) = (v.attrs.uid?, v.attrs.gid?);
        if !self.root {
            return None;
        }
        let uid = self.uids.get(&uid).copied().unwrap_or(uid);
        let gid = self.gids.get(&gid).copied().unwrap_or(gid);
        // FAT32 and exFAT hold no owners: whatever is owned by another
        // than this user loses its owner, and is counted; nothing is tried.
        if !self.unix {
            let me = (rustix::process::geteuid(), rustix::process::getegid());
            if (uid, gid) != (me.0.as_raw(), me.1.as_raw()) {
                add(&self.tally.owners);
            }
            return None;
        }
        Some((
            rustix::fs::Uid::from_raw(uid),
            rustix::fs::Gid::from_raw(gid),
        ))
    }

    /// Gives the open file or folder `fd` its owner (as root) and its
    /// attributes; the caller sets its mode and mtime next.
    pub(super) fn apply(&self, fd: BorrowedFd<'_>, v: &Version) {
        if let Some((uid, gid)) = self.owner(v)
            && rustix::fs::fchown(fd, Some(uid), Some(gid)).is_err()
        {
            add(&self.tally.owners);
        }
        let Some(x) = v.attrs.xattrs.and_then(|id| self.sets.get(&id)) else {
            return;
        };
        let done = apply_fd(fd, x, self.root && self.trusted);
        if done.unsupported {
            add(&self.tally.xattrs);
            if x.has_acl() {
                add(&self.tally.acls);
            }
        }
        if done.withheld {
            add(&self.tally.withheld);
        }
        if done.failed {
            add(&self.tally.xattr_failed);
        }
    }

    /// Owner of a symlink or special file, by name in its folder.
    pub(super) fn chown_at(&self, dir: BorrowedFd<'_>, name: &std::ffi::OsStr, v: &Version) {
        if let Some((uid, gid)) = self.owner(v)
            && rustix::fs::chownat(
                dir,
                name,
                Some(uid),
                Some(gid),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .is_err()
        {
            add(&self.tally.owners);
        }
    }

    /// Whether a sparse file is written with holes here; when not, it is
    /// counted as written in full.
    pub(super) fn holes_for(&self, v: &Version) -> bool {
        if v.attrs.sparse && !self.unix {
            add(&self.tally.holes);
        }
        v.attrs.sparse && self.unix
    }

    /// A FIFO or device node that could not be made: `e` is why.
    pub(super) fn node_refused(&self, device: bool, e: Errno) {
        if device && !self.root {
            add(&self.tally.devices_not_root);
        } else if !self.unix || matches!(e, Errno::PERM | Errno::OPNOTSUPP | Errno::NOSYS) {
            add(&self.tally.nodes);
        } else {
            add(&self.tally.xattr_failed);
        }
    }

    /// After its mode was set: counts a file or folder that did not get
    /// it (FAT32 and exFAT keep a read-only flag, not a Unix mode).
    pub(super) fn mode_kept(&self, fd: BorrowedFd<'_>, v: &Version) {
        if self.unix {
            return;
        }
        let mask = if self.trusted { 0o7777 } else { 0o777 };
        if rustix::fs::fstat(fd).is_ok_and(|st| st.st_mode & 0o7777 != v.mode & mask) {
            add(&self.tally.modes);
        }
    }

    /// A symlink the destination cannot hold (FAT32, exFAT), not made.
    pub(super) fn symlink_not_held(&self) {
        add(&self.tally.symlinks);
    }

    /// A device node from a catalog that is not this computer's, left out.
    pub(super) fn device_withheld(&self) {
        add(&self.tally.withheld);
    }

    /// One line per kind of thing the destination did not take, in the
    /// words the CLI and the window show.
    pub(super) fn notices(&self) -> Vec<String> {
        self.not_held().lines(self.fs_name)
    }

    /// The tally for the report.
    pub(super) fn not_held(&self) -> super::NotHeld {
        let t = &self.tally;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        super::NotHeld {
            links_copied: n(&t.links),
            xattrs: n(&t.xattrs),
            acls: n(&t.acls),
            holes: n(&t.holes),
            special: n(&t.nodes),
            symlinks: n(&t.symlinks),
            modes: n(&t.modes),
            owners: n(&t.owners),
            devices_not_root: n(&t.devices_not_root),
            withheld: n(&t.withheld),
            failed: n(&t.xattr_failed),
        }
    }
}

/// What a destination could not hold: counts of files restored without
/// it. None of it makes a restore incomplete; each kind is told once.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NotHeld {
    /// Hard links written as separate copies.
    pub links_copied: u64,
    /// Files restored without their extended attributes.
    pub xattrs: u64,
    /// Of those, files with ACLs.
    pub acls: u64,
    /// Sparse files written in full.
    pub holes: u64,
    /// FIFOs and device nodes not made.
    pub special: u64,
    /// Symlinks not made.
    pub symlinks: u64,
    /// Files and folders given the file system's own permissions.
    pub modes: u64,
    /// Files left owned by this user (as root).
    pub owners: u64,
    /// Device nodes not made: only root makes them.
    pub devices_not_root: u64,
    /// Files whose device node or privileged attributes were left out:
    /// the catalog is not this computer's.
    pub withheld: u64,
    /// Attributes or special files refused for another reason.
    pub failed: u64,
}

impl NotHeld {
    /// One line per kind of thing the destination did not take, in the
    /// words the CLI and the window show; `fs` names its file system.
    pub fn lines(&self, fs: &str) -> Vec<String> {
        let mut out = Vec::new();
        let count = crate::human::count;
        if self.links_copied > 0 {
            out.push(format!(
                "{} written as separate copies: {fs} cannot hold hard links",
                count(self.links_copied, "hard link")
            ));
        }
        if self.xattrs > 0 {
            let acl = if self.acls > 0 {
                format!(" ({} with ACLs)", self.acls)
            } else {
                String::new()
            };
            out.push(format!(
                "{}{acl} restored without their extended attributes: {fs} cannot hold them",
                count(self.xattrs, "file")
            ));
        }
        if self.holes > 0 {
            out.push(format!(
                "{} written in full: {fs} cannot hold holes",
                count(self.holes, "sparse file")
            ));
        }
        if self.special > 0 {
            out.push(format!(
                "{} not made: {fs} cannot hold them",
                count(self.special, "FIFO or device node")
            ));
        }
        if self.symlinks > 0 {
            out.push(format!(
                "{} not made: {fs} cannot hold them",
                count(self.symlinks, "symlink")
            ));
        }
        if self.modes > 0 {
            let what = match self.modes {
                1 => "1 file or folder".to_string(),
                k => format!("{k} files and folders"),
            };
            out.push(format!(
                "{what} given {fs}'s own permissions: {fs} cannot hold Unix modes"
            ));
        }
        if self.owners > 0 {
            out.push(format!(
                "{} kept this user as owner: {fs} cannot hold owners",
                count(self.owners, "file")
            ));
        }
        if self.devices_not_root > 0 {
            out.push(format!(
                "{} not made: only root can make them",
                count(self.devices_not_root, "device node")
            ));
        }
        if self.withheld > 0 {
            out.push(format!(
                "{} left out their privileged parts (device nodes, security.* and trusted.* attributes): the catalog is not this computer's (--keep-special-bits keeps them)",
                count(self.withheld, "file")
            ));
        }
        if self.failed > 0 {
            out.push(format!(
                "{} refused by {fs} for another reason (a value too large for it, or no permission)",
                count(self.failed, "extended attribute or special file")
            ));
        }
        out
    }
}
