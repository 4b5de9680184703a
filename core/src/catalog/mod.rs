//! The SQLite catalog: schema, migrations and every query.
//!
//! One database records, per snapshot, every file's path, size, mtime, inode,
//! mode, symlink target and SHA-256 (as *versions* alive over a range of
//! snapshots); the objects; the disks; and which disk holds which object and
//! when that copy was last verified. Paths are stored as raw bytes (BLOB) so
//! that any name Linux allows comes back exactly.
//!
//! The pieces: `schema` (tables and migrations), `versions` (snapshots,
//! versions, objects), `disks` (disks and their copies), `history` (what
//! every job did), `journal` (a scan or sync in progress).
//!
//! Invariant: every query lives here; a catalog is only ever changed inside a
//! transaction, so a killed process leaves the previous consistent state.

use std::collections::HashMap;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::object::ObjectId;

mod disks;
mod hash_col;
mod history;
mod journal;
mod meta_rows;
mod pages;
mod schema;
mod versions;

use hash_col::{hash_of, hash_value};

pub use history::{Ended, HistoryDisk, HistoryEntry, JobEnd};
pub use journal::{Cached, Journal, Note, Staging};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog {path_}: {source}", path_ = crate::human::path(.path))]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the folder for the catalog {path_}: {source}", path_ = crate::human::path(.path))]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the catalog {path_}: {source}", path_ = crate::human::path(.path))]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path_} is not a Coffer catalog (another program's database, or not a database at all)", path_ = crate::human::path(.path))]
    Foreign { path: PathBuf },
    #[error(
        "{path_} was written by a newer Coffer (catalog schema {found}, this Coffer knows up to {known}); update Coffer to read it", path_ = crate::human::path(.path))]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("catalog {path_} holds a bad value in {what}: {value}", path_ = crate::human::path(.path))]
    BadValue {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
    #[error("journal {path_}: {source}", path_ = crate::human::path(.path))]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no snapshot {0} in the catalog")]
    NoSuchSnapshot(i64),
}

/// `PRAGMA application_id`: "CofR". Tells our catalogs from other SQLite files.
pub const APPLICATION_ID: i64 = 0x436f_6652;
/// The schema this Coffer writes.
pub const SCHEMA_VERSION: i64 = 7;

/// What a catalog entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A named pipe: recorded and made again, never read.
    Fifo,
    /// Device nodes: recorded with their device number, made again only
    /// as root.
    CharDevice,
    BlockDevice,
}

impl Kind {
    fn to_i64(self) -> i64 {
        match self {
            Kind::File => 0,
            Kind::Dir => 1,
            Kind::Symlink => 2,
            Kind::Fifo => 3,
            Kind::CharDevice => 4,
            Kind::BlockDevice => 5,
        }
    }
    fn from_i64(v: i64) -> Option<Kind> {
        match v {
            0 => Some(Kind::File),
            1 => Some(Kind::Dir),
            2 => Some(Kind::Symlink),
            3 => Some(Kind::Fifo),
            4 => Some(Kind::CharDevice),
            5 => Some(Kind::BlockDevice),
            _ => None,
        }
    }
}

impl Kind {
    /// A FIFO or a device node: metadata only, no content.
    pub fn is_special(self) -> bool {
        matches!(self, Kind::Fifo | Kind::CharDevice | Kind::BlockDevice)
    }
}

/// What a version records beyond its content, mode and mtime (schema 5).
/// Versions an older Coffer recorded have no owner, no link count and no
/// attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attrs {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The device the file was on and its link count: files with more than
    /// one link, on the same device with the same inode, are one file.
    pub dev: u64,
    pub nlink: u64,
    /// The device number of a device node.
    pub rdev: u64,
    /// Whether it had fewer blocks than its size needs (holes): restored
    /// with holes where it holds whole blocks of zeros.
    pub sparse: bool,
    /// Its extended attributes and ACLs: an id in `xattr_sets`.
    pub xattrs: Option<i64>,
    /// When its inode last changed (any attribute, mode, owner or link
    /// count changes it): not compared, only a reason to list attributes
    /// again.
    pub ctime_ns: Option<i64>,
}

impl Attrs {
    /// What makes two versions of one path differ beyond content, mode and
    /// target: the owner, the attributes, a device number, and for a file
    /// with several links, which device it is on and how many links it has
    /// (so that every link of a group in a snapshot carries the same
    /// device, even after a reboot renumbered it).
    pub fn same_as(&self, other: &Attrs, xattrs_same: bool) -> bool {
        let links = |a: &Attrs| {
            if a.nlink > 1 {
                (a.dev, a.nlink)
            } else {
                (0, a.nlink.min(1))
            }
        };
        self.uid == other.uid
            && self.gid == other.gid
            && self.rdev == other.rdev
            && links(self) == links(other)
            && xattrs_same
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
    pub attrs: Attrs,
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
    /// Owner, links, device number, holes. The set of attributes is
    /// `xattrs` when read from the file, else `attrs.xattrs` (an id taken
    /// over from the version before).
    pub attrs: Attrs,
    pub xattrs: Option<std::sync::Arc<crate::meta::Xattrs>>,
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
    /// Names of the owners and groups the scan found.
    pub owners: Vec<(crate::meta::owner::Of, u32, String)>,
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
    /// The schema it holds: below the current one only for a copy from a
    /// disk, which is read as it is.
    schema: i64,
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
            schema: SCHEMA_VERSION,
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
            schema: SCHEMA_VERSION,
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
            schema: SCHEMA_VERSION,
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
            self.schema = version;
            return Ok(());
        }
        // 32 MiB of page cache per connection: the indices a first sync
        // inserts into at random (objects, versions by hash, copies) fit
        // in it at a million files, and pages beyond come back from the
        // system's cache; the sync holds two connections at its peak.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-32768;",
            )
            .map_err(self.err())?;
        self.migrate(version)
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

fn parse_uuid(path: &Path, s: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(s).map_err(|_| Error::BadValue {
        path: path.into(),
        what: "disk id",
        value: s.into(),
    })
}

#[cfg(test)]
mod tests;
