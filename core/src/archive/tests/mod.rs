//! Hostile archives built by hand (raw tar headers where the tar crate's
//! builder refuses, gzip by flate2): each must be refused by `verify` and
//! by `restore` with an error naming the archive and the member, leaving
//! the destination exactly as it was (no new files, folders or temp files;
//! pre-existing files untouched) and a sentinel folder outside it unchanged.
//! `members` holds the cases of the member reader, `deltas` those of deltas
//! and special bits, `manifest` those of the manifest parser.

mod deltas;
mod manifest;
mod members;
mod sparse;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::manifest::{Entry, EntryKind, How, Kind, Manifest};
use super::{RestoreOptions, restore, verify};
use crate::ObjectId;
use crate::task::Progress;

pub(super) fn sha(data: &[u8]) -> String {
    ObjectId::of(data).to_hex()
}

pub(super) fn manifest(entries: Vec<Entry>) -> Manifest {
    Manifest {
        format: 1,
        id: uuid::Uuid::from_u128(1),
        kind: Kind::Full,
        prefix: "t".into(),
        sequence: 1,
        base_sequence: None,
        base_id: None,
        created_at: 0,
        basepath: "/".into(),
        sources: Vec::new(),
        block_size: 4096,
        volumes: 1,
        dumps: Vec::new(),
        entries,
        deleted: Vec::new(),
    }
}

pub(super) fn file(path: &str, data: &[u8]) -> Entry {
    Entry {
        path: path.into(),
        kind: EntryKind::File,
        size: data.len() as u64,
        mtime_ns: 1_600_000_000_000_000_000,
        mode: 0o644,
        target: None,
        sha256: Some(sha(data)),
        how: Some(How::New),
        delta: None,
        volume: Some(1),
        signature: None,
        sparse: None,
    }
}

pub(super) fn dir(path: &str) -> Entry {
    Entry {
        kind: EntryKind::Dir,
        size: 0,
        mode: 0o755,
        sha256: None,
        how: None,
        volume: None,
        ..file(path, b"")
    }
}

pub(super) fn link(path: &str, target: &str) -> Entry {
    Entry {
        kind: EntryKind::Symlink,
        target: Some(target.into()),
        mode: 0o777,
        ..dir(path)
    }
}

/// A member written by hand: any name, type, link and header size.
pub(super) struct Raw {
    pub(super) name: Vec<u8>,
    pub(super) ty: tar::EntryType,
    pub(super) data: Vec<u8>,
    pub(super) link: Vec<u8>,
    pub(super) size: Option<u64>,
}

pub(super) fn raw(name: &str, ty: tar::EntryType, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        ty,
        data: data.to_vec(),
        link: Vec::new(),
        size: None,
    }
}

impl Raw {
    pub(super) fn to(mut self, target: &str) -> Raw {
        self.link = target.as_bytes().to_vec();
        self
    }
    /// A header that lies about the size of the data after it.
    pub(super) fn says(mut self, size: u64) -> Raw {
        self.size = Some(size);
        self
    }
}

pub(super) fn tar_bytes(members: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in members {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..r.name.len()].copy_from_slice(&r.name);
        h.as_old_mut().linkname[..r.link.len()].copy_from_slice(&r.link);
        h.set_entry_type(r.ty);
        h.set_size(r.size.unwrap_or(r.data.len() as u64));
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&r.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out
}

pub(super) fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A whole archive: the manifest, `members`, the end-of-archive blocks.
pub(super) fn archive_bytes(m: &Manifest, members: &[Raw]) -> Vec<u8> {
    let bytes = serde_json::to_vec_pretty(m).unwrap();
    let mut all = vec![raw("manifest.json", tar::EntryType::Regular, &bytes)];
    all.extend(members.iter().map(|r| Raw {
        name: r.name.clone(),
        ty: r.ty,
        data: r.data.clone(),
        link: r.link.clone(),
        size: r.size,
    }));
    let mut t = tar_bytes(&all);
    t.resize(t.len() + 1024, 0);
    gz(&t)
}

/// Kind, mode, size, mtime and content of everything under `root`.
pub(super) fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let what = if m.is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
            // The root's own mtime moves with the staging folder made and
            // removed in it; what it holds must not.
            if p == root {
                format!("dir {:o}", m.mode())
            } else {
                format!("dir {:o} {}", m.mode(), m.mtime())
            }
        } else {
            format!(
                "file {:o} {} {}",
                m.mode(),
                m.mtime(),
                sha(&std::fs::read(&p).unwrap())
            )
        };
        out.insert(rel, what);
    }
    out
}

/// A folder of archives, a destination holding files of its own, and a
/// sentinel folder beside them.
pub(super) struct World {
    pub(super) _t: tempfile::TempDir,
    pub(super) nas: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) sentinel: PathBuf,
    pub(super) before: (BTreeMap<String, String>, BTreeMap<String, String>),
}

pub(super) fn world() -> World {
    let t = tempfile::tempdir().unwrap();
    let nas = t.path().join("nas");
    let dest = t.path().join("dest");
    let sentinel = t.path().join("sentinel");
    for d in [&nas, &dest, &sentinel, &dest.join("sub")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(dest.join("keep.txt"), b"mine").unwrap();
    std::fs::write(dest.join("sub/old.txt"), b"older").unwrap();
    std::fs::write(sentinel.join("passwd"), b"root:x:0:0").unwrap();
    let before = (tree(&dest), tree(&sentinel));
    World {
        _t: t,
        nas,
        dest,
        sentinel,
        before,
    }
}

impl World {
    pub(super) fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.nas.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub(super) fn restore(
        &self,
        at: u64,
        opts: RestoreOptions,
    ) -> crate::Result<super::RestoreReport> {
        let opts = RestoreOptions {
            at,
            prefix: Some("t".into()),
            ..opts
        };
        restore(&self.nas, &self.dest, &opts, &Progress::silent())
    }

    pub(super) fn unchanged(&self, case: &str) {
        assert_eq!(
            tree(&self.dest),
            self.before.0,
            "{case}: the destination changed"
        );
        assert_eq!(
            tree(&self.sentinel),
            self.before.1,
            "{case}: the sentinel changed"
        );
    }

    /// Verify (of `file`), restore of archive `at` into a fresh folder, and
    /// restore with `--overwrite` over the destination's own files all
    /// refuse, with errors naming `file` and holding each of `want`; the
    /// destination and the sentinel are as they were, the fresh folder gone.
    pub(super) fn refused(&self, case: &str, file: &Path, at: u64, want: &[&str]) {
        let name = file.file_name().unwrap().to_str().unwrap();
        let fresh = self.dest.with_file_name("fresh");
        let opts = |overwrite| RestoreOptions {
            at,
            prefix: Some("t".into()),
            overwrite,
            ..RestoreOptions::default()
        };
        let errs = [
            verify(file, &Progress::silent()).map(|_| ()),
            restore(&self.nas, &fresh, &opts(false), &Progress::silent()).map(|_| ()),
            restore(&self.nas, &self.dest, &opts(true), &Progress::silent()).map(|_| ()),
        ];
        for (what, r) in ["verify", "restore", "restore --overwrite"]
            .iter()
            .zip(errs)
        {
            let err = match r {
                Err(e) => e.to_string(),
                Ok(()) => panic!("{case}: {what} accepted it"),
            };
            assert!(err.contains(name), "{case}: {what}: {err}");
            for w in want {
                assert!(err.contains(w), "{case}: {what} should say {w:?}: {err}");
            }
        }
        assert!(
            std::fs::symlink_metadata(&fresh).is_err(),
            "{case}: the fresh folder is left"
        );
        self.unchanged(case);
    }
}

pub(super) fn ok_member() -> Raw {
    raw("ok.txt", tar::EntryType::Regular, b"ok")
}
