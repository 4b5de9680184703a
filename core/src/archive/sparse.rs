//! Sparse members: a file with holes stored in the PAX 1.0 sparse format
//! GNU tar reads (`tar -x`, with or without `--sparse`). The PAX header
//! carries `GNU.sparse.major=1`, `GNU.sparse.minor=0`, `GNU.sparse.name`
//! (the real path) and `GNU.sparse.realsize`; the member's data starts with
//! the map, decimal numbers one a line (how many extents, then each
//! extent's offset and length) padded with zeros to 512 bytes, followed by
//! the extents' bytes one after the other. A file that ends in a hole gets
//! a last extent of length 0 at its size, which is how GNU tar knows to
//! give it its length.
//!
//! The writer's side is [`Extents`] (the map, and [`Stored`], the member's
//! bytes read from the file while the whole logical content is hashed)
//! and [`append`], which writes the member with its PAX records;
//! the reader's is [`Expand`], which reads a member's map as hostile input
//! and yields the logical content, holes as zeros.
//!
//! Invariant: a map is accepted only when it holds at most [`MAX_EXTENTS`]
//! extents, in order, none overlapping or reaching past the file's size,
//! and its text, padding and extents add up to exactly the member's size;
//! nothing is allocated from a number the map claims, only per extent read.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use crate::object::{Hasher, ObjectId};

/// Most extents a sparse member may have (a file with more is stored
/// whole): the map then takes at most about 2.6 MiB.
pub(crate) const MAX_EXTENTS: usize = 1 << 16;

/// Most digits a number of the map may have (`u64::MAX` has 20).
const MAX_DIGITS: usize = 20;

const BLOCK: u64 = 512;

static ZEROS: [u8; 1 << 16] = [0u8; 1 << 16];

/// Feeds `n` zero bytes to `h`.
fn hash_zeros(h: &mut Hasher, mut n: u64) {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        h.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

/// The data extents of a file of `size` bytes, as the writer stores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Extents {
    /// (offset, length), in order, none empty, within the size.
    pub(crate) data: Vec<(u64, u64)>,
    pub(crate) size: u64,
}

impl Extents {
    /// The map's extents as written: the data's, and a last empty one at
    /// the size when the file ends in a hole.
    fn entries(&self) -> Vec<(u64, u64)> {
        let mut out = self.data.clone();
        if out.last().is_none_or(|(o, l)| o + l < self.size) {
            out.push((self.size, 0));
        }
        out
    }

    /// The map as it starts the member's data, padded to 512 bytes.
    pub(crate) fn map_block(&self) -> Vec<u8> {
        let entries = self.entries();
        let mut text = format!("{}\n", entries.len());
        for (o, l) in entries {
            text.push_str(&format!("{o}\n{l}\n"));
        }
        let mut b = text.into_bytes();
        b.resize(
            (b.len() as u64).div_ceil(BLOCK) as usize * BLOCK as usize,
            0,
        );
        b
    }

    /// Bytes of data the extents hold.
    pub(crate) fn data_bytes(&self) -> u64 {
        self.data.iter().map(|(_, l)| l).sum()
    }

    /// The member's size: the map and the data.
    pub(crate) fn stored(&self) -> u64 {
        self.map_block().len() as u64 + self.data_bytes()
    }

    /// A reader of the whole logical content (holes as zeros, unread).
    pub(crate) fn logical<'f>(&'f self, file: &'f File) -> Logical<'f> {
        Logical {
            file,
            x: self,
            i: 0,
            pos: 0,
        }
    }

    /// A reader of the member's data (the map, then each extent's bytes)
    /// that hashes the logical content as it goes.
    pub(crate) fn stored_from<'f>(&'f self, file: &'f File) -> Stored<'f> {
        Stored {
            head: self.map_block(),
            head_at: 0,
            logical: self.logical(file),
            hasher: Hasher::default(),
            hashed: 0,
            n: 0,
        }
    }
}

/// The logical content of a sparse file read through its extents.
pub(crate) struct Logical<'f> {
    file: &'f File,
    x: &'f Extents,
    i: usize,
    pos: u64,
}

impl Logical<'_> {
    /// Where the data run `pos` lies in ends, or `None` in a hole (then the
    /// next data's start, or the size).
    fn at(&mut self) -> (bool, u64) {
        while let Some(&(o, l)) = self.x.data.get(self.i) {
            if self.pos >= o + l {
                self.i += 1;
                continue;
            }
            return if self.pos >= o {
                (true, o + l)
            } else {
                (false, o)
            };
        }
        (false, self.x.size)
    }
}

impl Read for Logical<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.x.size || buf.is_empty() {
            return Ok(0);
        }
        let (data, until) = self.at();
        let want = ((until - self.pos) as usize).min(buf.len());
        let n = if data {
            let n = self.file.read_at(&mut buf[..want], self.pos)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file became shorter while read",
                ));
            }
            n
        } else {
            buf[..want].fill(0);
            want
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// A sparse member's data read from its file; [`finish`](Self::finish)
/// gives the SHA-256 of the logical content it stands for.
pub(crate) struct Stored<'f> {
    head: Vec<u8>,
    head_at: usize,
    logical: Logical<'f>,
    hasher: Hasher,
    /// How far the logical content was hashed.
    hashed: u64,
    /// Bytes of the member read so far.
    n: u64,
}

impl Stored<'_> {
    pub(crate) fn finish(mut self) -> ObjectId {
        hash_zeros(&mut self.hasher, self.logical.x.size - self.hashed);
        self.hasher.finish()
    }
}

impl Read for Stored<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.head.get(self.head_at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.head_at += n;
            self.n += n as u64;
            return Ok(n);
        }
        loop {
            let l = &mut self.logical;
            if l.pos >= l.x.size {
                return Ok(0);
            }
            let (data, until) = l.at();
            if !data {
                // Holes are not stored; they are hashed as zeros.
                l.pos = until;
                continue;
            }
            let n = l.read(buf)?;
            hash_zeros(&mut self.hasher, l.pos - n as u64 - self.hashed);
            self.hasher.update(&buf[..n]);
            self.hashed = l.pos;
            self.n += n as u64;
            return Ok(n);
        }
    }
}

/// Appends a sparse member for `name` (PAX 1.0 sparse, as GNU tar writes
/// it) from `file`: the PAX records, a ustar header named as GNU tar names
/// it (`GNUSparseFile.0/` and the base name), the map and the data.
/// Returns the bytes written and the SHA-256 of the logical content.
pub(super) fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    x: &Extents,
    file: &std::fs::File,
    (mode, mtime_ns): (u32, i64),
) -> std::io::Result<(u64, ObjectId)> {
    let realsize = x.size.to_string();
    tar.append_pax_extensions([
        ("GNU.sparse.major", &b"1"[..]),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", name.as_bytes()),
        ("GNU.sparse.realsize", realsize.as_bytes()),
    ])?;
    let stored = x.stored();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(stored);
    h.set_mode(mode);
    h.set_mtime(mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    // A tar that knows no sparse members extracts it under this name, so
    // it says what it is; the base name is cut to fit the header.
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut cut = base.len().min(80);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    h.set_path(format!("GNUSparseFile.0/{}", &base[..cut]))?;
    h.set_cksum();
    let mut data = x.stored_from(file);
    tar.append(&h, (&mut data).take(stored))?;
    let n = data.n;
    Ok((n, data.finish()))
}

/// Why a sparse member's map was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MapError {
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn bad(s: impl Into<String>) -> MapError {
    MapError::Bad(s.into())
}

/// A sparse member's data expanded to the logical content it stands for.
pub(crate) struct Expand<R> {
    inner: R,
    map: Vec<(u64, u64)>,
    i: usize,
    pos: u64,
    size: u64,
}

/// Reads the map's next number and the newline after it; `text` counts
/// the bytes read.
fn number<R: Read>(r: &mut R, text: &mut u64) -> Result<u64, MapError> {
    let mut v: u64 = 0;
    let mut digits = 0usize;
    loop {
        let mut b = [0u8; 1];
        match r.read(&mut b) {
            Ok(0) => return Err(bad("its map is cut short")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        *text += 1;
        match b[0] {
            b'\n' if digits > 0 => return Ok(v),
            c @ b'0'..=b'9' if digits < MAX_DIGITS => {
                digits += 1;
                v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                    .ok_or_else(|| bad("a number of its map is too large"))?;
            }
            b'0'..=b'9' => return Err(bad("a number of its map has too many digits")),
            _ => return Err(bad("its map holds something other than numbers")),
        }
    }
}

impl<R: Read> Expand<R> {
    /// Reads the map at the start of a member of `stored` bytes (`inner`
    /// yields exactly those) standing for `size` bytes of content.
    pub(crate) fn open(mut inner: R, size: u64, stored: u64) -> Result<Expand<R>, MapError> {
        let mut text = 0u64;
        let count = number(&mut inner, &mut text)?;
        if count == 0 || count > MAX_EXTENTS as u64 + 1 {
            return Err(bad(format!(
                "its map claims {count} extents (1 to {} are possible)",
                MAX_EXTENTS + 1
            )));
        }
        let mut map: Vec<(u64, u64)> = Vec::new();
        let mut end = 0u64;
        let mut data = 0u64;
        for k in 0..count {
            let o = number(&mut inner, &mut text)?;
            let l = number(&mut inner, &mut text)?;
            let e = o
                .checked_add(l)
                .ok_or_else(|| bad("an extent of its map ends beyond any size"))?;
            if o < end {
                return Err(bad(format!(
                    "extent {k} of its map (at {o}) overlaps the one before or is out of order"
                )));
            }
            if e > size {
                return Err(bad(format!(
                    "extent {k} of its map ends at {e}, past the file's size of {size}"
                )));
            }
            if l == 0 && !(k + 1 == count && o == size) {
                return Err(bad(format!(
                    "extent {k} of its map is empty and not the last one at the file's size"
                )));
            }
            data = data
                .checked_add(l)
                .ok_or_else(|| bad("its extents add up to more than any size"))?;
            end = e;
            map.push((o, l));
        }
        let padded = text.div_ceil(BLOCK) * BLOCK;
        if padded.checked_add(data) != Some(stored) {
            return Err(bad(format!(
                "its map and extents take {} bytes, but the member has {stored}",
                padded.saturating_add(data)
            )));
        }
        let mut pad = vec![0u8; (padded - text) as usize];
        inner.read_exact(&mut pad).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => bad("its map is cut short"),
            _ => MapError::Io(e),
        })?;
        if pad.iter().any(|b| *b != 0) {
            return Err(bad("its map is padded with something other than zeros"));
        }
        Ok(Expand {
            inner,
            map,
            i: 0,
            pos: 0,
            size,
        })
    }
}

impl<R: Read> Read for Expand<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos >= self.size || buf.is_empty() {
                return Ok(0);
            }
            let (o, l) = self.map.get(self.i).copied().unwrap_or((self.size, 0));
            if self.pos < o {
                let n = ((o - self.pos) as usize).min(buf.len());
                buf[..n].fill(0);
                self.pos += n as u64;
                return Ok(n);
            }
            if self.pos >= o + l {
                self.i += 1;
                continue;
            }
            let want = ((o + l - self.pos) as usize).min(buf.len());
            let n = self.inner.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the member ends inside an extent of its sparse map",
                ));
            }
            self.pos += n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(len: u64, data: &[(u64, &[u8])]) -> (tempfile::NamedTempFile, Vec<u8>) {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(len).unwrap();
        let mut logical = vec![0u8; len as usize];
        for (at, b) in data {
            f.as_file().write_all_at(b, *at).unwrap();
            logical[*at as usize..*at as usize + b.len()].copy_from_slice(b);
        }
        (f, logical)
    }

    fn all(r: &mut dyn Read) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn a_member_written_from_extents_expands_to_the_logical_content() {
        for (len, data) in [
            (1u64 << 20, vec![(4096u64, &b"abc"[..]), (65536, b"defg")]),
            (1 << 20, vec![(0, &b"start"[..]), ((1 << 20) - 3, b"end")]),
            (1 << 20, vec![]),
        ] {
            let (f, logical) = file_with(len, &data);
            let x = Extents {
                data: data
                    .iter()
                    .map(|(o, _)| o - o % 4096)
                    .map(|o| (o, 4096.min(len - o)))
                    .collect(),
                size: len,
            };
            assert_eq!(all(&mut x.logical(f.as_file())), logical);
            let mut s = x.stored_from(f.as_file());
            let member = all(&mut s);
            assert_eq!(member.len() as u64, x.stored());
            assert_eq!(s.finish(), ObjectId::of(&logical));
            let mut e = Expand::open(&member[..], len, member.len() as u64).unwrap();
            assert_eq!(all(&mut e), logical);
        }
    }

    #[test]
    fn the_map_is_what_gnu_tar_writes() {
        let x = Extents {
            data: vec![(0, 4096), (1 << 20, 8192)],
            size: 1 << 30,
        };
        let b = x.map_block();
        assert_eq!(b.len(), 512);
        let text = String::from_utf8(b.into_iter().take_while(|c| *c != 0).collect()).unwrap();
        assert_eq!(text, "3\n0\n4096\n1048576\n8192\n1073741824\n0\n");
    }

    fn refused(map: &str, size: u64, data: u64) -> String {
        let mut m = map.as_bytes().to_vec();
        m.resize((m.len() as u64).div_ceil(512) as usize * 512, 0);
        let stored = m.len() as u64 + data;
        m.resize(stored as usize, 7);
        match Expand::open(&m[..], size, stored) {
            Ok(_) => panic!("{map:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn hostile_maps_are_refused() {
        assert!(refused("0\n", 10, 0).contains("0 extents"));
        assert!(refused("99999999999\n", 10, 0).contains("extents"));
        assert!(refused("1\n18446744073709551615\n2\n", u64::MAX, 2).contains("beyond"));
        assert!(refused("1\n99999999999999999999\n0\n", 10, 0).contains("too large"));
        assert!(refused("1\n000000000000000000001\n0\n", 10, 0).contains("digits"));
        assert!(refused("2\n0\n10\n5\n10\n", 100, 20).contains("overlaps"));
        assert!(refused("2\n50\n10\n0\n10\n", 100, 20).contains("out of order"));
        assert!(refused("1\n0\n200\n", 100, 200).contains("past the file's size"));
        assert!(refused("2\n0\n0\n100\n0\n", 100, 0).contains("empty"));
        assert!(refused("1\n0\n10\n", 100, 11).contains("the member has"));
        assert!(refused("1\n0\n-1\n", 100, 1).contains("other than numbers"));
        let cut = Expand::open(&b"1\n0\n"[..], 100, 512).err().unwrap();
        assert!(cut.to_string().contains("cut short"), "{cut}");
        // Padding that is not zeros.
        let mut m = b"1\n0\n1\n".to_vec();
        m.resize(512, b'x');
        m.push(1);
        assert!(
            Expand::open(&m[..], 1, 513)
                .err()
                .unwrap()
                .to_string()
                .contains("padded")
        );
        // A member cut inside an extent is an error when read.
        let mut m = b"1\n0\n100\n".to_vec();
        m.resize(512, 0);
        m.extend_from_slice(&[1u8; 10]);
        let mut e = Expand::open(&m[..], 100, 612).unwrap();
        assert!(e.read_to_end(&mut Vec::new()).is_err());
    }
}
