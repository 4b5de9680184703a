//! The SQLite catalog: schema, migrations and every query.
//!
//! One database records, per snapshot, every file's path, size, mtime, inode,
//! mode, symlink target and SHA-256 (as *versions* alive over a range of
//! snapshots); the objects; the disks; and which disk holds which object and
//! when that copy was last verified. Paths are stored as raw bytes (BLOB) so
//! that any name Linux allows comes back exactly.
//!
//! Invariant: every query lives here; a catalog is only ever changed inside a
//! transaction, so a killed process leaves the previous consistent state.

use std::collections::HashMap;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::object::ObjectId;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the folder for the catalog {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the catalog {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a Coffer catalog (another program's database, or not a database at all)"
    )]
    Foreign { path: PathBuf },
    #[error(
        "{path} was written by a newer Coffer (catalog schema {found}, this Coffer knows up to {known}); update Coffer to read it"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("catalog {path} holds a bad value in {what}: {value}")]
    BadValue {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
    #[error("no snapshot {0} in the catalog")]
    NoSuchSnapshot(i64),
}

/// `PRAGMA application_id`: "CofR". Tells our catalogs from other SQLite files.
pub const APPLICATION_ID: i64 = 0x436f_6652;
/// The schema this Coffer writes.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA_V1: &str = "
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE snapshots(
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE objects(hash TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE versions(
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL,
    kind INTEGER NOT NULL,          -- 0 file, 1 folder, 2 symlink
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    target BLOB,                    -- symlink target
    hash TEXT REFERENCES objects(hash),
    first_snapshot INTEGER NOT NULL,
    last_snapshot INTEGER NOT NULL
);
CREATE INDEX versions_last ON versions(last_snapshot);
CREATE INDEX versions_path ON versions(path);
CREATE INDEX versions_hash ON versions(hash);
CREATE TABLE disks(
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    quota INTEGER,
    capacity INTEGER,
    free INTEGER,
    used INTEGER,
    last_seen INTEGER,
    last_sync INTEGER,
    last_verify INTEGER,
    last_mount BLOB,
    auto_sync INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE copies(
    hash TEXT NOT NULL,
    disk_id TEXT NOT NULL REFERENCES disks(id) ON DELETE CASCADE,
    stored_at INTEGER NOT NULL,
    verified_at INTEGER,
    PRIMARY KEY(hash, disk_id)
) WITHOUT ROWID;
CREATE INDEX copies_disk ON copies(disk_id, verified_at);
";

/// Raises `generation`; run by every method that changes snapshots,
/// versions, objects or copies, in the same transaction (or before the
/// change, so that a crash can only leave it too high).
const BUMP: &str = "INSERT INTO meta(key, value) VALUES('generation', '1')
     ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1";

/// What a catalog entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    fn to_i64(self) -> i64 {
        match self {
            Kind::File => 0,
            Kind::Dir => 1,
            Kind::Symlink => 2,
        }
    }
    fn from_i64(v: i64) -> Option<Kind> {
        match v {
            0 => Some(Kind::File),
            1 => Some(Kind::Dir),
            2 => Some(Kind::Symlink),
            _ => None,
        }
    }
}

/// One scan's view of the workstation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub files: u64,
    pub bytes: u64,
}

/// A file, folder or symlink as it was over a range of snapshots.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    pub id: i64,
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub mode: u32,
    pub target: Option<PathBuf>,
    pub hash: Option<ObjectId>,
    pub first_snapshot: i64,
    pub last_snapshot: i64,
}

/// A version a scan found, before it has an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVersion {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub mode: u32,
    pub target: Option<PathBuf>,
    pub hash: Option<ObjectId>,
}

/// What a scan changed since the previous snapshot.
#[derive(Clone, Debug, Default)]
pub struct ScanDelta {
    pub started_at: i64,
    /// Versions alive in the previous snapshot that are not in the new one.
    pub ended: Vec<i64>,
    pub added: Vec<NewVersion>,
    pub files: u64,
    pub bytes: u64,
}

/// A backup disk as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DiskRow {
    pub id: uuid::Uuid,
    pub label: String,
    pub created_at: i64,
    pub quota: Option<u64>,
    pub capacity: Option<u64>,
    pub free: Option<u64>,
    pub used: Option<u64>,
    pub last_seen: Option<i64>,
    pub last_sync: Option<i64>,
    pub last_verify: Option<i64>,
    pub last_mount: Option<PathBuf>,
    pub auto_sync: bool,
}

impl DiskRow {
    /// A disk the catalog has just met: nothing measured or done yet.
    pub fn new(id: uuid::Uuid, label: &str, created_at: i64) -> DiskRow {
        DiskRow {
            id,
            label: label.to_string(),
            created_at,
            quota: None,
            capacity: None,
            free: None,
            used: None,
            last_seen: None,
            last_sync: None,
            last_verify: None,
            last_mount: None,
            auto_sync: false,
        }
    }
}

/// One object on one disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyRow {
    pub hash: ObjectId,
    pub disk_id: uuid::Uuid,
    pub stored_at: i64,
    pub verified_at: Option<i64>,
}

/// An object with what the planner needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectUse {
    pub hash: ObjectId,
    pub size: u64,
    /// The newest snapshot any version with this content is alive in.
    pub newest_snapshot: i64,
    /// Paths of versions with this content, current ones first.
    pub paths: Vec<PathBuf>,
}

pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn bytes_path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

impl Catalog {
    /// Opens (creating if needed) the workstation catalog at `path`.
    pub fn open(path: &Path) -> Result<Catalog, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if std::fs::symlink_metadata(path).is_err() {
            Catalog::create(path)?;
        }
        let conn = Connection::open(path).map_err(|source| Error::Sqlite {
            path: path.into(),
            source,
        })?;
        let mut cat = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        cat.setup(true)?;
        Ok(cat)
    }

    /// Makes a new catalog at `path` in one step: built whole under a temp
    /// name beside it (schema, WAL mode), flushed, then linked into place
    /// without replacing anything. A process opening the catalog meanwhile
    /// finds nothing or a finished catalog, never one half made, and of
    /// two that create it at once (the window and `coffer sync` on a new
    /// computer) one wins and the other opens the winner's.
    fn create(path: &Path) -> Result<(), Error> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let io = |source| Error::Create {
            path: path.into(),
            source,
        };
        let tmp = tempfile::Builder::new()
            .prefix(".catalog-new-")
            .suffix(".sqlite")
            .tempfile_in(dir)
            .map_err(io)?;
        let conn = Connection::open(tmp.path()).map_err(|source| Error::Sqlite {
            path: tmp.path().into(),
            source,
        })?;
        let mut cat = Catalog {
            conn,
            path: tmp.path().to_path_buf(),
        };
        cat.setup(true)?;
        // Closing checkpoints the WAL into the file and removes it.
        drop(cat);
        tmp.as_file().sync_all().map_err(io)?;
        // Renames without replacing (or links where the file system
        // cannot): a catalog already there is the other creator's.
        match tmp.persist_noclobber(path) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(io(e.error)),
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// Opens a catalog copy (from a disk) read-only, after checking that it
    /// is a Coffer catalog this version can read.
    pub fn open_copy(path: &Path) -> Result<Catalog, Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::Sqlite {
            path: path.into(),
            source,
        })?;
        // A copy from a disk is hostile input: SQLite's defensive mode (no
        // writes to the schema, no corrupting pragmas), no functions called
        // from its schema, and no value larger than a path could be.
        let e = |source| Error::Sqlite {
            path: path.into(),
            source,
        };
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(e)?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
            false,
        )
        .map_err(e)?;
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 16 << 20)
            .map_err(e)?;
        conn.execute_batch("PRAGMA cell_size_check=ON; PRAGMA mmap_size=0;")
            .map_err(e)?;
        let mut cat = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        cat.setup(false)?;
        Ok(cat)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| match source {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::NotADatabase => {
                Error::Foreign {
                    path: self.path.clone(),
                }
            }
            source => Error::Sqlite {
                path: self.path.clone(),
                source,
            },
        }
    }

    fn setup(&mut self, writable: bool) -> Result<(), Error> {
        let e = |source| Error::Sqlite {
            path: self.path.clone(),
            source,
        };
        self.conn
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(e)?;
        let app_id: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(self.err())?;
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.err())?;
        let empty: bool = self
            .conn
            .query_row("SELECT count(*) = 0 FROM sqlite_master", [], |r| r.get(0))
            .map_err(self.err())?;
        if !(app_id == APPLICATION_ID || (app_id == 0 && empty && writable)) {
            return Err(Error::Foreign {
                path: self.path.clone(),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(Error::TooNew {
                path: self.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if !writable {
            if version < 1 {
                return Err(Error::Foreign {
                    path: self.path.clone(),
                });
            }
            return Ok(());
        }
        self.conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;",
            )
            .map_err(self.err())?;
        self.migrate(version)
    }

    /// Brings the schema up to [`SCHEMA_VERSION`], one step per version, each
    /// in its own write transaction that first reads the version again: two
    /// processes opening a new catalog at once (the window's refresh and a
    /// listing, or the window and `coffer sync`) each find the other's step
    /// done rather than running it twice.
    fn migrate(&mut self, seen: i64) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        for step in (seen + 1)..=SCHEMA_VERSION {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(e)?;
            let now: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(e)?;
            if now >= step {
                continue;
            }
            match step {
                1 => {
                    tx.execute_batch(SCHEMA_V1).map_err(e)?;
                    tx.pragma_update(None, "application_id", APPLICATION_ID)
                        .map_err(e)?;
                }
                // v2: the change counter behind `generation`.
                2 => {
                    tx.execute(
                        "INSERT OR IGNORE INTO meta(key, value) VALUES('generation', '0')",
                        [],
                    )
                    .map_err(e)?;
                }
                _ => unreachable!("no migration to schema version {step}"),
            }
            tx.pragma_update(None, "user_version", step).map_err(e)?;
            tx.commit().map_err(e)?;
        }
        Ok(())
    }

    /// A counter raised by every change to snapshots, versions, objects or
    /// copies: what a sync's plan depends on. Equal generations mean the
    /// catalog has the same content for planning.
    pub fn generation(&self) -> Result<i64, Error> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    // ---------------------------------------------------------------- meta

    pub fn meta(&self, key: &str) -> Result<Option<String>, Error> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), Error> {
        self.conn
            .execute("INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2", [
                key, value,
            ])
            .map_err(self.err())?;
        Ok(())
    }

    // ----------------------------------------------------------- snapshots

    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>, Error> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at, files, bytes FROM snapshots ORDER BY id DESC LIMIT 1",
                [],
                snapshot_row,
            )
            .optional()
            .map_err(self.err())
    }

    pub fn snapshot(&self, id: i64) -> Result<Snapshot, Error> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at, files, bytes FROM snapshots WHERE id = ?1",
                [id],
                snapshot_row,
            )
            .optional()
            .map_err(self.err())?
            .ok_or(Error::NoSuchSnapshot(id))
    }

    pub fn snapshots(&self) -> Result<Vec<Snapshot>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, started_at, finished_at, files, bytes FROM snapshots ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = st.query_map([], snapshot_row).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The newest snapshot taken at or before `time` (seconds).
    pub fn snapshot_at(&self, time: i64) -> Result<Option<Snapshot>, Error> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at, files, bytes FROM snapshots
                 WHERE started_at <= ?1 ORDER BY id DESC LIMIT 1",
                [time],
                snapshot_row,
            )
            .optional()
            .map_err(self.err())
    }

    // ------------------------------------------------------------ versions

    /// Versions matching `tail` (a WHERE/ORDER BY clause over `versions`).
    fn query_versions<P: rusqlite::Params>(
        &self,
        tail: &str,
        params: P,
    ) -> Result<Vec<Version>, Error> {
        let sql = format!(
            "SELECT id, path, kind, size, mtime_ns, inode, mode, target, hash, first_snapshot, last_snapshot
             FROM versions {tail}"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = st.query_map(params, version_row).map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(self.err())??);
        }
        Ok(out)
    }

    /// Every version alive in snapshot `id`.
    pub fn versions_in(&self, id: i64) -> Result<Vec<Version>, Error> {
        self.query_versions(
            "WHERE last_snapshot >= ?1 AND first_snapshot <= ?1 ORDER BY path",
            [id],
        )
    }

    /// Every version alive in snapshot `id`, in no particular order (what
    /// a scan compares with: no sort of the whole snapshot).
    pub fn versions_alive(&self, id: i64) -> Result<Vec<Version>, Error> {
        self.query_versions("WHERE last_snapshot >= ?1 AND first_snapshot <= ?1", [id])
    }

    /// Every version of `path` (exactly that path), oldest first.
    pub fn versions_of(&self, path: &Path) -> Result<Vec<Version>, Error> {
        self.query_versions(
            "WHERE path = ?1 ORDER BY first_snapshot",
            [path_bytes(path)],
        )
    }

    /// Every version ever recorded, for searches over all history.
    pub fn all_versions(&self) -> Result<Vec<Version>, Error> {
        self.query_versions("ORDER BY path, first_snapshot", [])
    }

    /// Records a scan as a new snapshot in one transaction; returns its id.
    pub fn apply_scan(&mut self, prev: Option<i64>, delta: &ScanDelta) -> Result<i64, Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let new_id: i64 = tx
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM snapshots", [], |r| {
                r.get(0)
            })
            .map_err(e)?;
        tx.execute(
            "INSERT INTO snapshots(id, started_at, finished_at, files, bytes) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![new_id, delta.started_at, crate::now(), delta.files as i64, delta.bytes as i64],
        )
        .map_err(e)?;
        if let Some(prev) = prev {
            tx.execute(
                "UPDATE versions SET last_snapshot = ?1 WHERE last_snapshot = ?2",
                [new_id, prev],
            )
            .map_err(e)?;
            let mut end = tx
                .prepare("UPDATE versions SET last_snapshot = ?1 WHERE id = ?2")
                .map_err(e)?;
            for id in &delta.ended {
                end.execute([prev, *id]).map_err(e)?;
            }
        }
        {
            let mut obj = tx
                .prepare("INSERT INTO objects(hash, size) VALUES(?1, ?2) ON CONFLICT DO NOTHING")
                .map_err(e)?;
            let mut ins = tx
                .prepare(
                    "INSERT INTO versions(path, kind, size, mtime_ns, inode, mode, target, hash, first_snapshot, last_snapshot)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                )
                .map_err(e)?;
            // In key order, each new object lands next to the last one.
            let mut objects: Vec<(ObjectId, u64)> = delta
                .added
                .iter()
                .filter_map(|v| v.hash.map(|h| (h, v.size)))
                .collect();
            objects.sort_unstable();
            objects.dedup_by_key(|o| o.0);
            for (h, size) in &objects {
                obj.execute(params![h.to_hex(), *size as i64]).map_err(e)?;
            }
            for v in &delta.added {
                let hash = v.hash.map(|h| h.to_hex());
                ins.execute(params![
                    path_bytes(&v.path),
                    v.kind.to_i64(),
                    v.size as i64,
                    v.mtime_ns,
                    v.inode as i64,
                    v.mode,
                    v.target.as_deref().map(path_bytes),
                    hash,
                    new_id
                ])
                .map_err(e)?;
            }
        }
        tx.execute(BUMP, []).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(new_id)
    }

    /// Every version, in any snapshot, of `prefix` itself and of everything
    /// under it (component-wise: `/a/b` is not under `/a/bc`), by path then age.
    pub fn versions_under(&self, prefix: &Path) -> Result<Vec<Version>, Error> {
        let p = path_bytes(prefix);
        let trimmed = if p.len() > 1 && p.ends_with(b"/") {
            &p[..p.len() - 1]
        } else {
            p
        };
        // Children lie in [prefix + "/", prefix + "0"): '0' follows '/'.
        let (lo, hi) = if trimmed == b"/" {
            (b"/".to_vec(), b"0".to_vec())
        } else {
            ([trimmed, b"/"].concat(), [trimmed, b"0"].concat())
        };
        self.query_versions(
            "WHERE path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path, first_snapshot",
            params![trimmed, lo, hi],
        )
    }

    /// Every object referenced by any retained version, with its newest
    /// snapshot and its paths (current ones first).
    pub fn object_uses(&self) -> Result<Vec<ObjectUse>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT v.hash, o.size, v.last_snapshot, v.path FROM versions v JOIN objects o ON o.hash = v.hash
                 ORDER BY v.hash, v.last_snapshot DESC",
            )
            .map_err(self.err())?;
        let mut rows = st.query([]).map_err(self.err())?;
        let mut out: Vec<ObjectUse> = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let hash = parse_hash(&self.path, r.get::<_, String>(0).map_err(self.err())?)?;
            let size: i64 = r.get(1).map_err(self.err())?;
            let last: i64 = r.get(2).map_err(self.err())?;
            let path = bytes_path(r.get(3).map_err(self.err())?);
            match out.last_mut() {
                Some(u) if u.hash == hash => u.paths.push(path),
                _ => out.push(ObjectUse {
                    hash,
                    size: size as u64,
                    newest_snapshot: last,
                    paths: vec![path],
                }),
            }
        }
        Ok(out)
    }

    /// Paths that ever held this content, newest first.
    pub fn paths_of(&self, hash: &ObjectId) -> Result<Vec<PathBuf>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT path FROM versions WHERE hash = ?1 ORDER BY last_snapshot DESC",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([hash.to_hex()], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        rows.map(|r| r.map(bytes_path))
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    pub fn object_size(&self, hash: &ObjectId) -> Result<Option<u64>, Error> {
        self.conn
            .query_row(
                "SELECT size FROM objects WHERE hash = ?1",
                [hash.to_hex()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|s| s as u64))
            .map_err(self.err())
    }

    // --------------------------------------------------------------- disks

    pub fn disks(&self) -> Result<Vec<DiskRow>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, label, created_at, quota, capacity, free, used, last_seen, last_sync, last_verify,
                        last_mount, auto_sync FROM disks ORDER BY label, id",
            )
            .map_err(self.err())?;
        let rows = st.query_map([], disk_row).map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(self.err())?.map_err(|v| Error::BadValue {
                path: self.path.clone(),
                what: "disks.id",
                value: v,
            })?);
        }
        Ok(out)
    }

    pub fn disk(&self, id: uuid::Uuid) -> Result<Option<DiskRow>, Error> {
        Ok(self.disks()?.into_iter().find(|d| d.id == id))
    }

    /// Inserts or replaces what the catalog knows of a disk.
    pub fn upsert_disk(&self, d: &DiskRow) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO disks(id, label, created_at, quota, capacity, free, used, last_seen, last_sync,
                                   last_verify, last_mount, auto_sync)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(id) DO UPDATE SET label = ?2, created_at = ?3, quota = ?4, capacity = ?5, free = ?6,
                     used = ?7, last_seen = ?8, last_sync = ?9, last_verify = ?10, last_mount = ?11, auto_sync = ?12",
                params![
                    d.id.to_string(),
                    d.label,
                    d.created_at,
                    d.quota.map(|v| v as i64),
                    d.capacity.map(|v| v as i64),
                    d.free.map(|v| v as i64),
                    d.used.map(|v| v as i64),
                    d.last_seen,
                    d.last_sync,
                    d.last_verify,
                    d.last_mount.as_deref().map(path_bytes),
                    d.auto_sync
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn forget_disk(&self, id: uuid::Uuid) -> Result<(), Error> {
        self.conn.execute(BUMP, []).map_err(self.err())?;
        self.conn
            .execute("DELETE FROM copies WHERE disk_id = ?1", [id.to_string()])
            .map_err(self.err())?;
        self.conn
            .execute("DELETE FROM disks WHERE id = ?1", [id.to_string()])
            .map_err(self.err())?;
        Ok(())
    }

    // -------------------------------------------------------------- copies

    pub fn copies(&self) -> Result<Vec<CopyRow>, Error> {
        let mut st = self
            .conn
            .prepare_cached("SELECT hash, disk_id, stored_at, verified_at FROM copies")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (h, d, stored_at, verified_at) = r.map_err(self.err())?;
            out.push(CopyRow {
                hash: parse_hash(&self.path, h)?,
                disk_id: parse_uuid(&self.path, &d)?,
                stored_at,
                verified_at,
            });
        }
        Ok(out)
    }

    /// Copies on one disk, least recently verified first (never verified first).
    pub fn copies_on(&self, disk: uuid::Uuid) -> Result<Vec<CopyRow>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT hash, stored_at, verified_at FROM copies WHERE disk_id = ?1
                 ORDER BY verified_at IS NOT NULL, verified_at, hash",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([disk.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (h, stored_at, verified_at) = r.map_err(self.err())?;
            out.push(CopyRow {
                hash: parse_hash(&self.path, h)?,
                disk_id: disk,
                stored_at,
                verified_at,
            });
        }
        Ok(out)
    }

    /// Records copies that now exist on a disk (in one transaction).
    pub fn add_copies(
        &mut self,
        disk: uuid::Uuid,
        rows: &[(ObjectId, Option<i64>)],
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO copies(hash, disk_id, stored_at, verified_at) VALUES(?1, ?2, ?3, ?4)
                     ON CONFLICT(hash, disk_id) DO UPDATE SET verified_at = coalesce(?4, verified_at)",
                )
                .map_err(e)?;
            let now = crate::now();
            for (h, verified) in rows {
                st.execute(params![h.to_hex(), disk.to_string(), now, verified])
                    .map_err(e)?;
            }
        }
        if !rows.is_empty() {
            tx.execute(BUMP, []).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Forgets copies that are no longer on a disk (in one transaction).
    pub fn remove_copies(&mut self, disk: uuid::Uuid, hashes: &[ObjectId]) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut st = tx
                .prepare("DELETE FROM copies WHERE hash = ?1 AND disk_id = ?2")
                .map_err(e)?;
            for h in hashes {
                st.execute(params![h.to_hex(), disk.to_string()])
                    .map_err(e)?;
            }
        }
        if !hashes.is_empty() {
            tx.execute(BUMP, []).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    pub fn set_verified(&self, disk: uuid::Uuid, hash: &ObjectId, at: i64) -> Result<(), Error> {
        self.conn.execute(BUMP, []).map_err(self.err())?;
        self.conn
            .execute(
                "UPDATE copies SET verified_at = ?1 WHERE hash = ?2 AND disk_id = ?3",
                params![at, hash.to_hex(), disk.to_string()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Writes a consistent, self-contained copy of the catalog to `dest`
    /// (which must not exist), in rollback-journal mode so that it is one file.
    pub fn export_to(&self, dest: &Path) -> Result<(), Error> {
        let e = |source| Error::Sqlite {
            path: dest.to_path_buf(),
            source,
        };
        let name = dest.to_str().ok_or_else(|| Error::BadValue {
            path: dest.to_path_buf(),
            what: "export path",
            value: "not valid UTF-8".into(),
        })?;
        self.conn.execute("VACUUM INTO ?1", [name]).map_err(e)?;
        let c = Connection::open(dest).map_err(e)?;
        c.pragma_update(None, "journal_mode", "DELETE").map_err(e)?;
        Ok(())
    }

    /// A cheap summary that changes whenever snapshots or copies change, so
    /// a sync can tell that a disk's catalog copy is still current.
    pub fn fingerprint(&self) -> Result<String, Error> {
        self.conn
            .query_row(
                "SELECT (SELECT coalesce(max(id), 0) FROM snapshots) || ':' ||
                        (SELECT value FROM meta WHERE key = 'generation') || ':' ||
                        (SELECT count(*) FROM disks)",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// Number of objects and their total size, for summaries.
    pub fn counts(&self) -> Result<HashMap<&'static str, i64>, Error> {
        let mut m = HashMap::new();
        for (k, q) in [
            ("objects", "SELECT count(*) FROM objects"),
            ("object_bytes", "SELECT coalesce(sum(size), 0) FROM objects"),
            ("snapshots", "SELECT count(*) FROM snapshots"),
            ("versions", "SELECT count(*) FROM versions"),
        ] {
            m.insert(
                k,
                self.conn
                    .query_row(q, [], |r| r.get(0))
                    .map_err(self.err())?,
            );
        }
        Ok(m)
    }
}

fn snapshot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Snapshot> {
    Ok(Snapshot {
        id: r.get(0)?,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        files: r.get::<_, i64>(3)? as u64,
        bytes: r.get::<_, i64>(4)? as u64,
    })
}

type RowResult<T> = rusqlite::Result<Result<T, Error>>;

fn version_row(r: &rusqlite::Row<'_>) -> RowResult<Version> {
    let kind_raw: i64 = r.get(2)?;
    let hash: Option<&str> = r.get_ref(8)?.as_str_or_null()?;
    let kind = match Kind::from_i64(kind_raw) {
        Some(k) => k,
        None => {
            return Ok(Err(Error::BadValue {
                path: PathBuf::new(),
                what: "versions.kind",
                value: kind_raw.to_string(),
            }));
        }
    };
    let hash = match hash.map(str::parse::<ObjectId>) {
        None => None,
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            return Ok(Err(Error::BadValue {
                path: PathBuf::new(),
                what: "versions.hash",
                value: e.0,
            }));
        }
    };
    Ok(Ok(Version {
        id: r.get(0)?,
        path: bytes_path(r.get(1)?),
        kind,
        size: r.get::<_, i64>(3)? as u64,
        mtime_ns: r.get(4)?,
        inode: r.get::<_, i64>(5)? as u64,
        mode: r.get(6)?,
        target: r.get::<_, Option<Vec<u8>>>(7)?.map(bytes_path),
        hash,
        first_snapshot: r.get(9)?,
        last_snapshot: r.get(10)?,
    }))
}

fn disk_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<DiskRow, String>> {
    let id: String = r.get(0)?;
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return Ok(Err(id));
    };
    let opt_u = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(|v| v as u64))
    };
    Ok(Ok(DiskRow {
        id,
        label: r.get(1)?,
        created_at: r.get(2)?,
        quota: opt_u(3)?,
        capacity: opt_u(4)?,
        free: opt_u(5)?,
        used: opt_u(6)?,
        last_seen: r.get(7)?,
        last_sync: r.get(8)?,
        last_verify: r.get(9)?,
        last_mount: r.get::<_, Option<Vec<u8>>>(10)?.map(bytes_path),
        auto_sync: r.get(11)?,
    }))
}

fn parse_hash(path: &Path, s: String) -> Result<ObjectId, Error> {
    s.parse().map_err(|_| Error::BadValue {
        path: path.into(),
        what: "hash",
        value: s,
    })
}

fn parse_uuid(path: &Path, s: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(s).map_err(|_| Error::BadValue {
        path: path.into(),
        what: "disk id",
        value: s.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> NewVersion {
        NewVersion {
            path: path.into(),
            kind: Kind::File,
            size: content.len() as u64,
            mtime_ns: 1,
            inode: 1,
            mode: 0o644,
            target: None,
            hash: Some(ObjectId::of(content)),
        }
    }

    #[test]
    fn a_new_catalog_opened_by_several_at_once_is_made_once() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.sqlite");
            let barrier = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        barrier.wait();
                        let cat =
                            Catalog::open(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
                        assert_eq!(cat.generation().unwrap(), 0);
                    });
                }
            });
        }
    }

    #[test]
    fn every_change_a_plan_depends_on_raises_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let disk = uuid::Uuid::new_v4();
        let mut last = cat.generation().unwrap();
        let mut raised = |cat: &Catalog, what: &str| {
            let now = cat.generation().unwrap();
            assert!(now > last, "{what} left the generation at {now}");
            last = now;
        };
        let s1 = cat
            .apply_scan(
                None,
                &ScanDelta {
                    added: vec![file("/a", b"1")],
                    ..Default::default()
                },
            )
            .unwrap();
        raised(&cat, "a scan");
        cat.upsert_disk(&DiskRow::new(disk, "A", 0)).unwrap();
        let h = ObjectId::of(b"1");
        cat.add_copies(disk, &[(h, None)]).unwrap();
        raised(&cat, "adding a copy");
        cat.set_verified(disk, &h, 5).unwrap();
        raised(&cat, "verifying a copy");
        cat.remove_copies(disk, &[h]).unwrap();
        raised(&cat, "removing a copy");
        cat.add_copies(disk, &[(h, None)]).unwrap();
        raised(&cat, "adding it again");
        cat.forget_disk(disk).unwrap();
        raised(&cat, "forgetting a disk");
        cat.apply_scan(Some(s1), &ScanDelta::default()).unwrap();
        raised(&cat, "an empty scan");
        // What does not change a plan leaves it alone.
        cat.set_meta("x", "y").unwrap();
        cat.add_copies(disk, &[]).unwrap();
        assert_eq!(cat.generation().unwrap(), last);
    }

    #[test]
    fn versions_are_kept_across_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let s1 = cat
            .apply_scan(
                None,
                &ScanDelta {
                    added: vec![file("/a", b"1"), file("/b", b"2")],
                    ..Default::default()
                },
            )
            .unwrap();
        let b = cat
            .versions_in(s1)
            .unwrap()
            .into_iter()
            .find(|v| v.path == Path::new("/b"))
            .unwrap();
        let s2 = cat
            .apply_scan(
                Some(s1),
                &ScanDelta {
                    ended: vec![b.id],
                    added: vec![file("/c", b"3")],
                    ..Default::default()
                },
            )
            .unwrap();
        let now: Vec<_> = cat
            .versions_in(s2)
            .unwrap()
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(now, vec![PathBuf::from("/a"), PathBuf::from("/c")]);
        let then: Vec<_> = cat
            .versions_in(s1)
            .unwrap()
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(then, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(cat.object_uses().unwrap().len(), 3);
    }

    #[test]
    fn foreign_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES(1);")
            .unwrap();
        assert!(matches!(Catalog::open(&other), Err(Error::Foreign { .. })));
        assert!(matches!(
            Catalog::open_copy(&other),
            Err(Error::Foreign { .. })
        ));

        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let err = Catalog::open_copy(&garbage).err().unwrap();
        assert!(matches!(err, Error::Foreign { .. }), "{err}");

        let newer = dir.path().join("newer.sqlite");
        drop(Catalog::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Catalog::open_copy(&newer).err().unwrap();
        assert!(err.to_string().contains("newer Coffer"), "{err}");
    }

    #[test]
    fn versions_under_a_prefix_are_found_component_wise() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let s1 = cat
            .apply_scan(
                None,
                &ScanDelta {
                    added: vec![
                        file("/a/b", b"1"),
                        file("/a/b/c", b"2"),
                        file("/a/bc", b"3"),
                        file("/a/b0", b"4"),
                        file("/z", b"5"),
                    ],
                    ..Default::default()
                },
            )
            .unwrap();
        let c = cat
            .versions_in(s1)
            .unwrap()
            .into_iter()
            .find(|v| v.path == Path::new("/a/b/c"))
            .unwrap();
        cat.apply_scan(
            Some(s1),
            &ScanDelta {
                ended: vec![c.id],
                ..Default::default()
            },
        )
        .unwrap();
        let paths = |p: &str| -> Vec<PathBuf> {
            cat.versions_under(Path::new(p))
                .unwrap()
                .into_iter()
                .map(|v| v.path)
                .collect()
        };
        // The ended version is still found: versions of every snapshot.
        assert_eq!(
            paths("/a/b"),
            vec![PathBuf::from("/a/b"), PathBuf::from("/a/b/c")]
        );
        assert_eq!(paths("/a/b/"), paths("/a/b"));
        assert_eq!(paths("/").len(), 5);
        assert_eq!(paths("/a").len(), 4);
        assert!(paths("/nothing").is_empty());
    }

    #[test]
    fn non_utf8_paths_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let weird = PathBuf::from(std::ffi::OsString::from_vec(b"/x/\xff\xfe.bin".to_vec()));
        let mut v = file("/", b"z");
        v.path = weird.clone();
        let s = cat
            .apply_scan(
                None,
                &ScanDelta {
                    added: vec![v],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(cat.versions_in(s).unwrap()[0].path, weird);
    }
}
