//! The journal of a scan or sync in progress: hashes of files already read
//! and which temp copies on a disk came from which file, so that a killed
//! run resumes instead of starting over.
//!
//! Hashes and temp copies go to append-only logs beside the catalog
//! (`log`): a sequential write each, handed to the kernel every few
//! hundredths of a second, so a kill loses at most the last moment and the
//! catalog's own file is not rewritten for every file read. Copies flushed
//! onto a disk are catalog rows (`copies`), committed in one transaction
//! per batch. Notes are written by a thread of their own: the threads that
//! read and copy never wait for it. A finished scan removes its logs after
//! the transaction that records its snapshot; a finished sync removes its
//! disk's staging log.
//!
//! Invariant: a cached hash is only used for a file whose size, mtime and
//! inode are exactly those it had when it was read.

pub mod log;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::params;
use rustc_hash::FxHashMap;

use super::{Catalog, Error};
use crate::object::ObjectId;

/// A hash recorded by an earlier, unfinished scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub hash: ObjectId,
}

/// A temp copy on a disk and the file it was being copied from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staging {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// One thing learned.
#[derive(Clone, Debug)]
pub enum Note {
    /// A file was read whole while steady, and hashed.
    Hashed { path: PathBuf, cached: Cached },
    /// A temp copy `name` on `disk` is being made from this file.
    Staging { disk: uuid::Uuid, staging: Staging },
    /// Objects now on `disk` (flushed under their names, hashed on the way).
    Copied {
        disk: uuid::Uuid,
        hashes: Vec<ObjectId>,
    },
}

/// How long notes may wait before they are written to their logs.
const COMMIT_EVERY: Duration = Duration::from_millis(50);
/// How long copies may wait before they are committed to the catalog. Each
/// transaction of copies touches pages all over the `copies` index (object
/// names are random), so committing every batch rewrote most of it again
/// and again; a kill loses at most this much of them, and the next sync
/// finds those objects on the disk by name.
const COPIES_EVERY: Duration = Duration::from_secs(2);

enum Msg {
    Note(Note),
    /// Commit everything before, then say so.
    Flush(mpsc::SyncSender<()>),
}

/// The writer thread's handle.
pub struct Journal {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl Journal {
    /// Starts a journal for the catalog at `path`.
    pub fn start(path: &Path) -> Result<Journal, Error> {
        let mut writer = Writer::new(path);
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("coffer-journal".into())
            .spawn(move || writer.run(&rx))
            .map_err(|source| Error::Create {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Journal {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands a note to the writer; never blocks.
    pub fn note(&self, n: Note) {
        if let Some(tx) = &self.tx {
            // A writer that stopped already reported why in `finish`.
            let _ = tx.send(Msg::Note(n));
        }
    }

    /// Waits until every note handed over so far is written.
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if let Some(tx) = &self.tx
            && tx.send(Msg::Flush(ack)).is_ok()
        {
            let _ = done.recv();
        }
    }

    /// Writes what is left and stops the writer.
    pub fn finish(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        drop(self.tx.take());
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::BadValue {
                path: PathBuf::new(),
                what: "journal",
                value: "its writer panicked".into(),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn sort(m: Msg, batch: &mut Vec<Note>, acks: &mut Vec<mpsc::SyncSender<()>>) {
    match m {
        Msg::Note(n) => batch.push(n),
        Msg::Flush(a) => acks.push(a),
    }
}

/// What writes notes: the logs it appends to, opened when first needed,
/// and a connection to the catalog for copies.
struct Writer {
    catalog: PathBuf,
    dir: PathBuf,
    scan: Option<log::Writer>,
    staging: FxHashMap<uuid::Uuid, log::Writer>,
    conn: Option<Catalog>,
    /// Copies noted and not yet committed, and since when.
    copies: Vec<(uuid::Uuid, Vec<ObjectId>)>,
    copies_since: Instant,
}

impl Writer {
    fn new(catalog: &Path) -> Writer {
        Writer {
            catalog: catalog.to_path_buf(),
            dir: log::dir_of(catalog),
            scan: None,
            staging: FxHashMap::default(),
            conn: None,
            copies: Vec::new(),
            copies_since: Instant::now(),
        }
    }

    /// The writer thread's loop: batches of notes, written together.
    fn run(&mut self, rx: &mpsc::Receiver<Msg>) -> Result<(), Error> {
        let mut open = true;
        let mut result = Ok(());
        while open {
            // With copies waiting, wake up in time to commit them.
            let first = if self.copies.is_empty() {
                match rx.recv() {
                    Ok(n) => n,
                    Err(_) => break,
                }
            } else {
                let left = COPIES_EVERY.saturating_sub(self.copies_since.elapsed());
                match rx.recv_timeout(left) {
                    Ok(n) => n,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(e) = self.write(&[], true)
                            && result.is_ok()
                        {
                            result = Err(e);
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut batch = Vec::new();
            let mut acks = Vec::new();
            sort(first, &mut batch, &mut acks);
            let until = Instant::now() + COMMIT_EVERY;
            while acks.is_empty() {
                let left = until.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(m) => sort(m, &mut batch, &mut acks),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            // A failed write loses only what a later run reads again; the
            // first failure is reported when the journal finishes.
            let now = !acks.is_empty() || !open;
            if (!batch.is_empty() || now)
                && let Err(e) = self.write(&batch, now)
                && result.is_ok()
            {
                result = Err(e);
            }
            for a in acks {
                let _ = a.send(());
            }
        }
        // What is left when the last handle went away.
        if let Err(e) = self.write(&[], true)
            && result.is_ok()
        {
            result = Err(e);
        }
        result
    }

    /// Writes `notes` to their logs; copies are committed when `now` or
    /// when the oldest waiting is `COPIES_EVERY` old.
    fn write(&mut self, notes: &[Note], now: bool) -> Result<(), Error> {
        let mut touched_scan = false;
        let mut touched: Vec<uuid::Uuid> = Vec::new();
        for n in notes {
            match n {
                Note::Hashed { path, cached } => {
                    let w = match &mut self.scan {
                        Some(w) => w,
                        None => {
                            let p = log::new_scan_log(&self.dir);
                            let w = log::Writer::open(&p).map_err(|e| journal_error(&p, e))?;
                            self.scan.insert(w)
                        }
                    };
                    let rec = log::Record::Hashed {
                        path: path.clone(),
                        cached: *cached,
                    };
                    w.push(&rec).map_err(|e| journal_error(w.path(), e))?;
                    touched_scan = true;
                }
                Note::Staging { disk, staging } => {
                    let w = match self.staging.entry(*disk) {
                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            let p = log::staging_log(&self.dir, *disk);
                            v.insert(log::Writer::open(&p).map_err(|e| journal_error(&p, e))?)
                        }
                    };
                    w.push(&log::Record::Staging(staging.clone()))
                        .map_err(|e| journal_error(w.path(), e))?;
                    if !touched.contains(disk) {
                        touched.push(*disk);
                    }
                }
                Note::Copied { disk, hashes } => {
                    if self.copies.is_empty() {
                        self.copies_since = Instant::now();
                    }
                    self.copies.push((*disk, hashes.clone()));
                }
            }
        }
        if touched_scan && let Some(w) = &mut self.scan {
            w.flush().map_err(|e| journal_error(w.path(), e))?;
        }
        for d in touched {
            if let Some(w) = self.staging.get_mut(&d) {
                w.flush().map_err(|e| journal_error(w.path(), e))?;
            }
        }
        if self.copies.is_empty() || !(now || self.copies_since.elapsed() >= COPIES_EVERY) {
            return Ok(());
        }
        // One list per disk in name order: neighbours in the index land
        // on the same pages.
        let mut copies: Vec<(uuid::Uuid, Vec<ObjectId>)> = Vec::new();
        for (d, mut h) in std::mem::take(&mut self.copies) {
            match copies.iter_mut().find(|(k, _)| *k == d) {
                Some((_, all)) => all.append(&mut h),
                None => copies.push((d, h)),
            }
        }
        for (_, h) in &mut copies {
            h.sort_unstable();
        }
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(Catalog::open(&self.catalog)?),
        };
        let all: Vec<(uuid::Uuid, &[ObjectId])> =
            copies.iter().map(|(d, h)| (*d, h.as_slice())).collect();
        conn.record_copies(&all)
    }
}

fn journal_error(path: &Path, source: std::io::Error) -> Error {
    Error::Journal {
        path: path.to_path_buf(),
        source,
    }
}

impl Catalog {
    /// Writes notes at once (what a sync learned while settling a disk's
    /// `tmp/`, before its scan reads the cache).
    pub fn write_notes_now(&mut self, notes: &[Note]) -> Result<(), Error> {
        Writer::new(&self.path).write(notes, true)
    }

    /// Records copies flushed onto disks, in one transaction.
    fn record_copies(&mut self, copies: &[(uuid::Uuid, &[ObjectId])]) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut copy = tx
                .prepare_cached(
                    "INSERT INTO copies(hash, disk_id, stored_at, verified_at) VALUES(?1, ?2, ?3, ?3)
                     ON CONFLICT(hash, disk_id) DO UPDATE SET verified_at = ?3",
                )
                .map_err(e)?;
            let now = crate::now();
            for (disk, hashes) in copies {
                let disk = disk.to_string();
                for h in *hashes {
                    copy.execute(params![h, disk, now]).map_err(e)?;
                }
            }
        }
        tx.execute(super::schema::BUMP, []).map_err(e)?;
        tx.commit().map_err(e)
    }

    /// Content that has at least one copy on some disk.
    pub fn copied_hashes(&self) -> Result<rustc_hash::FxHashSet<ObjectId>, Error> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT hash FROM copies")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| Ok(super::hash_of(&self.path, r.get_ref(0)?)))
            .map_err(self.err())?;
        let mut out = rustc_hash::FxHashSet::default();
        for r in rows {
            if let Ok(h) = r.map_err(self.err())? {
                out.insert(h);
            }
        }
        Ok(out)
    }

    /// Bytes of the catalog's objects that have no copy on any disk.
    pub fn uncopied_bytes(&self) -> Result<u64, Error> {
        self.conn
            .query_row(
                "SELECT coalesce(sum(size), 0) FROM objects WHERE hash NOT IN (SELECT hash FROM copies)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(self.err())
    }

    fn journal_dir(&self) -> PathBuf {
        log::dir_of(&self.path)
    }

    /// Hashes unfinished scans recorded, by path (the latest for each).
    pub fn scan_cache(&self) -> Result<FxHashMap<Vec<u8>, Cached>, Error> {
        use std::os::unix::ffi::OsStringExt;
        let dir = self.journal_dir();
        let mut out = FxHashMap::default();
        for (p, _) in log::scan_logs(&dir).map_err(|e| journal_error(&dir, e))? {
            log::read(&p, |r| {
                if let log::Record::Hashed { path, cached } = r {
                    out.insert(path.into_os_string().into_vec(), cached);
                }
            })
            .map_err(|e| journal_error(&p, e))?;
        }
        Ok(out)
    }

    /// Temp copies recorded for `disk`, by name.
    pub fn staging_on(&self, disk: uuid::Uuid) -> Result<FxHashMap<String, Staging>, Error> {
        let p = log::staging_log(&self.journal_dir(), disk);
        let mut out = FxHashMap::default();
        log::read(&p, |r| {
            if let log::Record::Staging(s) = r {
                out.insert(s.name.clone(), s);
            }
        })
        .map_err(|e| journal_error(&p, e))?;
        Ok(out)
    }

    /// Forgets the temp copies recorded for `disk` (its `tmp/` was settled).
    pub fn clear_staging(&self, disk: uuid::Uuid) -> Result<(), Error> {
        let p = log::staging_log(&self.journal_dir(), disk);
        log::remove(&p).map_err(|e| journal_error(&p, e))
    }

    /// Forgets what unfinished scans learned (a scan finished): this
    /// process's logs and those no writer holds any more. A scan another
    /// process is running keeps its log.
    pub fn clear_scan_cache(&self) -> Result<(), Error> {
        let dir = self.journal_dir();
        for (p, pid) in log::scan_logs(&dir).map_err(|e| journal_error(&dir, e))? {
            if pid == std::process::id() || !log::in_use(&p) {
                log::remove(&p).map_err(|e| journal_error(&p, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_committed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("catalog.sqlite");
        let cat = Catalog::open(&p).unwrap();
        let j = Journal::start(&p).unwrap();
        let cached = Cached {
            size: 5,
            mtime_ns: 7,
            inode: 9,
            hash: ObjectId::of(b"hello"),
        };
        j.note(Note::Hashed {
            path: "/a/b".into(),
            cached,
        });
        let disk = uuid::Uuid::from_u128(3);
        cat.upsert_disk(&super::super::DiskRow::new(disk, "d", 0))
            .unwrap();
        let staging = Staging {
            name: "staged.x".into(),
            path: "/a/b".into(),
            size: 5,
            mtime_ns: 7,
            inode: 9,
        };
        j.note(Note::Staging {
            disk,
            staging: staging.clone(),
        });
        j.note(Note::Copied {
            disk,
            hashes: vec![cached.hash],
        });
        let before = cat.generation().unwrap();
        j.finish().unwrap();
        assert_eq!(cat.scan_cache().unwrap()[b"/a/b".as_slice()], cached);
        assert_eq!(cat.staging_on(disk).unwrap()["staged.x"], staging);
        assert!(cat.generation().unwrap() > before);
        cat.clear_staging(disk).unwrap();
        cat.clear_scan_cache().unwrap();
        assert!(cat.scan_cache().unwrap().is_empty());
        assert!(cat.staging_on(disk).unwrap().is_empty());
    }
}
