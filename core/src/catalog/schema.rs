//! The catalog's schema and its migrations, one step per version.
//!
//! Invariant: each step runs in its own IMMEDIATE transaction that first
//! reads the version again, so two processes opening a new catalog at once
//! never run a step twice.

use super::{APPLICATION_ID, Catalog, Error, SCHEMA_VERSION};

pub(super) const SCHEMA_V1: &str = "
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

/// What a scan learned before it was stopped (hashes of files read, keyed
/// by what they were when read), and which temp copies on a disk came from
/// which file: a killed scan or sync resumed from them instead of reading
/// and copying again (dropped in v4: the journal is logs now).
pub(super) const SCHEMA_V3: &str = "
CREATE TABLE scan_cache(
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE staging(
    disk_id TEXT NOT NULL,
    name TEXT NOT NULL,
    path BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    PRIMARY KEY(disk_id, name)
) WITHOUT ROWID;
";

/// `last_snapshot` of a version still alive in the newest snapshot (v4): a
/// new snapshot then writes only the versions that ended, never every one
/// that lives on.
pub(super) const ALIVE: i64 = i64::MAX;

/// A version's last snapshot as readers see it: the newest snapshot's id for
/// one still alive (and the stored id in a catalog from before v4).
pub(super) const LAST: &str = "min(last_snapshot, (SELECT coalesce(max(id), 0) FROM snapshots))";

/// v4: versions alive in the newest snapshot are marked `ALIVE`; the SQLite
/// tables of the journal give way to its logs beside the catalog.
const SCHEMA_V4: &str = "
UPDATE versions SET last_snapshot = 9223372036854775807
    WHERE last_snapshot = (SELECT max(id) FROM snapshots);
DROP TABLE scan_cache;
DROP TABLE staging;
";

/// v5: what a restore needs to give back exactly what was there: owners (ids
/// in the version, names beside them), hard links (device and link count),
/// device numbers, holes, and extended attributes and ACLs, stored once per
/// distinct set (named by the SHA-256 of its canonical encoding).
pub(super) const SCHEMA_V5: &str = "
CREATE TABLE xattr_sets(
    id INTEGER PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE,
    data BLOB NOT NULL
);
CREATE TABLE owner_names(
    kind INTEGER NOT NULL,          -- 0 user, 1 group
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY(kind, id)
) WITHOUT ROWID;
-- versions.kind may also be 3 (fifo), 4 (char device), 5 (block device).
ALTER TABLE versions ADD COLUMN uid INTEGER;
ALTER TABLE versions ADD COLUMN gid INTEGER;
ALTER TABLE versions ADD COLUMN dev INTEGER;
ALTER TABLE versions ADD COLUMN nlink INTEGER;
ALTER TABLE versions ADD COLUMN rdev INTEGER;
ALTER TABLE versions ADD COLUMN sparse INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN xattrs INTEGER REFERENCES xattr_sets(id);
-- When its inode last changed (ns): a scan that finds it the same takes
-- the attributes as recorded instead of listing them again.
ALTER TABLE versions ADD COLUMN ctime_ns INTEGER;
";

/// v6: what every job did (a sync, a verify, a scan, a restore, an archive),
/// whichever front end ran it: the window, the command line or the agent.
/// A row is written when the job starts (`finished_at` NULL, outcome
/// "running") and completed when it ends; a row left "running" by a
/// process that is gone was interrupted. `disks` is a JSON array of the
/// disks the job worked on (`{"id", "label"}`). History is no backup data:
/// it does not raise `generation`.
pub(super) const SCHEMA_V6: &str = "
CREATE TABLE history(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    front_end TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT NOT NULL DEFAULT 'running',
    disks TEXT NOT NULL DEFAULT '[]',
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    warnings INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT ''
);
CREATE INDEX history_started ON history(started_at);
";

/// v7: hashes as their 32 bytes instead of 64 hex digits: the catalog and
/// its copies on the disks are a third smaller, and every index on a hash
/// with them. The columns keep their declared type (SQLite stores a BLOB
/// as it is in a TEXT column), so no table is rebuilt; `hex(hash)` shows
/// an object's file name in `sqlite3`. The versions' references to objects
/// are checked when the step commits, once both sides are converted.
pub(super) const SCHEMA_V7: &str = "
PRAGMA defer_foreign_keys = ON;
UPDATE objects SET hash = unhex(hash);
UPDATE versions SET hash = unhex(hash) WHERE hash IS NOT NULL;
UPDATE copies SET hash = unhex(hash);
";

/// Hashes a catalog before v7 holds that are not 64 hex digits: the step
/// to v7 stops rather than lose them.
const BAD_HEX: &str = "SELECT
    (SELECT count(*) FROM objects WHERE typeof(hash) != 'text' OR length(hash) != 64 OR unhex(hash) IS NULL)
  + (SELECT count(*) FROM versions WHERE hash IS NOT NULL
        AND (typeof(hash) != 'text' OR length(hash) != 64 OR unhex(hash) IS NULL))
  + (SELECT count(*) FROM copies WHERE typeof(hash) != 'text' OR length(hash) != 64 OR unhex(hash) IS NULL)";

/// Raises `generation`; run by every method that changes snapshots,
/// versions, objects or copies, in the same transaction (or before the
/// change, so that a crash can only leave it too high).
pub(super) const BUMP: &str = "INSERT INTO meta(key, value) VALUES('generation', '1')
     ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1";

impl Catalog {
    /// Brings the schema up to [`SCHEMA_VERSION`], one step per version, each
    /// in its own write transaction that first reads the version again: two
    /// processes opening a new catalog at once (the window's refresh and a
    /// listing, or the window and `coffer sync`) each find the other's step
    /// done rather than running it twice.
    pub(super) fn migrate(&mut self, seen: i64) -> Result<(), Error> {
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
                // v3: the journal a killed scan or sync resumes from.
                3 => tx.execute_batch(SCHEMA_V3).map_err(e)?,
                // v4: alive versions marked, the journal's tables dropped.
                4 => tx.execute_batch(SCHEMA_V4).map_err(e)?,
                // v5: owners, links, devices, holes, extended attributes.
                5 => tx.execute_batch(SCHEMA_V5).map_err(e)?,
                // v6: the history of jobs.
                6 => tx.execute_batch(SCHEMA_V6).map_err(e)?,
                7 => {
                    let bad: i64 = tx.query_row(BAD_HEX, [], |r| r.get(0)).map_err(e)?;
                    if bad > 0 {
                        return Err(Error::BadValue {
                            path: path.clone(),
                            what: "hash",
                            value: if bad == 1 {
                                "1 hash that is not 64 hex digits".into()
                            } else {
                                format!("{bad} hashes that are not 64 hex digits")
                            },
                        });
                    }
                    tx.execute_batch(SCHEMA_V7).map_err(e)?;
                }
                _ => unreachable!("no migration to schema version {step}"),
            }
            tx.pragma_update(None, "user_version", step).map_err(e)?;
            tx.commit().map_err(e)?;
        }
        // The step to v7 left every page that held a hash half empty: a
        // catalog that had rows gets them packed once.
        if (1..7).contains(&seen) {
            self.conn.execute_batch("VACUUM").map_err(e)?;
        }
        Ok(())
    }
}
