//! The one seam every write to a backup disk goes through.
//!
//! [`RealIo`] talks to the file system. [`FaultyIo`] wraps it for tests and
//! fails the N-th operation: an error once or for good, a full disk, a disk
//! that vanished, or a crash that loses every write not yet flushed.
//!
//! Every operation takes the disk's confined [`Root`] and a path relative
//! to it, so the seam itself cannot reach outside a disk or through a
//! symlink on it.
//!
//! Invariant: code that writes to a disk holds an `Arc<dyn DiskIo>` and never
//! calls `std::fs` write functions on disk paths directly.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::root::Root;
use super::{DIR_MODE, FILE_MODE};

/// A file being written through the seam.
pub trait IoFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Writes `buf` at `offset`, wherever the file's position is.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn sync_all(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (what was written past a limit).
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// The file's length now.
    fn size(&mut self) -> io::Result<u64>;
    /// Moves `n` bytes on without writing them: a hole where the file
    /// system makes holes. A file that ends in one is given its length
    /// with [`set_len`](Self::set_len). By default zeros are written.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let zeros = [0u8; 8192];
        let mut left = n;
        while left > 0 {
            let take = left.min(zeros.len() as u64) as usize;
            self.write_all(&zeros[..take])?;
            left -= take as u64;
        }
        Ok(())
    }
    /// Starts writing what was written out to the device, without waiting,
    /// so the flush that makes a batch durable finds most of it done.
    /// Advisory: the file system may ignore it.
    fn start_flush(&mut self) {}
}

/// Every write operation Coffer does on a backup disk, on paths relative
/// to the disk's confined [`Root`] (which never follows a symlink).
pub trait DiskIo: Send + Sync + std::fmt::Debug {
    fn create_dir_all(&self, root: &Root, rel: &Path) -> io::Result<()>;
    /// Creates a new file (mode 0600), failing if the name exists.
    fn create_new(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>>;
    /// Opens a regular file for rewriting from the start (truncates it).
    fn rewrite(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>>;
    /// Opens an existing regular file to add to its end (a copy resumed
    /// after an interruption).
    fn append(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>>;
    /// Opens an existing regular file to change in place ([`IoFile::write_at`]).
    fn update(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>>;
    fn rename(&self, root: &Root, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, root: &Root, rel: &Path) -> io::Result<()>;
    /// Flushes everything written on the root's file system (`syncfs`):
    /// data of files and names of renames alike.
    fn sync_fs(&self, root: &Root) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealIo;

/// A file on a disk and how much was written to it through this handle.
struct RealFile(File, u64);

/// Below this, a copy's pages are left to the batch's `syncfs`: advising
/// the kernel per small file cost more than it saved.
const ADVISE_FROM: u64 = 1 << 20;

impl IoFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.0, buf)?;
        self.1 += buf.len() as u64;
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)?;
        self.1 += buf.len() as u64;
        Ok(())
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let by = i64::try_from(n).map_err(io::Error::other)?;
        std::io::Seek::seek(&mut self.0, std::io::SeekFrom::Current(by)).map(|_| ())
    }
    fn start_flush(&mut self) {
        if self.1 < ADVISE_FROM {
            return;
        }
        // On Linux this starts writeback of the file's dirty pages and does
        // not wait for it; pages already written are dropped from the cache,
        // where a backup copy has no business staying.
        let _ = rustix::fs::fadvise(&self.0, 0, None, rustix::fs::Advice::DontNeed);
    }
}

impl DiskIo for RealIo {
    fn create_dir_all(&self, root: &Root, rel: &Path) -> io::Result<()> {
        root.create_dir_all(rel, DIR_MODE)
    }
    fn create_new(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        Ok(Box::new(RealFile(root.create_new(rel, FILE_MODE)?, 0)))
    }
    fn rewrite(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        Ok(Box::new(RealFile(root.rewrite(rel, FILE_MODE)?, 0)))
    }
    fn append(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        let mut f = root.open_rw(rel, false)?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0))?;
        Ok(Box::new(RealFile(f, 0)))
    }
    fn update(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        Ok(Box::new(RealFile(root.open_rw(rel, false)?, 0)))
    }
    fn rename(&self, root: &Root, from: &Path, to: &Path) -> io::Result<()> {
        root.rename(from, to)
    }
    fn remove_file(&self, root: &Root, rel: &Path) -> io::Result<()> {
        root.remove_file(rel)
    }
    fn sync_fs(&self, root: &Root) -> io::Result<()> {
        root.sync_fs()
    }
}

/// Shared handle to the real file system.
pub fn real() -> Arc<dyn DiskIo> {
    Arc::new(RealIo)
}

/// Writes a file on the workstation atomically: temp name, fsync, rename,
/// fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".coffer-tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// What [`FaultyIo`] does when its counter reaches the chosen operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// That one operation fails with an I/O error; later ones work.
    ErrorOnce,
    /// That operation and every later one fail.
    ErrorForever,
    /// Writes fail with "no space left on device" from then on.
    NoSpace,
    /// The disk is gone: every operation fails with "no such device".
    Vanish,
    /// The machine stops: files written but not flushed lose their data, and
    /// every later operation fails.
    Crash,
    /// No file may grow past this many bytes: a write across it stores what
    /// fits and fails with EFBIG, as on FAT32 (`at` is not used).
    FileLimit(u64),
}

#[derive(Debug, Default)]
struct FaultState {
    ops: u64,
    tripped: bool,
    /// Files written but not flushed: the root they are under, and where.
    unsynced: Vec<(PathBuf, PathBuf)>,
}

/// A [`DiskIo`] that injects `fault` at operation number `at` (1-based).
#[derive(Debug, Clone)]
pub struct FaultyIo {
    inner: Arc<dyn DiskIo>,
    at: u64,
    fault: Fault,
    state: Arc<Mutex<FaultState>>,
}

impl FaultyIo {
    pub fn new(at: u64, fault: Fault) -> FaultyIo {
        FaultyIo {
            inner: real(),
            at,
            fault,
            state: Arc::default(),
        }
    }

    /// Operations counted so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Whether the fault has fired.
    pub fn tripped(&self) -> bool {
        self.lock().tripped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self) -> io::Error {
        match self.fault {
            Fault::NoSpace => io::Error::from_raw_os_error(28),
            Fault::Vanish => io::Error::from_raw_os_error(19),
            Fault::Crash => io::Error::other("simulated crash"),
            Fault::ErrorOnce | Fault::ErrorForever => io::Error::from_raw_os_error(5),
            Fault::FileLimit(_) => io::Error::from_raw_os_error(27),
        }
    }

    /// Counts one operation and says whether it must fail.
    fn step(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.ops += 1;
        let fire = match self.fault {
            Fault::ErrorOnce => st.ops == self.at,
            Fault::FileLimit(_) => false,
            _ => st.ops >= self.at,
        };
        if !fire {
            return Ok(());
        }
        if !st.tripped && self.fault == Fault::Crash {
            // Data that never reached the platter is gone: keep the name,
            // lose the bytes, as a journaling file system may after power loss.
            for (root, rel) in st.unsynced.drain(..) {
                if let Ok(r) = Root::open(&root)
                    && let Ok(f) = r.open_rw(&rel, false)
                    && let Ok(meta) = f.metadata()
                {
                    let _ = f.set_len(meta.len() / 2);
                }
            }
        }
        st.tripped = true;
        Err(self.error())
    }
}

struct FaultyFile {
    io: FaultyIo,
    inner: Box<dyn IoFile>,
    at: (PathBuf, PathBuf),
    written: u64,
}

impl IoFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.io.step()?;
        if let Fault::FileLimit(max) = self.io.fault {
            let room = max.saturating_sub(self.written).min(buf.len() as u64) as usize;
            self.inner.write_all(&buf[..room])?;
            self.written += room as u64;
            if room < buf.len() {
                return Err(self.io.error());
            }
            return Ok(());
        }
        self.inner.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.io.step()?;
        if let Fault::FileLimit(max) = self.io.fault
            && offset + buf.len() as u64 > max
        {
            return Err(self.io.error());
        }
        self.inner.write_at(buf, offset)
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.io.step()?;
        self.inner.sync_all()?;
        self.io.lock().unsynced.retain(|p| p != &self.at);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.io.step()?;
        self.inner.set_len(len)?;
        self.written = len;
        Ok(())
    }
    fn size(&mut self) -> io::Result<u64> {
        self.inner.size()
    }
    fn start_flush(&mut self) {
        // Advisory, not a write: never a fault, and nothing becomes durable.
        self.inner.start_flush();
    }
}

impl FaultyIo {
    fn written(&self, root: &Root, rel: &Path, inner: Box<dyn IoFile>) -> Box<dyn IoFile> {
        let at = (root.path().to_path_buf(), rel.to_path_buf());
        self.lock().unsynced.push(at.clone());
        Box::new(FaultyFile {
            io: self.clone(),
            inner,
            at,
            written: 0,
        })
    }
}

impl DiskIo for FaultyIo {
    fn create_dir_all(&self, root: &Root, rel: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.create_dir_all(root, rel)
    }
    fn create_new(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        self.step()?;
        let inner = self.inner.create_new(root, rel)?;
        Ok(self.written(root, rel, inner))
    }
    fn rewrite(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        self.step()?;
        let inner = self.inner.rewrite(root, rel)?;
        Ok(self.written(root, rel, inner))
    }
    fn append(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        self.step()?;
        let inner = self.inner.append(root, rel)?;
        Ok(self.written(root, rel, inner))
    }
    fn update(&self, root: &Root, rel: &Path) -> io::Result<Box<dyn IoFile>> {
        self.step()?;
        let inner = self.inner.update(root, rel)?;
        Ok(self.written(root, rel, inner))
    }
    fn rename(&self, root: &Root, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.rename(root, from, to)?;
        let mut st = self.lock();
        for (r, p) in st.unsynced.iter_mut() {
            if r == root.path() && p == from {
                *p = to.to_path_buf();
            }
        }
        Ok(())
    }
    fn remove_file(&self, root: &Root, rel: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.remove_file(root, rel)
    }
    fn sync_fs(&self, root: &Root) -> io::Result<()> {
        self.step()?;
        self.inner.sync_fs(root)?;
        self.lock().unsynced.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let r = Root::open(dir.path()).unwrap();
        (dir, r)
    }

    #[test]
    fn error_once_fails_exactly_one_operation() {
        let (_d, r) = root();
        let io = FaultyIo::new(2, Fault::ErrorOnce);
        io.create_dir_all(&r, Path::new("a")).unwrap();
        assert!(io.create_dir_all(&r, Path::new("b")).is_err());
        io.create_dir_all(&r, Path::new("c")).unwrap();
        assert_eq!(io.ops(), 3);
    }

    #[test]
    fn crash_loses_unflushed_bytes() {
        let (dir, r) = root();
        let io = FaultyIo::new(4, Fault::Crash);
        let mut f = io.create_new(&r, Path::new("f")).unwrap();
        f.write_all(&[7; 100]).unwrap();
        f.write_all(&[7; 100]).unwrap();
        assert!(f.sync_all().is_err());
        assert_eq!(std::fs::metadata(dir.path().join("f")).unwrap().len(), 100);
        assert!(io.remove_file(&r, Path::new("f")).is_err());
    }

    #[test]
    fn no_space_is_enospc() {
        let (_d, r) = root();
        let io = FaultyIo::new(1, Fault::NoSpace);
        let err = io.create_new(&r, Path::new("f")).err().unwrap();
        assert_eq!(err.raw_os_error(), Some(28));
    }

    #[test]
    fn files_are_private_on_the_disk() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, r) = root();
        let io = real();
        io.create_dir_all(&r, Path::new("a/b")).unwrap();
        io.create_new(&r, Path::new("a/b/f")).unwrap();
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            (mode("a"), mode("a/b"), mode("a/b/f")),
            (0o700, 0o700, 0o600)
        );
    }
}
