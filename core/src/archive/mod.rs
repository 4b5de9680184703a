//! Portable `tar.gz` archives: full and incremental (rsync block deltas),
//! split into volumes, with dump command outputs and a manifest.
//!
//! Every archive (and every volume of it) starts with `manifest.json`, which
//! describes the whole tree at the archive's point in time: each entry's
//! path, kind, size, mtime, mode, link target, SHA-256 and rsync block
//! signature, and where its content lies (stored whole here, as a delta
//! against the base, or unchanged since the base). An incremental is read
//! together with its chain of bases, found by sequence number and checked by
//! id. Names: `PREFIX-N.tar.gz` (full), `PREFIX-B-to-N.tar.gz`
//! (incremental), with `.volNNN` before `.tar.gz` when split.
//!
//! Archives are hostile input when read. The pieces: `open` (opening an
//! archive file, bounding what it decompresses to), `manifest` (the format
//! and [`manifest::parse`], which checks it whole), `entries` (raw tar
//! entries, extension headers under a cap, names normalised), `member` (the
//! member reader every read goes through, fuzzable as
//! [`member::check_stream`]), `pipe` (hashing on a second core), `delta`
//! (block deltas applied as they stream, [`delta::apply`]), `sparse`
//! (files with holes as PAX 1.0 sparse members, the map read as hostile
//! input), `verify`,
//! `restore` (through the destination writer of `crate::restore`) and
//! `stage` (what a restore reads before anything takes its name); for
//! writing, `write`, `source` (reading the sources) and `gz`.
//!
//! Invariant: an archive appears under its final name only after it was read
//! back to the end and every member matched the manifest; extraction never
//! writes outside the destination, and nothing at all before every volume
//! it needs was read and checked.

pub mod delta;
mod entries;
pub mod gz;
pub mod manifest;
pub mod member;
mod open;
mod pipe;
mod restore;
mod source;
mod sparse;
mod stage;
mod verify;
mod write;

use std::path::{Path, PathBuf};

pub use manifest::{Entry, EntryKind, How, Kind, Manifest};
pub use restore::{
    ArchivePlan, RestoreOptions, RestoreReport, RestoredDump, plan as plan_restore, restore,
};
pub use verify::{VerifyReport, read_manifest, verify};
pub use write::{Mode, Options, Report, create};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path_}: {source}", path_ = crate::human::path(.path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path_} is not a Coffer archive: {message}", path_ = crate::human::path(.path))]
    NotAnArchive { path: PathBuf, message: String },
    #[error("{path_} was written by a newer Coffer (format {found}); update Coffer to read it", path_ = crate::human::path(.path))]
    NewerFormat { path: PathBuf, found: u32 },
    #[error("{path_} is damaged: {message}{}", affected(files), path_ = crate::human::path(.path))]
    Corrupt {
        path: PathBuf,
        message: String,
        files: Vec<String>,
    },
    #[error("{path_} is damaged: its manifest.json differs from the archive's manifest", path_ = crate::human::path(.path))]
    ManifestDiffers { path: PathBuf },
    #[error("{path_} holds an unsafe member `{member}`: {reason}; nothing was extracted", path_ = crate::human::path(.path))]
    Unsafe {
        path: PathBuf,
        member: String,
        reason: String,
    },
    #[error("{} already exist(s) in the destination{}; pass --overwrite to replace them", .paths.len(), list(paths))]
    Exists { paths: Vec<PathBuf> },
    #[error(
        "{dest_} has {} free, and the restore needs {}; nothing was written",
        crate::human::bytes(*free),
        crate::human::bytes(*needed), dest_ = crate::human::path(.dest))]
    NoRoom {
        dest: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error("nothing to archive: the sources hold no files or folders and there are no dumps")]
    NothingToArchive,
    #[error("nothing changed since archive {base_}; no incremental written", base_ = crate::human::path(.base))]
    NothingChanged { base: PathBuf },
    #[error("no archive with the prefix \"{prefix}\" in {dir_}{}; write a full one first (coffer archive full)", if *.since { " older than the window" } else { "" }, dir_ = crate::human::path(.dir))]
    NoBase {
        dir: PathBuf,
        prefix: String,
        since: bool,
    },
    #[error("no archive number {sequence} in {dir_}", dir_ = crate::human::path(.dir))]
    NotFound { dir: PathBuf, sequence: u64 },
    #[error("volume {path_} is missing{}", affected(files), path_ = crate::human::path(.path))]
    MissingVolume { path: PathBuf, files: Vec<String> },
    #[error(
        "{path_} is an incremental against archive {sequence} {expected}, but the archive found under that number is {found}; refused", path_ = crate::human::path(.path))]
    WrongBase {
        path: PathBuf,
        sequence: u64,
        expected: uuid::Uuid,
        found: uuid::Uuid,
    },
    #[error("{path_}: the delta for {file} does not reproduce its content: {message}", path_ = crate::human::path(.path))]
    Delta {
        path: PathBuf,
        file: String,
        message: String,
    },
    #[error("{path_} changed while it was archived; run the archive again", path_ = crate::human::path(.path))]
    Changed { path: PathBuf },
    #[error("{path_} is not in archive {sequence}", path_ = crate::human::escape(.path))]
    NotInArchive { path: String, sequence: u64 },
    #[error("dump \"{name}\" (`{command}`) failed: {message}")]
    Dump {
        name: String,
        command: String,
        message: String,
    },
    #[error("cannot copy the SQLite database {path_}: {message}", path_ = crate::human::path(.path))]
    Sqlite { path: PathBuf, message: String },
    #[error(
        "{path_} lies under a name reserved inside archives ({reserved}); exclude it or rename it", path_ = crate::human::path(.path))]
    Reserved { path: PathBuf, reserved: String },
    #[error("bad archive prefix \"{prefix}\": use letters, digits, `.`, `_` or `-`")]
    BadPrefix { prefix: String },
}

fn affected(files: &[String]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = files.iter().take(10).map(String::as_str).collect();
    let more = files.len().saturating_sub(shown.len());
    format!(
        "; affected: {}{}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| p.display().to_string())
        .collect();
    format!(" ({})", shown.join(", "))
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The parts of an archive file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    pub prefix: String,
    pub base: Option<u64>,
    pub sequence: u64,
    pub volume: Option<u32>,
}

impl Name {
    pub fn file_name(&self) -> String {
        let mut s = match self.base {
            Some(b) => format!("{}-{b}-to-{}", self.prefix, self.sequence),
            None => format!("{}-{}", self.prefix, self.sequence),
        };
        if let Some(v) = self.volume {
            s.push_str(&format!(".vol{v:03}"));
        }
        s.push_str(".tar.gz");
        s
    }

    /// Parses `PREFIX-N[.volNNN].tar.gz` or `PREFIX-B-to-N[.volNNN].tar.gz`.
    pub fn parse(file_name: &str) -> Option<Name> {
        let stem = file_name.strip_suffix(".tar.gz")?;
        let (stem, volume) = match stem.rsplit_once(".vol") {
            Some((s, v)) if v.len() >= 3 && v.bytes().all(|c| c.is_ascii_digit()) => {
                (s, Some(v.parse().ok()?))
            }
            _ => (stem, None),
        };
        let (rest, n) = stem.rsplit_once('-')?;
        let sequence: u64 = digits(n)?;
        let (prefix, base) = match rest.strip_suffix("-to").and_then(|r| r.rsplit_once('-')) {
            Some((p, b)) if digits(b).is_some() => (p, digits(b)),
            _ => (rest, None),
        };
        if prefix.is_empty() || prefix.starts_with('.') {
            return None;
        }
        Some(Name {
            prefix: prefix.to_string(),
            base,
            sequence,
            volume,
        })
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    let ok = !prefix.is_empty()
        && !prefix.starts_with(['.', '-'])
        && prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadPrefix {
            prefix: prefix.to_string(),
        })
    }
}

/// One archive in a folder: all its volume files.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub prefix: String,
    pub sequence: u64,
    pub base: Option<u64>,
    /// Volume files in order (one when not split). A gap means a lost volume.
    pub files: Vec<PathBuf>,
    pub split: bool,
}

impl Found {
    /// The file that carries the manifest first read (volume 1 or the only file).
    pub fn first(&self) -> &Path {
        &self.files[0]
    }

    /// Bytes its files take (volumes that cannot be read count nothing).
    pub fn size_on_disk(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The file of volume `v` (1-based), as it should be named.
    pub fn volume_path(&self, dir: &Path, v: u32) -> PathBuf {
        if !self.split {
            return self.files[0].clone();
        }
        dir.join(
            Name {
                prefix: self.prefix.clone(),
                base: self.base,
                sequence: self.sequence,
                volume: Some(v),
            }
            .file_name(),
        )
    }
}

/// The archives in `dir` (of one prefix, or all), by prefix and sequence.
pub fn find(dir: &Path, prefix: Option<&str>) -> Result<Vec<Found>, Error> {
    let rd = std::fs::read_dir(dir).map_err(io_err(dir))?;
    let mut out: Vec<Found> = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        let Some(name) = e.file_name().to_str().and_then(Name::parse) else {
            continue;
        };
        if prefix.is_some_and(|p| p != name.prefix) {
            continue;
        }
        let path = e.path();
        match out
            .iter_mut()
            .find(|f| f.prefix == name.prefix && f.sequence == name.sequence)
        {
            Some(f) => {
                f.files.push(path);
                f.split |= name.volume.is_some();
            }
            None => out.push(Found {
                prefix: name.prefix,
                sequence: name.sequence,
                base: name.base,
                files: vec![path],
                split: name.volume.is_some(),
            }),
        }
    }
    for f in &mut out {
        f.files.sort();
    }
    out.sort_by(|a, b| (&a.prefix, a.sequence).cmp(&(&b.prefix, b.sequence)));
    Ok(out)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (s, base, seq, vol) in [
            ("home-1.tar.gz", None, 1, None),
            ("home-1-to-3.tar.gz", Some(1), 3, None),
            ("my-home-12.vol007.tar.gz", None, 12, Some(7)),
            ("a-2-to-5.vol001.tar.gz", Some(2), 5, Some(1)),
        ] {
            let n = Name::parse(s).unwrap();
            assert_eq!((n.base, n.sequence, n.volume), (base, seq, vol), "{s}");
            assert_eq!(n.file_name(), s);
        }
        assert_eq!(Name::parse("my-home-12.tar.gz").unwrap().prefix, "my-home");
        for bad in [
            "home.tar.gz",
            "home-x.tar.gz",
            "-1.tar.gz",
            ".home-1.tar.gz",
            "home-1.tar",
        ] {
            assert!(Name::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("home").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
