//! Disks and the copies each holds.

use rusqlite::params;

use super::schema::BUMP;
use super::{Catalog, CopyRow, DiskRow, Error, bytes_path, hash_of, parse_uuid, path_bytes};
use crate::object::ObjectId;

impl Catalog {
    /// Records a connected disk (or refreshes what is known of it): label,
    /// quota, where it was seen, its room, and Coffer's use when known.
    ///
    /// The room it records (`free`) is [`crate::disk::Space::room`] with
    /// Coffer's use as last counted when `used` is not given: the one
    /// figure of free space every view and command shows, the sync's
    /// report included.
    pub fn register(&self, disk: &crate::Disk, used: Option<u64>) -> Result<DiskRow, Error> {
        let mut row = self
            .disk(disk.id())?
            .unwrap_or_else(|| DiskRow::new(disk.id(), disk.label(), disk.identity.created_at));
        let space = disk.space(used.or(row.used).unwrap_or(0)).ok();
        row.label = disk.label().to_string();
        row.quota = disk.identity.quota;
        row.last_seen = Some(crate::now());
        row.last_mount = Some(disk.root().to_path_buf());
        if let Some(s) = space {
            row.capacity = Some(s.quota.map_or(s.total, |q| q.min(s.total)));
            row.free = Some(s.room());
        }
        if used.is_some() {
            row.used = used;
        }
        self.upsert_disk(&row)?;
        self.set_disk_fs(disk.id(), disk.fs_kind().name())?;
        Ok(row)
    }

    /// Every content hash this catalog knows: objects, copies, and what an
    /// unfinished scan read (its content may be on a disk already).
    pub fn known_hashes(&self) -> Result<Vec<ObjectId>, Error> {
        let mut out = Vec::new();
        for sql in [
            "SELECT hash FROM objects UNION SELECT hash FROM copies",
            "SELECT hash FROM scan_cache",
        ] {
            let mut st = match self.conn.prepare(sql) {
                Ok(st) => st,
                // A disk's catalog copy of an older schema has no scan cache.
                Err(_) if sql.contains("scan_cache") => continue,
                Err(e) => return Err(self.err()(e)),
            };
            let rows = st
                .query_map([], |r| Ok(hash_of(&self.path, r.get_ref(0)?)))
                .map_err(self.err())?;
            for r in rows {
                if let Ok(h) = r.map_err(self.err())? {
                    out.push(h);
                }
            }
        }
        Ok(out)
    }

    /// Teaches an encrypted disk the names of everything this catalog
    /// knows, so its listing says which content it holds (a plain disk
    /// needs nothing, and nothing is read for it).
    pub fn teach(&self, disk: &crate::Disk) -> crate::Result<()> {
        if disk.encrypted() {
            disk.learn(self.known_hashes()?)?;
        }
        Ok(())
    }

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
                    hash_of(&self.path, r.get_ref(0)?),
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
                hash: h?,
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
                    hash_of(&self.path, r.get_ref(0)?),
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (h, stored_at, verified_at) = r.map_err(self.err())?;
            out.push(CopyRow {
                hash: h?,
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
                st.execute(params![h, disk.to_string(), now, verified])
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
                st.execute(params![h, disk.to_string()]).map_err(e)?;
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
                params![at, hash, disk.to_string()],
            )
            .map_err(self.err())?;
        Ok(())
    }
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
