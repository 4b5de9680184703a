//! The one way into a disk: a folder opened once, under which every path is
//! resolved by the kernel without following a single symlink and without
//! leaving the folder.
//!
//! Each open, create, rename, removal and listing under a disk's root goes
//! through a [`Root`]. Paths are relative and made of plain names only. They
//! are resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`; on a kernel without `openat2` (before 5.6), one
//! component at a time with `O_NOFOLLOW`. A file is read only after `fstat`
//! on its descriptor says it is a regular file (it is opened non-blocking,
//! so a FIFO cannot hang the open), and only up to a cap.
//!
//! `cap-std` offers a confined `Dir` too, but it follows symlinks that stay
//! inside the root; the rule here is stricter (a disk's own symlinks are
//! never followed either), and the kernel's resolve flags give exactly that.
//!
//! Invariant: no operation through a `Root` follows a symlink, reads a file
//! that is not regular, or touches anything outside the root.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Set once `openat2` said ENOSYS: resolve by hand from then on.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

const DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// What kind of entry a name holds, as a listing reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// One entry of a listing.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: OsString,
    pub kind: Kind,
}

/// A disk's root folder, opened once.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
    /// Folders below the root opened before, by path. Most names Coffer
    /// makes land in `coffer/tmp/` or one of 256 fan-out folders, and
    /// resolving the whole path again for each small object was a third of
    /// the kernel's work. Each was opened beneath the root with no symlink
    /// on the way; a name in it is then reached with one `*at` call on a
    /// single plain component (`O_NOFOLLOW`), which cannot leave it.
    dirs: Mutex<HashMap<PathBuf, Arc<OwnedFd>>>,
}

/// Most folders a root keeps open (each is a descriptor).
const DIRS_KEPT: usize = 320;

/// An I/O error whose message says what was found instead of what was
/// expected; `kind` keeps the error matchable.
fn refused(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

/// What a file type is, in words, for "is a …" messages.
pub fn describe(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "an unknown kind of file",
    }
}

/// Checks that `rel` is relative and made of plain names only.
fn check_rel(rel: &Path) -> io::Result<()> {
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain && !rel.as_os_str().is_empty() && !rel.as_os_str().as_bytes().contains(&0) {
        Ok(())
    } else {
        Err(refused(
            io::ErrorKind::InvalidInput,
            "not a plain path inside the disk",
        ))
    }
}

fn split(rel: &Path) -> io::Result<(&Path, &OsStr)> {
    check_rel(rel)?;
    let name = rel.file_name().ok_or_else(|| {
        refused(
            io::ErrorKind::InvalidInput,
            "not a plain path inside the disk",
        )
    })?;
    Ok((rel.parent().unwrap_or(Path::new("")), name))
}

impl Root {
    /// Opens the folder at `path` (as the user or the mount table named it).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        let path = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        Ok(Root {
            path,
            fd,
            dirs: Mutex::default(),
        })
    }

    /// The root as a path, for messages and for the catalog.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as a full path, for messages.
    pub fn show(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Whether the folder at the root's path is still the one opened (an
    /// unplugged disk leaves an empty mount point or nothing behind).
    pub fn still_at_path(&self) -> bool {
        let (Ok(now), Ok(ours)) = (rustix::fs::stat(&self.path), rustix::fs::fstat(&self.fd))
        else {
            return false;
        };
        now.st_dev == ours.st_dev && now.st_ino == ours.st_ino
    }

    /// Opens `rel` (below the root) with `flags`, never through a symlink:
    /// its folder is resolved (or found open), then the name is opened in it.
    fn open_at(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let (parent, name) = split(rel)?;
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        self.in_dir(parent, |dir| rustix::fs::openat(dir, name, flags, mode))
            .map_err(|e| self.explain(rel, e))
    }

    /// Runs `op` in the folder `rel` (the root for ""), opened beneath the
    /// root or kept from before. A kept folder that is gone (ENOENT: someone
    /// removed it meanwhile) is opened again once.
    fn in_dir<T>(&self, rel: &Path, op: impl Fn(&OwnedFd) -> Result<T, Errno>) -> Result<T, Errno> {
        match op(&*self.dir(rel, false)?) {
            Err(Errno::NOENT) => op(&*self.dir(rel, true)?),
            r => r,
        }
    }

    /// The folder `rel` (the root for ""), kept from before unless `fresh`.
    fn dir(&self, rel: &Path, fresh: bool) -> Result<Arc<OwnedFd>, Errno> {
        if !fresh && let Some(d) = self.kept(rel) {
            return Ok(d);
        }
        let d = Arc::new(if rel.as_os_str().is_empty() {
            rustix::io::dup(&self.fd)?
        } else {
            self.resolve_dir(rel)?
        });
        self.keep(rel, d.clone());
        Ok(d)
    }

    fn kept(&self, rel: &Path) -> Option<Arc<OwnedFd>> {
        let dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        dirs.get(rel).cloned()
    }

    fn keep(&self, rel: &Path, d: Arc<OwnedFd>) {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if dirs.len() >= DIRS_KEPT {
            dirs.clear();
        }
        dirs.insert(rel.to_path_buf(), d);
    }

    /// Opens the folder `rel` below the root, never through a symlink.
    fn resolve_dir(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        check_rel(rel).map_err(|_| Errno::INVAL)?;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            match rustix::fs::openat2(&self.fd, rel, DIR, Mode::empty(), RESOLVE) {
                Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // EAGAIN: a rename raced the lookup; once more settles it.
                Err(Errno::AGAIN) => {
                    return rustix::fs::openat2(&self.fd, rel, DIR, Mode::empty(), RESOLVE);
                }
                r => return r,
            }
        }
        // By hand: every folder on the way with O_NOFOLLOW.
        let mut fd = rustix::io::dup(&self.fd)?;
        for c in rel.components() {
            fd = rustix::fs::openat(&fd, c.as_os_str(), DIR, Mode::empty())?;
        }
        Ok(fd)
    }

    /// Turns a resolution error into one that says which name was at fault.
    fn explain(&self, rel: &Path, e: Errno) -> io::Error {
        match e {
            Errno::LOOP | Errno::XDEV | Errno::NOTDIR => {}
            e => return e.into(),
        }
        // Find the first component that is not a plain folder.
        let mut here = PathBuf::new();
        let mut dir = match rustix::io::dup(&self.fd) {
            Ok(d) => d,
            Err(e) => return e.into(),
        };
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            here.push(c);
            let last = i + 1 == comps.len();
            match rustix::fs::statat(&dir, c.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let t = FileType::from_raw_mode(st.st_mode);
                    if t == FileType::Symlink {
                        return refused(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "{} is a symlink, and Coffer never follows a symlink on a disk",
                                self.show(&here).display()
                            ),
                        );
                    }
                    if !last && t != FileType::Directory {
                        return refused(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "{} is {}, not a folder",
                                self.show(&here).display(),
                                describe(t)
                            ),
                        );
                    }
                }
                Err(_) => break,
            }
            if !last {
                match rustix::fs::openat(&dir, c.as_os_str(), DIR, Mode::empty()) {
                    Ok(d) => dir = d,
                    Err(_) => break,
                }
            }
        }
        if e == Errno::XDEV {
            refused(io::ErrorKind::InvalidInput, "it leads outside the disk")
        } else {
            e.into()
        }
    }

    /// Opens a folder below the root (or the root itself for "").
    pub fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return Ok(rustix::io::dup(&self.fd)?);
        }
        self.open_at(rel, DIR, Mode::empty())
    }

    /// Opens a regular file for reading. Anything else (FIFO, device,
    /// socket, folder, symlink) is refused before a byte is read.
    pub fn open_file(&self, rel: &Path) -> io::Result<File> {
        let fd = self.open_at(
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(refused(
                io::ErrorKind::InvalidInput,
                format!("is {}, not a file", describe(t)),
            ));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok(File::from(fd))
    }

    /// Reads a whole regular file of at most `cap` bytes.
    pub fn read_capped(&self, rel: &Path, cap: u64) -> io::Result<Vec<u8>> {
        let f = self.open_file(rel)?;
        let len = f.metadata()?.len();
        if len > cap {
            return Err(refused(
                io::ErrorKind::InvalidData,
                format!("is {len} bytes, more than the {cap} it may be"),
            ));
        }
        let mut out = Vec::with_capacity(len as usize);
        f.take(cap + 1).read_to_end(&mut out)?;
        if out.len() as u64 > cap {
            return Err(refused(
                io::ErrorKind::InvalidData,
                format!("grew past {cap} bytes while it was read"),
            ));
        }
        Ok(out)
    }

    /// What is at `rel` (not following a symlink there).
    pub fn stat(&self, rel: &Path) -> io::Result<rustix::fs::Stat> {
        let (parent, name) = split(rel)?;
        let dir = self.open_dir(parent)?;
        Ok(rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
    }

    /// Lists a folder: names and kinds, `.` and `..` left out.
    pub fn list(&self, rel: &Path) -> io::Result<Vec<Entry>> {
        let fd = self.open_dir(rel)?;
        let stat_fd = rustix::io::dup(&fd)?;
        let mut dir = rustix::fs::Dir::new(fd)?;
        let mut out = Vec::new();
        while let Some(e) = dir.read() {
            let e = e?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_os_string();
            let kind = match e.file_type() {
                FileType::Unknown => rustix::fs::statat(&stat_fd, &name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| Kind::of(FileType::from_raw_mode(st.st_mode)))
                    .unwrap_or(Kind::Other),
                t => Kind::of(t),
            };
            out.push(Entry { name, kind });
        }
        Ok(out)
    }

    /// Sizes and kinds of every entry of a folder, each stat'ed relative to
    /// it (the object store's listing).
    pub fn list_stat(&self, rel: &Path) -> io::Result<Vec<(OsString, rustix::fs::Stat)>> {
        let fd = self.open_dir(rel)?;
        let stat_fd = rustix::io::dup(&fd)?;
        let mut dir = rustix::fs::Dir::new(fd)?;
        let mut out = Vec::new();
        while let Some(e) = dir.read() {
            let e = e?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            match rustix::fs::statat(&stat_fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => out.push((OsStr::from_bytes(name).to_os_string(), st)),
                // Removed while listed.
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Creates a new file (failing if the name exists), mode `mode`.
    pub fn create_new(&self, rel: &Path, mode: u32) -> io::Result<File> {
        let fd = self.open_at(
            rel,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Opens a regular file for rewriting from the start, creating it if
    /// missing. What is there must be a regular file (it is truncated only
    /// after `fstat` said so).
    pub fn rewrite(&self, rel: &Path, mode: u32) -> io::Result<File> {
        let fd = self
            .open_at(
                rel,
                OFlags::WRONLY | OFlags::CREATE | OFlags::NONBLOCK | OFlags::NOCTTY,
                Mode::from_raw_mode(mode),
            )
            .map_err(|e| self.kind_error(rel, e))?;
        let st = rustix::fs::fstat(&fd)?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(refused(
                io::ErrorKind::InvalidInput,
                format!("is {}, not a file", describe(t)),
            ));
        }
        rustix::fs::ftruncate(&fd, 0)?;
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok(File::from(fd))
    }

    /// Opens an existing regular file for writing without truncating it
    /// (the lock file; the fault injector's simulated power loss).
    pub fn open_rw(&self, rel: &Path, create: bool) -> io::Result<File> {
        let mut flags = OFlags::RDWR | OFlags::NONBLOCK | OFlags::NOCTTY;
        if create {
            flags |= OFlags::CREATE;
        }
        let fd = self
            .open_at(rel, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.kind_error(rel, e))?;
        let st = rustix::fs::fstat(&fd)?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(refused(
                io::ErrorKind::InvalidInput,
                format!("is {}, not a file", describe(t)),
            ));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok(File::from(fd))
    }

    /// An open for writing failed: if a special file is in the way (a FIFO
    /// with no reader gives ENXIO), say what it is.
    fn kind_error(&self, rel: &Path, e: io::Error) -> io::Error {
        match self.stat(rel) {
            Ok(st) => {
                let t = FileType::from_raw_mode(st.st_mode);
                if t == FileType::RegularFile {
                    e
                } else {
                    refused(
                        io::ErrorKind::InvalidInput,
                        format!("is {}, not a file", describe(t)),
                    )
                }
            }
            Err(_) => e,
        }
    }

    /// Renames `from` to `to`, both below the root (replacing a file at `to`).
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (fp, fname) = split(from)?;
        let (tp, tname) = split(to)?;
        let attempt = |fresh| {
            let (f, t) = (self.dir(fp, fresh)?, self.dir(tp, fresh)?);
            rustix::fs::renameat(&*f, fname, &*t, tname)
        };
        match attempt(false) {
            Err(Errno::NOENT) => attempt(true),
            r => r,
        }
        .map_err(|e| self.explain(from, e))
    }

    /// Removes a name (a file or a symlink itself; never what it points to).
    pub fn remove_file(&self, rel: &Path) -> io::Result<()> {
        let (parent, name) = split(rel)?;
        self.in_dir(parent, |d| rustix::fs::unlinkat(d, name, AtFlags::empty()))
            .map_err(|e| self.explain(rel, e))
    }

    /// Makes `rel` and the folders above it (mode `mode`); each must be a
    /// real folder, never a symlink to one.
    pub fn create_dir_all(&self, rel: &Path, mode: u32) -> io::Result<()> {
        check_rel(rel)?;
        // Made or opened before, and still linked (a folder removed since
        // has no links left).
        let kept = self.kept(rel);
        if kept.is_some_and(|d| rustix::fs::fstat(&*d).is_ok_and(|st| st.st_nlink > 0)) {
            return Ok(());
        }
        let mut fd = rustix::io::dup(&self.fd)?;
        let mut here = PathBuf::new();
        for c in rel.components() {
            here.push(c);
            let name = c.as_os_str();
            match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            fd = rustix::fs::openat(&fd, name, DIR, Mode::empty())
                .map_err(|e| self.explain(&here, e))?;
        }
        self.keep(rel, Arc::new(fd));
        Ok(())
    }

    /// Flushes everything written on the root's file system.
    pub fn sync_fs(&self) -> io::Result<()> {
        Ok(rustix::fs::syncfs(&self.fd)?)
    }

    pub fn statvfs(&self) -> io::Result<rustix::fs::StatVfs> {
        Ok(rustix::fs::fstatvfs(&self.fd)?)
    }

    pub fn statfs(&self) -> io::Result<rustix::fs::StatFs> {
        Ok(rustix::fs::fstatfs(&self.fd)?)
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
#[path = "root_tests.rs"]
mod tests;
