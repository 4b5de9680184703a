//! Object ids (SHA-256 of the content) and hashing while reading.
//!
//! Invariant: an `ObjectId` is always 32 bytes of SHA-256; its text form is
//! 64 lowercase hex digits, the file name of the object on every disk; in a
//! catalog it is stored as its 32 bytes.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    pub fn of(bytes: &[u8]) -> ObjectId {
        ObjectId(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// The fan-out folder on disk: the first two hex digits.
    pub fn prefix(&self) -> String {
        self.to_hex()[..2].to_string()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", &self.to_hex()[..12])
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a SHA-256 in hex")]
pub struct ParseError(pub String);

impl FromStr for ObjectId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(ParseError(s.into()));
        }
        // Catalogs hold hundreds of thousands of these: one table lookup per
        // digit, and one check for the whole id.
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let (hi, lo) = (HEX_VAL[usize::from(pair[0])], HEX_VAL[usize::from(pair[1])]);
            bad |= (hi | lo) & 0x80;
            *o = hi << 4 | (lo & 0x0f);
        }
        if bad != 0 {
            return Err(ParseError(s.into()));
        }
        Ok(ObjectId(out))
    }
}

/// The value of each lowercase hex digit; 0x80 marks everything else.
const HEX_VAL: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// In a catalog an id is its 32 bytes (a BLOB; schema 7 on).
impl rusqlite::ToSql for ObjectId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Blob(&self.0),
        ))
    }
}

/// Buffer size for copying and hashing: large enough to keep disks streaming.
pub const CHUNK: usize = 1 << 20;

thread_local! {
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's `CHUNK`-sized copy buffer. Zeroing a fresh
/// megabyte for every small file cost more than hashing it; the buffer is
/// taken out while in use, so a nested call just gets a fresh one.
pub fn with_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = BUFFER.take();
    if buf.len() != CHUNK {
        buf = vec![0u8; CHUNK];
    }
    let r = f(&mut buf);
    BUFFER.set(buf);
    r
}

/// Incremental SHA-256.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    pub fn finish(self) -> ObjectId {
        ObjectId(self.0.finalize().into())
    }
}

/// Hashes everything `r` yields; returns the id and the byte count. `each`
/// is called after every chunk (for progress and cancellation).
pub fn hash_reader(
    r: &mut dyn Read,
    mut each: impl FnMut(u64) -> io::Result<()>,
) -> io::Result<(ObjectId, u64)> {
    with_buffer(|buf| {
        let mut h = Hasher::default();
        let mut total = 0u64;
        loop {
            let n = match r.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            total += n as u64;
            each(n as u64)?;
        }
        Ok((h.finish(), total))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_known_value() {
        let id = ObjectId::of(b"abc");
        assert_eq!(
            id.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(id.to_hex().parse::<ObjectId>().unwrap(), id);
        assert!("BA78".parse::<ObjectId>().is_err());
        assert!("zz".repeat(32).parse::<ObjectId>().is_err());
        // Upper case, and one bad digit anywhere, are refused.
        assert!(id.to_hex().to_uppercase().parse::<ObjectId>().is_err());
        for i in [0, 1, 31, 62, 63] {
            let mut bad = id.to_hex().into_bytes();
            bad[i] = b'g';
            let bad = String::from_utf8(bad).unwrap();
            assert!(bad.parse::<ObjectId>().is_err(), "{bad}");
        }
        for i in 0..=255u8 {
            let one = [i; 32];
            assert_eq!(ObjectId(one).to_hex().parse::<ObjectId>().unwrap().0, one);
        }
    }

    #[test]
    fn hash_reader_matches_one_shot() {
        let data = vec![5u8; 3 * CHUNK + 17];
        let (id, n) = hash_reader(&mut &data[..], |_| Ok(())).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(id, ObjectId::of(&data));
    }
}
