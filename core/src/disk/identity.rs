//! `coffer-disk.json`: who a disk is.
//!
//! The identity is read through the disk's [`Root`] (never through a
//! symlink, only if it is a regular file of at most [`IDENTITY_CAP`] bytes)
//! and parsed by one pure function, [`Identity::parse`], which refuses
//! anything Coffer would not have written: a byte-order mark, duplicate
//! keys, wrong types, a newer format, limits that make no sense.
//!
//! Invariant: an `Identity` that exists passed [`Identity::parse`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use super::root::Root;

pub const IDENTITY_FILE: &str = "coffer-disk.json";
/// The disk format this Coffer writes and reads.
pub const FORMAT: u32 = 1;
/// The format of an encrypted disk: a Coffer that does not know encryption
/// must refuse it rather than take its sealed objects for damaged ones.
pub const FORMAT_ENCRYPTED: u32 = 2;
/// The largest identity file read: real ones are a few hundred bytes.
pub const IDENTITY_CAP: u64 = 64 * 1024;
/// The smallest part size accepted: smaller would only multiply files (a
/// 300 kB file in one-byte parts took 300,003 files).
pub const MIN_PART_SIZE: u64 = 64 << 20;
/// Longest label accepted, in bytes.
pub const MAX_LABEL: usize = 256;
/// Most backup sets one disk may serve.
pub const MAX_SETS: usize = 64;

/// The contents of `coffer-disk.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub format: u32,
    pub disk_id: uuid::Uuid,
    pub label: String,
    /// Backup sets this disk belongs to.
    pub sets: Vec<uuid::Uuid>,
    pub created_at: i64,
    /// Most bytes Coffer may use on this disk.
    #[serde(default)]
    pub quota: Option<u64>,
    /// Objects above this size are stored in parts. Detected from the file
    /// system (FAT32: 4 GiB - 1) when absent.
    #[serde(default)]
    pub max_file_size: Option<u64>,
    /// How the disk is encrypted (absent on a plain disk, whose identity
    /// file stays exactly as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::crypto::Encryption>,
}

/// At most `n` characters of `s`, for messages that quote a file.
fn clip(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    let mut out: String = s.chars().take(n).collect();
    out.push('…');
    out
}

impl Identity {
    /// Parses an identity file's bytes, or says in words why they are
    /// refused. Pure: the fuzzer drives it directly.
    pub fn parse(bytes: &[u8]) -> Result<Identity, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(
                "is empty (a torn write?); re-create it with `coffer disk init PATH --label NAME --force` (the backups on the disk are kept)"
                    .into(),
            );
        }
        if bytes.starts_with(&[0xEF, 0xBB, 0xBF])
            || bytes.starts_with(&[0xFE, 0xFF])
            || bytes.starts_with(&[0xFF, 0xFE])
        {
            return Err("starts with a byte-order mark; Coffer writes plain UTF-8 JSON".into());
        }
        // The format number first, so that a newer disk says so rather than
        // failing on fields this Coffer does not know.
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            clip(
                format!("is not valid JSON ({e}); truncated or damaged?"),
                200,
            )
        })?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) || f == u64::from(FORMAT_ENCRYPTED) => {}
            Some(f) if f > u64::from(FORMAT_ENCRYPTED) => {
                return Err(format!(
                    "disk format {f} is newer than this Coffer understands ({FORMAT_ENCRYPTED}); update Coffer"
                ));
            }
            Some(f) => return Err(format!("unknown disk format {f}")),
            None => return Err("has no \"format\" number; not written by Coffer?".into()),
        }
        // Parsed again into the struct, which (unlike a JSON value) refuses
        // a key given twice.
        let id: Identity = serde_json::from_slice(bytes)
            .map_err(|e| clip(format!("is missing a field or has a wrong one ({e})"), 200))?;
        match (&id.encryption, id.format) {
            (Some(e), FORMAT_ENCRYPTED) => e.check()?,
            (None, FORMAT) => {}
            (Some(_), _) => return Err(format!("is encrypted but says disk format {}", id.format)),
            (None, _) => {
                return Err(format!(
                    "says disk format {} (encrypted) but has no \"encryption\"",
                    id.format
                ));
            }
        }
        if id.label.trim().is_empty() {
            return Err("has an empty label".into());
        }
        if id.label.len() > MAX_LABEL {
            return Err(format!(
                "has a label of {} bytes; at most {MAX_LABEL} are allowed",
                id.label.len()
            ));
        }
        if id.sets.len() > MAX_SETS {
            return Err(format!(
                "lists {} backup sets; at most {MAX_SETS} are allowed",
                id.sets.len()
            ));
        }
        if let Some(m) = id.max_file_size
            && m < MIN_PART_SIZE
        {
            return Err(format!(
                "sets max_file_size to {m} bytes; parts smaller than {} are refused",
                crate::human::bytes(MIN_PART_SIZE)
            ));
        }
        Ok(id)
    }
}

/// Reads and checks the identity at the top of `root`.
pub(super) fn read(root: &Root) -> Result<Identity, Error> {
    let path = root.show(IDENTITY_FILE);
    let bad = |reason: String| Error::BadIdentity {
        path: path.clone(),
        reason,
    };
    let bytes = match root.read_capped(Path::new(IDENTITY_FILE), IDENTITY_CAP) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotADisk {
                root: root.path().into(),
            });
        }
        Err(e) if e.raw_os_error().is_none() => return Err(bad(e.to_string())),
        Err(e) => return Err(Error::io("cannot read", &path, e)),
    };
    Identity::parse(&bytes).map_err(bad)
}

/// Reads and checks the identity file of the disk at `root`.
pub fn read_identity(root: &Path) -> Result<Identity, Error> {
    let r = Root::open(root).map_err(|e| match e.raw_os_error() {
        Some(20) => Error::NotAFolder { root: root.into() },
        Some(2) => Error::NotADisk { root: root.into() },
        _ => Error::io("cannot open", root, e),
    })?;
    read(&r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const GOOD: &str = r#"{"format":1,"disk_id":"9b2f6c1e-1d2a-4c3b-8e4f-5a6b7c8d9e0f","label":"Blue","sets":["00000000-0000-0000-0000-000000000000"],"created_at":1}"#;

    #[test]
    fn a_good_identity_parses() {
        let id = Identity::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(id.label, "Blue");
    }

    #[rstest]
    #[case::empty("", "is empty")]
    #[case::bom("\u{feff}{}", "byte-order mark")]
    #[case::duplicate_label(&GOOD.replace("\"label\":\"Blue\"", "\"label\":\"Blue\",\"label\":\"Red\""), "duplicate field")]
    #[case::deep(&"[".repeat(10_000), "not valid JSON")]
    #[case::trailing(&format!("{GOOD} x"), "not valid JSON")]
    #[case::part_zero(&GOOD.replace("\"created_at\":1", "\"created_at\":1,\"max_file_size\":0"), "max_file_size")]
    #[case::part_small(&GOOD.replace("\"created_at\":1", "\"created_at\":1,\"max_file_size\":67108863"), "max_file_size")]
    #[case::format_huge(&GOOD.replace("\"format\":1", "\"format\":1180591620717411303424"), "format")]
    #[case::long_label(&GOOD.replace("Blue", &"x".repeat(300)), "label of 300 bytes")]
    #[case::negative_quota(&GOOD.replace("\"created_at\":1", "\"created_at\":1,\"quota\":-1"), "wrong one")]
    fn bad_identities_are_refused(#[case] text: &str, #[case] expect: &str) {
        let err = Identity::parse(text.as_bytes()).unwrap_err();
        assert!(err.contains(expect), "{err}");
        assert!(err.chars().count() < 400, "{err}");
    }

    #[test]
    fn an_encrypted_identity_needs_format_2_and_sane_parameters() {
        let enc = r#""encryption":{"scheme":"xchacha20poly1305-stream-64k","kdf":{"algorithm":"argon2id","memory_kib":65536,"iterations":3,"lanes":1,"salt":"00112233445566778899aabbccddeeff"},"key_check":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
        let two = GOOD
            .replace("\"format\":1", "\"format\":2")
            .replace("\"created_at\":1", &format!("\"created_at\":1,{enc}"));
        assert!(
            Identity::parse(two.as_bytes())
                .unwrap()
                .encryption
                .is_some()
        );
        let one = two.replace("\"format\":2", "\"format\":1");
        assert!(Identity::parse(one.as_bytes()).is_err());
        let bare = GOOD.replace("\"format\":1", "\"format\":2");
        assert!(Identity::parse(bare.as_bytes()).is_err());
        let greedy = two.replace("65536", "4294967295");
        let err = Identity::parse(greedy.as_bytes()).unwrap_err();
        assert!(err.contains("memory"), "{err}");
        let extra = two.replace("\"lanes\":1", "\"lanes\":1,\"pepper\":1");
        assert!(Identity::parse(extra.as_bytes()).is_err());
    }

    #[test]
    fn a_64_mib_part_size_is_accepted() {
        let text = GOOD.replace(
            "\"created_at\":1",
            "\"created_at\":1,\"max_file_size\":67108864",
        );
        assert!(Identity::parse(text.as_bytes()).is_ok());
    }
}
