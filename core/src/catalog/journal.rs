//! The journal of a scan or sync in progress: hashes of files already read
//! (`scan_cache`) and which temp copies on a disk came from which file
//! (`staging`), so that a killed run resumes instead of starting over.
//!
//! Notes are written by a thread of their own on a connection of their own,
//! committed every few hundredths of a second: the threads that read and
//! copy never wait for SQLite, and a kill loses at most the last moment.
//! A finished scan empties `scan_cache` in the transaction that records
//! its snapshot; a finished sync empties `staging` for its disk.
//!
//! Invariant: a cached hash is only used for a file whose size, mtime and
//! inode are exactly those it had when it was read.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::params;
use rustc_hash::FxHashMap;

use super::{Catalog, Error, bytes_path, path_bytes};
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

/// How long notes may wait before they are committed.
const COMMIT_EVERY: Duration = Duration::from_millis(50);

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
    /// Starts a journal writing into the catalog at `path`.
    pub fn start(path: &Path) -> Result<Journal, Error> {
        let mut cat = Catalog::open(path)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("coffer-journal".into())
            .spawn(move || cat.write_notes(&rx))
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

    /// Waits until every note handed over so far is committed.
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if let Some(tx) = &self.tx
            && tx.send(Msg::Flush(ack)).is_ok()
        {
            let _ = done.recv();
        }
    }

    /// Commits what is left and stops the writer.
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

impl Catalog {
    /// The writer thread's loop: batches of notes, one transaction each.
    fn write_notes(&mut self, rx: &mpsc::Receiver<Msg>) -> Result<(), Error> {
        let mut open = true;
        let mut result = Ok(());
        while open {
            let first = match rx.recv() {
                Ok(n) => n,
                Err(_) => break,
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
            // A failed commit loses only what a later run reads again; the
            // first failure is reported when the journal finishes.
            if !batch.is_empty()
                && let Err(e) = self.commit_notes(&batch)
                && result.is_ok()
            {
                result = Err(e);
            }
            for a in acks {
                let _ = a.send(());
            }
        }
        result
    }

    /// Writes notes at once, on this connection (what a sync learned while
    /// settling a disk's `tmp/`, before its scan reads the cache).
    pub fn write_notes_now(&mut self, notes: &[Note]) -> Result<(), Error> {
        self.commit_notes(notes)
    }

    /// Content that has at least one copy on some disk.
    pub fn copied_hashes(&self) -> Result<rustc_hash::FxHashSet<ObjectId>, Error> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT hash FROM copies")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        let mut out = rustc_hash::FxHashSet::default();
        for r in rows {
            if let Ok(h) = r.map_err(self.err())?.parse() {
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

    fn commit_notes(&mut self, notes: &[Note]) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let mut copied = false;
        {
            let mut hashed = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO scan_cache(path, size, mtime_ns, inode, hash) VALUES(?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?;
            let mut staging = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO staging(disk_id, name, path, size, mtime_ns, inode) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(e)?;
            let mut copy = tx
                .prepare_cached(
                    "INSERT INTO copies(hash, disk_id, stored_at, verified_at) VALUES(?1, ?2, ?3, ?3)
                     ON CONFLICT(hash, disk_id) DO UPDATE SET verified_at = ?3",
                )
                .map_err(e)?;
            let now = crate::now();
            for n in notes {
                match n {
                    Note::Hashed { path, cached: c } => {
                        hashed
                            .execute(params![
                                path_bytes(path),
                                c.size as i64,
                                c.mtime_ns,
                                c.inode as i64,
                                c.hash.to_hex()
                            ])
                            .map_err(e)?;
                    }
                    Note::Staging { disk, staging: s } => {
                        staging
                            .execute(params![
                                disk.to_string(),
                                s.name,
                                path_bytes(&s.path),
                                s.size as i64,
                                s.mtime_ns,
                                s.inode as i64
                            ])
                            .map_err(e)?;
                    }
                    Note::Copied { disk, hashes } => {
                        for h in hashes {
                            copy.execute(params![h.to_hex(), disk.to_string(), now])
                                .map_err(e)?;
                            copied = true;
                        }
                    }
                }
            }
        }
        if copied {
            tx.execute(super::schema::BUMP, []).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Hashes an unfinished scan recorded, by path.
    pub fn scan_cache(&self) -> Result<FxHashMap<Vec<u8>, Cached>, Error> {
        let mut st = self
            .conn
            .prepare("SELECT path, size, mtime_ns, inode, hash FROM scan_cache")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = FxHashMap::default();
        for r in rows {
            let (p, size, mtime_ns, inode, hash) = r.map_err(self.err())?;
            // A damaged row is only a file to read again.
            if let Ok(hash) = hash.parse() {
                out.insert(
                    p,
                    Cached {
                        size: size as u64,
                        mtime_ns,
                        inode: inode as u64,
                        hash,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Temp copies recorded for `disk`, by name.
    pub fn staging_on(&self, disk: uuid::Uuid) -> Result<FxHashMap<String, Staging>, Error> {
        let mut st = self
            .conn
            .prepare("SELECT name, path, size, mtime_ns, inode FROM staging WHERE disk_id = ?1")
            .map_err(self.err())?;
        let rows = st
            .query_map([disk.to_string()], |r| {
                Ok(Staging {
                    name: r.get(0)?,
                    path: bytes_path(r.get(1)?),
                    size: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                    inode: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(self.err())?;
        let mut out = FxHashMap::default();
        for r in rows {
            let s = r.map_err(self.err())?;
            out.insert(s.name.clone(), s);
        }
        Ok(out)
    }

    /// Forgets the temp copies recorded for `disk` (its `tmp/` was settled).
    pub fn clear_staging(&self, disk: uuid::Uuid) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM staging WHERE disk_id = ?1", [disk.to_string()])
            .map_err(self.err())?;
        Ok(())
    }

    /// Forgets what an unfinished scan learned (a scan finished).
    pub fn clear_scan_cache(&self) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM scan_cache", [])
            .map_err(self.err())?;
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
