//! Writing an archive: walk, hash and sign, delta against the base, run the
//! dumps, then write each volume to a temp name, read it back, and only then
//! give it its final name.

use std::collections::HashMap;
use std::io::{BufWriter, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::gz::ParGzWriter;
use super::manifest::{
    self, DELTA_DIR, DUMPS_DIR, Deleted, DeltaInfo, DumpEntry, Entry, EntryKind, FORMAT_VERSION,
    How, Kind, MANIFEST_NAME, Manifest,
};
use super::{Error, Found, Name, io_err};
use crate::config::Profile;
use crate::object::{Hasher, ObjectId};
use crate::task::{Phase, Progress};

/// Default rsync block size; large files get larger blocks (see `block_size`).
pub const BLOCK_SIZE: u32 = 4096;
const CRYPTO_HASH_SIZE: u32 = 8;
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    /// Against the newest archive, or with `since` (Unix seconds), the newest
    /// archive created at or before that time.
    Incremental {
        since: Option<i64>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// File name prefix; the profile's name when absent.
    pub prefix: Option<String>,
    /// Split into volumes holding at most about this many bytes of content.
    pub volume_size: Option<u64>,
}

/// What an archive run wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub kind: Kind,
    pub sequence: u64,
    pub base_sequence: Option<u64>,
    pub files: Vec<PathBuf>,
    pub entries: u64,
    pub new_files: u64,
    pub changed_files: u64,
    pub delta_files: u64,
    pub deleted: u64,
    pub dumps: u64,
    /// Bytes of file content the tree holds, and bytes stored in the archive.
    pub tree_bytes: u64,
    pub stored_bytes: u64,
    pub compressed_bytes: u64,
}

/// Something found under a source.
struct Item {
    rel: String,
    abs: PathBuf,
    kind: EntryKind,
    size: u64,
    mtime_ns: i64,
    mode: u32,
    target: Option<String>,
}

/// A file's content as archived.
struct Content {
    entry: Entry,
    /// Where to read the content from when it is stored whole (the file, or
    /// its consistent SQLite copy).
    read_from: PathBuf,
    delta: Option<Vec<u8>>,
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

/// Writes an archive of `profile`'s sources into `dir`.
pub fn create(
    profile: &Profile,
    dir: &Path,
    mode: Mode,
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Report> {
    if profile.sources.is_empty() {
        return Err(crate::scan::Error::NoSources.into());
    }
    let prefix = opts.prefix.clone().unwrap_or_else(|| profile.name.clone());
    super::check_prefix(&prefix)?;
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    if !meta.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other("not a folder"),
        }
        .into());
    }
    let existing = super::find(dir, Some(&prefix))?;
    let sequence = existing.iter().map(|f| f.sequence).max().unwrap_or(0) + 1;
    let base = match mode {
        Mode::Full => None,
        Mode::Incremental { since } => Some(pick_base(dir, &prefix, &existing, since)?),
    };

    progress.phase(Phase::Scanning, 0, 0);
    let items = walk(profile, dir, progress)?;
    let base_by_path: HashMap<&str, &Entry> = base
        .as_ref()
        .map(|(_, m)| m.entries.iter().map(|e| (e.path.as_str(), e)).collect())
        .unwrap_or_default();

    // Files whose content must be read: all of them in a full archive; in an
    // incremental, those whose size or mtime differ from the base.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{prefix}-{sequence}.staging-"))
        .tempdir_in(dir)
        .map_err(io_err(dir))?;
    let to_read: Vec<(usize, &Item)> = items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.kind == EntryKind::File)
        .filter(|(_, it)| {
            !base_by_path.get(it.rel.as_str()).is_some_and(|b| {
                b.kind == EntryKind::File
                    && b.size == it.size
                    && b.mtime_ns == it.mtime_ns
                    && b.signature.is_some()
            })
        })
        .collect();
    let read_bytes: u64 = to_read.iter().map(|(_, it)| it.size).sum();
    progress.phase(Phase::Hashing, to_read.len() as u64, read_bytes);
    let read: Vec<(usize, Result<Content, String>)> = to_read
        .into_par_iter()
        // One file per task: sizes vary wildly, so every one is up for stealing.
        .with_max_len(1)
        .map(|(i, it)| {
            progress.current(&it.abs);
            let r = if progress.is_cancelled() {
                Err("cancelled".into())
            } else {
                read_content(it, i, staging.path(), &base_by_path, progress)
            };
            progress.advance(1, 0);
            (i, r)
        })
        .collect();
    progress.check()?;
    let mut contents: HashMap<usize, Content> = HashMap::new();
    let mut skipped: Vec<usize> = Vec::new();
    for (i, r) in read {
        match r {
            Ok(c) => {
                contents.insert(i, c);
            }
            Err(msg) => {
                progress.warn(Some(&items[i].abs), format!("{msg}; not in this archive"));
                skipped.push(i);
            }
        }
    }

    // The tree at this point, in path order.
    let mut entries: Vec<Entry> = Vec::new();
    let mut sources: HashMap<String, PathBuf> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if skipped.contains(&i) {
            continue;
        }
        let entry = match contents.remove(&i) {
            Some(c) => {
                sources.insert(it.rel.clone(), c.read_from);
                let mut e = c.entry;
                if let Some(d) = c.delta {
                    let path = staging.path().join(format!("delta-{i}"));
                    std::fs::write(&path, &d).map_err(io_err(&path))?;
                    sources.insert(format!("{DELTA_DIR}/{}", it.rel), path);
                    e.how = Some(How::Delta);
                }
                e
            }
            None if it.kind == EntryKind::File => {
                // Unchanged since the base: carry its hash and signature.
                let b = base_by_path
                    .get(it.rel.as_str())
                    .ok_or_else(|| crate::Error::Panic(format!("no base entry for {}", it.rel)))?;
                Entry {
                    how: Some(How::Same),
                    sha256: b.sha256.clone(),
                    signature: b.signature.clone(),
                    ..entry_of(it)
                }
            }
            None => entry_of(it),
        };
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    let deleted: Vec<Deleted> = match &base {
        Some((_, m)) => {
            let now: std::collections::HashSet<&str> =
                entries.iter().map(|e| e.path.as_str()).collect();
            m.entries
                .iter()
                .filter(|e| !now.contains(e.path.as_str()))
                .map(|e| Deleted {
                    path: e.path.clone(),
                    kind: e.kind,
                })
                .collect()
        }
        None => Vec::new(),
    };

    let mut dumps = run_dumps(profile, staging.path(), progress)?;
    for d in &dumps {
        sources.insert(
            d.member_path(),
            staging.path().join(format!("dump-{}", d.name)),
        );
    }

    // Refuse an archive with nothing to hold.
    let changed = entries.iter().any(|e| {
        base_by_path.get(e.path.as_str()).is_none_or(|b| {
            e.how.is_some_and(How::stored_here)
                || b.kind != e.kind
                || b.mode != e.mode
                || b.mtime_ns != e.mtime_ns
                || b.target != e.target
        })
    });
    match &base {
        None if entries.is_empty() && dumps.is_empty() => {
            return Err(Error::NothingToArchive.into());
        }
        Some((found, _)) if !changed && deleted.is_empty() && dumps.is_empty() => {
            return Err(Error::NothingChanged {
                base: found.first().to_path_buf(),
            }
            .into());
        }
        _ => {}
    }

    // Volumes: each stored member goes where it fits; folders and links in
    // the first.
    let mut volume = 1u32;
    let mut used = 0u64;
    let limit = opts.volume_size.unwrap_or(u64::MAX);
    let mut place = |size: u64| -> u32 {
        let cost = 1536 + size.div_ceil(512) * 512;
        if used > 0 && used.saturating_add(cost) > limit {
            volume += 1;
            used = 0;
        }
        used = used.saturating_add(cost);
        volume
    };
    for e in entries.iter_mut() {
        match e.how {
            Some(How::Delta) => e.volume = Some(place(e.delta.as_ref().map_or(0, |d| d.size))),
            Some(How::New | How::Whole) => e.volume = Some(place(e.size)),
            _ => {}
        }
    }
    for d in dumps.iter_mut() {
        d.volume = place(d.size);
    }
    let volumes = volume;

    let manifest = Manifest {
        format: FORMAT_VERSION,
        id: uuid::Uuid::new_v4(),
        kind: if base.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        },
        prefix: prefix.clone(),
        sequence,
        base_sequence: base.as_ref().map(|(_, m)| m.sequence),
        base_id: base.as_ref().map(|(_, m)| m.id),
        created_at: crate::now(),
        basepath: profile.basepath.clone(),
        sources: profile.sources.iter().map(|s| s.path.clone()).collect(),
        block_size: BLOCK_SIZE,
        volumes,
        dumps,
        entries,
        deleted,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| crate::Error::Panic(format!("manifest: {e}")))?;

    let stored_bytes: u64 = manifest
        .entries
        .iter()
        .map(|e| match e.how {
            Some(How::New | How::Whole) => e.size,
            Some(How::Delta) => e.delta.as_ref().map_or(0, |d| d.size),
            _ => 0,
        })
        .sum::<u64>()
        + manifest.dumps.iter().map(|d| d.size).sum::<u64>();
    progress.phase(Phase::Archiving, 0, stored_bytes);
    let mut temps = Vec::new();
    let mut compressed = 0u64;
    for v in 1..=volumes {
        let name = Name {
            prefix: prefix.clone(),
            base: manifest.base_sequence,
            sequence,
            volume: (volumes > 1).then_some(v),
        }
        .file_name();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        compressed += write_volume(&tmp, &manifest, &manifest_bytes, v, &sources, progress)?;
        temps.push((tmp, dir.join(name)));
    }
    drop(staging);

    progress.phase(Phase::Verifying, 0, 0);
    for (v, (tmp, final_path)) in temps.iter().enumerate() {
        super::read::verify_volume(
            tmp.path(),
            final_path,
            &manifest_bytes,
            v as u32 + 1,
            progress,
        )?;
    }
    let mut files = Vec::new();
    for (tmp, final_path) in temps {
        tmp.persist_noclobber(&final_path).map_err(|e| Error::Io {
            path: final_path.clone(),
            source: e.error,
        })?;
        files.push(final_path);
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;

    let count = |h: How| manifest.entries.iter().filter(|e| e.how == Some(h)).count() as u64;
    Ok(Report {
        kind: manifest.kind,
        sequence,
        base_sequence: manifest.base_sequence,
        files,
        entries: manifest.entries.len() as u64,
        new_files: count(How::New),
        changed_files: count(How::Whole) + count(How::Delta),
        delta_files: count(How::Delta),
        deleted: manifest.deleted.len() as u64,
        dumps: manifest.dumps.len() as u64,
        tree_bytes: manifest.total_bytes(),
        stored_bytes,
        compressed_bytes: compressed,
    })
}

/// The base of an incremental: the newest archive, or the newest created at
/// or before `since`.
fn pick_base(
    dir: &Path,
    prefix: &str,
    existing: &[Found],
    since: Option<i64>,
) -> Result<(Found, Manifest), Error> {
    for f in existing.iter().rev() {
        let m = super::read::read_manifest(f.first())?;
        if since.is_none_or(|t| m.created_at <= t) {
            return Ok((f.clone(), m));
        }
    }
    Err(Error::NoBase {
        dir: dir.to_path_buf(),
        prefix: prefix.to_string(),
        since: since.is_some(),
    })
}

fn entry_of(it: &Item) -> Entry {
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
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Walks the sources with the scan's exclusion rules. Paths become relative
/// to the basepath; a source outside it goes under `_outside/`.
fn walk(profile: &Profile, target_dir: &Path, progress: &Progress) -> crate::Result<Vec<Item>> {
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
fn read_content(
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
        let mut data = Vec::with_capacity(before.len() as usize);
        f.read_to_end(&mut data)
            .map_err(|e| format!("cannot be read ({e})"))?;
        let after =
            std::fs::symlink_metadata(&it.abs).map_err(|e| format!("vanished while read ({e})"))?;
        let mut read_from = it.abs.clone();
        if data.len() >= 100 && data.starts_with(SQLITE_MAGIC) {
            let copy = staging.join(format!("sqlite-{index}"));
            match sqlite_copy(&it.abs, &copy) {
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
        });
    }
    Err(format!("kept changing while it was read ({TRIES} tries)"))
}

/// Copies a live SQLite database consistently through the online backup API.
fn sqlite_copy(from: &Path, to: &Path) -> Result<(), String> {
    use rusqlite::{Connection, OpenFlags};
    let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    let mut dst = Connection::open(to).map_err(|e| e.to_string())?;
    rusqlite::backup::Backup::new(&src, &mut dst)
        .and_then(|b| b.run_to_completion(256, std::time::Duration::from_millis(5), None))
        .map_err(|e| e.to_string())?;
    drop(dst);
    Ok(())
}

/// Runs the profile's dump commands; their stdout goes to the staging folder.
fn run_dumps(
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

/// A reader that hashes and counts what passes through it.
struct Tee<R> {
    inner: R,
    hasher: Hasher,
    n: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime_ns: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes volume `v`: the manifest, then (volume 1) folders and links, then
/// the members placed in it. Returns the compressed size.
fn write_volume(
    tmp: &tempfile::NamedTempFile,
    m: &Manifest,
    manifest_bytes: &[u8],
    v: u32,
    sources: &HashMap<String, PathBuf>,
    progress: &Progress,
) -> crate::Result<u64> {
    let path = tmp.path();
    let file = tmp.as_file().try_clone().map_err(io_err(path))?;
    let gz = ParGzWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut tar = tar::Builder::new(gz);
    let mut h = header(
        tar::EntryType::Regular,
        manifest_bytes.len() as u64,
        0o644,
        m.created_at * 1_000_000_000,
    );
    tar.append_data(&mut h, MANIFEST_NAME, manifest_bytes)
        .map_err(io_err(path))?;
    if v == 1 {
        for e in &m.entries {
            match e.kind {
                EntryKind::Dir => {
                    let mut h = header(tar::EntryType::Directory, 0, e.mode, e.mtime_ns);
                    tar.append_data(&mut h, &e.path, std::io::empty())
                        .map_err(io_err(path))?;
                }
                EntryKind::Symlink => {
                    let mut h = header(tar::EntryType::Symlink, 0, e.mode, e.mtime_ns);
                    tar.append_link(&mut h, &e.path, e.target.as_deref().unwrap_or(""))
                        .map_err(io_err(path))?;
                }
                EntryKind::File => {}
            }
        }
    }
    let mut members: Vec<(String, u64, String, u32, i64)> = Vec::new();
    for e in m.members_in_volume(v) {
        let Some(member) = e.member_path() else {
            continue;
        };
        let (size, sha) = match (&e.delta, e.how) {
            (Some(d), Some(How::Delta)) => (d.size, d.sha256.clone()),
            _ => (e.size, e.sha256.clone().unwrap_or_default()),
        };
        members.push((member, size, sha, e.mode, e.mtime_ns));
    }
    for d in m.dumps.iter().filter(|d| d.volume == v) {
        members.push((
            d.member_path(),
            d.size,
            d.sha256.clone(),
            0o600,
            m.created_at * 1_000_000_000,
        ));
    }
    for (member, size, sha, mode, mtime) in members {
        progress.check()?;
        let from = sources
            .get(&member)
            .ok_or_else(|| crate::Error::Panic(format!("no source for {member}")))?;
        progress.current(from);
        let f = std::fs::File::open(from).map_err(io_err(from))?;
        let mut tee = Tee {
            inner: f.take(size),
            hasher: Hasher::default(),
            n: 0,
        };
        let mut h = header(tar::EntryType::Regular, size, mode, mtime);
        tar.append_data(&mut h, &member, &mut tee)
            .map_err(io_err(path))?;
        if tee.n != size || tee.hasher.finish().to_hex() != sha {
            return Err(Error::Changed { path: from.clone() }.into());
        }
        progress.advance(1, size);
    }
    let gz = tar.into_inner().map_err(io_err(path))?;
    let buf = gz.finish().map_err(io_err(path))?;
    let file = buf.into_inner().map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

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
