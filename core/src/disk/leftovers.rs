//! What an interrupted sync left in a disk's `tmp/`: temp copies that are
//! whole, resumable, or torn.
//!
//! A temp copy is named `NAME.TAG.pNNN`: `staged.TAG` for one the scan made
//! (its content's hash not known when it started), `HASH.TAG` for one made
//! to hold that hash. A group of parts is *adopted* once its bytes, read
//! back from the disk, hash to what is wanted; a single-part copy the
//! journal names the source of can be *resumed*: its bytes and the same
//! bytes of the source must agree, then the rest of the source is added.
//!
//! Invariant: nothing here trusts a name: every adopted or resumed copy is
//! named by the hash of exactly the bytes it holds, as read back.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::store::{Resume, STAGED};
use super::{Disk, Error, Pending, TMP};
use crate::object::{Hasher, ObjectId};

/// A group of temp files from one interrupted copy.
#[derive(Clone, Debug)]
pub struct Leftover {
    /// `staged.TAG` or `HASH.TAG`.
    pub name: String,
    /// The hash it was made to hold, when its name says.
    pub expected: Option<ObjectId>,
    /// The tag of a scan's copy (what the journal knows it by).
    pub tag: Option<String>,
    /// Its parts in order, relative to the root, with their sizes.
    parts: Vec<(PathBuf, u64)>,
    /// The parts run 1, 2, 3 … with no gap.
    pub contiguous: bool,
}

impl Leftover {
    pub fn size(&self) -> u64 {
        self.parts.iter().map(|p| p.1).sum()
    }

    pub fn single(&self) -> bool {
        self.parts.len() == 1
    }
}

/// Splits `NAME.TAG.pNNN` into (`NAME.TAG`, NNN).
fn parse(file: &str) -> Option<(&str, usize)> {
    let (stem, n) = file.rsplit_once(".p")?;
    let n: usize = n.parse().ok().filter(|n| *n >= 1)?;
    let (name, tag) = stem.split_once('.')?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric());
    (plain(name) && plain(tag) && !tag.contains('.')).then_some((stem, n))
}

impl Disk {
    /// Groups the files in `tmp/` by the copy they belong to. Files that
    /// are no copy of Coffer's are returned apart, to be removed.
    pub fn leftovers(&self) -> Result<(Vec<Leftover>, Vec<PathBuf>), Error> {
        let shown = self.root.show(TMP);
        let listed = match self.root.list_stat(Path::new(TMP)) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(Error::io("cannot list", &shown, e)),
        };
        let mut groups: BTreeMap<String, Vec<(usize, PathBuf, u64)>> = BTreeMap::new();
        let mut junk = Vec::new();
        for (name, st) in listed {
            let rel = Path::new(TMP).join(&name);
            let t = rustix::fs::FileType::from_raw_mode(st.st_mode);
            if t == rustix::fs::FileType::Directory {
                continue;
            }
            match name.to_str().and_then(parse) {
                Some((stem, n)) if t == rustix::fs::FileType::RegularFile => groups
                    .entry(stem.to_string())
                    .or_default()
                    .push((n, rel, st.st_size as u64)),
                _ => junk.push(rel),
            }
        }
        let mut out = Vec::new();
        for (name, mut parts) in groups {
            parts.sort_by_key(|p| p.0);
            let contiguous = parts.iter().enumerate().all(|(i, p)| p.0 == i + 1);
            let (head, tag) = name.split_once('.').unwrap_or((&name, ""));
            out.push(Leftover {
                // On an encrypted disk the head is a keyed name, no hash.
                expected: head.parse().ok().filter(|_| !self.encrypted()),
                tag: (head == STAGED).then(|| tag.to_string()),
                name: name.clone(),
                parts: parts.into_iter().map(|(_, p, s)| (p, s)).collect(),
                contiguous,
            });
        }
        Ok((out, junk))
    }

    /// Removes temp files that are not (or no longer) of use.
    pub fn remove_tmp(&self, rels: &[PathBuf]) -> Result<(), Error> {
        let io = self.gate()?;
        for rel in rels {
            match io.remove_file(&self.root, rel) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("cannot remove", &self.root.show(rel), e)),
            }
        }
        Ok(())
    }

    /// Drops a leftover.
    pub fn discard_leftover(&self, l: Leftover) -> Result<(), Error> {
        let rels: Vec<PathBuf> = l.parts.into_iter().map(|p| p.0).collect();
        self.remove_tmp(&rels)
    }

    /// Reads a leftover back and hashes it: a copy ready to commit under
    /// the hash of exactly its bytes. `each` sees every chunk read.
    /// `Ok(None)`: on an encrypted disk, a sealed copy cut short or
    /// damaged (an interrupted write), which was dropped.
    pub fn adopt(
        &self,
        l: Leftover,
        mut each: impl FnMut(u64) -> Result<(), crate::Error>,
    ) -> Result<Option<Pending>, crate::Error> {
        let mut h = Hasher::default();
        let mut size = 0u64;
        if let Some(keys) = self.sealing()? {
            let mut raw: Box<dyn Read + Send> = Box::new(io::empty());
            for (rel, _) in &l.parts {
                let f = self
                    .root
                    .open_file(rel)
                    .map_err(|e| Error::io("cannot read", &self.root.show(rel), e))?;
                raw = Box::new(raw.chain(f));
            }
            let shown = self.root.show(Path::new(TMP).join(&l.name));
            let opened = keys.opener(raw, crate::crypto::OBJECT_CONTEXT, shown.clone());
            match hash_into(opened, &mut h, &mut each) {
                Ok(n) => size = n,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.discard_leftover(l)?;
                    return Ok(None);
                }
                Err(e) => return Err(Error::io("cannot read", &shown, e).into()),
            }
        } else {
            for (rel, _) in &l.parts {
                let f = self
                    .root
                    .open_file(rel)
                    .map_err(|e| Error::io("cannot read", &self.root.show(rel), e))?;
                size += hash_into(f, &mut h, &mut each)
                    .map_err(|e| Error::io("cannot read", &self.root.show(rel), e))?;
            }
        }
        self.gate()?;
        Ok(Some(Pending {
            hash: h.finish(),
            size,
            parts: l.parts.into_iter().map(|p| p.0).collect(),
        }))
    }

    /// Finishes a single-part staged copy from `src`, the file it was made
    /// from: the bytes on the disk must equal the same first bytes of the
    /// source (both are read and hashed), then the rest of the source is
    /// added. `Ok(None)`: they differ, and the leftover was dropped.
    pub fn resume(
        &self,
        l: Leftover,
        src: &mut std::fs::File,
        mut each: impl FnMut(u64) -> Result<(), crate::Error>,
    ) -> Result<Option<Pending>, super::CopyInError> {
        // A sealed stream cannot be taken up where it stopped (its last
        // chunk is not written yet): an encrypted disk copies it again.
        let Some((rel, have)) = l
            .parts
            .first()
            .cloned()
            .filter(|_| l.single() && !self.encrypted())
        else {
            self.discard_leftover(l)?;
            return Ok(None);
        };
        let on_disk = self
            .root
            .open_file(&rel)
            .map_err(|e| Error::io("cannot read", &self.root.show(&rel), e))?;
        let mut ours = Hasher::default();
        hash_into(on_disk, &mut ours, &mut each)
            .map_err(|e| Error::io("cannot read", &self.root.show(&rel), e))?;
        let mut theirs = Hasher::default();
        let read = hash_into((&mut *src).take(have), &mut theirs, &mut each)
            .map_err(super::CopyInError::Read)?;
        if read != have || ours.clone().finish() != theirs.finish() {
            self.discard_leftover(l)?;
            return Ok(None);
        }
        let resume = Resume {
            hasher: ours,
            parts: vec![rel],
            written: have,
        };
        // The name stays: the parts already on the disk are `NAME.p001`.
        self.copy_in(&l.name, src, resume, each).map(Some)
    }
}

/// Hashes everything `r` yields into `h`; returns the byte count.
fn hash_into(
    mut r: impl Read,
    h: &mut Hasher,
    each: &mut impl FnMut(u64) -> Result<(), crate::Error>,
) -> io::Result<u64> {
    crate::object::with_buffer(|buf| {
        let mut n = 0u64;
        loop {
            let k = match r.read(buf) {
                Ok(0) => return Ok(n),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..k]);
            n += k as u64;
            each(k as u64).map_err(|_| io::Error::other("cancelled"))?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_parsed_strictly() {
        assert_eq!(parse("staged.abc123.p001"), Some(("staged.abc123", 1)));
        assert_eq!(
            parse(&format!("{}.t.p002", "a".repeat(64))).map(|p| p.1),
            Some(2)
        );
        for bad in [
            "staged.abc.p0",
            "staged..p001",
            "x.p001",
            "staged.a.b.p001",
            "staged.a.pxyz",
            ".p001",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
