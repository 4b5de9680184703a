//! The journal's files: append-only logs of framed, checksummed records in
//! a folder beside the catalog (`catalog.journal/`).
//!
//! `scan-PID-START.log` holds the hashes one scan learned (one file per
//! process, so two processes scanning at once never share one);
//! `staging-DISK.log` holds which temp copy on a disk came from which file
//! (one disk is written by one process at a time: its lock says so).
//!
//! A record is `len: u32 LE`, `crc32(payload): u32 LE`, then the payload.
//! A reader stops at the first record that is cut short, too long or whose
//! checksum is wrong (what a kill leaves at the end); a writer that appends
//! to an existing log first cuts it back to its last whole record.
//!
//! Invariant: only whole records whose checksum matches are ever read
//! back; a record never claims more than [`MAX_RECORD`] bytes.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Cached, Staging};
use crate::object::ObjectId;

/// The first bytes of every log.
const MAGIC: &[u8; 8] = b"CofJrnl1";
/// The longest payload a record may have (a path plus a few numbers).
pub const MAX_RECORD: usize = 1 << 20;

const HASHED: u8 = 1;
const STAGING: u8 = 2;

/// The journal folder of the catalog at `catalog`.
pub fn dir_of(catalog: &Path) -> PathBuf {
    let stem = catalog
        .file_stem()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| "catalog".into());
    let mut name = stem;
    name.push(".journal");
    catalog.with_file_name(name)
}

/// The staging log of `disk`.
pub fn staging_log(dir: &Path, disk: uuid::Uuid) -> PathBuf {
    dir.join(format!("staging-{disk}.log"))
}

/// A new scan log for this process.
pub fn new_scan_log(dir: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "scan-{}-{}-{n}.log",
        std::process::id(),
        crate::now()
    ))
}

/// The process that writes a scan log, from its name.
fn scan_log_pid(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b"scan-")?.strip_suffix(b".log")?;
    let pid = rest.split(|b| *b == b'-').next()?;
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// Every scan log in `dir`, with the process that writes (or wrote) it.
pub fn scan_logs(dir: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        if let Some(pid) = scan_log_pid(e.file_name().as_bytes()) {
            out.push((e.path(), pid));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether another open log writer holds the log at `path` (each holds a
/// shared lock on it while it lives, which a kill releases).
pub fn in_use(path: &Path) -> bool {
    let Ok(f) = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
    else {
        return false;
    };
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Hashed { path: PathBuf, cached: Cached },
    Staging(Staging),
}

fn ident(out: &mut Vec<u8>, size: u64, mtime_ns: i64, inode: u64) {
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&mtime_ns.to_le_bytes());
    out.extend_from_slice(&inode.to_le_bytes());
}

impl Record {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Hashed { path, cached: c } => {
                out.push(HASHED);
                ident(out, c.size, c.mtime_ns, c.inode);
                out.extend_from_slice(&c.hash.0);
                out.extend_from_slice(path.as_os_str().as_bytes());
            }
            Record::Staging(s) => {
                out.push(STAGING);
                ident(out, s.size, s.mtime_ns, s.inode);
                let name = s.name.as_bytes();
                let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&name[..usize::from(len)]);
                out.extend_from_slice(s.path.as_os_str().as_bytes());
            }
        }
    }

    /// Reads a payload back; `None` for anything malformed.
    fn decode(p: &[u8]) -> Option<Record> {
        let (&tag, rest) = p.split_first()?;
        let u64_at = |b: &[u8], i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
        };
        let size = u64_at(rest, 0)?;
        let mtime_ns = u64_at(rest, 8)? as i64;
        let inode = u64_at(rest, 16)?;
        let rest = rest.get(24..)?;
        let path = |b: &[u8]| -> Option<PathBuf> {
            (!b.is_empty() && !b.contains(&0)).then(|| PathBuf::from(OsStr::from_bytes(b)))
        };
        match tag {
            HASHED => {
                let hash = ObjectId(rest.get(..32)?.try_into().ok()?);
                Some(Record::Hashed {
                    path: path(rest.get(32..)?)?,
                    cached: Cached {
                        size,
                        mtime_ns,
                        inode,
                        hash,
                    },
                })
            }
            STAGING => {
                let len = usize::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?));
                let name = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
                Some(Record::Staging(Staging {
                    name: name.to_owned(),
                    path: path(rest.get(2 + len..)?)?,
                    size,
                    mtime_ns,
                    inode,
                }))
            }
            _ => None,
        }
    }
}

/// An open log, appended to through a buffer.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    scratch: Vec<u8>,
}

impl Writer {
    /// Opens `path` for appending: made with its header if missing, cut
    /// back to its last whole record if a kill left half of one.
    pub fn open(path: &Path) -> io::Result<Writer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)?;
        // Held while this writer lives: see `in_use`.
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared)?;
        // A file that is not a log of ours (0) is started again.
        let good: u64 = read_from(&mut f, |_| {}).unwrap_or_default();
        if good == 0 {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(MAGIC)?;
        } else {
            f.set_len(good)?;
            f.seek(SeekFrom::Start(good))?;
        }
        Ok(Writer {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 << 10, f),
            scratch: Vec::with_capacity(256),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record (to the buffer; [`Writer::flush`] hands it over).
    pub fn push(&mut self, r: &Record) -> io::Result<()> {
        self.scratch.clear();
        r.encode(&mut self.scratch);
        if self.scratch.len() > MAX_RECORD {
            // A path this long is only a file read again next time.
            return Ok(());
        }
        let len = self.scratch.len() as u32;
        self.out.write_all(&len.to_le_bytes())?;
        self.out
            .write_all(&crc32fast::hash(&self.scratch).to_le_bytes())?;
        self.out.write_all(&self.scratch)
    }

    /// Hands what was appended to the kernel: a kill loses none of it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads the records of an open log from its start, handing each to `each`;
/// returns the offset just past the last whole record (0 when the file is
/// empty). A file that is not a log is an error.
fn read_from(f: &mut File, mut each: impl FnMut(Record)) -> io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::with_capacity(256 << 10, &mut *f);
    let mut magic = [0u8; 8];
    match r.read_exact(&mut magic) {
        Ok(()) if &magic == MAGIC => {}
        Ok(()) => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a journal")),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
        Err(e) => return Err(e),
    }
    let mut at = MAGIC.len() as u64;
    let mut head = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        if r.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 || len > MAX_RECORD {
            break;
        }
        payload.resize(len, 0);
        if r.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            break;
        }
        at += 8 + len as u64;
        // A whole record that does not decode is skipped, not trusted.
        if let Some(rec) = Record::decode(&payload) {
            each(rec);
        }
    }
    Ok(at)
}

/// Reads every whole record of the log at `path` (none if it is missing).
/// The log is opened without following a symlink and must be a regular
/// file.
pub fn read(path: &Path, each: impl FnMut(Record)) -> io::Result<()> {
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is not a regular file",
        ));
    }
    read_from(&mut f, each).map(drop)
}

/// Removes a log; a missing one is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed(p: &str, n: u64) -> Record {
        Record::Hashed {
            path: p.into(),
            cached: Cached {
                size: n,
                mtime_ns: -(n as i64),
                inode: n * 3,
                hash: ObjectId::of(p.as_bytes()),
            },
        }
    }

    fn all(path: &Path) -> Vec<Record> {
        let mut v = Vec::new();
        read(path, |r| v.push(r)).unwrap();
        v
    }

    #[test]
    fn records_read_back_and_a_torn_tail_is_cut_before_appending() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j/x.log");
        let staging = Record::Staging(Staging {
            name: "abc".into(),
            path: "/a/\u{e9}t\u{e9}".into(),
            size: 9,
            mtime_ns: 1,
            inode: 2,
        });
        let mut w = Writer::open(&p).unwrap();
        w.push(&hashed("/a", 1)).unwrap();
        w.push(&staging).unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(all(&p), vec![hashed("/a", 1), staging.clone()]);
        // Half a record, as a kill leaves it.
        let whole = std::fs::metadata(&p).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        assert_eq!(all(&p).len(), 2);
        let mut w = Writer::open(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), whole);
        w.push(&hashed("/b", 2)).unwrap();
        w.flush().unwrap();
        assert_eq!(all(&p), vec![hashed("/a", 1), staging, hashed("/b", 2)]);
    }

    #[test]
    fn damaged_or_foreign_logs_give_nothing_they_do_not_hold() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        let mut w = Writer::open(&p).unwrap();
        for i in 0..3 {
            w.push(&hashed(&format!("/f{i}"), i)).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        // A flipped byte in the second record: the first is kept, the rest
        // are not trusted.
        let mut b = std::fs::read(&p).unwrap();
        let second = 8 + 8 + (1 + 24 + 32 + 3) + 8 + 5;
        b[second] ^= 1;
        std::fs::write(&p, &b).unwrap();
        assert_eq!(all(&p), vec![hashed("/f0", 0)]);
        // A huge claimed length is not allocated.
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        std::fs::write(&p, &b).unwrap();
        assert!(all(&p).is_empty());
        std::fs::write(&p, b"SQLite format 3\0").unwrap();
        assert!(read(&p, |_| {}).is_err());
        // Writing to it starts a fresh log rather than trusting it.
        let mut w = Writer::open(&p).unwrap();
        w.push(&hashed("/z", 5)).unwrap();
        w.flush().unwrap();
        assert_eq!(all(&p), vec![hashed("/z", 5)]);
        // A symlink is not followed.
        let target = d.path().join("target.log");
        std::fs::rename(&p, &target).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(read(&p, |_| {}).is_err());
        assert!(Writer::open(&p).is_err());
    }

    #[test]
    fn scan_logs_name_their_process() {
        let d = tempfile::tempdir().unwrap();
        let p = new_scan_log(d.path());
        std::fs::write(&p, MAGIC).unwrap();
        std::fs::write(d.path().join("staging-x.log"), MAGIC).unwrap();
        let logs = scan_logs(d.path()).unwrap();
        assert_eq!(logs, vec![(p.clone(), std::process::id())]);
        assert!(!in_use(&p));
        let w = Writer::open(&p).unwrap();
        assert!(in_use(&p));
        drop(w);
        assert!(!in_use(&p));
        assert_eq!(
            dir_of(Path::new("/d/catalog.sqlite")),
            Path::new("/d/catalog.journal")
        );
    }
}
