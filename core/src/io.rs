//! The one seam every write to a backup disk goes through.
//!
//! [`RealIo`] talks to the file system. [`FaultyIo`] wraps it for tests and
//! fails the N-th operation: an error once or for good, a full disk, a disk
//! that vanished, or a crash that loses every write not yet flushed.
//!
//! Invariant: code that writes to a disk holds an `Arc<dyn DiskIo>` and never
//! calls `std::fs` write functions on disk paths directly.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A file being written through the seam.
pub trait IoFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    fn sync_all(&mut self) -> io::Result<()>;
    /// Starts writing what was written out to the device, without waiting,
    /// so the flush that makes a batch durable finds most of it done.
    /// Advisory: the file system may ignore it.
    fn start_flush(&mut self) {}
}

/// Every write operation Coffer does on a backup disk.
pub trait DiskIo: Send + Sync + std::fmt::Debug {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new file, failing if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>>;
    /// Opens an existing file for rewriting from the start (truncates it).
    fn rewrite(&self, path: &Path) -> io::Result<Box<dyn IoFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Flushes everything written on the file system that holds `path`
    /// (`syncfs`): data of files and names of renames alike.
    fn sync_fs(&self, path: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealIo;

struct RealFile(File);

impl IoFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.0, buf)
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn start_flush(&mut self) {
        // On Linux this starts writeback of the file's dirty pages and does
        // not wait for it; pages already written are dropped from the cache,
        // where a backup copy has no business staying.
        let _ = rustix::fs::fadvise(&self.0, 0, None, rustix::fs::Advice::DontNeed);
    }
}

impl DiskIo for RealIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        Ok(Box::new(RealFile(
            File::options().write(true).create_new(true).open(path)?,
        )))
    }
    fn rewrite(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        Ok(Box::new(RealFile(
            File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?,
        )))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_fs(&self, path: &Path) -> io::Result<()> {
        let f = File::open(path)?;
        rustix::fs::syncfs(&f).map_err(io::Error::from)
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
}

#[derive(Debug, Default)]
struct FaultState {
    ops: u64,
    tripped: bool,
    unsynced: Vec<PathBuf>,
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
        }
    }

    /// Counts one operation and says whether it must fail.
    fn step(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.ops += 1;
        let fire = match self.fault {
            Fault::ErrorOnce => st.ops == self.at,
            _ => st.ops >= self.at,
        };
        if !fire {
            return Ok(());
        }
        if !st.tripped && self.fault == Fault::Crash {
            // Data that never reached the platter is gone: keep the name,
            // lose the bytes, as a journaling file system may after power loss.
            for p in st.unsynced.drain(..) {
                if let Ok(meta) = std::fs::metadata(&p)
                    && let Ok(f) = File::options().write(true).open(&p)
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
    path: PathBuf,
}

impl IoFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.io.step()?;
        self.inner.write_all(buf)
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.io.step()?;
        self.inner.sync_all()?;
        self.io.lock().unsynced.retain(|p| p != &self.path);
        Ok(())
    }
    fn start_flush(&mut self) {
        // Advisory, not a write: never a fault, and nothing becomes durable.
        self.inner.start_flush();
    }
}

impl DiskIo for FaultyIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        self.step()?;
        let inner = self.inner.create_new(path)?;
        self.lock().unsynced.push(path.to_path_buf());
        Ok(Box::new(FaultyFile {
            io: self.clone(),
            inner,
            path: path.to_path_buf(),
        }))
    }
    fn rewrite(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        self.step()?;
        let inner = self.inner.rewrite(path)?;
        self.lock().unsynced.push(path.to_path_buf());
        Ok(Box::new(FaultyFile {
            io: self.clone(),
            inner,
            path: path.to_path_buf(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.rename(from, to)?;
        let mut st = self.lock();
        for p in st.unsynced.iter_mut() {
            if p == from {
                *p = to.to_path_buf();
            }
        }
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.remove_file(path)
    }
    fn sync_fs(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.inner.sync_fs(path)?;
        self.lock().unsynced.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_once_fails_exactly_one_operation() {
        let dir = tempfile::tempdir().unwrap();
        let io = FaultyIo::new(2, Fault::ErrorOnce);
        io.create_dir_all(&dir.path().join("a")).unwrap();
        assert!(io.create_dir_all(&dir.path().join("b")).is_err());
        io.create_dir_all(&dir.path().join("c")).unwrap();
        assert_eq!(io.ops(), 3);
    }

    #[test]
    fn crash_loses_unflushed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let io = FaultyIo::new(4, Fault::Crash);
        let p = dir.path().join("f");
        let mut f = io.create_new(&p).unwrap();
        f.write_all(&[7; 100]).unwrap();
        f.write_all(&[7; 100]).unwrap();
        assert!(f.sync_all().is_err());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 100);
        assert!(io.remove_file(&p).is_err());
    }

    #[test]
    fn no_space_is_enospc() {
        let dir = tempfile::tempdir().unwrap();
        let io = FaultyIo::new(1, Fault::NoSpace);
        let err = io.create_new(&dir.path().join("f")).err().unwrap();
        assert_eq!(err.raw_os_error(), Some(28));
    }
}
