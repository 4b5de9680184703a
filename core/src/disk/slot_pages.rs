//! Writing a catalog slot page by page: only the pages that differ from
//! what the slot holds are written.
//!
//! The workstation keeps, for each disk and slot, a page map: the slot's
//! generation, size and SHA-256 as its sidecar gave them, and a 16-byte
//! digest of each page written there. A slot is written in place (its
//! sidecar dropped and flushed first, as for a whole write) only when its
//! sidecar is valid, its content matched that sidecar's checksum when the
//! write began (`Disk::slots` reads it), and the map was made for exactly
//! that generation, size and checksum; otherwise every page is written.
//! Pages come straight from the catalog's snapshot (`PageSource`), so
//! nothing is exported on the workstation either.
//!
//! A slot is a plain SQLite file in rollback-journal mode: the header of its
//! first page is rewritten from the catalog's WAL mode, with the page count
//! in it made valid.
//!
//! An encrypted disk's slots are sealed streams and are always written
//! whole (`Disk::write_catalog`).
//!
//! Invariant: the slot's sidecar names the SHA-256 of every byte of the
//! slot as written, pages unchanged or not; a map that does not match the
//! sidecar is never used.

use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Disk, Error, SlotMeta};
use crate::object::{Hasher, ObjectId};

/// Where a slot's pages come from: the workstation catalog, read as one
/// snapshot.
pub trait PageSource {
    /// Where the pages are read from, for messages.
    fn path(&self) -> &Path;
    /// Calls `each(page_count, page)` with every page in order until it
    /// breaks; returns the page size, or `None` when this SQLite cannot
    /// give pages (the caller then exports the catalog and writes it whole).
    fn pages(
        &self,
        each: &mut dyn FnMut(usize, &[u8]) -> ControlFlow<()>,
    ) -> io::Result<Option<usize>>;
}

const MAGIC: &[u8; 8] = b"CofPgMp1";
/// Magic, page size, generation, size, checksum.
const HEAD: usize = 8 + 4 + 8 + 8 + 32;
const DIGEST: usize = 16;

/// What the workstation knows a slot holds.
struct PageMap {
    page_size: usize,
    generation: u64,
    size: u64,
    sha256: ObjectId,
    pages: Vec<[u8; DIGEST]>,
}

impl PageMap {
    fn parse(raw: &[u8]) -> Option<PageMap> {
        if raw.len() < HEAD || &raw[..8] != MAGIC || !(raw.len() - HEAD).is_multiple_of(DIGEST) {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap_or_default());
        let sha: [u8; 32] = raw[28..60].try_into().ok()?;
        Some(PageMap {
            page_size: u32_at(8) as usize,
            generation: u64_at(12),
            size: u64_at(20),
            sha256: ObjectId(sha),
            pages: raw[HEAD..]
                .chunks_exact(DIGEST)
                .map(|c| c.try_into().unwrap_or_default())
                .collect(),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + self.pages.len() * DIGEST);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.page_size as u32).to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.sha256.0);
        for p in &self.pages {
            out.extend_from_slice(p);
        }
        out
    }

    /// Whether this map describes `meta`'s slot exactly.
    fn matches(&self, meta: &SlotMeta, page_size: usize) -> bool {
        self.page_size == page_size
            && self.generation == meta.generation
            && self.size == meta.size
            && self.sha256 == meta.sha256
            && self.size == (self.pages.len() * page_size) as u64
    }
}

/// The header of a slot's first page: rollback-journal mode (bytes 18, 19),
/// and a page count (28) made valid by the version it is valid for (92)
/// matching the change counter (24).
fn fix_header(page: &mut [u8], count: usize) {
    if page.len() < 100 {
        return;
    }
    page[18] = 1;
    page[19] = 1;
    page[28..32].copy_from_slice(&(count as u32).to_be_bytes());
    let counter: [u8; 4] = [page[24], page[25], page[26], page[27]];
    page[92..96].copy_from_slice(&counter);
}

/// What writing a slot page by page did.
#[derive(Clone, Debug)]
pub struct PagesWritten {
    pub meta: SlotMeta,
    pub pages: usize,
    pub written: usize,
    /// Whether the other slot was valid (else this was the only copy).
    pub other_valid: bool,
}

impl Disk {
    /// The page map of this disk's slot `name` under `dir`.
    fn map_path(&self, dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{}-{name}.pages", self.id()))
    }

    /// Writes the catalog `src` into the older (or invalid) slot, only the
    /// pages that changed where the page map in `maps` allows. `None` when
    /// `src` cannot give pages. Same order and crash safety as
    /// [`write_catalog`](Self::write_catalog).
    pub fn write_catalog_pages(
        &self,
        src: &dyn PageSource,
        maps: &Path,
    ) -> Result<Option<PagesWritten>, Error> {
        // A sealed slot (an encrypted disk) is one authenticated stream:
        // written whole, from an export.
        if self.sealing()?.is_some() {
            return Ok(None);
        }
        // Ask first, before the slot is made invalid.
        let unreadable = |e| Error::io("cannot read", src.path(), e);
        let Some(page_size) = src
            .pages(&mut |_, _| ControlFlow::Break(()))
            .map_err(unreadable)?
        else {
            return Ok(None);
        };
        let io = self.gate()?;
        let w = self.begin_slot_write()?;
        let map_path = self.map_path(maps, w.name);
        let db_rel = Path::new(w.db);
        let db_shown = self.root.show(w.db);
        // The map is used only for exactly the slot its sidecar described.
        let old = std::fs::read(&map_path)
            .ok()
            .and_then(|raw| PageMap::parse(&raw))
            .filter(|m| w.was.as_ref().is_some_and(|was| m.matches(was, page_size)));
        let mut f = match old {
            Some(_) => io.update(&self.root, db_rel),
            None => io.rewrite(&self.root, db_rel),
        }
        .map_err(|e| Error::io("cannot write", &db_shown, e))?;
        let mut failed: Option<Error> = None;
        let mut hasher = Hasher::default();
        let mut pages = Vec::new();
        let mut written = 0usize;
        src.pages(&mut |count, page| {
            let mut first;
            let page = if pages.is_empty() {
                first = page.to_vec();
                fix_header(&mut first, count);
                &first[..]
            } else {
                page
            };
            let at = pages.len();
            let digest: [u8; DIGEST] = Sha256::digest(page)[..DIGEST]
                .try_into()
                .unwrap_or_default();
            let unchanged = old
                .as_ref()
                .and_then(|m| m.pages.get(at))
                .is_some_and(|d| *d == digest);
            if !unchanged {
                if let Err(e) = f.write_at(page, (at * page.len()) as u64) {
                    failed = Some(Error::io("cannot write", &db_shown, e));
                    return ControlFlow::Break(());
                }
                written += 1;
            }
            hasher.update(page);
            pages.push(digest);
            ControlFlow::Continue(())
        })
        .map_err(unreadable)?;
        if let Some(e) = failed {
            return Err(e);
        }
        let size = (pages.len() * page_size) as u64;
        // Cut only a slot that shrank (some FUSE drivers refuse even a
        // truncate to the length a file already has).
        f.size()
            .and_then(|now| if now > size { f.set_len(size) } else { Ok(()) })
            .map_err(|e| Error::io("cannot write", &db_shown, e))?;
        f.sync_all()
            .map_err(|e| Error::io("cannot flush", &db_shown, e))?;
        drop(f);
        let meta = self.finish_slot_write(&w, size, hasher.finish())?;
        let map = PageMap {
            page_size,
            generation: meta.generation,
            size,
            sha256: meta.sha256,
            pages,
        };
        // Best effort: without its map the next write of this slot is whole.
        let _ = std::fs::remove_file(&map_path);
        let _ = crate::disk::io::write_atomic(&map_path, &map.encode());
        Ok(Some(PagesWritten {
            meta,
            pages: map.pages.len(),
            written,
            other_valid: w.other_valid,
        }))
    }
}
