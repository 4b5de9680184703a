//! The two catalog slots on a disk and their sidecars.
//!
//! ```text
//! coffer/catalog-a.sqlite  + catalog-a.json  (generation, size, sha256, written_at)
//! coffer/catalog-b.sqlite  + catalog-b.json
//! ```
//!
//! A sync rewrites the older (or the invalid) slot: sidecar removed and
//! flushed, slot rewritten and flushed, sidecar written and flushed. Readers
//! take the valid slot with the highest generation. Sidecars are parsed by
//! one pure function, [`SlotMeta::parse`], that refuses generations no real
//! disk reaches, so a generation can never be made to wrap.
//!
//! Invariant: one slot is always valid; a generation only ever grows.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Disk, Error};
use crate::object::{Hasher, ObjectId};

/// Highest generation accepted: 2^53, far beyond a sync a second for a
/// hundred million years, and exact in every JSON reader.
pub const MAX_GENERATION: u64 = 1 << 53;
/// Largest sidecar read; real ones are about 200 bytes.
pub const SIDECAR_CAP: u64 = 4096;
/// Largest catalog slot accepted (a million files make about 650 MB).
pub const SLOT_CAP: u64 = 64 << 30;

const SLOTS: [(&str, &str, &str); 2] = [
    ("a", "coffer/catalog-a.sqlite", "coffer/catalog-a.json"),
    ("b", "coffer/catalog-b.sqlite", "coffer/catalog-b.json"),
];

/// Catalog slot metadata, written after the slot itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMeta {
    pub generation: u64,
    pub size: u64,
    pub sha256: ObjectId,
    pub written_at: i64,
}

impl SlotMeta {
    /// Parses a sidecar, or says why it is refused. Pure: the fuzzer
    /// drives it directly.
    pub fn parse(bytes: &[u8]) -> Result<SlotMeta, String> {
        let m: SlotMeta =
            serde_json::from_slice(bytes).map_err(|e| format!("damaged sidecar ({e})"))?;
        if m.generation == 0 || m.generation > MAX_GENERATION {
            return Err(format!(
                "generation {} is outside 1..={MAX_GENERATION}, beyond any real count (tampered?)",
                m.generation
            ));
        }
        if m.size > SLOT_CAP {
            return Err(format!(
                "says the slot is {} bytes, more than the {SLOT_CAP} a slot may be",
                m.size
            ));
        }
        Ok(m)
    }
}

/// One catalog slot and whether it can be trusted.
#[derive(Clone, Debug)]
pub struct Slot {
    pub name: &'static str,
    /// The slot on the disk (for messages).
    pub path: PathBuf,
    pub meta: Result<SlotMeta, String>,
}

/// A slot copied off the disk: where it was, what its sidecar said, and
/// what was wrong with the other slot (if anything).
#[derive(Clone, Debug)]
pub struct CopiedSlot {
    pub path: PathBuf,
    pub meta: SlotMeta,
    pub problems: Vec<String>,
}

impl Disk {
    /// Reads a slot's sidecar (capped, regular file only).
    fn sidecar(&self, side: &str) -> Result<SlotMeta, String> {
        let shown = self.root.show(side);
        let raw = self
            .root
            .read_capped(Path::new(side), SIDECAR_CAP)
            .map_err(|e| format!("{}: {e}", shown.display()))?;
        SlotMeta::parse(&raw).map_err(|e| format!("{}: {e}", shown.display()))
    }

    /// Copies slot `db` to `out` (when given) while hashing it, and checks
    /// it against `meta`. Never reads more than the sidecar says, plus one.
    fn check_slot(
        &self,
        db: &str,
        meta: &SlotMeta,
        out: Option<&mut dyn Write>,
    ) -> Result<(), String> {
        // What goes to `out` from an encrypted disk is the opened catalog,
        // each chunk authenticated on the way.
        let mut unsealer = match (&out, self.sealing()) {
            (None, _) | (_, Ok(None)) => None,
            (Some(_), Ok(Some(k))) => {
                Some(k.unsealer(&crate::crypto::slot_context(meta.generation)))
            }
            (Some(_), Err(e)) => return Err(e.to_string()),
        };
        let shown = self.root.show(db);
        let f = self
            .root
            .open_file(Path::new(db))
            .map_err(|e| format!("{}: {e}", shown.display()))?;
        let mut r = f.take(meta.size + 1);
        let mut out = out;
        let mut h = Hasher::default();
        let mut n = 0u64;
        crate::object::with_buffer(|buf| -> Result<(), String> {
            loop {
                let k = match r.read(buf) {
                    Ok(0) => return Ok(()),
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("{}: {e}", shown.display())),
                };
                h.update(&buf[..k]);
                n += k as u64;
                if let Some(o) = out.as_mut() {
                    let mut put = |b: &[u8]| o.write_all(b);
                    match unsealer.as_mut() {
                        None => put(&buf[..k]),
                        Some(u) => u.push(&buf[..k], &mut put),
                    }
                    .map_err(|e| format!("cannot copy {}: {e}", shown.display()))?;
                }
            }
        })?;
        if n != meta.size || h.finish() != meta.sha256 {
            return Err(format!(
                "{}: does not match its checksum (torn write?)",
                shown.display()
            ));
        }
        if let (Some(u), Some(o)) = (unsealer.as_mut(), out) {
            u.finish(&mut |b| o.write_all(b))
                .map_err(|e| format!("cannot copy {}: {e}", shown.display()))?;
        }
        Ok(())
    }

    /// Both slots, each checked against its sidecar (size and SHA-256).
    pub fn slots(&self) -> Vec<Slot> {
        SLOTS
            .iter()
            .map(|(name, db, side)| Slot {
                name,
                path: self.root.show(db),
                meta: self
                    .sidecar(side)
                    .and_then(|m| self.check_slot(db, &m, None).map(|()| m)),
            })
            .collect()
    }

    /// Whether a catalog slot looks complete: its sidecar parses and the
    /// size matches. Cheaper than [`Disk::newest_catalog`], which hashes.
    pub fn has_catalog(&self) -> bool {
        SLOTS.iter().any(|(_, db, side)| {
            self.sidecar(side).is_ok_and(|m| {
                self.root.stat(Path::new(db)).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::RegularFile
                        && st.st_size as u64 == m.size
                })
            })
        })
    }

    /// The newest valid catalog copy on the disk (the slot, for messages).
    pub fn newest_catalog(&self) -> Result<(PathBuf, SlotMeta), Error> {
        let mut details = Vec::new();
        let mut best: Option<(PathBuf, SlotMeta)> = None;
        for s in self.slots() {
            match s.meta {
                Ok(m)
                    if best
                        .as_ref()
                        .is_none_or(|(_, b)| m.generation > b.generation) =>
                {
                    best = Some((s.path, m));
                }
                Ok(_) => {}
                Err(e) => details.push(e),
            }
        }
        best.ok_or_else(|| Error::NoCatalog {
            root: self.root.path().into(),
            details: details.join("; "),
        })
    }

    /// Copies the newest valid slot into `to` (a private file on the
    /// workstation), checking it on the same read. A slot that fails is
    /// reported in `problems` and the other one tried.
    pub fn copy_catalog(&self, to: &Path) -> Result<CopiedSlot, Error> {
        self.copy_catalog_checked(to, |_| Ok(()))
    }

    /// Like [`copy_catalog`](Self::copy_catalog), and a copy `accept`
    /// refuses (it does not open as a catalog) counts as damaged too: the
    /// other slot is tried.
    pub fn copy_catalog_checked(
        &self,
        to: &Path,
        accept: impl Fn(&Path) -> Result<(), String>,
    ) -> Result<CopiedSlot, Error> {
        let mut candidates: Vec<(&str, SlotMeta)> = Vec::new();
        let mut problems = Vec::new();
        for (_, db, side) in &SLOTS {
            match self.sidecar(side) {
                Ok(m) => candidates.push((db, m)),
                Err(e) => problems.push(e),
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.1.generation));
        for (db, meta) in candidates {
            let mut f = std::fs::File::create(to).map_err(|e| Error::io("cannot create", to, e))?;
            match self.check_slot(db, &meta, Some(&mut f)) {
                Ok(()) => {
                    f.sync_all().map_err(|e| Error::io("cannot flush", to, e))?;
                    drop(f);
                    match accept(to) {
                        Ok(()) => {
                            return Ok(CopiedSlot {
                                path: self.root.show(db),
                                meta,
                                problems,
                            });
                        }
                        Err(why) => {
                            problems.push(format!("{}: {why}", self.root.show(db).display()))
                        }
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        Err(Error::NoCatalog {
            root: self.root.path().into(),
            details: problems.join("; "),
        })
    }

    /// Writes `src` (an exported catalog) into the older (or invalid) slot.
    ///
    /// Order: drop the slot's sidecar (the slot is now invalid), rewrite the
    /// slot and flush it, then write and flush a sidecar with the new
    /// generation and checksum. A crash at any point leaves the other slot
    /// valid. A valid slot already at [`MAX_GENERATION`] cannot be outranked:
    /// that is refused, loudly.
    pub fn write_catalog(&self, src: &Path) -> Result<SlotMeta, Error> {
        let io = self.gate()?;
        let w = self.begin_slot_write()?;
        let db_shown = self.root.show(w.db);
        let mut input = std::fs::File::open(src).map_err(|e| Error::io("cannot read", src, e))?;
        let mut out = io
            .rewrite(&self.root, Path::new(w.db))
            .map_err(|e| Error::io("cannot write", &db_shown, e))?;
        let mut hasher = Hasher::default();
        let mut size = 0u64;
        // On an encrypted disk the slot is sealed, bound to its generation;
        // the sidecar's size and checksum are of what the disk holds.
        let mut sealer = match self.sealing()? {
            None => None,
            Some(k) => Some(
                k.sealer(&crate::crypto::slot_context(w.generation))
                    .map_err(|e| Error::io("cannot seal", &db_shown, io::Error::other(e)))?,
            ),
        };
        let mut put = |b: &[u8]| -> io::Result<()> {
            hasher.update(b);
            size += b.len() as u64;
            out.write_all(b)
        };
        crate::object::with_buffer(|buf| -> Result<(), Error> {
            loop {
                let n = match input.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("cannot read", src, e)),
                };
                match sealer.as_mut() {
                    None => put(&buf[..n]),
                    Some(s) => s.push(&buf[..n], &mut put),
                }
                .map_err(|e| Error::io("cannot write", &db_shown, e))?;
            }
            if let Some(s) = sealer.take() {
                s.finish(&mut put)
                    .map_err(|e| Error::io("cannot write", &db_shown, e))?;
            }
            Ok(())
        })?;
        out.sync_all()
            .map_err(|e| Error::io("cannot flush", &db_shown, e))?;
        drop(out);
        self.finish_slot_write(&w, size, hasher.finish())
    }

    /// The first half of writing a slot: picks the older (or invalid) one,
    /// checks that nothing but files stand where it goes, and drops its
    /// sidecar (flushed), so that from here on it is invalid until
    /// [`finish_slot_write`](Self::finish_slot_write).
    pub(super) fn begin_slot_write(&self) -> Result<SlotWrite, Error> {
        let io = self.gate()?;
        let slots = self.slots();
        let gens: Vec<Option<u64>> = slots
            .iter()
            .map(|s| s.meta.as_ref().ok().map(|m| m.generation))
            .collect();
        let target = match (gens[0], gens[1]) {
            (None, _) => 0,
            (Some(_), None) => 1,
            (Some(a), Some(b)) => usize::from(a > b),
        };
        let newest = gens.iter().flatten().max().copied().unwrap_or(0);
        let generation = newest
            .checked_add(1)
            .filter(|g| *g <= MAX_GENERATION)
            .ok_or_else(|| Error::BadSlot {
                path: self.root.show(SLOTS[1 - target].1),
                reason: format!(
                    "its generation {newest} cannot be raised; move the disk's coffer/catalog-*.json aside and sync again"
                ),
            })?;
        let (name, db, side) = SLOTS[target];
        let (db_rel, side_rel) = (Path::new(db), Path::new(side));
        let side_shown = self.root.show(side);
        self.check_identity()?;
        // A damaged file is rewritten; anything that is not a file is a
        // stranger's, and nothing is written through or over it.
        for rel in [db_rel, side_rel] {
            if let Ok(st) = self.root.stat(rel) {
                let t = rustix::fs::FileType::from_raw_mode(st.st_mode);
                if t != rustix::fs::FileType::RegularFile {
                    return Err(Error::Stray {
                        path: self.root.show(rel),
                        what: super::root::describe(t),
                    });
                }
            }
        }
        match io.remove_file(&self.root, side_rel) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot invalidate", &side_shown, e)),
        }
        io.sync_fs(&self.root)
            .map_err(|e| Error::io("cannot flush", self.root.path(), e))?;
        Ok(SlotWrite {
            name,
            db,
            side,
            generation,
            other_valid: slots[1 - target].meta.is_ok(),
            was: slots.into_iter().nth(target).and_then(|s| s.meta.ok()),
        })
    }

    /// The second half: the slot is written and flushed; its sidecar with
    /// the new generation and checksum makes it valid.
    pub(super) fn finish_slot_write(
        &self,
        w: &SlotWrite,
        size: u64,
        sha256: ObjectId,
    ) -> Result<SlotMeta, Error> {
        let io = self.gate()?;
        let side_shown = self.root.show(w.side);
        let meta = SlotMeta {
            generation: w.generation,
            size,
            sha256,
            written_at: crate::now(),
        };
        let raw = serde_json::to_vec_pretty(&meta)
            .map_err(|e| Error::io("cannot encode", &side_shown, io::Error::other(e)))?;
        let mut f = io
            .rewrite(&self.root, Path::new(w.side))
            .map_err(|e| Error::io("cannot write", &side_shown, e))?;
        f.write_all(&raw)
            .map_err(|e| Error::io("cannot write", &side_shown, e))?;
        f.sync_all()
            .map_err(|e| Error::io("cannot flush", &side_shown, e))?;
        Ok(meta)
    }
}

/// A slot being written: which one, the generation it will have, and what
/// its sidecar said before (when it was valid).
pub(super) struct SlotWrite {
    pub name: &'static str,
    pub db: &'static str,
    pub side: &'static str,
    pub generation: u64,
    pub was: Option<SlotMeta>,
    /// Whether the other slot was valid when this write began.
    pub other_valid: bool,
}
