//! Consistent copies of files that are being written: SQLite databases
//! (browser profiles, mail indexes, a local app's store) copied through
//! SQLite's online backup API instead of as bytes read at different
//! moments (a main file and its `-wal` rarely agree mid-transaction).
//!
//! Invariant: a copy is made by SQLite from one consistent state of the
//! database; the source is only opened read-only.

use std::io::Read;
use std::path::Path;

/// The first 16 bytes of every SQLite database.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The names a live SQLite database keeps beside it.
pub const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Whether the file at `path` starts like a SQLite database (it is only
/// opened for reading, and only 16 bytes are read).
pub fn looks_like_sqlite(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::File::options()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
    else {
        return false;
    };
    let mut head = [0u8; 16];
    f.metadata().is_ok_and(|m| m.is_file())
        && f.read_exact(&mut head).is_ok()
        && &head == SQLITE_MAGIC
}

/// Copies the database at `from` to `to` (which must not exist) through
/// the online backup API: the copy is one consistent state of it.
pub fn copy_sqlite(from: &Path, to: &Path) -> Result<(), String> {
    use rusqlite::{Connection, OpenFlags};
    let src = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    src.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut dst = Connection::open(to).map_err(|e| e.to_string())?;
    // Every page in one step, inside one read transaction: a backup taken
    // in several steps starts over whenever another connection writes in
    // between, and a database written all the time (a browser's) would
    // never finish. Busy only while a writer holds a lock SQLite needs to
    // start reading: tried again for up to ten seconds.
    {
        use rusqlite::backup::{Backup, StepResult};
        let b = Backup::new(&src, &mut dst).map_err(|e| e.to_string())?;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match b.step(-1).map_err(|e| e.to_string())? {
                StepResult::Done => break,
                _ if std::time::Instant::now() > until => {
                    return Err("the database stayed locked for 10 s".into());
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    // One file, whatever the source's journal mode was.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| e.to_string())?;
    drop(dst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_in_wal_mode_is_copied_whole_and_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.sqlite");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
        assert!(looks_like_sqlite(&db));
        assert!(dir.path().join("live.sqlite-wal").exists());
        let copy = dir.path().join("copy.sqlite");
        copy_sqlite(&db, &copy).unwrap();
        let back = rusqlite::Connection::open(&copy).unwrap();
        let n: i64 = back
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        assert!(!dir.path().join("copy.sqlite-wal").exists());
        std::fs::write(dir.path().join("plain"), b"not a database at all").unwrap();
        assert!(!looks_like_sqlite(&dir.path().join("plain")));
    }
}
