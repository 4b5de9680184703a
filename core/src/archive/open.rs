//! Opening archive files and bounding what they decompress to.
//!
//! An archive file is opened `O_NOFOLLOW | O_NONBLOCK` and checked with
//! `fstat` on the descriptor, so a symlink, FIFO, device, socket or folder
//! is refused (naming what it is) and nothing hangs. Between the gzip
//! decoder and the tar reader sits a [`Budget`]: a volume may decompress to
//! no more than its manifest accounts for (member sizes rounded up to
//! 512-byte blocks, a bounded allowance per member for headers and long
//! names, and some slack), granted as the manifest is read.
//!
//! Invariant: only regular files are read as archives; no stream yields a
//! byte past its budget.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::Error;

/// Slack beyond what the manifest accounts for: the end-of-archive blocks
/// and the padding other tar writers add to fill a 10 KiB record.
pub(crate) const SLACK: u64 = 64 << 10;

/// Opens an archive file for reading, refusing anything but a regular file.
pub(crate) fn open_file(path: &Path) -> Result<File, Error> {
    let not = |what: &str| Error::NotAnArchive {
        path: path.to_path_buf(),
        message: format!("it is {what}, not a regular file"),
    };
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => return Err(not("a symlink")),
        Err(e) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: e.into(),
            });
        }
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(not("a folder")),
        FileType::Fifo => return Err(not("a FIFO")),
        FileType::CharacterDevice => return Err(not("a character device")),
        FileType::BlockDevice => return Err(not("a block device")),
        FileType::Socket => return Err(not("a socket")),
        FileType::Symlink => return Err(not("a symlink")),
        FileType::Unknown => return Err(not("of an unknown kind")),
    }
    // Reads of a regular file never block; drop the flag all the same.
    let _ = rustix::fs::fcntl_setfl(&fd, OFlags::empty());
    Ok(File::from(fd))
}

/// What a budget reader says when the stream goes on past its budget.
#[derive(Debug)]
pub(crate) struct Exceeded {
    pub(crate) budget: u64,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "it decompresses to more than the {} bytes its manifest accounts for",
            self.budget
        )
    }
}

impl std::error::Error for Exceeded {}

/// The budget reader's error, when that is what an I/O error is.
pub(crate) fn exceeded(e: &io::Error) -> Option<&Exceeded> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Exceeded>())
}

/// A handle to raise a [`Budget`] while its reader is owned by the tar
/// reader.
#[derive(Clone)]
pub(crate) struct Grant {
    left: Rc<Cell<u64>>,
    total: Rc<Cell<u64>>,
    /// Compressed bytes read from the file so far.
    compressed: Rc<Cell<u64>>,
}

impl Grant {
    /// Compressed bytes read from the archive file so far (a little ahead
    /// of what was decompressed: reads are buffered).
    pub(crate) fn compressed(&self) -> u64 {
        self.compressed.get()
    }

    pub(crate) fn add(&self, bytes: u64) {
        self.left.set(self.left.get().saturating_add(bytes));
        self.total.set(self.total.get().saturating_add(bytes));
    }
}

/// A reader that yields at most the bytes granted to it and fails, rather
/// than end quietly, when its source holds more.
pub(crate) struct Budget<R> {
    inner: R,
    left: Rc<Cell<u64>>,
    total: Rc<Cell<u64>>,
}

impl<R: Read> Budget<R> {
    pub(crate) fn new(inner: R, bytes: u64) -> (Self, Grant) {
        let left = Rc::new(Cell::new(bytes));
        let total = Rc::new(Cell::new(bytes));
        let grant = Grant {
            left: Rc::clone(&left),
            total: Rc::clone(&total),
            compressed: Rc::new(Cell::new(0)),
        };
        (Budget { inner, left, total }, grant)
    }
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.left.get();
        if left == 0 {
            // Over budget only if the source really holds more.
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(io::Error::other(Exceeded {
                    budget: self.total.get(),
                })),
            };
        }
        let cap = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = self.inner.read(buf.get_mut(..cap).unwrap_or_default())?;
        self.left.set(left.saturating_sub(n as u64));
        Ok(n)
    }
}

/// The decompressed stream of an open archive file, within `budget` bytes
/// (raised through the returned [`Grant`]).
pub(crate) type Stream<R> = Budget<MultiGzDecoder<BufReader<Counted<R>>>>;

pub(crate) fn stream<R: Read>(file: R, budget: u64) -> (Stream<R>, Grant) {
    let count = Rc::new(Cell::new(0));
    let counted = Counted {
        inner: file,
        n: Rc::clone(&count),
    };
    let (s, mut grant) = Budget::new(
        MultiGzDecoder::new(BufReader::with_capacity(1 << 20, counted)),
        budget,
    );
    grant.compressed = count;
    (s, grant)
}

/// Counts the bytes read from the archive file.
pub(crate) struct Counted<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.set(self.n.get().saturating_add(n as u64));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_without_hanging() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("f-1.tar.gz");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = open_file(&fifo).unwrap_err().to_string();
        assert!(
            err.contains("a FIFO") && err.contains("f-1.tar.gz"),
            "{err}"
        );
        let err = open_file(t.path()).unwrap_err().to_string();
        assert!(err.contains("a folder"), "{err}");
        let err = open_file(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("character device"), "{err}");
        let link = t.path().join("l.tar.gz");
        std::fs::write(t.path().join("real"), b"").unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), &link).unwrap();
        let err = open_file(&link).unwrap_err().to_string();
        assert!(err.contains("a symlink"), "{err}");
        assert!(open_file(&t.path().join("real")).is_ok());
    }

    #[test]
    fn a_budget_stops_a_stream_that_goes_on() {
        let data = vec![7u8; 1000];
        let (mut r, _) = Budget::new(&data[..], 600);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(out.len(), 600);
        assert_eq!(exceeded(&err).unwrap().budget, 600);
        // Raised before the reading gets there, it lets the rest through.
        let (mut r, grant) = Budget::new(&data[..], 600);
        grant.add(400);
        assert_eq!(r.read_to_end(&mut Vec::new()).unwrap(), 1000);
        let (mut exact, _) = Budget::new(&data[..], 1000);
        assert_eq!(exact.read_to_end(&mut Vec::new()).unwrap(), 1000);
    }
}
