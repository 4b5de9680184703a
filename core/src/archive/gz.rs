//! Parallel gzip: the stream is cut into blocks, each compressed on its own
//! core as a complete gzip member, and the members are written in order.
//! Concatenated members are standard gzip (RFC 1952 §2.2): GNU tar, `gzip
//! -d` and `MultiGzDecoder` read them as one stream.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use rayon::prelude::*;

/// Bytes of input per gzip member.
pub const BLOCK: usize = 4 << 20;

pub struct ParGzWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    full: Vec<Vec<u8>>,
    /// Blocks gathered before a parallel round.
    batch: usize,
    level: Compression,
    written: u64,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W) -> Self {
        ParGzWriter {
            inner,
            buf: Vec::with_capacity(BLOCK),
            full: Vec::new(),
            batch: rayon::current_num_threads().max(1) * 2,
            level: Compression::new(6),
            written: 0,
        }
    }

    /// Compressed bytes written so far.
    pub fn compressed_bytes(&self) -> u64 {
        self.written
    }

    fn compress_full(&mut self) -> io::Result<()> {
        let blocks = std::mem::take(&mut self.full);
        let level = self.level;
        let members: Vec<io::Result<Vec<u8>>> = blocks
            .par_iter()
            .map(|b| {
                let mut e = GzEncoder::new(Vec::with_capacity(b.len() / 2 + 64), level);
                e.write_all(b)?;
                e.finish()
            })
            .collect();
        for m in members {
            let m = m?;
            self.inner.write_all(&m)?;
            self.written += m.len() as u64;
        }
        Ok(())
    }

    /// Compresses what is left and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.full.push(last);
        }
        self.compress_full()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
            self.full.push(block);
            if self.full.len() >= self.batch {
                self.compress_full()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Members are only cut at block boundaries; a flush does not force one.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn many_members_read_back_as_one_stream() {
        let data: Vec<u8> = (0..(BLOCK * 3 + 1234)).map(|i| (i % 251) as u8).collect();
        let mut w = ParGzWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let out = w.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // Four members, each starting with the gzip magic.
        let magic = out.windows(3).filter(|w| *w == [0x1f, 0x8b, 8]).count();
        assert!(magic >= 4, "{magic}");
    }
}
