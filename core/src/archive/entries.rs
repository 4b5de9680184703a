//! Walking a tar stream's raw entries: GNU long names, long links and PAX
//! headers are read here, each against a small cap before its data is
//! read (the tar crate would read them whole into memory), and applied to
//! the member they describe, whose name is then normalised; and the first
//! member, `manifest.json`, read within the manifest cap.
//!
//! Invariant: no extension header yields more than 16 KiB, no name leaves
//! here that is absolute or holds `..`, and a PAX size never disagrees
//! with the header the reader steps by.

use std::io::{self, Read};
use std::path::Path;

use super::Error;
use super::manifest::{self, MANIFEST_NAME};
use super::open::{self, Grant};
use crate::object::{Hasher, ObjectId};

/// Most bytes of extension data (GNU long name and long link, PAX
/// records) one member may carry: a path or link target is at most 4 KiB.
const EXTENSION_CAP: u64 = 16 << 10;

/// Bytes a member may take beyond its data: its header, up to three
/// extension headers and their data.
pub(crate) const PER_MEMBER: u64 = 512 + 3 * 512 + EXTENSION_CAP;

/// A member's header as read, with its name normalised.
pub(crate) struct Header {
    pub(crate) name: String,
    pub(crate) kind: tar::EntryType,
    pub(crate) size: u64,
    pub(crate) link: Option<Vec<u8>>,
    /// For a sparse member (PAX 1.0): the size of the content it stands
    /// for, `GNU.sparse.realsize`. Its name is `GNU.sparse.name`.
    pub(crate) sparse: Option<u64>,
}

/// The `GNU.sparse.*` records of a PAX header.
#[derive(Default)]
struct SparseRecords {
    major: Option<Vec<u8>>,
    minor: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    realsize: Option<Vec<u8>>,
}

impl SparseRecords {
    fn any(&self) -> bool {
        self.major.is_some()
            || self.minor.is_some()
            || self.name.is_some()
            || self.realsize.is_some()
    }

    /// The real name and size, when the records describe a PAX 1.0
    /// sparse member; an error for any other mix.
    fn check(self) -> Result<Option<(Vec<u8>, u64)>, String> {
        if !self.any() {
            return Ok(None);
        }
        if self.major.as_deref() != Some(b"1") || self.minor.as_deref() != Some(b"0") {
            return Err("it is a sparse member of a format other than PAX 1.0".into());
        }
        let (Some(name), Some(size)) = (self.name, self.realsize) else {
            return Err("its sparse records lack GNU.sparse.name or GNU.sparse.realsize".into());
        };
        let size = std::str::from_utf8(&size)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("its GNU.sparse.realsize is not a number")?;
        Ok(Some((name, size)))
    }
}

/// What a kind of member is called in messages.
pub(crate) fn kind_name(t: tar::EntryType) -> String {
    use tar::EntryType as T;
    match t {
        T::Regular | T::Continuous => "file".into(),
        T::Directory => "folder".into(),
        T::Symlink => "symlink".into(),
        T::Link => "hard link".into(),
        T::Char => "character device".into(),
        T::Block => "block device".into(),
        T::Fifo => "FIFO".into(),
        T::GNUSparse => "sparse file".into(),
        T::XGlobalHeader => "global PAX header".into(),
        other => format!("member of type {:?}", char::from(other.as_byte())),
    }
}

/// A damaged stream: the tar or gzip layer failed, or the budget ran out.
pub(crate) fn damaged(shown: &Path, e: &io::Error, files: Vec<String>) -> Error {
    let message = match open::exceeded(e) {
        Some(x) => x.to_string(),
        None => e.to_string(),
    };
    Error::Corrupt {
        path: shown.to_path_buf(),
        message,
        files,
    }
}

pub(crate) fn bad_member(shown: &Path, member: &str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: shown.to_path_buf(),
        message: format!("member `{member}` {reason}"),
        files: vec![member.to_string()],
    }
}

fn unsafe_member(shown: &Path, raw: &[u8], reason: &str) -> Error {
    Error::Unsafe {
        path: shown.to_path_buf(),
        member: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the small data of an extension header, refusing more than `left`.
fn small<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    left: &mut u64,
    shown: &Path,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let size = entry.size();
    if size > *left {
        return Err(unsafe_member(
            shown,
            &entry.path_bytes(),
            &format!("its {what} of {size} bytes is longer than any path Coffer writes"),
        ));
    }
    *left -= size;
    let mut out = Vec::new();
    entry
        .take(size)
        .read_to_end(&mut out)
        .map_err(|e| damaged(shown, &e, Vec::new()))?;
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// The next member of a raw tar stream, with any GNU long name, long link
/// or PAX header it comes with applied to it.
pub(crate) fn next_member<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    shown: &Path,
) -> Result<Option<(Header, tar::Entry<'a, R>)>, Error> {
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax_size: Option<u64> = None;
    let mut pax = false;
    let mut sparse = SparseRecords::default();
    let mut left = EXTENSION_CAP;
    loop {
        let mut entry = match entries.next() {
            None if long_name.is_some() || long_link.is_some() || pax => {
                return Err(Error::Corrupt {
                    path: shown.to_path_buf(),
                    message: "it ends with an extension header and no member after it".into(),
                    files: Vec::new(),
                });
            }
            None => return Ok(None),
            Some(Err(e)) => return Err(damaged(shown, &e, Vec::new())),
            Some(Ok(e)) => e,
        };
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        let twice = || Error::Corrupt {
            path: shown.to_path_buf(),
            message: "two extension headers of the same kind describe one member".into(),
            files: Vec::new(),
        };
        match kind {
            T::GNULongName => {
                if long_name.is_some() {
                    return Err(twice());
                }
                long_name = Some(small(&mut entry, &mut left, shown, "GNU long name")?);
                continue;
            }
            T::GNULongLink => {
                if long_link.is_some() {
                    return Err(twice());
                }
                long_link = Some(small(&mut entry, &mut left, shown, "GNU long link")?);
                continue;
            }
            T::XHeader => {
                if pax {
                    return Err(twice());
                }
                pax = true;
                let data = small(&mut entry, &mut left, shown, "PAX header")?;
                // Only the records that change what the member is are used.
                for rec in tar::PaxExtensions::new(&data) {
                    let rec = rec.map_err(|e| damaged(shown, &e, Vec::new()))?;
                    match rec.key_bytes() {
                        b"path" => long_name = Some(rec.value_bytes().to_vec()),
                        b"linkpath" => long_link = Some(rec.value_bytes().to_vec()),
                        b"size" => {
                            let s = std::str::from_utf8(rec.value_bytes())
                                .ok()
                                .and_then(|s| s.parse::<u64>().ok());
                            let Some(s) = s else {
                                return Err(unsafe_member(
                                    shown,
                                    &entry.path_bytes(),
                                    "its PAX size is not a number",
                                ));
                            };
                            pax_size = Some(s);
                        }
                        b"GNU.sparse.major" => sparse.major = Some(rec.value_bytes().to_vec()),
                        b"GNU.sparse.minor" => sparse.minor = Some(rec.value_bytes().to_vec()),
                        b"GNU.sparse.name" => sparse.name = Some(rec.value_bytes().to_vec()),
                        b"GNU.sparse.realsize" => {
                            sparse.realsize = Some(rec.value_bytes().to_vec());
                        }
                        // The older sparse formats (0.0, 0.1) are not read.
                        k if k.starts_with(b"GNU.sparse.") => {
                            return Err(unsafe_member(
                                shown,
                                &entry.path_bytes(),
                                &format!(
                                    "it uses a sparse record Coffer does not write ({})",
                                    String::from_utf8_lossy(k)
                                ),
                            ));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        let sparse = sparse
            .check()
            .map_err(|why| unsafe_member(shown, &entry.path_bytes(), &why))?;
        // As GNU tar does, the sparse name wins over a PAX path.
        let (sparse_name, sparse) = sparse.map_or((None, None), |(n, s)| (Some(n), Some(s)));
        let raw = sparse_name
            .or(long_name)
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = manifest::normalize(&raw).map_err(|why| unsafe_member(shown, &raw, why))?;
        let size = entry.size();
        // The reader steps over the header's size; a PAX size that says
        // otherwise would make two readers see two archives.
        if let Some(p) = pax_size.filter(|p| *p != size) {
            return Err(bad_member(
                shown,
                &name,
                format!("has a PAX size of {p} bytes, but its header says {size}"),
            ));
        }
        let link = long_link.or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
        return Ok(Some((
            Header {
                name,
                kind,
                size,
                link,
                sparse,
            },
            entry,
        )));
    }
}

/// How many times its compressed size a manifest larger than a first
/// allowance may inflate to. Real ones, full of hashes and
/// signatures, inflate 4 to 6 times (5.0 for 20,000 files); a manifest of
/// millions of near-identical entries, made to fill memory, 13 and more.
const INFLATE_MAX: u64 = 10;
const INFLATE_SLACK: u64 = 64 << 20;

/// Reads the first member, which must be `manifest.json` of at most the
/// manifest cap, granting its size to the stream's budget first. Returns
/// its SHA-256, and its bytes when `keep` (else they are only hashed: a
/// manifest can be large, and every volume repeats it).
pub(crate) fn read_manifest_member<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    shown: &Path,
    grant: &Grant,
    keep: bool,
) -> Result<(Vec<u8>, ObjectId), Error> {
    let not = |message: String| Error::NotAnArchive {
        path: shown.to_path_buf(),
        message,
    };
    let Some((h, entry)) = next_member(entries, shown)? else {
        return Err(not("it is empty".into()));
    };
    if h.name != MANIFEST_NAME || !matches!(h.kind, tar::EntryType::Regular) {
        return Err(not("its first member is not manifest.json".into()));
    }
    if h.size > manifest::MANIFEST_CAP {
        return Err(not(format!(
            "its manifest.json declares {} bytes, more than the {} a manifest may have",
            h.size,
            manifest::MANIFEST_CAP
        )));
    }
    grant.add(h.size.div_ceil(512) * 512);
    let mut data = Hashing {
        inner: entry.take(h.size),
        hasher: Hasher::default(),
        n: 0,
    };
    // A manifest of hashes and signatures compresses a few times at most;
    // one that inflates far more is a gzip bomb, refused before it fills
    // memory (its declared size alone may be all a real one could be).
    let bomb = |n: u64| n > INFLATE_SLACK && n > INFLATE_MAX.saturating_mul(grant.compressed());
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(damaged(shown, &e, Vec::new())),
        };
        if bomb(data.n) {
            return Err(not(format!(
                "its manifest.json inflates to more than {} times its compressed size (a gzip bomb?)",
                INFLATE_MAX
            )));
        }
        if keep {
            bytes.extend_from_slice(buf.get(..k).unwrap_or_default());
        }
    }
    if data.n != h.size {
        return Err(not("its manifest.json is cut short".into()));
    }
    Ok((bytes, data.hasher.finish()))
}

/// Hashes and counts what passes through it.
pub(crate) struct Hashing<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Hasher,
    pub(crate) n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.n += n as u64;
        Ok(n)
    }
}
