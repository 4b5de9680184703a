//! The sealed stream: XChaCha20-Poly1305 over 64 KiB chunks, STREAM style.
//!
//! ```text
//! header   "CfE" 0x01 | 19-byte random nonce prefix | 0x00       (24 bytes)
//! chunk i  ciphertext of up to 64 KiB | 16-byte tag
//! nonce i  prefix (19) | i as big-endian u32 (4) | 1 if last else 0 (1)
//! AAD      header | the stream's context ("coffer object", a slot's generation)
//! ```
//!
//! Every chunk but the last holds exactly [`CHUNK`] bytes; the last holds
//! 0 to [`CHUNK`] and is sealed with the final flag, so a stream cut at a
//! chunk boundary is told from a whole one, chunks cannot be reordered,
//! dropped or spliced in from another stream, and the sealed size follows
//! from the plain size ([`sealed_len`]) and back ([`plain_len`]).
//!
//! Reading is hostile-input safe: memory is bounded by two chunks whatever
//! the input, the chunk counter cannot wrap, and a stream that ends without
//! its final chunk, has bytes after it, or has any chunk that does not
//! authenticate is an error (`InvalidData`) that says which chunk.
//!
//! Invariant: no plaintext leaves an [`Unsealer`] before its chunk's tag
//! was checked.

use std::io::{self, Read};
use std::path::PathBuf;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};

/// Plain bytes per chunk.
pub const CHUNK: usize = 64 << 10;
const TAG: usize = 16;
const SEALED_CHUNK: usize = CHUNK + TAG;
const MAGIC: [u8; 4] = *b"CfE\x01";
const PREFIX: usize = 19;
/// Header length: magic, nonce prefix, one reserved byte.
pub const HEADER: usize = 4 + PREFIX + 1;
/// Most chunks one stream may have: the counter is 32 bits.
const MAX_CHUNKS: u64 = 1 << 32;

/// The sealed size of `plain` bytes: header, bytes, one tag per chunk
/// (an empty stream still has its one, final, chunk).
pub fn sealed_len(plain: u64) -> u64 {
    let chunks = plain.div_ceil(CHUNK as u64).max(1);
    HEADER as u64 + plain + chunks * TAG as u64
}

/// The plain size of a sealed stream of `sealed` bytes, or `None` when no
/// stream can have that size (torn or not a stream).
pub fn plain_len(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER as u64)?;
    let full = body / SEALED_CHUNK as u64;
    let rest = body % SEALED_CHUNK as u64;
    // The last chunk is a full one (rest == 0, at least one chunk), or a
    // short one of at least a tag.
    let plain = if rest == 0 {
        (full > 0).then(|| full * CHUNK as u64)?
    } else {
        (rest >= TAG as u64).then(|| full * CHUNK as u64 + rest - TAG as u64)?
    };
    // An empty last chunk only ever follows nothing: a stream of full
    // chunks ends with a full final one.
    if rest == TAG as u64 && full > 0 {
        return None;
    }
    Some(plain)
}

fn nonce(prefix: &[u8; PREFIX], counter: u64, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..PREFIX].copy_from_slice(prefix);
    n[PREFIX..PREFIX + 4].copy_from_slice(&(counter as u32).to_be_bytes());
    n[23] = u8::from(last);
    XNonce::from(n)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Seals plain bytes pushed into it, a chunk at a time.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    header: [u8; HEADER],
    aad: Vec<u8>,
    /// The chunk being filled (plain), sealed in place.
    buf: Vec<u8>,
    counter: u64,
    started: bool,
}

impl Sealer {
    pub(super) fn new(key: &[u8; 32], context: &[u8]) -> Result<Sealer, super::Error> {
        let mut prefix = [0u8; PREFIX];
        super::random(&mut prefix)?;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&MAGIC);
        header[4..4 + PREFIX].copy_from_slice(&prefix);
        let mut aad = header.to_vec();
        aad.extend_from_slice(context);
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
            header,
            aad,
            buf: Vec::with_capacity(SEALED_CHUNK),
            counter: 0,
            started: false,
        })
    }

    fn prefix(&self) -> [u8; PREFIX] {
        let mut p = [0u8; PREFIX];
        p.copy_from_slice(&self.header[4..4 + PREFIX]);
        p
    }

    /// Seals the chunk in `buf` and hands it to `out`.
    fn seal(&mut self, last: bool, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if self.counter >= MAX_CHUNKS {
            return Err(io::Error::other(
                "a sealed stream cannot hold more than 256 TiB",
            ));
        }
        let n = nonce(&self.prefix(), self.counter, last);
        let tag = self
            .cipher
            .encrypt_inout_detached(&n, &self.aad, self.buf.as_mut_slice().into())
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.buf.extend_from_slice(&tag);
        out(&self.buf)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    fn start(&mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if !self.started {
            self.started = true;
            out(&self.header)?;
        }
        Ok(())
    }

    /// Takes `data`; sealed bytes go to `out` as chunks fill. A full chunk
    /// is sealed only once more data follows it, since the last chunk (which
    /// may be full) carries the final flag.
    pub fn push(
        &mut self,
        mut data: &[u8],
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.start(out)?;
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                self.seal(false, out)?;
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the last chunk (with the final flag).
    pub fn finish(mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        self.start(out)?;
        self.seal(true, out)
    }
}

/// Opens a sealed stream pushed into it, checking every chunk.
pub struct Unsealer {
    cipher: XChaCha20Poly1305,
    context: Vec<u8>,
    aad: Vec<u8>,
    prefix: Option<[u8; PREFIX]>,
    /// Sealed bytes not opened yet: at most a chunk and a bit.
    buf: Vec<u8>,
    counter: u64,
    done: bool,
}

impl Unsealer {
    pub(super) fn new(key: &[u8; 32], context: &[u8]) -> Unsealer {
        Unsealer {
            cipher: XChaCha20Poly1305::new(key.into()),
            context: context.to_vec(),
            aad: Vec::new(),
            prefix: None,
            buf: Vec::with_capacity(2 * SEALED_CHUNK),
            counter: 0,
            done: false,
        }
    }

    /// Opens the first `len` bytes of `buf` as chunk `counter`.
    fn open(
        &mut self,
        len: usize,
        last: bool,
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some(prefix) = self.prefix else {
            return Err(invalid("the stream has no header".into()));
        };
        if self.counter >= MAX_CHUNKS {
            return Err(invalid(
                "the stream has more chunks than any Coffer writes".into(),
            ));
        }
        let n = nonce(&prefix, self.counter, last);
        let (body, rest) = self.buf.split_at_mut(len);
        let (msg, tag) = body.split_at_mut(len - TAG);
        let tag = Tag::try_from(&tag[..])
            .map_err(|_| invalid("a chunk's tag has the wrong length".into()))?;
        self.cipher
            .decrypt_inout_detached(&n, &self.aad, msg.into(), &tag)
            .map_err(|_| {
                invalid(format!(
                    "encrypted chunk {} does not authenticate (tampered, damaged, or {})",
                    self.counter + 1,
                    if last {
                        "cut short"
                    } else {
                        "from another stream"
                    }
                ))
            })?;
        out(msg)?;
        let _ = rest;
        self.buf.drain(..len);
        self.counter += 1;
        Ok(())
    }

    /// Takes sealed bytes; plain bytes of every chunk known not to be the
    /// last go to `out`.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.done {
            return Err(invalid("bytes follow the final chunk".into()));
        }
        let mut data = data;
        while !data.is_empty() {
            if self.prefix.is_none() {
                let take = (HEADER - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.buf.len() == HEADER {
                    if self.buf[..4] != MAGIC || self.buf[HEADER - 1] != 0 {
                        return Err(invalid(
                            "is not an encrypted Coffer stream (wrong header)".into(),
                        ));
                    }
                    let mut p = [0u8; PREFIX];
                    p.copy_from_slice(&self.buf[4..4 + PREFIX]);
                    self.prefix = Some(p);
                    self.aad = self.buf.clone();
                    self.aad.extend_from_slice(&self.context);
                    self.buf.clear();
                }
                continue;
            }
            // A whole chunk followed by at least one more byte is not the
            // last one.
            let take = (SEALED_CHUNK + 1 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() > SEALED_CHUNK {
                self.open(SEALED_CHUNK, false, out)?;
            }
        }
        Ok(())
    }

    /// The stream ended: what is left must be the final chunk.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        if self.prefix.is_none() {
            return Err(invalid("the stream is cut short (no whole header)".into()));
        }
        if self.buf.len() < TAG {
            return Err(invalid(format!(
                "the stream is cut short after chunk {} (no final chunk)",
                self.counter
            )));
        }
        let len = self.buf.len();
        self.open(len, true, out)?;
        self.done = true;
        Ok(())
    }
}

/// A reader of the plain bytes of a sealed stream. Errors name `what`.
pub struct Opener<R> {
    inner: R,
    unsealer: Unsealer,
    what: PathBuf,
    plain: Vec<u8>,
    pos: usize,
    sealed: Vec<u8>,
    ended: bool,
}

impl<R: Read> Opener<R> {
    pub(super) fn new(unsealer: Unsealer, inner: R, what: PathBuf) -> Opener<R> {
        Opener {
            inner,
            unsealer,
            what,
            plain: Vec::with_capacity(CHUNK),
            pos: 0,
            sealed: vec![0u8; SEALED_CHUNK],
            ended: false,
        }
    }

    fn named(&self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::InvalidData {
            invalid(format!("{}: {e}", crate::human::path(&self.what)))
        } else {
            e
        }
    }

    /// Reads and opens until plain bytes are at hand or the stream ended.
    fn refill(&mut self) -> io::Result<()> {
        self.plain.clear();
        self.pos = 0;
        while self.plain.is_empty() && !self.ended {
            let n = match self.inner.read(&mut self.sealed) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let plain = &mut self.plain;
            let mut out = |b: &[u8]| {
                plain.extend_from_slice(b);
                Ok(())
            };
            let r = if n == 0 {
                self.ended = true;
                self.unsealer.finish(&mut out)
            } else {
                self.unsealer.push(&self.sealed[..n], &mut out)
            };
            r.map_err(|e| self.named(e))?;
        }
        Ok(())
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.plain.len() {
            self.refill()?;
        }
        let n = (self.plain.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
