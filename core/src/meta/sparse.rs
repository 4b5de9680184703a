//! Sparse files: reading one without reading its holes, and writing
//! content back with holes where it holds whole blocks of zeros.
//!
//! A file is looked at for holes only when it has fewer blocks allocated
//! than its size needs (`st_blocks * 512 < st_size`), and then with one
//! `lseek(SEEK_HOLE)` first: an ordinary file costs no system call at all.
//! Holes read as zeros from memory, so a hash over what [`Sparse`] yields is
//! the hash of the whole logical content.
//!
//! Invariant: [`Sparse`] yields exactly the bytes a plain read would; a
//! [`HoleWriter`] leaves a file holding exactly the bytes written to it.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

/// The block size holes are made in: what every Linux file system
/// allocates in, or a multiple of it.
pub const BLOCK: usize = 4096;

/// Whether a file with this size and these allocated 512-byte blocks may
/// have holes (the test that costs no system call).
pub fn may_have_holes(size: u64, blocks: u64) -> bool {
    blocks.saturating_mul(512) < size
}

/// A reader over a file (owned, or borrowed) that gives its holes as zeros
/// without reading them.
pub struct Sparse<F: Borrow<File>> {
    file: F,
    pos: u64,
    /// The size when opened: holes are looked for below it, and anything
    /// after it is read plainly (a file that grew is read to its end).
    len: u64,
    /// Where the data (or the hole) `pos` lies in ends.
    until: u64,
    in_hole: bool,
    holes: bool,
}

impl<F: Borrow<File>> Sparse<F> {
    /// A reader over `file`, which has `size` bytes in `blocks` allocated
    /// 512-byte blocks (as its `fstat` said).
    pub fn new(file: F, size: u64, blocks: u64) -> Sparse<F> {
        let mut s = Sparse {
            file,
            pos: 0,
            len: size,
            until: size,
            in_hole: false,
            holes: false,
        };
        if may_have_holes(size, blocks) {
            // The first hole; at the size when there is none.
            match rustix::fs::seek(s.file.borrow(), SeekFrom::Hole(0)) {
                Ok(h) if h < size => {
                    s.holes = true;
                    s.until = h;
                    s.in_hole = h == 0;
                    if s.in_hole {
                        s.until = s.next_data(0);
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// A reader over `file`, after asking its size and blocks.
    pub fn of(file: F) -> io::Result<Sparse<F>> {
        let st = rustix::fs::fstat(file.borrow())?;
        Ok(Sparse::new(file, st.st_size as u64, st.st_blocks as u64))
    }

    /// Whether the file had a hole when opened.
    pub fn has_holes(&self) -> bool {
        self.holes
    }

    /// Where the data after the hole at `at` starts (the size when the
    /// hole runs to the end).
    fn next_data(&self, at: u64) -> u64 {
        match rustix::fs::seek(self.file.borrow(), SeekFrom::Data(at)) {
            Ok(d) => d.min(self.len),
            Err(_) => self.len,
        }
    }

    fn next_hole(&self, at: u64) -> u64 {
        match rustix::fs::seek(self.file.borrow(), SeekFrom::Hole(at)) {
            Ok(h) => h.min(self.len),
            Err(_) => self.len,
        }
    }
}

impl<F: Borrow<File>> Read for Sparse<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.holes || self.pos >= self.len {
            let n = self.file.borrow().read_at(buf, self.pos)?;
            self.pos += n as u64;
            return Ok(n);
        }
        while self.pos >= self.until {
            // The end of a run: the next one is the other kind.
            self.in_hole = !self.in_hole;
            self.until = if self.in_hole {
                self.next_data(self.pos)
            } else {
                self.next_hole(self.pos)
            };
            if self.until <= self.pos {
                // Changed under us (data where a hole was, or the other
                // way): the rest is read plainly.
                self.holes = false;
                return self.read(buf);
            }
        }
        let want = ((self.until - self.pos) as usize).min(buf.len());
        let n = if self.in_hole {
            buf[..want].fill(0);
            want
        } else {
            self.file.borrow().read_at(&mut buf[..want], self.pos)?
        };
        if n == 0 {
            // Shorter than when it was opened.
            self.len = self.pos;
            return Ok(0);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The data extents (offset, length) of a file of `size` bytes in
/// `blocks` allocated 512-byte blocks, found with `SEEK_DATA`/`SEEK_HOLE`:
/// `None` when it has no hole below its size (or the file system does not
/// say), or when it has more than `cap` extents (a caller then reads it
/// whole). The extents are in order, none empty, none past `size`.
pub fn extents(
    file: &File,
    size: u64,
    blocks: u64,
    cap: usize,
) -> io::Result<Option<Vec<(u64, u64)>>> {
    if !may_have_holes(size, blocks) {
        return Ok(None);
    }
    match rustix::fs::seek(file, SeekFrom::Hole(0)) {
        Ok(h) if h < size => {}
        Ok(_) => return Ok(None),
        Err(e) if e == Errno::INVAL || e == Errno::NOTSUP || e == Errno::OPNOTSUPP => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < size {
        let data = match rustix::fs::seek(file, SeekFrom::Data(at)) {
            Ok(d) => d,
            // No data after `at`: the rest is a hole.
            Err(Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        if data >= size {
            break;
        }
        let hole = match rustix::fs::seek(file, SeekFrom::Hole(data)) {
            Ok(h) => h.min(size),
            Err(Errno::NXIO) => size,
            Err(e) => return Err(e.into()),
        };
        if hole <= data {
            // Changed under us; the caller's steadiness check catches it.
            return Ok(None);
        }
        if out.len() == cap {
            return Ok(None);
        }
        out.push((data, hole - data));
        at = hole;
    }
    Ok(Some(out))
}

/// Whether `b` is all zeros.
pub fn is_zero(b: &[u8]) -> bool {
    // Sixteen bytes at a time, which the optimiser turns into vector
    // compares; data stops at its first non-zero piece, so looking at it
    // costs almost nothing next to hashing it.
    let mut pieces = b.chunks_exact(16);
    pieces.all(|c| c.iter().fold(0u8, |a, x| a | x) == 0)
        && pieces.remainder().iter().all(|x| *x == 0)
}

/// The runs of `chunk`, which starts at offset `at` of its file: pieces
/// cut at [`BLOCK`] boundaries, each all zeros (`true`) or not; a zero run
/// covers whole blocks only, and neighbours of one kind are joined.
pub fn runs(chunk: &[u8], at: u64) -> Vec<(bool, std::ops::Range<usize>)> {
    let mut out: Vec<(bool, std::ops::Range<usize>)> = Vec::new();
    let mut i = 0usize;
    while i < chunk.len() {
        let to_boundary = BLOCK - (at as usize + i) % BLOCK;
        let end = (i + to_boundary).min(chunk.len());
        let whole = end - i == BLOCK;
        let zero = whole && is_zero(&chunk[i..end]);
        match out.last_mut() {
            Some((z, r)) if *z == zero => r.end = end,
            _ => out.push((zero, i..end)),
        }
        i = end;
    }
    out
}

/// Writes content into a new file, leaving holes for whole blocks of
/// zeros; [`finish`](Self::finish) gives the file its length.
pub struct HoleWriter<'f> {
    file: &'f File,
    pos: u64,
    /// Whether the file ends before `pos` (its last run was a hole).
    short: bool,
}

impl<'f> HoleWriter<'f> {
    pub fn new(file: &'f File) -> HoleWriter<'f> {
        HoleWriter {
            file,
            pos: 0,
            short: false,
        }
    }

    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        for (zero, r) in runs(chunk, self.pos) {
            let n = r.len() as u64;
            if zero {
                self.short = true;
            } else {
                self.file.write_all_at(&chunk[r], self.pos)?;
                self.short = false;
            }
            self.pos += n;
        }
        Ok(())
    }

    /// Gives the file its whole length when it ends in a hole.
    pub fn finish(self) -> io::Result<u64> {
        if self.short {
            self.file.set_len(self.pos)?;
        }
        Ok(self.pos)
    }
}

/// Whether a file system refused a hole-punching call because it cannot
/// make holes (the caller then writes zeros).
pub fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|c| c == Errno::NOTSUP.raw_os_error() || c == Errno::OPNOTSUPP.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};
    use std::os::unix::fs::MetadataExt;

    fn sparse_file(dir: &std::path::Path, len: u64, data: &[(u64, &[u8])]) -> File {
        let p = dir.join(format!("f{len}-{}", data.len()));
        let mut f = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(p)
            .unwrap();
        f.set_len(len).unwrap();
        for (at, bytes) in data {
            f.seek(io::SeekFrom::Start(*at)).unwrap();
            f.write_all(bytes).unwrap();
        }
        f.sync_all().unwrap();
        f
    }

    fn read_all(r: &mut dyn Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 7000];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn holes_read_as_zeros_and_the_bytes_are_those_of_a_plain_read() {
        let dir = tempfile::tempdir().unwrap();
        let mib = 1u64 << 20;
        for data in [
            vec![
                (0, &b"head"[..]),
                (3 * mib, b"middle"),
                (8 * mib - 3, b"end"),
            ],
            vec![(5 * mib, &b"only in the middle"[..])],
            vec![],
            vec![(0, &[1u8; 10000][..])],
        ] {
            let f = sparse_file(dir.path(), 8 * mib, &data);
            let m = f.metadata().unwrap();
            let mut s = Sparse::new(&f, m.len(), m.blocks());
            let got = read_all(&mut s);
            let mut plain = Vec::new();
            (&f).seek(io::SeekFrom::Start(0)).unwrap();
            (&f).read_to_end(&mut plain).unwrap();
            assert_eq!(got.len(), plain.len());
            assert!(got == plain, "sparse read differs for {data:?}");
            // tmpfs and ext4 both report the holes.
            assert!(s.has_holes(), "no hole found in {data:?}");
        }
        // A dense file is not looked at.
        let f = sparse_file(dir.path(), 3, &[(0, b"abc")]);
        let m = f.metadata().unwrap();
        let s = Sparse::new(&f, m.len(), m.blocks());
        assert!(!s.has_holes());
    }

    #[test]
    fn a_file_that_grows_or_shrinks_while_read_gives_what_a_plain_read_gives() {
        let dir = tempfile::tempdir().unwrap();
        let f = sparse_file(dir.path(), 1 << 20, &[(100, b"x")]);
        let m = f.metadata().unwrap();
        let mut s = Sparse::new(&f, m.len(), m.blocks());
        f.set_len(2 << 20).unwrap();
        f.write_all_at(b"tail", (2 << 20) - 4).unwrap();
        let got = read_all(&mut s);
        assert_eq!(got.len(), 2 << 20);
        assert_eq!(&got[(2 << 20) - 4..], b"tail");
        let mut s = Sparse::new(&f, 2 << 20, 0);
        f.set_len(10).unwrap();
        assert_eq!(read_all(&mut s).len(), 10);
    }

    #[test]
    fn runs_cut_at_block_boundaries_and_only_whole_zero_blocks_are_holes() {
        let mut c = vec![0u8; 3 * BLOCK];
        c[BLOCK + 5] = 1;
        assert_eq!(
            runs(&c, 0),
            vec![
                (true, 0..BLOCK),
                (false, BLOCK..2 * BLOCK),
                (true, 2 * BLOCK..3 * BLOCK)
            ]
        );
        // Not aligned: the partial blocks at both ends are data.
        let z = vec![0u8; 2 * BLOCK];
        assert_eq!(
            runs(&z, 100),
            vec![
                (false, 0..BLOCK - 100),
                (true, BLOCK - 100..2 * BLOCK - 100),
                (false, 2 * BLOCK - 100..2 * BLOCK)
            ]
        );
        assert!(runs(&[], 0).is_empty());
        assert!(is_zero(&[0u8; 33]) && !is_zero(&[0, 0, 1]));
    }

    #[test]
    fn a_hole_writer_leaves_holes_and_the_right_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let f = File::create(&p).unwrap();
        let mut w = HoleWriter::new(&f);
        let mut content = vec![0u8; 4 << 20];
        content[12345] = 7;
        for c in content.chunks(1 << 20) {
            w.write(c).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 4 << 20);
        assert_eq!(std::fs::read(&p).unwrap(), content);
        let m = std::fs::metadata(&p).unwrap();
        assert!(m.blocks() * 512 <= 64 << 10, "{} blocks", m.blocks());
    }
}
