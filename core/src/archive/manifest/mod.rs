//! `manifest.json`, the first member of every archive: what the archive is,
//! where it sits in its chain, and the whole tree at its point in time.
//! [`parse`] (in `parse.rs`) is the one way to read one: it checks
//! everything restore relies on.
//!
//! Invariant: a parsed manifest lists only canonical relative paths, once
//! each, none under a symlink or a file of its tree, with sizes, modes,
//! volumes and targets within bounds.

mod parse;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use parse::parse_in;
pub use parse::{Invalid, MANIFEST_CAP, MAX_NAME, MAX_PATH, normalize, parse};

/// The newest manifest format this code writes and reads. Format 2 adds
/// sparse members ([`Entry::sparse`]); an archive without one is written
/// as format 1, which every earlier Coffer reads.
pub const FORMAT_VERSION: u32 = 2;
/// The format of an archive that holds no sparse member.
pub const FORMAT_PLAIN: u32 = 1;

/// Tar path of the manifest; always the first member.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Folder under which dump outputs are stored.
pub const DUMPS_DIR: &str = "dumps";
/// Folder under which block deltas of changed files are stored.
pub const DELTA_DIR: &str = ".coffer-delta";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Full,
    Incremental,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// Where a file's content at this point comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// New since the base (or in a full archive): stored whole here.
    New,
    /// Changed since the base, stored whole here.
    Whole,
    /// Changed since the base, stored here as a block delta against it.
    Delta,
    /// Same content as in the base; nothing stored here.
    Same,
}

impl How {
    /// True when this archive holds a member for the file.
    pub fn stored_here(self) -> bool {
        self != How::Same
    }
}

/// A block delta stored for a changed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaInfo {
    /// SHA-256 of the base content the delta applies to.
    pub base_sha256: String,
    /// SHA-256 and size of the delta member itself.
    pub sha256: String,
    pub size: u64,
}

/// One file, folder or symlink of the tree at this archive's point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative tar path (`/`-separated, no `..`).
    pub path: String,
    pub kind: EntryKind,
    #[serde(default)]
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<How>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaInfo>,
    /// The volume (1-based) holding this file's member, when it has one here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u32>,
    /// rsync block signature (hex) of the content, so the next incremental
    /// can compute deltas without reading this archive's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Stored as a sparse member (PAX 1.0, as GNU tar writes it): the
    /// bytes the member takes, its map and its data (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<u64>,
}

impl Entry {
    /// Bytes its member takes in the archive when stored whole or sparse.
    pub fn stored_size(&self) -> u64 {
        self.sparse.unwrap_or(self.size)
    }

    /// Tar path of the member that holds this file here, if any.
    pub fn member_path(&self) -> Option<String> {
        match self.how? {
            How::Same => None,
            How::Delta => Some(format!("{DELTA_DIR}/{}", self.path)),
            How::New | How::Whole => Some(self.path.clone()),
        }
    }
}

/// Something present in the base and gone at this point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub path: String,
    pub kind: EntryKind,
}

/// The output of a dump command, stored under `dumps/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpEntry {
    pub name: String,
    pub command: String,
    #[serde(default)]
    pub load_command: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub volume: u32,
}

impl DumpEntry {
    pub fn member_path(&self) -> String {
        format!("{DUMPS_DIR}/{}", self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Unique id of this archive; an incremental names its base by it.
    pub id: uuid::Uuid,
    pub kind: Kind,
    pub prefix: String,
    pub sequence: u64,
    #[serde(default)]
    pub base_sequence: Option<u64>,
    #[serde(default)]
    pub base_id: Option<uuid::Uuid>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub basepath: PathBuf,
    pub sources: Vec<PathBuf>,
    /// Block size of the signatures.
    pub block_size: u32,
    /// How many volumes the archive has (1 when not split).
    pub volumes: u32,
    pub dumps: Vec<DumpEntry>,
    /// The whole tree at this point, sorted by path.
    pub entries: Vec<Entry>,
    /// For incrementals: what the base had and this point does not.
    #[serde(default)]
    pub deleted: Vec<Deleted>,
}

impl Manifest {
    /// Files stored in this archive (whole or as deltas), by volume.
    pub fn members_in_volume(&self, volume: u32) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.volume == Some(volume) && e.how.is_some_and(How::stored_here))
    }

    pub fn file_count(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .count() as u64
    }

    pub fn total_bytes(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |acc, e| acc.saturating_add(e.size))
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| match p {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&b), "0001abff");
        assert_eq!(from_hex("0001abff").unwrap(), b);
        assert!(from_hex("0g").is_none());
        assert!(from_hex("abc").is_none());
    }
}
