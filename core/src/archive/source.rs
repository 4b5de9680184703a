//! Reading the sources for an archive: walking them with the scan's
//! exclusion rules, reading each file whole (a live SQLite database
//! through the online backup API), hashing and signing it, diffing it
//! against the base's signature, and running the dump commands.
//!
//! Invariant: a file's content is taken only if it was steady while read
//! (or copied consistently as a database); what cannot be read is a
//! warning, never a silent gap.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::manifest::{
    self, DELTA_DIR, DUMPS_DIR, DeltaInfo, DumpEntry, Entry, EntryKind, How, MANIFEST_NAME,
};
use super::sparse::{Extents, MAX_EXTENTS};
use super::{Error, io_err};
use crate::config::Profile;
use crate::object::ObjectId;
use crate::task::Progress;

/// Default rsync block size; large files get larger blocks (see `block_size`).
pub const BLOCK_SIZE: u32 = 4096;
const CRYPTO_HASH_SIZE: u32 = 8;
use crate::live::SQLITE_MAGIC;

/// Something found under a source.
pub(super) struct Item {
    pub(super) rel: String,
    pub(super) abs: PathBuf,
    pub(super) kind: EntryKind,
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) mode: u32,
    pub(super) target: Option<String>,
}

/// A file's content as archived.
pub(super) struct Content {
    pub(super) entry: Entry,
    /// Where to read the content from when it is stored whole (the file, or
    /// its consistent SQLite copy).
    pub(super) read_from: PathBuf,
    pub(super) delta: Option<Vec<u8>>,
    /// For a file stored as a sparse member: its data extents.
    pub(super) sparse: Option<Extents>,
}

fn block_size(size: u64) -> u32 {
    // Every archive's manifest repeats the signatures of the whole tree (12
    // bytes a block), while a changed file costs about one block of
    // literal bytes beyond its edits. Blocks near sqrt(256 · size) balance
    // the two when a few files in a hundred change: 4 KiB up to 64 KiB
    // files, 32 KiB for 2 MiB, 128 KiB (the cap) from 64 MiB.
    let want = ((size.saturating_mul(256)) as f64).sqrt() as u64;
    want.next_power_of_two()
        .clamp(u64::from(BLOCK_SIZE), 128 << 10) as u32
}

pub(super) fn entry_of(it: &Item) -> Entry {
    Entry {
        path: it.rel.clone(),
        kind: it.kind,
        size: it.size,
        mtime_ns: it.mtime_ns,
        mode: it.mode,
        target: it.target.clone(),
        sha256: None,
        how: None,
        delta: None,
        volume: None,
        signature: None,
        sparse: None,
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Walks the sources with the scan's exclusion rules. Paths become relative
/// to the basepath; a source outside it goes under `_outside/`.
pub(super) fn walk(
    profile: &Profile,
    target_dir: &Path,
    progress: &Progress,
) -> crate::Result<Vec<Item>> {
    let base = std::fs::canonicalize(&profile.basepath).unwrap_or(profile.basepath.clone());
    let target = std::fs::canonicalize(target_dir).unwrap_or(target_dir.to_path_buf());
    let mut out = Vec::new();
    for source in &profile.sources {
        progress.check()?;
        let root = &source.path;
        let rules = crate::scan::matcher(profile, root, &source.excludes)?;
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 {
                    return true;
                }
                // Never archive the archives being written.
                if e.path() == target {
                    return false;
                }
                !rules.matched(e.path(), e.file_type().is_dir()).is_ignore()
            });
        for entry in walker {
            progress.check()?;
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    let path = err.path().unwrap_or(root).to_path_buf();
                    progress.warn(
                        Some(&path),
                        format!("cannot be read ({err}); not in this archive"),
                    );
                    continue;
                }
            };
            let abs = entry.path().to_path_buf();
            let rel = match abs.strip_prefix(&base) {
                Ok(r) => r.to_path_buf(),
                Err(_) => Path::new("_outside").join(abs.strip_prefix("/").unwrap_or(&abs)),
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let Some(rel) = rel.to_str().map(str::to_string) else {
                progress.warn(Some(&abs), "name is not valid UTF-8; not in this archive");
                continue;
            };
            let top = rel.split('/').next().unwrap_or("");
            if rel == MANIFEST_NAME || top == DUMPS_DIR || top == DELTA_DIR {
                return Err(Error::Reserved {
                    path: abs,
                    reserved: top.to_string(),
                }
                .into());
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(err) => {
                    progress.warn(
                        Some(&abs),
                        format!("cannot be read ({err}); not in this archive"),
                    );
                    continue;
                }
            };
            let ft = entry.file_type();
            let (kind, target) = if ft.is_dir() {
                (EntryKind::Dir, None)
            } else if ft.is_symlink() {
                match std::fs::read_link(&abs).map(|t| t.to_str().map(str::to_string)) {
                    Ok(Some(t)) => (EntryKind::Symlink, Some(t)),
                    Ok(None) => {
                        progress.warn(
                            Some(&abs),
                            "link target is not valid UTF-8; not in this archive",
                        );
                        continue;
                    }
                    Err(err) => {
                        progress.warn(
                            Some(&abs),
                            format!("cannot read the link ({err}); not in this archive"),
                        );
                        continue;
                    }
                }
            } else if ft.is_file() {
                (EntryKind::File, None)
            } else {
                progress.warn(Some(&abs), "not a regular file, folder or symlink; skipped");
                continue;
            };
            progress.advance(1, 0);
            out.push(Item {
                rel,
                abs,
                kind,
                size: if kind == EntryKind::File {
                    meta.len()
                } else {
                    0
                },
                mtime_ns: mtime_ns(&meta),
                mode: meta.mode() & 0o7777,
                target,
            });
        }
    }
    Ok(out)
}

/// Reads a file whole (a live SQLite database through the backup API),
/// re-reading it if it changes meanwhile; hashes it, signs it, and diffs it
/// against the base's signature when there is one.
pub(super) fn read_content(
    it: &Item,
    index: usize,
    staging: &Path,
    base: &HashMap<&str, &Entry>,
    progress: &Progress,
) -> Result<Content, String> {
    const TRIES: usize = 3;
    for _ in 0..TRIES {
        let before =
            std::fs::symlink_metadata(&it.abs).map_err(|e| format!("cannot be read ({e})"))?;
        if !before.is_file() {
            return Err("is no longer a regular file".into());
        }
        let mut f = std::fs::File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&it.abs)
            .map_err(|e| format!("cannot be read ({e})"))?;
        match read_sparse(it, &f, base, progress)? {
            Sparse::Read(c) => return Ok(*c),
            Sparse::Changed => continue,
            Sparse::Not => {}
        }
        let mut data = Vec::with_capacity(before.len() as usize);
        f.read_to_end(&mut data)
            .map_err(|e| format!("cannot be read ({e})"))?;
        let after =
            std::fs::symlink_metadata(&it.abs).map_err(|e| format!("vanished while read ({e})"))?;
        let mut read_from = it.abs.clone();
        if data.len() >= 100 && data.starts_with(SQLITE_MAGIC) {
            let copy = staging.join(format!("sqlite-{index}"));
            match crate::live::copy_sqlite(&it.abs, &copy) {
                Ok(()) => {
                    data = std::fs::read(&copy).map_err(|e| format!("cannot read its copy ({e})"))?;
                    read_from = copy;
                }
                Err(msg) => progress.warn(
                    Some(&it.abs),
                    format!("looks like SQLite but cannot be copied as a database ({msg}); archived as plain bytes"),
                ),
            }
        } else if !(after.len() == data.len() as u64
            && mtime_ns(&after) == mtime_ns(&before)
            && after.ino() == before.ino())
        {
            continue;
        }
        progress.advance(0, data.len() as u64);
        let sha = ObjectId::of(&data).to_hex();
        let sig = fast_rsync::Signature::calculate(
            &data,
            fast_rsync::SignatureOptions {
                block_size: block_size(data.len() as u64),
                crypto_hash_size: CRYPTO_HASH_SIZE,
            },
        );
        let mut entry = Entry {
            size: data.len() as u64,
            mtime_ns: mtime_ns(&after),
            mode: after.mode() & 0o7777,
            sha256: Some(sha.clone()),
            signature: Some(manifest::to_hex(sig.serialized())),
            how: Some(How::New),
            ..entry_of(it)
        };
        let mut delta = None;
        if let Some(b) = base
            .get(it.rel.as_str())
            .filter(|b| b.kind == EntryKind::File)
        {
            entry.how = Some(How::Whole);
            if b.sha256.as_deref() == Some(sha.as_str()) {
                entry.how = Some(How::Same);
            } else if let (Some(sig_hex), Some(base_sha)) = (&b.signature, &b.sha256) {
                let sig = manifest::from_hex(sig_hex)
                    .and_then(|s| fast_rsync::Signature::deserialize(s).ok());
                if let Some(sig) = sig {
                    let mut out = Vec::new();
                    if fast_rsync::diff(&sig.index(), &data, &mut out).is_ok()
                        && (out.len() as u64) < entry.size
                    {
                        entry.delta = Some(DeltaInfo {
                            base_sha256: base_sha.clone(),
                            sha256: ObjectId::of(&out).to_hex(),
                            size: out.len() as u64,
                        });
                        delta = Some(out);
                    }
                }
            }
        }
        return Ok(Content {
            entry,
            read_from,
            delta,
            sparse: None,
        });
    }
    Err(format!("kept changing while it was read ({TRIES} tries)"))
}

/// What reading a file as sparse found.
enum Sparse {
    /// It has holes and was read through its extents.
    Read(Box<Content>),
    /// It changed while read.
    Changed,
    /// It has no holes worth a sparse member (or is a SQLite database,
    /// copied through the backup API): read it whole.
    Not,
}

/// Reads a file with holes through its data extents, holes as zeros
/// unread: hashed and signed a piece at a time, never held whole. It is
/// never stored as a delta (that would need it whole in memory): changed,
/// it is stored again as a sparse member, which costs only its data.
fn read_sparse(
    it: &Item,
    f: &std::fs::File,
    base: &HashMap<&str, &Entry>,
    progress: &Progress,
) -> Result<Sparse, String> {
    let cannot = |e: std::io::Error| format!("cannot be read ({e})");
    let before = f.metadata().map_err(cannot)?;
    let mut head = [0u8; 16];
    let n = std::os::unix::fs::FileExt::read_at(f, &mut head, 0).map_err(cannot)?;
    if head.get(..n).is_some_and(|h| h.starts_with(SQLITE_MAGIC)) {
        return Ok(Sparse::Not);
    }
    let Some(data) = crate::meta::sparse::extents(f, before.len(), before.blocks(), MAX_EXTENTS)
        .map_err(cannot)?
    else {
        return Ok(Sparse::Not);
    };
    let x = Extents {
        data,
        size: before.len(),
    };
    let stored = x.stored();
    if stored >= x.size {
        return Ok(Sparse::Not);
    }
    let (sha, sig) = hash_and_sign(&mut x.logical(f), x.size, progress).map_err(cannot)?;
    let after =
        std::fs::symlink_metadata(&it.abs).map_err(|e| format!("vanished while read ({e})"))?;
    if !(after.len() == x.size
        && mtime_ns(&after) == mtime_ns(&before)
        && after.ino() == before.ino())
    {
        return Ok(Sparse::Changed);
    }
    let mut entry = Entry {
        size: x.size,
        mtime_ns: mtime_ns(&after),
        mode: after.mode() & 0o7777,
        sha256: Some(sha.clone()),
        signature: Some(manifest::to_hex(&sig)),
        how: Some(How::New),
        sparse: Some(stored),
        ..entry_of(it)
    };
    let mut sparse = Some(x);
    if let Some(b) = base
        .get(it.rel.as_str())
        .filter(|b| b.kind == EntryKind::File)
    {
        entry.how = Some(How::Whole);
        if b.sha256.as_deref() == Some(sha.as_str()) {
            entry.how = Some(How::Same);
            entry.sparse = None;
            sparse = None;
        }
    }
    Ok(Sparse::Read(Box::new(Content {
        entry,
        read_from: it.abs.clone(),
        delta: None,
        sparse,
    })))
}

/// The SHA-256 (hex) and serialised rsync signature of what `r` yields
/// (`size` bytes), a MiB at a time. Blocks are signed independently, so
/// the signatures of whole pieces put end to end are the signature of the
/// whole; a piece of zeros (a hole) is signed once.
fn hash_and_sign(
    r: &mut dyn Read,
    size: u64,
    progress: &Progress,
) -> std::io::Result<(String, Vec<u8>)> {
    const PIECE: usize = 1 << 20;
    let options = fast_rsync::SignatureOptions {
        block_size: block_size(size),
        crypto_hash_size: CRYPTO_HASH_SIZE,
    };
    let mut sig = fast_rsync::Signature::calculate(&[], options)
        .serialized()
        .to_vec();
    let header = sig.len();
    let mut zero_sig: Option<Vec<u8>> = None;
    let mut hasher = crate::object::Hasher::default();
    let mut buf = vec![0u8; PIECE];
    loop {
        let mut n = 0;
        while n < PIECE {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        let piece = &buf[..n];
        hasher.update(piece);
        if n == PIECE && crate::meta::sparse::is_zero(piece) {
            let z = zero_sig.get_or_insert_with(|| {
                fast_rsync::Signature::calculate(piece, options).serialized()[header..].to_vec()
            });
            sig.extend_from_slice(z);
        } else {
            sig.extend_from_slice(
                &fast_rsync::Signature::calculate(piece, options).serialized()[header..],
            );
        }
        progress.advance(0, n as u64);
        if n < PIECE {
            break;
        }
    }
    Ok((hasher.finish().to_hex(), sig))
}

/// Runs the profile's dump commands; their stdout goes to the staging folder.
pub(super) fn run_dumps(
    profile: &Profile,
    staging: &Path,
    progress: &Progress,
) -> crate::Result<Vec<DumpEntry>> {
    let mut out = Vec::new();
    for d in &profile.dumps {
        progress.check()?;
        progress.notice(format!("Running dump \"{}\": {}", d.name, d.command));
        let path = staging.join(format!("dump-{}", d.name));
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        let result = std::process::Command::new("sh")
            .arg("-c")
            .arg(&d.command)
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| Error::Dump {
                name: d.name.clone(),
                command: d.command.clone(),
                message: format!("cannot start it: {e}"),
            })?;
        if !result.status.success() {
            let stderr = String::from_utf8_lossy(&result.stderr);
            let tail: String = stderr
                .trim()
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Error::Dump {
                name: d.name.clone(),
                command: d.command.clone(),
                message: format!("{}; stderr: {tail}", result.status),
            }
            .into());
        }
        let mut f = std::fs::File::open(&path).map_err(io_err(&path))?;
        let (sha, size) = crate::object::hash_reader(&mut f, |_| Ok(())).map_err(io_err(&path))?;
        out.push(DumpEntry {
            name: d.name.clone(),
            command: d.command.clone(),
            load_command: d.load_command.clone(),
            size,
            sha256: sha.to_hex(),
            volume: 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_a_piece_at_a_time_is_the_signature_of_the_whole() {
        for len in [0usize, 5000, 3 << 20, (3 << 20) + 12345] {
            let mut data = vec![0u8; len];
            for (i, b) in data.iter_mut().enumerate().skip(len / 3) {
                *b = (i % 251) as u8;
            }
            let (sha, sig) =
                hash_and_sign(&mut &data[..], len as u64, &Progress::silent()).unwrap();
            let whole = fast_rsync::Signature::calculate(
                &data,
                fast_rsync::SignatureOptions {
                    block_size: block_size(len as u64),
                    crypto_hash_size: CRYPTO_HASH_SIZE,
                },
            );
            assert_eq!(sig, whole.serialized(), "{len}");
            assert_eq!(sha, ObjectId::of(&data).to_hex());
        }
    }

    #[test]
    fn blocks_grow_with_the_square_root_of_the_file_size() {
        assert_eq!(block_size(0), 4096);
        assert_eq!(block_size(1000), 4096);
        assert_eq!(block_size(64 << 10), 4096);
        assert_eq!(block_size(2 << 20), 32 << 10);
        assert_eq!(block_size(64 << 20), 128 << 10);
        assert_eq!(block_size(10 << 30), 128 << 10);
    }
}
