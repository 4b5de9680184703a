//! A bucket disk's two catalog slots, laid out as on a local disk
//! (`coffer/catalog-a.sqlite` and its sidecar `coffer/catalog-a.json`, the
//! same [`SlotMeta`] and its parser), sealed and bound to their generation
//! when the disk is encrypted.
//!
//! A write takes the older (or the invalid) slot: its sidecar is removed,
//! the slot uploaded (checked by the upload), then the sidecar created by a
//! conditional PUT that fails if another writer made one meanwhile; last,
//! the other sidecar must still have the ETag it had when read, or another
//! writer was at work and the write is reported as a conflict. Readers take
//! the valid slot with the highest generation, whose size and SHA-256 (of
//! the stored bytes) must be what its sidecar says.
//!
//! Invariant: one slot is always valid; a generation only ever grows; two
//! writers never both believe they wrote the newest generation.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{BucketDisk, Condition, DiskError, Error};
use crate::disk::{SIDECAR_CAP, SLOT_CAP, SlotMeta};
use crate::object::Hasher;

const SLOTS: [(&str, &str); 2] = [
    ("coffer/catalog-a.sqlite", "coffer/catalog-a.json"),
    ("coffer/catalog-b.sqlite", "coffer/catalog-b.json"),
];

/// A sidecar as read: what it says (or why it is refused) and its ETag.
struct Side {
    meta: Result<SlotMeta, String>,
    e_tag: Option<String>,
}

impl BucketDisk {
    fn side(&self, key: &str) -> Result<Side, DiskError> {
        let url = self.bucket().location().url(key);
        let e_tag = self.bucket().head(key)?.and_then(|s| s.e_tag);
        let meta = match self.bucket().get_all(key, SIDECAR_CAP) {
            Ok(Some(b)) => SlotMeta::parse(&b).map_err(|e| format!("{url}: {e}")),
            Ok(None) => Err(format!("{url} is missing")),
            Err(Error::Read { source, .. }) => Err(format!("{url}: {source}")),
            Err(e) => return Err(e.into()),
        };
        Ok(Side { meta, e_tag })
    }

    /// The ETags of both sidecars: they change with every catalog copy any
    /// writer makes, so an unchanged token and an unchanged catalog mean a
    /// sync has nothing to do.
    pub fn catalog_token(&self) -> Result<String, DiskError> {
        let mut t = String::new();
        for (_, side) in SLOTS {
            let e = self.bucket().head(side)?.and_then(|s| s.e_tag);
            t.push_str(e.as_deref().unwrap_or("-"));
            t.push('/');
        }
        Ok(t)
    }

    /// Uploads the catalog file `src` into the older slot; its sidecar.
    pub fn write_catalog(&self, src: &Path) -> Result<SlotMeta, DiskError> {
        let sides = [self.side(SLOTS[0].1)?, self.side(SLOTS[1].1)?];
        let generation_of = |s: &Side| s.meta.as_ref().map(|m| m.generation).unwrap_or(0);
        let (g0, g1) = (generation_of(&sides[0]), generation_of(&sides[1]));
        let (target, other) = if g0 <= g1 { (0, 1) } else { (1, 0) };
        let generation = g0.max(g1) + 1;
        let (db, side) = SLOTS[target];
        let url = self.bucket().location().url(db);
        let stream_err = |source| DiskError::Stream {
            url: url.clone(),
            source,
        };
        // The slot is no longer valid from here until its sidecar is back.
        self.bucket().delete(side)?;
        let mut file = std::fs::File::open(src).map_err(stream_err)?;
        // The sidecar's size and SHA-256 are of the bytes the bucket holds.
        let (stored, sha256) = match self.keys_for_slots()? {
            None => {
                let mut out = Counting {
                    inner: &mut file,
                    hasher: Hasher::default(),
                    size: 0,
                };
                let s = self.bucket().put(db, &mut out, &mut |_| Ok(()))?;
                (s, out.hasher.finish())
            }
            Some(k) => {
                let sealer =
                    k.sealer(&crate::crypto::slot_context(generation))
                        .map_err(|source| DiskError::Crypto {
                            url: url.clone(),
                            source,
                        })?;
                let mut sealed = super::disk::SealingReader::new(&mut file, sealer);
                let mut out = Counting {
                    inner: &mut sealed,
                    hasher: Hasher::default(),
                    size: 0,
                };
                let s = self.bucket().put(db, &mut out, &mut |_| Ok(()))?;
                (s, out.hasher.finish())
            }
        };
        let meta = SlotMeta {
            generation,
            size: stored.size,
            sha256,
            written_at: crate::now(),
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| DiskError::Stream {
            url: url.clone(),
            source: std::io::Error::other(e),
        })?;
        let conflict = || {
            DiskError::Bucket(Error::Changed {
                url: self.bucket().location().url(side),
            })
        };
        if self
            .bucket()
            .put_bytes(side, bytes, Condition::Absent)?
            .is_none()
        {
            return Err(conflict());
        }
        let now = self.bucket().head(SLOTS[other].1)?.and_then(|s| s.e_tag);
        if now != sides[other].e_tag {
            return Err(DiskError::Bucket(Error::Changed {
                url: self.bucket().location().url(SLOTS[other].1),
            }));
        }
        Ok(meta)
    }

    /// Copies the newest valid catalog slot to `to` (created, 0600),
    /// opened when the disk is encrypted; the other slot when the newest
    /// does not match its sidecar. Returns its sidecar and what was wrong
    /// with the slots passed over.
    pub fn copy_catalog(&self, to: &Path) -> Result<(SlotMeta, Vec<String>), DiskError> {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for (db, side) in SLOTS {
            match self.side(side)?.meta {
                Ok(m) => found.push((m, db)),
                Err(e) => problems.push(e),
            }
        }
        found.sort_by_key(|(m, _)| std::cmp::Reverse(m.generation));
        for (meta, db) in found {
            match self.copy_slot(db, &meta, to) {
                Ok(()) => return Ok((meta, problems)),
                Err(e) => {
                    problems.push(e);
                    let _ = std::fs::remove_file(to);
                }
            }
        }
        Err(DiskError::Stream {
            url: self.bucket().location().url("coffer/catalog-a.sqlite"),
            source: std::io::Error::other(format!(
                "no valid catalog slot ({})",
                problems.join("; ")
            )),
        })
    }

    fn copy_slot(&self, db: &str, meta: &SlotMeta, to: &Path) -> Result<(), String> {
        let url = self.bucket().location().url(db);
        let raw = match self.bucket().get(db) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(format!("{url} is missing")),
            Err(e) => return Err(e.to_string()),
        };
        let cap = meta.size.min(SLOT_CAP) + 1;
        let mut counted = Counting {
            inner: &mut raw.take(cap),
            hasher: Hasher::default(),
            size: 0,
        };
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)
            .map_err(|e| format!("cannot create {}: {e}", crate::human::path(to)))?;
        let mut out = std::io::BufWriter::new(out);
        let copied = match self.keys_for_slots().map_err(|e| e.to_string())? {
            None => std::io::copy(&mut counted, &mut out),
            Some(k) => {
                let context = crate::crypto::slot_context(meta.generation);
                let mut opened = k.opener(&mut counted, &context, url.clone().into());
                std::io::copy(&mut opened, &mut out)
            }
        };
        copied.map_err(|e| format!("{url}: {e}"))?;
        out.flush()
            .and_then(|()| out.get_ref().sync_all())
            .map_err(|e| format!("cannot write {}: {e}", crate::human::path(to)))?;
        let (size, hash) = (counted.size, counted.hasher.finish());
        if size != meta.size || hash != meta.sha256 {
            return Err(format!(
                "{url} does not match its sidecar (size {size}, SHA-256 {hash})"
            ));
        }
        Ok(())
    }
}

/// Hashes and counts the bytes read through it.
struct Counting<'a> {
    inner: &'a mut dyn Read,
    hasher: Hasher,
    size: u64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
