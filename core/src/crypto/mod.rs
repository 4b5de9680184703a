//! Encryption of a disk: the passphrase, the keys derived from it, keyed
//! object names, and the sealed stream every object and catalog slot of an
//! encrypted disk is stored in.
//!
//! ```text
//! passphrase ──Argon2id(salt, m, t, p)──▶ master key (32 bytes, never stored)
//! master ──HMAC-SHA-256("coffer data key v1")──▶ data key: XChaCha20-Poly1305
//! master ──HMAC-SHA-256("coffer name key v1")──▶ name key: object names
//! master ──HMAC-SHA-256("coffer key check v1")──▶ key check (in the identity)
//! ```
//!
//! An object is stored under `HMAC-SHA-256(name key, content hash)` in hex,
//! so the storage learns neither what a file holds nor which files are
//! equal; the catalog keeps the plain content hash and the name on the disk
//! is derived from it. The identity file holds the Argon2id parameters, the
//! salt and the key check, never a key: a wrong passphrase is refused at
//! once, before anything is read. Parameters are read from a disk, which is
//! hostile input, so they are capped ([`MAX_MEMORY_KIB`], [`MAX_ITERATIONS`],
//! [`MAX_LANES`]) before anything is allocated.
//!
//! The pieces: this file (parameters, keys, names) and [`stream`] (the
//! chunked AEAD format).
//!
//! Invariant: no key or passphrase is ever written anywhere; every byte an
//! encrypted disk stores is sealed, and every byte read from one is
//! authenticated before it is used.

pub mod stream;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::object::ObjectId;

pub use stream::{CHUNK, Opener, Sealer, Unsealer, plain_len, sealed_len};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The one encryption scheme this Coffer writes and reads.
pub const SCHEME: &str = "xchacha20poly1305-stream-64k";
/// The key derivation this Coffer uses.
pub const KDF: &str = "argon2id";
/// Most memory an identity may ask Argon2id for: 1 GiB.
pub const MAX_MEMORY_KIB: u32 = 1 << 20;
/// Least memory accepted: 8 MiB (less would make guessing cheap).
pub const MIN_MEMORY_KIB: u32 = 8 << 10;
/// Most passes an identity may ask for.
pub const MAX_ITERATIONS: u32 = 16;
/// Most lanes an identity may ask for.
pub const MAX_LANES: u32 = 8;
/// What a new encrypted disk uses: 64 MiB, 3 passes, one lane (about a
/// third of a second on a laptop).
pub const DEFAULT_MEMORY_KIB: u32 = 64 << 10;
pub const DEFAULT_ITERATIONS: u32 = 3;
/// Longest passphrase accepted, in bytes.
pub const MAX_PASSPHRASE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the passphrase is longer than {MAX_PASSPHRASE} bytes")]
    LongPassphrase,
    #[error("the key derivation failed: {0}")]
    Kdf(String),
    #[error("cannot get random bytes from the system: {0}")]
    Random(String),
}

/// Argon2id's parameters, as the identity file holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    pub algorithm: String,
    /// Memory, in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
    /// The salt, in hex (16 to 64 bytes).
    pub salt: String,
}

/// The `encryption` section of an encrypted disk's identity file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    pub scheme: String,
    pub kdf: KdfParams,
    /// HMAC of a fixed text under the master key, in hex: tells a wrong
    /// passphrase from a right one without decrypting anything.
    pub key_check: String,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Encryption {
    /// Checks what a disk says about its encryption, or says in words why
    /// it is refused. Pure: called by `Identity::parse`.
    pub fn check(&self) -> Result<(), String> {
        if self.scheme != SCHEME {
            return Err(format!(
                "uses the encryption scheme \"{}\", which this Coffer does not know",
                crate::human::escape(&self.scheme)
            ));
        }
        self.kdf.check()?;
        match unhex(&self.key_check) {
            Some(c) if c.len() == 32 => Ok(()),
            _ => Err("has a key check that is not 32 bytes of hex".into()),
        }
    }
}

impl KdfParams {
    /// Checks the parameters against the caps, before anything is
    /// allocated for them.
    pub fn check(&self) -> Result<(), String> {
        let k = self;
        if k.algorithm != KDF {
            return Err(format!(
                "derives its key with \"{}\"; this Coffer knows only {KDF}",
                crate::human::escape(&k.algorithm)
            ));
        }
        if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&k.memory_kib) {
            return Err(format!(
                "asks {KDF} for {} KiB of memory; {MIN_MEMORY_KIB} to {MAX_MEMORY_KIB} are allowed",
                k.memory_kib
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&k.iterations) {
            return Err(format!(
                "asks {KDF} for {} passes; 1 to {MAX_ITERATIONS} are allowed",
                k.iterations
            ));
        }
        if !(1..=MAX_LANES).contains(&k.lanes) {
            return Err(format!(
                "asks {KDF} for {} lanes; 1 to {MAX_LANES} are allowed",
                k.lanes
            ));
        }
        match unhex(&k.salt) {
            Some(s) if (16..=64).contains(&s.len()) => Ok(()),
            _ => Err("has a salt that is not 16 to 64 bytes of hex".into()),
        }
    }
}

impl Encryption {
    /// A fresh encryption for a new disk with `passphrase` (a new salt),
    /// with the keys it gives. `memory_kib` and `iterations` default to
    /// [`DEFAULT_MEMORY_KIB`] and [`DEFAULT_ITERATIONS`].
    pub fn create(
        passphrase: &[u8],
        memory_kib: Option<u32>,
        iterations: Option<u32>,
    ) -> Result<(Encryption, Keys), Error> {
        let mut salt = [0u8; 16];
        random(&mut salt)?;
        let mut e = Encryption {
            scheme: SCHEME.into(),
            kdf: KdfParams {
                algorithm: KDF.into(),
                memory_kib: memory_kib
                    .unwrap_or(DEFAULT_MEMORY_KIB)
                    .clamp(MIN_MEMORY_KIB, MAX_MEMORY_KIB),
                iterations: iterations
                    .unwrap_or(DEFAULT_ITERATIONS)
                    .clamp(1, MAX_ITERATIONS),
                lanes: 1,
                salt: hex(&salt),
            },
            key_check: String::new(),
        };
        let master = e.master(passphrase)?;
        e.key_check = hex(&subkey(&master, b"coffer key check v1"));
        Ok((e, Keys::from_master(&master)))
    }

    /// The keys for `passphrase`, or `None` when the key check says it is
    /// not this disk's passphrase.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Option<Keys>, Error> {
        let master = self.master(passphrase)?;
        let expected = unhex(&self.key_check).unwrap_or_default();
        let mut mac = mac(&master[..]);
        mac.update(b"coffer key check v1");
        // A constant-time comparison: the check says nothing of how close a
        // guess came.
        if mac.verify_slice(&expected).is_err() {
            return Ok(None);
        }
        Ok(Some(Keys::from_master(&master)))
    }

    /// Argon2id of the passphrase under this disk's salt and parameters.
    fn master(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        if passphrase.is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        if passphrase.len() > MAX_PASSPHRASE {
            return Err(Error::LongPassphrase);
        }
        // The caps again: a caller may hand in an Encryption that was never
        // parsed from a file.
        self.kdf.check().map_err(Error::Kdf)?;
        let k = &self.kdf;
        let salt = unhex(&k.salt).unwrap_or_default();
        let params = argon2::Params::new(k.memory_kib, k.iterations, k.lanes, Some(32))
            .map_err(|e| Error::Kdf(e.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, &salt, &mut out[..])
            .map_err(|e| Error::Kdf(e.to_string()))?;
        Ok(out)
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// HMAC-SHA-256 of `label` under `master`.
fn subkey(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut m = mac(master);
    m.update(label);
    m.finalize().into_bytes().into()
}

/// Fills `buf` from the system's random source.
pub fn random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

/// The keys of an unlocked disk. Wiped from memory when dropped.
pub struct Keys {
    data: [u8; 32],
    names: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.data.zeroize();
        self.names.zeroize();
    }
}

impl Keys {
    fn from_master(master: &[u8; 32]) -> Keys {
        Keys {
            data: subkey(master, b"coffer data key v1"),
            names: subkey(master, b"coffer name key v1"),
        }
    }

    /// The name an object with content `hash` has on the disk.
    pub fn name(&self, hash: &ObjectId) -> ObjectId {
        let mut m = mac(&self.names);
        m.update(&hash.0);
        ObjectId(m.finalize().into_bytes().into())
    }

    /// A sealer for one new stream (an object, a catalog slot) bound to
    /// `context`.
    pub fn sealer(&self, context: &[u8]) -> Result<Sealer, Error> {
        Sealer::new(&self.data, context)
    }

    /// An unsealer for a stream bound to `context`.
    pub fn unsealer(&self, context: &[u8]) -> Unsealer {
        Unsealer::new(&self.data, context)
    }

    /// Reads the stream `inner` bound to `context` as plain bytes;
    /// `what` names it in errors.
    pub fn opener<R: std::io::Read>(
        &self,
        inner: R,
        context: &[u8],
        what: std::path::PathBuf,
    ) -> Opener<R> {
        Opener::new(self.unsealer(context), inner, what)
    }
}

/// What every object's stream is bound to.
pub const OBJECT_CONTEXT: &[u8] = b"coffer object";

/// What a catalog slot's stream is bound to: its generation, so a slot
/// cannot be passed off under another generation's sidecar.
pub fn slot_context(generation: u64) -> Vec<u8> {
    format!("coffer catalog slot {generation}").into_bytes()
}

#[cfg(test)]
mod tests;
