//! Applying block deltas as a stream: the librsync delta format that
//! `fast_rsync` writes (magic `rs\x026`, then LITERAL and COPY commands, then
//! END), read from the archive member as it decompresses, with the base read
//! by `pread` and the result written as it is made.
//!
//! Invariant: memory stays bounded (fixed buffers) whatever the file or
//! delta sizes; nothing is written past `limit`, no COPY reads outside the
//! base, and a delta that is truncated, has bytes after its END, or holds an
//! unknown command is an error ([`check`] makes the same checks without a
//! base, for verify).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;

/// `rs\x026`: the librsync delta magic.
const DELTA_MAGIC: u32 = 0x7273_0236;
const OP_END: u8 = 0;
const OP_LITERAL_1: u8 = 0x01;
const OP_LITERAL_64: u8 = 0x40;
const OP_LITERAL_N1: u8 = 0x41;
const OP_LITERAL_N8: u8 = 0x44;
const OP_COPY_N1_N1: u8 = 0x45;
const OP_COPY_N8_N8: u8 = 0x54;

/// Bytes moved at a time, from the delta or from the base.
const CHUNK: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("it does not start like an rsync delta (magic {0:#010x})")]
    WrongMagic(u32),
    #[error("it ends in the middle of {0}")]
    Truncated(&'static str),
    #[error("unknown command byte {0:#04x}")]
    UnknownCommand(u8),
    #[error("a COPY of {len} bytes at {offset} lies outside the {base} bytes of the base")]
    CopyOutOfBounds { offset: u64, len: u64, base: u64 },
    #[error("a COPY of zero bytes")]
    CopyZero,
    #[error("it makes more than the {limit} bytes the manifest declares")]
    TooLong { limit: u64 },
    #[error("it holds data after its END command")]
    TrailingData,
    #[error("the base changed while it was read")]
    BaseChanged,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where the commands of a delta go.
trait Target {
    fn literal(&mut self, data: &[u8]) -> Result<(), DeltaError>;
    fn copy(&mut self, offset: u64, len: u64) -> Result<(), DeltaError>;
}

/// Applies `delta` to `base`, writing the result to `out`; returns the
/// number of bytes written, at most `limit`.
pub fn apply(
    base: &File,
    delta: impl Read,
    out: impl Write,
    limit: u64,
) -> Result<u64, DeltaError> {
    struct Apply<'b, W> {
        base: &'b File,
        base_len: u64,
        out: W,
        buf: Vec<u8>,
    }
    impl<W: Write> Target for Apply<'_, W> {
        fn literal(&mut self, data: &[u8]) -> Result<(), DeltaError> {
            Ok(self.out.write_all(data)?)
        }
        fn copy(&mut self, offset: u64, len: u64) -> Result<(), DeltaError> {
            if offset
                .checked_add(len)
                .is_none_or(|end| end > self.base_len)
            {
                return Err(DeltaError::CopyOutOfBounds {
                    offset,
                    len,
                    base: self.base_len,
                });
            }
            let (mut at, mut left) = (offset, len);
            while left > 0 {
                let n = chunk(left, self.buf.len());
                let part = self.buf.get_mut(..n).unwrap_or_default();
                self.base.read_exact_at(part, at).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        DeltaError::BaseChanged
                    } else {
                        DeltaError::Io(e)
                    }
                })?;
                self.out.write_all(part)?;
                at += n as u64;
                left -= n as u64;
            }
            Ok(())
        }
    }
    let mut target = Apply {
        base,
        base_len: base.metadata()?.len(),
        out,
        buf: vec![0u8; CHUNK],
    };
    let n = run(delta, limit, &mut target)?;
    target.out.flush()?;
    Ok(n)
}

/// Reads `delta` through without a base: its commands must be well formed,
/// end with END and nothing after, and make at most `limit` bytes (how many
/// is returned). Whether its COPYs lie inside the base is known only when
/// it is applied.
pub fn check(delta: impl Read, limit: u64) -> Result<u64, DeltaError> {
    struct Check;
    impl Target for Check {
        fn literal(&mut self, _: &[u8]) -> Result<(), DeltaError> {
            Ok(())
        }
        fn copy(&mut self, offset: u64, len: u64) -> Result<(), DeltaError> {
            match offset.checked_add(len) {
                Some(_) => Ok(()),
                None => Err(DeltaError::CopyOutOfBounds {
                    offset,
                    len,
                    base: u64::MAX,
                }),
            }
        }
    }
    run(delta, limit, &mut Check)
}

/// Decodes `delta`, handing each command to `target` once its length was
/// checked against what is left of `limit`.
fn run(delta: impl Read, limit: u64, target: &mut impl Target) -> Result<u64, DeltaError> {
    let mut delta = BufReader::with_capacity(CHUNK, delta);
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    let magic = read_be(&mut delta, 4, "the magic")?;
    if magic != u64::from(DELTA_MAGIC) {
        return Err(DeltaError::WrongMagic(
            u32::try_from(magic).unwrap_or(u32::MAX),
        ));
    }
    loop {
        let cmd = read_be(&mut delta, 1, "a command")?;
        let cmd = u8::try_from(cmd).unwrap_or(u8::MAX);
        match cmd {
            OP_END => break,
            OP_LITERAL_1..=OP_LITERAL_N8 => {
                let len = if cmd <= OP_LITERAL_64 {
                    u64::from(cmd - OP_LITERAL_1 + 1)
                } else {
                    read_be(&mut delta, 1 << (cmd - OP_LITERAL_N1), "a literal length")?
                };
                reserve(&mut written, len, limit)?;
                let mut left = len;
                while left > 0 {
                    let n = chunk(left, buf.len());
                    let part = buf.get_mut(..n).unwrap_or_default();
                    read_exact(&mut delta, part, "literal data")?;
                    target.literal(part)?;
                    left -= n as u64;
                }
            }
            OP_COPY_N1_N1..=OP_COPY_N8_N8 => {
                let mode = cmd - OP_COPY_N1_N1;
                let offset = read_be(&mut delta, 1 << (mode / 4), "a copy offset")?;
                let len = read_be(&mut delta, 1 << (mode % 4), "a copy length")?;
                if len == 0 {
                    return Err(DeltaError::CopyZero);
                }
                reserve(&mut written, len, limit)?;
                target.copy(offset, len)?;
            }
            other => return Err(DeltaError::UnknownCommand(other)),
        }
    }
    let mut one = [0u8; 1];
    loop {
        match delta.read(&mut one) {
            Ok(0) => break,
            Ok(_) => return Err(DeltaError::TrailingData),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(written)
}

/// Counts `len` more bytes of output, refusing to pass `limit`.
fn reserve(written: &mut u64, len: u64, limit: u64) -> Result<(), DeltaError> {
    match written.checked_add(len) {
        Some(total) if total <= limit => {
            *written = total;
            Ok(())
        }
        _ => Err(DeltaError::TooLong { limit }),
    }
}

/// How much of `left` fits in a buffer of `cap` bytes.
fn chunk(left: u64, cap: usize) -> usize {
    usize::try_from(left).map_or(cap, |l| l.min(cap))
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), DeltaError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            DeltaError::Truncated(what)
        } else {
            DeltaError::Io(e)
        }
    })
}

/// Reads a big-endian unsigned number of `len` (1 to 8) bytes.
fn read_be(r: &mut impl Read, len: usize, what: &'static str) -> Result<u64, DeltaError> {
    let mut b = [0u8; 8];
    let start = 8usize.saturating_sub(len);
    read_exact(r, b.get_mut(start..).unwrap_or_default(), what)?;
    Ok(u64::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_file(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn bytes(&mut self, n: usize, alphabet: u64) -> Vec<u8> {
            (0..n).map(|_| self.below(alphabet) as u8).collect()
        }
    }

    #[test]
    fn reproduces_fast_rsync_on_random_inputs() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let len = rng.below(if round % 10 == 0 { 300_000 } else { 20_000 }) as usize;
            // Few distinct bytes make blocks repeat, so COPYs are common.
            let alphabet = 1 + rng.below(255);
            let base = rng.bytes(len, alphabet);
            let mut new = base.clone();
            for _ in 0..rng.below(12) {
                let at = rng.below(new.len() as u64 + 1) as usize;
                match rng.below(3) {
                    0 => {
                        let n = rng.below(5000) as usize;
                        let ins = rng.bytes(n, 256);
                        new.splice(at..at, ins);
                    }
                    1 => {
                        let end = (at + rng.below(5000) as usize).min(new.len());
                        new.drain(at..end);
                    }
                    _ => {
                        if let Some(b) = new.get_mut(at) {
                            *b ^= 0x5a;
                        }
                    }
                }
            }
            let block = [64u32, 512, 4096][round % 3];
            let sig = fast_rsync::Signature::calculate(
                &base,
                fast_rsync::SignatureOptions {
                    block_size: block,
                    crypto_hash_size: 8,
                },
            );
            let mut delta = Vec::new();
            fast_rsync::diff(&sig.index(), &new, &mut delta).unwrap();
            let mut want = Vec::new();
            fast_rsync::apply(&base, &delta, &mut want).unwrap();
            assert_eq!(want, new, "round {round}: fast_rsync itself");
            assert_eq!(
                check(&delta[..], new.len() as u64).unwrap(),
                new.len() as u64,
                "round {round}"
            );
            let mut got = Vec::new();
            let n = apply(&base_file(&base), &delta[..], &mut got, new.len() as u64).unwrap();
            assert_eq!(n, new.len() as u64, "round {round}");
            assert_eq!(got, new, "round {round}");
            // One byte short of the declared size is refused.
            if !new.is_empty() {
                let err = apply(
                    &base_file(&base),
                    &delta[..],
                    Vec::new(),
                    new.len() as u64 - 1,
                );
                assert!(
                    matches!(err, Err(DeltaError::TooLong { .. })),
                    "round {round}"
                );
            }
        }
    }

    fn delta_of(cmds: &[u8]) -> Vec<u8> {
        let mut d = DELTA_MAGIC.to_be_bytes().to_vec();
        d.extend_from_slice(cmds);
        d
    }

    #[test]
    fn hostile_deltas_are_refused() {
        let base = base_file(b"0123456789");
        let run = |d: &[u8], limit: u64| apply(&base, d, Vec::new(), limit);
        // A COPY past the end of the base, and one whose end overflows.
        let mut c = vec![OP_COPY_N1_N1 + 0b1111];
        c.extend_from_slice(&5u64.to_be_bytes());
        c.extend_from_slice(&6u64.to_be_bytes());
        c.push(OP_END);
        assert!(matches!(
            run(&delta_of(&c), 100),
            Err(DeltaError::CopyOutOfBounds { .. })
        ));
        let mut c = vec![OP_COPY_N8_N8];
        c.extend_from_slice(&u64::MAX.to_be_bytes());
        c.extend_from_slice(&2u64.to_be_bytes());
        assert!(matches!(
            run(&delta_of(&c), 100),
            Err(DeltaError::CopyOutOfBounds { .. })
        ));
        // A literal of 2^62 bytes is refused before anything is written.
        let mut c = vec![OP_LITERAL_N8];
        c.extend_from_slice(&(1u64 << 62).to_be_bytes());
        let mut out = Vec::new();
        let err = apply(&base, &delta_of(&c)[..], &mut out, 1 << 40).unwrap_err();
        assert!(matches!(err, DeltaError::TooLong { .. }), "{err}");
        assert!(out.is_empty());
        // Copies that together pass the limit.
        let c = [OP_COPY_N1_N1, 0, 10, OP_COPY_N1_N1, 0, 10, OP_END];
        assert!(matches!(
            run(&delta_of(&c), 15),
            Err(DeltaError::TooLong { limit: 15 })
        ));
        assert_eq!(run(&delta_of(&c), 20).unwrap(), 20);
        // Zero-length copy, unknown command, truncation, trailing data, magic.
        assert!(matches!(
            run(&delta_of(&[OP_COPY_N1_N1, 0, 0, OP_END]), 9),
            Err(DeltaError::CopyZero)
        ));
        assert!(matches!(
            run(&delta_of(&[0x55]), 9),
            Err(DeltaError::UnknownCommand(0x55))
        ));
        assert!(matches!(
            run(&delta_of(&[OP_LITERAL_1 + 4, b'a']), 9),
            Err(DeltaError::Truncated(_))
        ));
        assert!(matches!(
            run(&delta_of(&[]), 9),
            Err(DeltaError::Truncated(_))
        ));
        assert!(matches!(
            run(&delta_of(&[OP_END, 0]), 9),
            Err(DeltaError::TrailingData)
        ));
        assert!(matches!(run(b"rs", 9), Err(DeltaError::Truncated(_))));
        assert!(matches!(
            run(b"\0\0\0\0\0", 9),
            Err(DeltaError::WrongMagic(0))
        ));
        let out = {
            let mut out = Vec::new();
            apply(
                &base,
                &delta_of(&[OP_LITERAL_1 + 1, b'h', b'i', OP_COPY_N1_N1, 2, 3, OP_END])[..],
                &mut out,
                5,
            )
            .unwrap();
            out
        };
        assert_eq!(out, b"hi234");
    }
}
