//! Snapshots, versions and objects: what was where, when, with which content.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::schema::{ALIVE, BUMP, LAST};
use super::{
    Catalog, Error, Kind, ObjectUse, ScanDelta, Snapshot, Version, bytes_path, hash_of, path_bytes,
};
use crate::object::ObjectId;

impl Catalog {
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
        // A copy from a disk written before schema 5 has none of its
        // columns: its versions come without owners, links or attributes.
        let v5 = if self.schema >= 5 {
            "uid, gid, dev, nlink, rdev, sparse, xattrs, ctime_ns"
        } else {
            "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
        };
        let sql = format!(
            "SELECT id, path, kind, size, mtime_ns, inode, mode, target, hash, first_snapshot, {LAST},
                    {v5}
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
        // What lives on stays marked alive (`ALIVE`), untouched: only the
        // versions that ended are written.
        if let Some(prev) = prev {
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
                    "INSERT INTO versions(path, kind, size, mtime_ns, inode, mode, target, hash, first_snapshot, last_snapshot,
                                          uid, gid, dev, nlink, rdev, sparse, xattrs, ctime_ns)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .map_err(e)?;
            let sets = super::meta_rows::store_xattr_sets(&tx, &delta.added).map_err(e)?;
            super::meta_rows::store_owner_names(&tx, &delta.owners).map_err(e)?;
            // In key order, each new object lands next to the last one.
            let mut objects: Vec<(ObjectId, u64)> = delta
                .added
                .iter()
                .filter_map(|v| v.hash.map(|h| (h, v.size)))
                .collect();
            objects.sort_unstable();
            objects.dedup_by_key(|o| o.0);
            for (h, size) in &objects {
                obj.execute(params![h, *size as i64]).map_err(e)?;
            }
            for v in &delta.added {
                let hash = v.hash;
                let a = &v.attrs;
                // A set read from the file, or the one a scan took over
                // from the version before (its inode unchanged).
                let set = v
                    .xattrs
                    .as_ref()
                    .map_or(a.xattrs, |x| sets.get(&x.digest()).copied());
                ins.execute(params![
                    path_bytes(&v.path),
                    v.kind.to_i64(),
                    v.size as i64,
                    v.mtime_ns,
                    v.inode as i64,
                    v.mode,
                    v.target.as_deref().map(path_bytes),
                    hash,
                    new_id,
                    ALIVE,
                    a.uid,
                    a.gid,
                    a.dev as i64,
                    a.nlink as i64,
                    a.rdev as i64,
                    a.sparse,
                    set,
                    a.ctime_ns
                ])
                .map_err(e)?;
            }
        }
        tx.execute(BUMP, []).map_err(e)?;
        tx.commit().map_err(e)?;
        // What an unfinished scan learned is in the snapshot now.
        self.clear_scan_cache()?;
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
                &format!(
                    "SELECT v.hash, o.size, {LAST}, v.path FROM versions v JOIN objects o ON o.hash = v.hash
                     ORDER BY v.hash, v.last_snapshot DESC"
                ),
            )
            .map_err(self.err())?;
        let mut rows = st.query([]).map_err(self.err())?;
        let mut out: Vec<ObjectUse> = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let hash = hash_of(&self.path, r.get_ref(0).map_err(self.err())?)?;
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
            .query_map([self.key(hash)], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        rows.map(|r| r.map(bytes_path))
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    pub fn object_size(&self, hash: &ObjectId) -> Result<Option<u64>, Error> {
        self.conn
            .query_row(
                "SELECT size FROM objects WHERE hash = ?1",
                [self.key(hash)],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|s| s as u64))
            .map_err(self.err())
    }

    // --------------------------------------------------------------- disks
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
    let hash = r.get_ref(8)?;
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
    let hash = match super::hash_value(Path::new(""), hash) {
        Ok(h) => h,
        Err(Error::BadValue { value, .. }) => {
            return Ok(Err(Error::BadValue {
                path: PathBuf::new(),
                what: "versions.hash",
                value,
            }));
        }
        Err(e) => return Ok(Err(e)),
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
        attrs: crate::catalog::Attrs {
            uid: r
                .get::<_, Option<i64>>(11)?
                .and_then(|v| u32::try_from(v).ok()),
            gid: r
                .get::<_, Option<i64>>(12)?
                .and_then(|v| u32::try_from(v).ok()),
            dev: r.get::<_, Option<i64>>(13)?.unwrap_or(0) as u64,
            nlink: r.get::<_, Option<i64>>(14)?.unwrap_or(0) as u64,
            rdev: r.get::<_, Option<i64>>(15)?.unwrap_or(0) as u64,
            sparse: r.get::<_, Option<bool>>(16)?.unwrap_or(false),
            xattrs: r.get(17)?,
            ctime_ns: r.get(18)?,
        },
    }))
}
