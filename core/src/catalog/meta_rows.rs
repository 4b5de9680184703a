//! What the catalog records beyond content (schema 5): sets of extended
//! attributes, stored once each and named by the SHA-256 of their
//! canonical encoding; the names of owners and groups; and which file
//! system each disk was on when last seen.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Catalog, Error, NewVersion};
use crate::meta::Xattrs;
use crate::meta::owner::Of;

/// Stores every distinct attribute set of `added` that the catalog does
/// not hold yet; returns the id of each, by digest.
pub(super) fn store_xattr_sets(
    tx: &Transaction<'_>,
    added: &[NewVersion],
) -> rusqlite::Result<HashMap<[u8; 32], i64>> {
    let mut ids: HashMap<[u8; 32], i64> = HashMap::new();
    let mut find = tx.prepare("SELECT id FROM xattr_sets WHERE sha256 = ?1")?;
    let mut add = tx.prepare("INSERT INTO xattr_sets(sha256, data) VALUES(?1, ?2)")?;
    for x in added.iter().filter_map(|v| v.xattrs.as_deref()) {
        let digest = x.digest();
        if ids.contains_key(&digest) {
            continue;
        }
        let id = match find
            .query_row([&digest[..]], |r| r.get::<_, i64>(0))
            .optional()?
        {
            Some(id) => id,
            None => {
                add.execute(params![&digest[..], x.encode()])?;
                tx.last_insert_rowid()
            }
        };
        ids.insert(digest, id);
    }
    Ok(ids)
}

pub(super) fn store_owner_names(
    tx: &Transaction<'_>,
    owners: &[(Of, u32, String)],
) -> rusqlite::Result<()> {
    let mut st = tx.prepare(
        "INSERT INTO owner_names(kind, id, name) VALUES(?1, ?2, ?3)
         ON CONFLICT(kind, id) DO UPDATE SET name = ?3",
    )?;
    for (of, id, name) in owners {
        st.execute(params![of.to_i64(), id, name])?;
    }
    Ok(())
}

impl Catalog {
    /// The attribute set `id`, decoded under the same caps as one read from
    /// a file (a catalog copy from a disk is hostile input).
    pub fn xattr_set(&self, id: i64) -> Result<Option<Xattrs>, Error> {
        let data: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT data FROM xattr_sets WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())?;
        data.map(|d| {
            Xattrs::decode(&d).map_err(|e| Error::BadValue {
                path: self.path.clone(),
                what: "xattr_sets.data",
                value: e.to_string(),
            })
        })
        .transpose()
    }

    /// Every attribute set's digest, by id: what a scan compares with.
    pub fn xattr_digests(&self) -> Result<HashMap<i64, [u8; 32]>, Error> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, sha256 FROM xattr_sets")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(self.err())?;
        let mut out = HashMap::new();
        for r in rows {
            let (id, d) = r.map_err(self.err())?;
            if let Ok(d) = <[u8; 32]>::try_from(d.as_slice()) {
                out.insert(id, d);
            }
        }
        Ok(out)
    }

    /// The ids of the attribute sets that hold a POSIX ACL.
    pub fn xattr_sets_with_acl(&self) -> Result<std::collections::HashSet<i64>, Error> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM xattr_sets")
            .map_err(self.err())?;
        let ids: Vec<i64> = st
            .query_map([], |r| r.get(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        let mut out = std::collections::HashSet::new();
        for id in ids {
            if self.xattr_set(id)?.is_some_and(|x| x.has_acl()) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// The recorded name of an owner or a group.
    pub fn owner_name(&self, of: Of, id: u32) -> Result<Option<String>, Error> {
        // A copy from a disk written before schema 5 has no names.
        if self.schema < 5 {
            return Ok(None);
        }
        self.conn
            .query_row(
                "SELECT name FROM owner_names WHERE kind = ?1 AND id = ?2",
                params![of.to_i64(), id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Records which file system a disk is on (`FAT32`, `exFAT`, or
    /// `other`), for what `coffer status` says it cannot hold.
    pub fn set_disk_fs(&self, disk: uuid::Uuid, fs: &str) -> Result<(), Error> {
        self.set_meta(&format!("fs:{disk}"), fs)
    }

    pub fn disk_fs(&self, disk: uuid::Uuid) -> Result<Option<String>, Error> {
        self.meta(&format!("fs:{disk}"))
    }
}
