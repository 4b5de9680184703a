//! The destination writer: every file, folder and symlink a restore makes,
//! from disks or from archives, is written here, beneath one root opened
//! once as a directory descriptor.
//!
//! Folders are opened beneath the root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`, or one component at a time with `O_NOFOLLOW`
//! where the kernel lacks it, so no parent can be a symlink, whether it was
//! there before or appeared during the restore. Missing folders are made
//! 0700; callers give them their recorded mode at the end. Files are created
//! `O_EXCL | O_NOFOLLOW`, 0600, under a temp name, flushed by the caller (one
//! `syncfs` per batch), and put in place with `RENAME_NOREPLACE` (link +
//! unlink where the file system lacks it). The only name ever replaced is an
//! existing regular file that the caller chose to replace. Modes and times
//! are set through descriptors, and setuid, setgid and sticky bits only when
//! the caller keeps them.
//!
//! Invariant: nothing is written outside the destination; no existing file
//! is replaced without the user's choice.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Stat, Timespec, Timestamps,
};
use rustix::io::Errno;

use super::{Error, errno_err};
use crate::object::ObjectId;

pub(crate) const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

const NEW_FILE: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Set once `openat2` proved unavailable (an old kernel, or a sandbox that
/// filters it); every folder is then opened one component at a time.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A name no restore has used yet, hidden and recognisable as Coffer's.
pub(crate) fn tmp_name(suffix: &str) -> OsString {
    OsString::from(format!(
        ".coffer-restore-{}-{}.{suffix}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The permission bits to give a restored file or folder: setuid, setgid
/// and sticky only when kept, as GNU tar does for ordinary users.
pub(crate) fn mode_bits(mode: u32, keep_special: bool) -> Mode {
    let mask = if keep_special { 0o7777 } else { 0o777 };
    Mode::from_raw_mode(mode & mask)
}

pub(crate) fn timestamps(mtime_ns: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// A destination root, opened once.
pub(crate) struct Dest {
    root: PathBuf,
    fd: OwnedFd,
}

impl std::fmt::Debug for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Dest").field(&self.root()).finish()
    }
}

impl Dest {
    /// Creates `path` if it is missing (returning the folders made, outermost
    /// first, so a failed restore can take them away again), resolves it
    /// once (a symlink the user named is followed here, and never below) and
    /// opens it.
    pub(crate) fn create(path: &Path) -> Result<(Dest, Vec<PathBuf>), Error> {
        let mut missing = Vec::new();
        let mut p = path;
        while std::fs::symlink_metadata(p).is_err() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(q) if !q.as_os_str().is_empty() => p = q,
                _ => break,
            }
        }
        missing.reverse();
        let mut made = Vec::new();
        for m in missing {
            match std::fs::create_dir(&m) {
                Ok(()) => made.push(m),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "cannot create folder",
                        path: m,
                        source,
                    });
                }
            }
        }
        let root = std::fs::canonicalize(path).map_err(|source| Error::Io {
            op: "cannot open",
            path: path.to_path_buf(),
            source,
        })?;
        let fd = rustix::fs::open(&root, DIR_FLAGS, Mode::empty())
            .map_err(errno_err("cannot open folder", &root))?;
        Ok((Dest { root, fd }, made))
    }

    /// Opens `path` when it exists, resolving it once like
    /// [`create`](Self::create); `None` when it is missing. Makes nothing.
    pub(crate) fn open(path: &Path) -> Result<Option<Dest>, Error> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    op: "cannot open",
                    path: path.to_path_buf(),
                    source,
                });
            }
            Ok(_) => {}
        }
        let root = std::fs::canonicalize(path).map_err(|source| Error::Io {
            op: "cannot open",
            path: path.to_path_buf(),
            source,
        })?;
        let fd = rustix::fs::open(&root, DIR_FLAGS, Mode::empty())
            .map_err(errno_err("cannot open folder", &root))?;
        Ok(Some(Dest { root, fd }))
    }

    /// Where [`create`](Self::create) would put the missing folder `path`:
    /// its nearest existing parent resolved, the missing names after it.
    /// Refused, as `create` would refuse it, when that parent is no folder.
    pub(crate) fn would_create(path: &Path) -> Result<PathBuf, Error> {
        let mut rest = Vec::new();
        let mut p = path;
        while std::fs::symlink_metadata(p).is_err() {
            rest.push(p.file_name().unwrap_or_default().to_os_string());
            match p.parent() {
                Some(q) if !q.as_os_str().is_empty() => p = q,
                _ => break,
            }
        }
        let mut root = std::fs::canonicalize(p).map_err(|source| Error::Io {
            op: "cannot open",
            path: p.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(Error::Io {
                op: "cannot create folder",
                path: p.join(rest.last().cloned().unwrap_or_default()),
                source: Errno::NOTDIR.into(),
            });
        }
        root.extend(rest.iter().rev());
        Ok(root)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Flushes the destination's file system: the one `syncfs` of a batch.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        rustix::fs::syncfs(&self.fd).map_err(errno_err("cannot flush", &self.root))
    }

    /// Bytes free for this user on the destination's file system (root may
    /// use the blocks kept for it).
    pub(crate) fn free_bytes(&self) -> Option<u64> {
        let s = rustix::fs::fstatvfs(&self.fd).ok()?;
        let blocks = if rustix::process::geteuid().is_root() {
            s.f_bfree
        } else {
            s.f_bavail
        };
        Some(blocks.saturating_mul(s.f_frsize))
    }

    /// Opens the folder `rel` beneath the root, never through a symlink;
    /// creates missing folders (0700) when `create`. `None` when a folder is
    /// missing and `create` is false.
    pub(crate) fn dir(&self, rel: &Path, create: bool) -> Result<Option<Dir>, Error> {
        let path = self.root.join(rel);
        plain(rel, &path)?;
        if rel.as_os_str().is_empty() {
            let fd = rustix::io::dup(&self.fd).map_err(errno_err("cannot open", &self.root))?;
            return Ok(Some(Dir { fd, path }));
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            match rustix::fs::openat2(&self.fd, rel, DIR_FLAGS, Mode::empty(), BENEATH) {
                Ok(fd) => return Ok(Some(Dir { fd, path })),
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(Errno::NOSYS | Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // A folder to make, or a symlink or file to name exactly:
                // the walk below does both.
                Err(_) => {}
            }
        }
        self.walk(rel, create, path)
    }

    /// Opens `rel` one component at a time with `O_NOFOLLOW`.
    fn walk(&self, rel: &Path, create: bool, path: PathBuf) -> Result<Option<Dir>, Error> {
        let mut fd = rustix::io::dup(&self.fd).map_err(errno_err("cannot open", &self.root))?;
        let mut here = self.root.clone();
        for c in rel.components() {
            let name = c.as_os_str();
            here.push(name);
            let next = match rustix::fs::openat(&fd, name, DIR_FLAGS, Mode::empty()) {
                Ok(f) => f,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno_err("cannot create folder", &here)(e)),
                    }
                    rustix::fs::openat(&fd, name, DIR_FLAGS, Mode::empty())
                        .map_err(|e| dir_error(&here, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(dir_error(&here, e)),
            };
            fd = next;
        }
        Ok(Some(Dir { fd, path }))
    }
}

/// Refuses anything in `rel` but plain names: callers check names before,
/// and the writer does not rely on it.
fn plain(rel: &Path, path: &Path) -> Result<(), Error> {
    for c in rel.components() {
        match c {
            Component::Normal(n) if !n.as_bytes().contains(&0) => {}
            other => {
                return Err(Error::Unsafe {
                    path: path.to_path_buf(),
                    reason: format!(
                        "its name holds `{}`, which would lead outside the destination",
                        other.as_os_str().to_string_lossy()
                    ),
                });
            }
        }
    }
    Ok(())
}

fn dir_error(here: &Path, e: Errno) -> Error {
    match e {
        Errno::LOOP | Errno::NOTDIR => Error::Unsafe {
            path: here.to_path_buf(),
            reason: if e == Errno::LOOP
                || std::fs::symlink_metadata(here).is_ok_and(|m| m.is_symlink())
            {
                "it is a symlink, and nothing is ever written through one".into()
            } else {
                "it is not a folder".into()
            },
        },
        e => errno_err("cannot open folder", here)(e),
    }
}

/// A folder beneath the destination root, open.
pub(crate) struct Dir {
    fd: OwnedFd,
    /// Where it is, for messages.
    path: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// What is at `name` now (not following symlinks).
    pub(crate) fn stat(&self, name: &OsStr) -> Option<Stat> {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()
    }

    /// The target of the symlink at `name`, if it is one.
    pub(crate) fn link_target(&self, name: &OsStr) -> Option<PathBuf> {
        rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .ok()
            .map(|t| PathBuf::from(OsString::from_vec(t.into_bytes())))
    }

    /// Whether `name` is a regular file holding `size` bytes of `hash`.
    pub(crate) fn holds(&self, name: &OsStr, size: u64, hash: Option<ObjectId>) -> bool {
        let Ok(fd) = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return false;
        };
        let mut f = File::from(fd);
        match crate::object::hash_reader(&mut f, |_| Ok(())) {
            Ok((h, n)) => n == size && Some(h) == hash.or(Some(ObjectId::of(b""))),
            Err(_) => false,
        }
    }

    /// Creates a new empty file (0600) under a temp name; `shown` names it
    /// in errors.
    pub(crate) fn create_tmp(&self, shown: &Path) -> Result<(OsString, File), Error> {
        let tmp = tmp_name("tmp");
        let fd = rustix::fs::openat(&self.fd, &tmp, NEW_FILE, Mode::from_raw_mode(0o600))
            .map_err(errno_err("cannot create", shown))?;
        Ok((tmp, File::from(fd)))
    }

    /// Opens a file this restore made (a temp name) to read it.
    pub(crate) fn open_tmp(&self, name: &OsStr, shown: &Path) -> Result<File, Error> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_err("cannot open", shown))?;
        Ok(File::from(fd))
    }

    /// Removes a temp name of this restore; what cannot be removed is left.
    pub(crate) fn remove(&self, name: &OsStr) {
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
    }

    /// Makes the folder `name` (0700). True when it was made, false when a
    /// folder was already there (anything else there is refused).
    pub(crate) fn make_dir(&self, name: &OsStr, shown: &Path) -> Result<bool, Error> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())
            {
                Ok(_) => Ok(false),
                Err(e) => Err(dir_error(shown, e)),
            },
            Err(e) => Err(errno_err("cannot create folder", shown)(e)),
        }
    }

    /// Makes the symlink `name` → `target` with `mtime_ns`: under a temp
    /// name, given its owner by `owner`, then put in place like a file.
    pub(crate) fn make_symlink(
        &self,
        target: &OsStr,
        name: &OsStr,
        mtime_ns: i64,
        replace: bool,
        shown: &Path,
        owner: impl FnOnce(BorrowedFd<'_>, &OsStr),
    ) -> Result<(), Error> {
        let tmp = tmp_name("tmp");
        rustix::fs::symlinkat(target, &self.fd, &tmp)
            .map_err(errno_err("cannot create symlink", shown))?;
        owner(self.fd.as_fd(), &tmp);
        let _ = rustix::fs::utimensat(
            &self.fd,
            &tmp,
            &timestamps(mtime_ns),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        put_in_place(self, &tmp, self, name, replace, shown).inspect_err(|_| self.remove(&tmp))
    }

    /// Gives this folder its recorded mode and mtime.
    pub(crate) fn set_meta(
        &self,
        mode: u32,
        mtime_ns: i64,
        keep_special: bool,
    ) -> Result<(), Error> {
        held(
            &self.fd,
            rustix::fs::futimens(&self.fd, &timestamps(mtime_ns)),
        )
        .map_err(errno_err("cannot set the time of", &self.path))?;
        held(
            &self.fd,
            rustix::fs::fchmod(&self.fd, mode_bits(mode, keep_special)),
        )
        .map_err(errno_err("cannot set the mode of", &self.path))
    }

    /// Lets the owner write into a folder that an earlier restore finished
    /// (and perhaps made read-only); callers set its mode again at the end.
    pub(crate) fn make_writable(&self) {
        if let Ok(st) = rustix::fs::fstat(&self.fd)
            && st.st_mode & 0o700 != 0o700
        {
            let _ =
                rustix::fs::fchmod(&self.fd, Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700));
        }
    }
}

/// Gives a restored file its mode and (when known) mtime, through its
/// descriptor.
pub(crate) fn set_file_meta(
    f: &File,
    mode: u32,
    mtime_ns: Option<i64>,
    keep_special: bool,
    shown: &Path,
) -> Result<(), Error> {
    held(
        f,
        rustix::fs::fchmod(f.as_fd(), mode_bits(mode, keep_special)),
    )
    .map_err(errno_err("cannot set the mode of", shown))?;
    if let Some(t) = mtime_ns {
        held(f, rustix::fs::futimens(f.as_fd(), &timestamps(t)))
            .map_err(errno_err("cannot set the time of", shown))?;
    }
    Ok(())
}

/// Setting a mode or a time, where the file system has none to set: a
/// FUSE driver that does not implement it (fusefat), or the kernel's FAT
/// refusing a mode it cannot show. The file keeps what the file system
/// gives it, and the restore says so once (`attrs`); anything else is an
/// error.
fn held(fd: impl AsFd, r: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match r {
        Err(Errno::NOSYS | Errno::OPNOTSUPP) => Ok(()),
        Err(Errno::PERM)
            if rustix::fs::fstatfs(fd).is_ok_and(|s| {
                #[allow(clippy::unnecessary_cast)]
                let magic = s.f_type as i64;
                !crate::disk::fs::kind_of(Path::new("/"), magic).unix()
            }) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// Renames `from_name` in `from` to `to_name` in `to` without replacing
/// anything: `RENAME_NOREPLACE`, or link + unlink where unsupported. With
/// `replace`, an existing regular file (and nothing else) is replaced.
pub(crate) fn put_in_place(
    from: &Dir,
    from_name: &OsStr,
    to: &Dir,
    to_name: &OsStr,
    replace: bool,
    shown: &Path,
) -> Result<(), Error> {
    let appeared = || Error::Unsafe {
        path: shown.to_path_buf(),
        reason: "something appeared under this name during the restore; it was left alone".into(),
    };
    if replace {
        match to.stat(to_name) {
            Some(st) if file_type(&st) == FileType::RegularFile => {
                return rustix::fs::renameat(&from.fd, from_name, &to.fd, to_name)
                    .map_err(errno_err("cannot rename", shown));
            }
            Some(_) => {
                return Err(Error::Unsafe {
                    path: shown.to_path_buf(),
                    reason: "it is no longer a regular file; it was left alone".into(),
                });
            }
            // Gone meanwhile: nothing to replace.
            None => {}
        }
    }
    match rustix::fs::renameat_with(&from.fd, from_name, &to.fd, to_name, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(appeared()),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            match rustix::fs::linkat(&from.fd, from_name, &to.fd, to_name, AtFlags::empty()) {
                Ok(()) => rustix::fs::unlinkat(&from.fd, from_name, AtFlags::empty())
                    .map_err(errno_err("cannot remove", shown)),
                Err(Errno::EXIST) => Err(appeared()),
                // No hard links either (FAT through FUSE): a plain rename
                // once nothing is there. Only this restore writes into its
                // temp names' folder, so the gap is another program's race.
                Err(Errno::PERM | Errno::OPNOTSUPP | Errno::NOSYS)
                    if to.stat(to_name).is_none() =>
                {
                    rustix::fs::renameat(&from.fd, from_name, &to.fd, to_name)
                        .map_err(errno_err("cannot rename", shown))
                }
                Err(e) => Err(errno_err("cannot rename", shown)(e)),
            }
        }
        Err(e) => Err(errno_err("cannot rename", shown)(e)),
    }
}

mod special;
mod staging;
pub(crate) use special::Node;
pub(crate) use staging::{Staging, move_in};
#[cfg(test)]
mod tests;
