//! Rebuilding files from backup disks: any files, any snapshot, any disk.
//!
//! A restore selects the versions alive in one snapshot under some path
//! prefixes, maps them under a destination, checks everything it can before
//! writing (unsafe names, conflicts, case-insensitive collisions), then
//! restores what the connected disks hold and says which disk to plug in
//! next for the rest (greedy set cover over the catalog's copies).
//!
//! Every write goes through directory file descriptors opened one component
//! at a time with `O_NOFOLLOW`, so no parent can be a symlink (whether it was
//! there before or created by this restore). Files are written in batches,
//! on all cores: each to a temp name in its destination folder, hashed on
//! the way and checked against the catalog's SHA-256; then one `syncfs`
//! flushes the batch and each file is renamed with `RENAME_NOREPLACE`.
//!
//! Invariant: nothing is written outside the destination; no existing file
//! is replaced without the user's choice; every byte is checked against its
//! hash.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::catalog::{Catalog, Kind, Snapshot, Version};
use crate::disk::Disk;
use crate::object::{Hasher, ObjectId};
use crate::task::{Phase, Progress};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the catalog holds no snapshot yet; run `coffer sync` first")]
    NoSnapshot,
    #[error("no snapshot was taken at or before {when}")]
    NoSnapshotAt { when: String },
    #[error(
        "nothing in snapshot {snapshot} lies under {}; an older snapshot may hold it (`coffer versions PATH`, then --at)",
        show_paths(paths)
    )]
    NothingSelected { snapshot: i64, paths: Vec<PathBuf> },
    #[error("{path}: refused, {reason}; nothing was written")]
    Unsafe { path: PathBuf, reason: String },
    #[error(
        "{} already exist at the destination: {}; nothing was written (choose --overwrite or --skip-existing)",
        plural(paths.len(), "path"),
        show_paths(paths)
    )]
    Conflicts { paths: Vec<PathBuf> },
    #[error(
        "{} would collide or are invalid on a case-insensitive (FAT/exFAT) destination: {}; nothing was written (choose --rename-collisions)",
        plural(names.len(), "name"),
        names.iter().map(|(p, why)| format!("{} ({why})", p.display())).collect::<Vec<_>>().join(", ")
    )]
    Collisions { names: Vec<(PathBuf, String)> },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot copy the catalog copy from {path}: {source}")]
    CopyCatalog {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// At most 20 paths, then "and N more".
fn show_paths(paths: &[PathBuf]) -> String {
    let mut s = paths
        .iter()
        .take(20)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > 20 {
        s.push_str(&format!(" and {} more", paths.len() - 20));
    }
    s
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

fn errno_err(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error + use<> {
    let path = path.to_path_buf();
    move |e| Error::Io {
        op,
        path,
        source: e.into(),
    }
}

/// Which snapshot to restore from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Latest,
    Snapshot(i64),
    /// The newest snapshot taken at or before this time (seconds).
    Time(i64),
}

/// What to do with paths that already exist at the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Existing {
    /// List them and write nothing.
    #[default]
    Refuse,
    /// Replace existing regular files (never folders or other kinds).
    Overwrite,
    /// Leave them as they are and restore the rest.
    Skip,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub at: Option<At>,
    /// Paths (files or folders) as the catalog names them; empty = everything.
    pub paths: Vec<PathBuf>,
    /// Restore under this folder; `None` = the original place.
    pub dest: Option<PathBuf>,
    /// For the original place: the folder nothing may be written outside of
    /// (the storage basepath). `None` means `/`.
    pub within: Option<PathBuf>,
    pub existing: Existing,
    /// Treat the destination as case-insensitive even if it is not FAT/exFAT.
    pub case_insensitive: bool,
    /// Rename colliding or invalid names (`name (2).ext`) instead of refusing.
    pub rename_collisions: bool,
}

/// A disk to plug in, and what it would provide.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DiskNeed {
    pub disk_id: uuid::Uuid,
    pub label: String,
    pub files: u64,
    pub bytes: u64,
}

/// A copy that did not hold the bytes its name says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BadCopy {
    pub path: PathBuf,
    pub disk: String,
    pub hash: ObjectId,
    pub actual: ObjectId,
    /// Whether the copy was removed from the catalog and moved aside.
    pub quarantined: bool,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub snapshot: i64,
    pub snapshot_time: i64,
    pub dest: PathBuf,
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Already at the destination with the right content (an earlier run).
    pub already_done: u64,
    pub skipped_existing: Vec<PathBuf>,
    /// Names changed to avoid collisions: (catalog path, restored as).
    pub renamed: Vec<(PathBuf, PathBuf)>,
    /// Disks to plug in next, in order, with what each would provide.
    pub plug_next: Vec<DiskNeed>,
    /// Files whose content is on no known disk (or only in bad copies).
    pub unavailable: Vec<PathBuf>,
    pub bad_copies: Vec<BadCopy>,
    /// Files still missing at the destination.
    pub missing_files: u64,
    pub missing_bytes: u64,
}

impl Report {
    /// True when everything asked for is at the destination.
    pub fn complete(&self) -> bool {
        self.missing_files == 0
    }
}

/// The snapshot `at` designates.
pub fn resolve_snapshot(catalog: &Catalog, at: At) -> crate::Result<Snapshot> {
    Ok(match at {
        At::Latest => catalog.latest_snapshot()?.ok_or(Error::NoSnapshot)?,
        At::Snapshot(id) => catalog.snapshot(id)?,
        At::Time(t) => catalog.snapshot_at(t)?.ok_or_else(|| Error::NoSnapshotAt {
            when: crate::human::time(t),
        })?,
    })
}

/// True when `path` is `prefix` or lies under it (component-wise).
pub fn is_under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}

/// The versions of snapshot `id` under `prefixes` (all when empty), sorted by path.
pub fn select(catalog: &Catalog, id: i64, prefixes: &[PathBuf]) -> crate::Result<Vec<Version>> {
    let mut v: Vec<Version> = catalog
        .versions_in(id)?
        .into_iter()
        .filter(|v| prefixes.is_empty() || prefixes.iter().any(|p| is_under(&v.path, p)))
        .collect();
    v.sort_by(|a, b| {
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
    Ok(v)
}

/// Copies the newest valid catalog slot of `disk` to a private temp file and
/// opens it read-only. The workstation catalog is never involved.
pub fn open_disk_catalog(disk: &Disk) -> crate::Result<(Catalog, tempfile::TempDir)> {
    let (slot, _) = disk.newest_catalog()?;
    let tmp = tempfile::Builder::new()
        .prefix("coffer-restore-")
        .tempdir()
        .map_err(|source| Error::CopyCatalog {
            path: slot.clone(),
            source,
        })?;
    let copy = tmp.path().join("catalog.sqlite");
    std::fs::copy(&slot, &copy).map_err(|source| Error::CopyCatalog {
        path: slot.clone(),
        source,
    })?;
    let cat = Catalog::open_copy(&copy).map_err(|e| match e {
        // Name the slot on the disk, not the private copy.
        crate::catalog::Error::Foreign { .. } => crate::catalog::Error::Foreign { path: slot },
        crate::catalog::Error::TooNew { found, known, .. } => crate::catalog::Error::TooNew {
            path: slot,
            found,
            known,
        },
        crate::catalog::Error::Sqlite { source, .. } => {
            crate::catalog::Error::Sqlite { path: slot, source }
        }
        other => other,
    })?;
    // A catalog that opens but cannot be queried is damaged too.
    cat.snapshots()?;
    Ok((cat, tmp))
}

// ------------------------------------------------------------------ names

/// Checks that a relative path is made of plain names only.
fn check_rel(orig: &Path, rel: &Path) -> Result<(), Error> {
    for c in rel.components() {
        match c {
            Component::Normal(n) if !n.is_empty() && !n.as_bytes().contains(&0) => {}
            other => {
                return Err(Error::Unsafe {
                    path: orig.to_path_buf(),
                    reason: format!(
                        "its name holds `{}`, which would lead outside the destination",
                        other.as_os_str().to_string_lossy()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Why a name is invalid on FAT/exFAT, if it is.
pub fn fat_invalid(name: &OsStr) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.iter()
        .any(|c| matches!(c, b':' | b'*' | b'?' | b'"' | b'<' | b'>' | b'|' | b'\\') || *c < 0x20)
    {
        return Some("character not allowed on FAT/exFAT");
    }
    if b.ends_with(b".") || b.ends_with(b" ") {
        return Some("trailing dot or space");
    }
    let s = String::from_utf8_lossy(b).to_ascii_uppercase();
    let stem = s.split('.').next().unwrap_or("");
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    if RESERVED.contains(&stem) {
        return Some("reserved name");
    }
    None
}

fn fat_fix(name: &OsStr) -> OsString {
    let mut b: Vec<u8> = name
        .as_bytes()
        .iter()
        .map(|c| match c {
            b':' | b'*' | b'?' | b'"' | b'<' | b'>' | b'|' | b'\\' => b'_',
            c if *c < 0x20 => b'_',
            c => *c,
        })
        .collect();
    while b.last().is_some_and(|c| *c == b'.' || *c == b' ') {
        b.pop();
    }
    if b.is_empty() || fat_invalid(OsStr::from_bytes(&b)).is_some() {
        b.push(b'_');
    }
    OsString::from_vec(b)
}

/// `name (n).ext`
fn numbered(name: &OsStr, n: u32) -> OsString {
    let b = name.as_bytes();
    let dot = b.iter().rposition(|c| *c == b'.').filter(|i| *i > 0);
    let (stem, ext) = match dot {
        Some(i) => (&b[..i], &b[i..]),
        None => (b, &b[..0]),
    };
    let mut out = stem.to_vec();
    out.extend_from_slice(format!(" ({n})").as_bytes());
    out.extend_from_slice(ext);
    OsString::from_vec(out)
}

fn fold(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).to_lowercase()
}

/// Whether the destination (or its nearest existing ancestor) is FAT/exFAT.
pub fn is_case_insensitive_fs(dest: &Path) -> bool {
    let mut p = dest;
    loop {
        if let Ok(s) = rustix::fs::statfs(p) {
            #[allow(clippy::unnecessary_cast)]
            let t = s.f_type as i64;
            return t == 0x4d44 || t == 0x2011_BAB0;
        }
        match p.parent() {
            Some(q) => p = q,
            None => return false,
        }
    }
}

/// Finds collisions and invalid names on a case-insensitive destination;
/// renames them when asked. Entries are sorted, so parents come first.
fn handle_collisions(
    entries: &mut [Entry],
    rename: bool,
) -> Result<Vec<(PathBuf, PathBuf)>, Error> {
    let mut problems = Vec::new();
    let mut renamed = Vec::new();
    let mut moved: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    for e in entries.iter_mut() {
        let parent = e.rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = moved.get(&parent).cloned().unwrap_or(parent);
        let Some(name) = e.rel.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        let mut why = fat_invalid(&name).map(str::to_string);
        let mut new_name = if why.is_some() {
            fat_fix(&name)
        } else {
            name.clone()
        };
        if used.contains(&fold(&parent.join(&new_name))) {
            why.get_or_insert_with(|| "differs only in case from another name".into());
            let base = new_name.clone();
            let mut n = 2;
            while used.contains(&fold(&parent.join(numbered(&base, n)))) {
                n += 1;
            }
            new_name = numbered(&base, n);
        }
        let new_rel = parent.join(&new_name);
        used.insert(fold(&new_rel));
        if let Some(w) = why {
            problems.push((e.version.path.clone(), w));
            renamed.push((e.version.path.clone(), new_rel.clone()));
        }
        if new_rel != e.rel {
            moved.insert(e.rel.clone(), new_rel.clone());
            e.rel = new_rel;
        }
    }
    if !problems.is_empty() && !rename {
        return Err(Error::Collisions { names: problems });
    }
    Ok(renamed)
}

// ------------------------------------------------------------ destination

/// One thing to restore, with where it goes (relative to the destination).
#[derive(Clone, Debug)]
struct Entry {
    version: Version,
    rel: PathBuf,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    ToDo,
    /// Already there with the right content.
    Done,
    Skipped,
    /// Overwrite an existing regular file.
    Replace,
}

/// A destination root opened as a directory.
struct Dest {
    root: PathBuf,
    fd: OwnedFd,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

impl Dest {
    /// Opens `rel`'s parent folder under the root, component by component,
    /// refusing symlinks; creates missing folders when `create`.
    /// Returns `None` when a folder is missing and `create` is false.
    fn open_dir(&self, rel: &Path, create: bool) -> Result<Option<OwnedFd>, Error> {
        let mut fd = rustix::io::dup(&self.fd).map_err(errno_err("cannot open", &self.root))?;
        let mut here = self.root.clone();
        for c in rel.components() {
            let name = c.as_os_str();
            here.push(name);
            let next = match rustix::fs::openat(&fd, name, DIR_FLAGS, Mode::empty()) {
                Ok(f) => f,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno_err("cannot create folder", &here)(e)),
                    }
                    rustix::fs::openat(&fd, name, DIR_FLAGS, Mode::empty())
                        .map_err(|e| self.dir_err(&here, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.dir_err(&here, e)),
            };
            fd = next;
        }
        Ok(Some(fd))
    }

    fn dir_err(&self, here: &Path, e: Errno) -> Error {
        match e {
            Errno::LOOP | Errno::NOTDIR => Error::Unsafe {
                path: here.to_path_buf(),
                reason: if e == Errno::LOOP
                    || std::fs::symlink_metadata(here).is_ok_and(|m| m.is_symlink())
                {
                    "it is a symlink, and nothing is ever written through one".into()
                } else {
                    "it is not a folder".into()
                },
            },
            e => errno_err("cannot open folder", here)(e),
        }
    }
}

/// What is at a name now (not following symlinks).
fn stat_at(dir: &OwnedFd, name: &OsStr) -> Option<rustix::fs::Stat> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()
}

fn file_type(st: &rustix::fs::Stat) -> rustix::fs::FileType {
    rustix::fs::FileType::from_raw_mode(st.st_mode)
}

/// Whether an existing regular file already holds `hash`.
fn holds(dir: &OwnedFd, name: &OsStr, size: u64, hash: Option<ObjectId>) -> bool {
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut f = File::from(fd);
    match crate::object::hash_reader(&mut f, |_| Ok(())) {
        Ok((h, n)) => n == size && Some(h) == hash.or(Some(ObjectId::of(b""))),
        Err(_) => false,
    }
}

fn timestamps(mtime_ns: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn tmp_name() -> OsString {
    OsString::from(format!(
        ".coffer-restore-{}-{}.tmp",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Renames `from` to `to` in `dir` without replacing anything (unless
/// `replace`): `RENAME_NOREPLACE`, or link + unlink where unsupported.
fn put_in_place(
    dir: &OwnedFd,
    from: &OsStr,
    to: &OsStr,
    replace: bool,
    path: &Path,
) -> Result<(), Error> {
    if replace {
        return rustix::fs::renameat(dir, from, dir, to).map_err(errno_err("cannot rename", path));
    }
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(Error::Unsafe {
            path: path.to_path_buf(),
            reason: "something appeared under this name during the restore; it was left alone"
                .into(),
        }),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            match rustix::fs::linkat(dir, from, dir, to, AtFlags::empty()) {
                Ok(()) => rustix::fs::unlinkat(dir, from, AtFlags::empty())
                    .map_err(errno_err("cannot remove", path)),
                Err(Errno::EXIST) => Err(Error::Unsafe {
                    path: path.to_path_buf(),
                    reason:
                        "something appeared under this name during the restore; it was left alone"
                            .into(),
                }),
                Err(e) => Err(errno_err("cannot rename", path)(e)),
            }
        }
        Err(e) => Err(errno_err("cannot rename", path)(e)),
    }
}

// ------------------------------------------------------------------ disks

/// Which disks hold which objects: connected ones (their real contents)
/// and the others (per the catalog).
struct Holders {
    connected: Vec<(usize, HashSet<ObjectId>)>,
    others: BTreeMap<uuid::Uuid, HashSet<ObjectId>>,
}

fn holders(catalog: &Catalog, disks: &[Disk]) -> crate::Result<Holders> {
    let mut connected = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        connected.push((i, d.objects()?.into_keys().collect::<HashSet<_>>()));
    }
    let mut others: BTreeMap<uuid::Uuid, HashSet<ObjectId>> = BTreeMap::new();
    for c in catalog.copies()? {
        if disks.iter().any(|d| d.id() == c.disk_id) {
            continue;
        }
        others.entry(c.disk_id).or_default().insert(c.hash);
    }
    Ok(Holders { connected, others })
}

/// Greedy set cover of `needed` (hash → size, files) over disks not connected.
fn plan_next(
    catalog: &Catalog,
    others: &BTreeMap<uuid::Uuid, HashSet<ObjectId>>,
    needed: &BTreeMap<ObjectId, (u64, u64)>,
) -> crate::Result<(Vec<DiskNeed>, BTreeSet<ObjectId>)> {
    let labels: HashMap<uuid::Uuid, String> = catalog
        .disks()?
        .into_iter()
        .map(|d| (d.id, d.label))
        .collect();
    let mut left: BTreeSet<ObjectId> = needed.keys().copied().collect();
    let mut out = Vec::new();
    loop {
        let best = others
            .iter()
            .map(|(id, set)| {
                let (mut files, mut bytes) = (0u64, 0u64);
                for h in left.iter().filter(|h| set.contains(h)) {
                    let (size, n) = needed[h];
                    files += n;
                    bytes += size * n;
                }
                (bytes, files, *id)
            })
            .filter(|(_, files, _)| *files > 0)
            // Most bytes first, then most files; ties go to the first id.
            .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.cmp(&a.2)));
        let Some((bytes, files, id)) = best else {
            break;
        };
        left.retain(|h| !others[&id].contains(h));
        out.push(DiskNeed {
            disk_id: id,
            label: labels.get(&id).cloned().unwrap_or_else(|| id.to_string()),
            files,
            bytes,
        });
    }
    Ok((out, left))
}

// ---------------------------------------------------------------- restore

/// Restores what `opts` asks for from the connected `disks`.
///
/// `workstation` is the backup set of the workstation's own catalog when
/// `catalog` is that one (then a bad copy is removed from it and moved aside
/// on the disk, which is claimed for that set first); a catalog copy read
/// from a disk is never changed, nor the disks it came with.
pub fn restore(
    catalog: &mut Catalog,
    workstation: Option<uuid::Uuid>,
    disks: &[Disk],
    opts: &Options,
    progress: &Progress,
) -> crate::Result<Report> {
    progress.phase(Phase::Planning, 0, 0);
    let snap = resolve_snapshot(catalog, opts.at.unwrap_or(At::Latest))?;
    let versions = select(catalog, snap.id, &opts.paths)?;
    if versions.is_empty() {
        return Err(Error::NothingSelected {
            snapshot: snap.id,
            paths: opts.paths.clone(),
        }
        .into());
    }

    // Where each version goes.
    let (dest_root, strip) = match &opts.dest {
        None => {
            let base = opts.within.clone().unwrap_or_else(|| PathBuf::from("/"));
            (base.clone(), base)
        }
        Some(d) => {
            let parents: Vec<PathBuf> = if opts.paths.is_empty() {
                versions.iter().map(|v| v.path.clone()).collect()
            } else {
                opts.paths.clone()
            };
            let mut common: Option<PathBuf> = None;
            for p in &parents {
                let par = p.parent().unwrap_or(Path::new("/")).to_path_buf();
                common = Some(match common {
                    None => par,
                    Some(c) => {
                        let mut out = PathBuf::new();
                        for (a, b) in c.components().zip(par.components()) {
                            if a != b {
                                break;
                            }
                            out.push(a);
                        }
                        out
                    }
                });
            }
            (d.clone(), common.unwrap_or_else(|| PathBuf::from("/")))
        }
    };
    let mut entries = Vec::new();
    for v in versions {
        let rel = match v.path.strip_prefix(&strip) {
            Ok(r) => r.to_path_buf(),
            Err(_) => {
                return Err(Error::Unsafe {
                    path: v.path.clone(),
                    reason: if opts.dest.is_none() {
                        format!(
                            "it lies outside {}, the storage basepath; restore it into a folder with --to",
                            strip.display()
                        )
                    } else {
                        format!("it does not lie under {}", strip.display())
                    },
                }
                .into());
            }
        };
        check_rel(&v.path, &rel)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        entries.push(Entry {
            version: v,
            rel,
            state: State::ToDo,
        });
    }

    // The destination folder itself: created if missing, never a symlink
    // unless the user named one (then it is resolved once, here).
    std::fs::create_dir_all(&dest_root).map_err(io_err("cannot create folder", &dest_root))?;
    let dest_root = std::fs::canonicalize(&dest_root).map_err(io_err("cannot open", &dest_root))?;
    let root_fd = rustix::fs::open(&dest_root, DIR_FLAGS, Mode::empty())
        .map_err(errno_err("cannot open folder", &dest_root))?;
    let dest = Dest {
        root: dest_root.clone(),
        fd: root_fd,
    };

    let mut report = Report {
        snapshot: snap.id,
        snapshot_time: snap.started_at,
        dest: dest_root.clone(),
        ..Report::default()
    };
    if opts.case_insensitive || is_case_insensitive_fs(&dest_root) {
        report.renamed = handle_collisions(&mut entries, opts.rename_collisions)?;
    }

    // Look before writing anything: unsafe parents and conflicts.
    let mut conflicts = Vec::new();
    for e in &mut entries {
        progress.check()?;
        let parent = e.rel.parent().unwrap_or(Path::new(""));
        let Some(dir) = dest.open_dir(parent, false)? else {
            continue;
        };
        let name = e.rel.file_name().unwrap_or_default();
        let Some(st) = stat_at(&dir, name) else {
            continue;
        };
        let ft = file_type(&st);
        use rustix::fs::FileType as T;
        let same = match e.version.kind {
            Kind::Dir => ft == T::Directory,
            Kind::Symlink => {
                ft == T::Symlink
                    && rustix::fs::readlinkat(&dir, name, Vec::new())
                        .ok()
                        .map(|t| PathBuf::from(OsString::from_vec(t.into_bytes())))
                        == e.version.target
            }
            Kind::File => {
                ft == T::RegularFile
                    && st.st_size as u64 == e.version.size
                    && holds(&dir, name, e.version.size, e.version.hash)
            }
        };
        if same {
            e.state = State::Done;
            continue;
        }
        match opts.existing {
            Existing::Skip => {
                e.state = State::Skipped;
                report.skipped_existing.push(dest_root.join(&e.rel));
            }
            Existing::Overwrite if ft == T::RegularFile && e.version.kind != Kind::Dir => {
                e.state = State::Replace;
            }
            _ => conflicts.push(dest_root.join(&e.rel)),
        }
    }
    // Children of a skipped folder that is not a folder cannot be restored.
    let blocked: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.state == State::Skipped && e.version.kind == Kind::Dir)
        .map(|e| e.rel.clone())
        .collect();
    for e in &mut entries {
        if e.state != State::Skipped && blocked.iter().any(|b| e.rel.starts_with(b) && &e.rel != b)
        {
            e.state = State::Skipped;
            report.skipped_existing.push(dest_root.join(&e.rel));
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts { paths: conflicts }.into());
    }

    // What the connected disks can provide.
    let holders = holders(catalog, disks)?;
    let todo_files: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.version.kind == Kind::File && matches!(e.state, State::ToDo | State::Replace))
        .collect();
    let total_bytes: u64 = todo_files.iter().map(|e| e.version.size).sum();
    progress.phase(Phase::Restoring, todo_files.len() as u64, total_bytes);
    report.already_done = entries
        .iter()
        .filter(|e| e.version.kind == Kind::File && e.state == State::Done)
        .count() as u64;

    let mut bad: HashSet<(usize, ObjectId)> = HashSet::new();
    let mut missing: BTreeMap<ObjectId, (u64, u64)> = BTreeMap::new();
    let mut missing_paths: BTreeMap<ObjectId, Vec<PathBuf>> = BTreeMap::new();
    let mut dirty_dirs = false;
    let mut batch = Batch::default();
    let mut cx = BatchCtx {
        catalog: &mut *catalog,
        workstation,
        disks,
        dest: &dest,
        progress,
        report: &mut report,
        bad: &mut bad,
        missing: &mut missing,
        missing_paths: &mut missing_paths,
    };

    // Batches are written (on all cores) by a helper thread while the batch
    // before is flushed and renamed here. On an error, what was already
    // written is still put in place: it is whole and checked.
    std::thread::scope(|s| -> crate::Result<()> {
        let mut inflight: Option<Writing<'_, '_>> = None;
        let walked = (|| -> crate::Result<()> {
            for e in &entries {
                progress.check()?;
                if e.version.kind == Kind::Dir && e.state == State::Done {
                    // A folder an earlier run finished (and made read-only, maybe)
                    // must take the rest of its files; its mode is set again below.
                    if let Some(fd) = dest.open_dir(&e.rel, false)?
                        && let Ok(st) = rustix::fs::fstat(&fd)
                        && st.st_mode & 0o700 != 0o700
                    {
                        let _ = rustix::fs::fchmod(
                            &fd,
                            Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700),
                        );
                    }
                }
                if !matches!(e.state, State::ToDo | State::Replace) {
                    continue;
                }
                let target = dest_root.join(&e.rel);
                progress.current(&target);
                let parent = e.rel.parent().unwrap_or(Path::new(""));
                let name = e.rel.file_name().unwrap_or_default();
                match e.version.kind {
                    Kind::Dir => {
                        let dir = dest.open_dir(parent, true)?.ok_or_else(|| Error::Unsafe {
                            path: target.clone(),
                            reason: "its folder vanished".into(),
                        })?;
                        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
                            Ok(()) => {
                                cx.report.dirs += 1;
                                dirty_dirs = true;
                            }
                            Err(Errno::EXIST) => {
                                // Must be a real folder (open_dir refuses anything else).
                                dest.open_dir(&e.rel, false)?;
                            }
                            Err(err) => {
                                return Err(errno_err("cannot create folder", &target)(err).into());
                            }
                        }
                    }
                    Kind::Symlink => {
                        let dir = dest.open_dir(parent, true)?.ok_or_else(|| Error::Unsafe {
                            path: target.clone(),
                            reason: "its folder vanished".into(),
                        })?;
                        let link_target = e.version.target.clone().unwrap_or_default();
                        let tmp = tmp_name();
                        rustix::fs::symlinkat(link_target.as_os_str(), &dir, &tmp)
                            .map_err(errno_err("cannot create symlink", &target))?;
                        let _ = rustix::fs::utimensat(
                            &dir,
                            &tmp,
                            &timestamps(e.version.mtime_ns),
                            AtFlags::SYMLINK_NOFOLLOW,
                        );
                        if let Err(err) =
                            put_in_place(&dir, &tmp, name, e.state == State::Replace, &target)
                        {
                            let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
                            return Err(err.into());
                        }
                        cx.report.symlinks += 1;
                    }
                    Kind::File => {
                        let hash = e.version.hash.unwrap_or_else(|| ObjectId::of(b""));
                        let empty = e.version.size == 0 && hash == ObjectId::of(b"");
                        // Connected disks that hold it and have not proved bad for it.
                        let sources: Vec<Option<usize>> = if empty {
                            vec![None]
                        } else {
                            holders
                                .connected
                                .iter()
                                .filter(|(d, set)| {
                                    set.contains(&hash) && !cx.bad.contains(&(*d, hash))
                                })
                                .map(|(d, _)| Some(*d))
                                .collect()
                        };
                        if sources.is_empty() {
                            let m = cx.missing.entry(hash).or_insert((e.version.size, 0));
                            m.1 += 1;
                            cx.missing_paths
                                .entry(hash)
                                .or_default()
                                .push(e.version.path.clone());
                            continue;
                        }
                        let dir = match batch.dirs.get(parent) {
                            Some(d) => Arc::clone(d),
                            None => {
                                let d =
                                    Arc::new(dest.open_dir(parent, true)?.ok_or_else(|| {
                                        Error::Unsafe {
                                            path: target.clone(),
                                            reason: "its folder vanished".into(),
                                        }
                                    })?);
                                batch.dirs.insert(parent.to_path_buf(), Arc::clone(&d));
                                d
                            }
                        };
                        batch.bytes += e.version.size;
                        batch.jobs.push(FileJob {
                            entry: e,
                            dir,
                            target,
                            hash,
                            sources,
                        });
                        if batch.full() {
                            let before = inflight.take();
                            inflight = Some(Writing::start(
                                s,
                                std::mem::take(&mut batch),
                                disks,
                                progress,
                            )?);
                            dirty_dirs |= settle(before, &mut cx)?;
                        }
                    }
                }
            }
            dirty_dirs |= settle(inflight.take(), &mut cx)?;
            let last = std::mem::take(&mut batch);
            let written = last.write(disks, progress);
            dirty_dirs |= last.finish(written, &mut cx)?;
            Ok(())
        })();
        if walked.is_err() {
            let _ = settle(inflight.take(), &mut cx);
        }
        walked
    })?;

    // Folders last, deepest first, so their contents do not change their
    // mtime. Folders that were already there (an earlier run) get theirs too.
    let dirs: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.version.kind == Kind::Dir && e.state != State::Skipped)
        .collect();
    for e in dirs.into_iter().rev() {
        let path = dest_root.join(&e.rel);
        if let Some(fd) = dest.open_dir(&e.rel, false)? {
            rustix::fs::futimens(&fd, &timestamps(e.version.mtime_ns))
                .map_err(errno_err("cannot set the time of", &path))?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(e.version.mode & 0o7777))
                .map_err(errno_err("cannot set the mode of", &path))?;
        }
    }
    if dirty_dirs {
        rustix::fs::syncfs(&dest.fd).map_err(errno_err("cannot flush", &dest_root))?;
    }

    // What is left, and which disks to plug in for it.
    let bad_hashes: HashSet<ObjectId> = bad.iter().map(|(_, h)| *h).collect();
    let (plug, uncovered) = plan_next(catalog, &holders.others, &missing)?;
    report.plug_next = plug;
    for h in &uncovered {
        report
            .unavailable
            .extend(missing_paths.get(h).cloned().unwrap_or_default());
    }
    report.missing_files = missing.values().map(|(_, n)| n).sum();
    report.missing_bytes = missing.values().map(|(s, n)| s * n).sum();
    for h in uncovered {
        if !bad_hashes.contains(&h) {
            for p in missing_paths.get(&h).into_iter().flatten() {
                progress.warn(Some(p), "its content is on no known disk");
            }
        }
    }
    for need in &report.plug_next {
        progress.notice(plug_in_next(need));
    }
    progress.flush();
    Ok(report)
}

/// One file to restore, prepared in order and written with others.
struct FileJob<'e> {
    entry: &'e Entry,
    dir: Arc<OwnedFd>,
    target: PathBuf,
    hash: ObjectId,
    /// Connected disks to read it from, in order (`None`: an empty file).
    sources: Vec<Option<usize>>,
}

/// Files written together: all cores write and hash them to temp names,
/// one flush of the destination covers them all, then they are renamed
/// into place. The same durability as a flush per file, at a fraction of
/// the cost.
#[derive(Default)]
struct Batch<'e> {
    jobs: Vec<FileJob<'e>>,
    bytes: u64,
    /// Folder descriptors of this batch, by destination-relative path.
    dirs: HashMap<PathBuf, Arc<OwnedFd>>,
}

/// What writing one file gave: its temp name (`None`: no good copy on a
/// connected disk) and the disks whose copy did not match its hash.
type Written = crate::Result<(Option<OsString>, Vec<(usize, ObjectId)>)>;

/// A batch being written by a helper thread.
struct Writing<'s, 'e> {
    thread: std::thread::ScopedJoinHandle<'s, (Batch<'e>, Vec<Written>)>,
}

impl<'s, 'e> Writing<'s, 'e> {
    fn start<'env>(
        scope: &'s std::thread::Scope<'s, 'env>,
        batch: Batch<'e>,
        disks: &'env [Disk],
        progress: &'env Progress,
    ) -> crate::Result<Self>
    where
        'e: 's,
    {
        let thread = std::thread::Builder::new()
            .name("restore-write".into())
            .spawn_scoped(scope, move || {
                let written = batch.write(disks, progress);
                (batch, written)
            })
            .map_err(|e| crate::Error::Panic(format!("cannot start a thread: {e}")))?;
        Ok(Writing { thread })
    }
}

/// Waits for a batch's writing to end, then finishes it.
fn settle(writing: Option<Writing<'_, '_>>, cx: &mut BatchCtx<'_>) -> crate::Result<bool> {
    let Some(w) = writing else {
        return Ok(false);
    };
    let (batch, written) = w
        .thread
        .join()
        .map_err(|_| crate::Error::Panic("a restore writer panicked".into()))?;
    batch.finish(written, cx)
}

/// What a batch needs from the restore around it.
struct BatchCtx<'a> {
    catalog: &'a mut Catalog,
    workstation: Option<uuid::Uuid>,
    disks: &'a [Disk],
    dest: &'a Dest,
    progress: &'a Progress,
    report: &'a mut Report,
    bad: &'a mut HashSet<(usize, ObjectId)>,
    missing: &'a mut BTreeMap<ObjectId, (u64, u64)>,
    missing_paths: &'a mut BTreeMap<ObjectId, Vec<PathBuf>>,
}

impl Batch<'_> {
    fn full(&self) -> bool {
        // Few enough folders that their descriptors stay well under limits
        // with three batches alive (one built, two written).
        self.jobs.len() >= 2000 || self.bytes >= 256 << 20 || self.dirs.len() >= 100
    }

    /// Writes the batch's files to temp names and checks them, on all
    /// cores: for each, its temp name (`None`: no connected disk had a good
    /// copy) and the disks whose copy proved damaged.
    fn write(&self, disks: &[Disk], progress: &Progress) -> Vec<Written> {
        use rayon::prelude::*;
        let stop = AtomicBool::new(false);
        self.jobs
            .par_iter()
            // One file per task: sizes vary wildly, so every one is up for stealing.
            .with_max_len(1)
            .map(|j| {
                let mut mismatches = Vec::new();
                for src in &j.sources {
                    if stop.load(Ordering::Relaxed) {
                        return Err(crate::Error::Cancelled);
                    }
                    let disk = src.map(|d| &disks[d]);
                    match write_tmp(&j.dir, j.entry, disk, j.hash, &j.target, progress) {
                        Ok(Ok(tmp)) => return Ok((Some(tmp), mismatches)),
                        Ok(Err(actual)) => mismatches.extend(src.map(|d| (d, actual))),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
                Ok((None, mismatches))
            })
            .collect()
    }

    /// Records what [`write`](Self::write) found, flushes the destination
    /// and renames the batch's files into place. True when something was
    /// written.
    fn finish(self, results: Vec<Written>, cx: &mut BatchCtx<'_>) -> crate::Result<bool> {
        let mut staged: Vec<(&FileJob<'_>, OsString)> = Vec::new();
        let mut failed: Option<crate::Error> = None;
        for (j, r) in self.jobs.iter().zip(results) {
            match r {
                Ok((tmp, mismatches)) => {
                    for (d, actual) in mismatches {
                        cx.bad_copy(j, d, actual)?;
                    }
                    match tmp {
                        Some(t) => staged.push((j, t)),
                        None => {
                            let m = cx
                                .missing
                                .entry(j.hash)
                                .or_insert((j.entry.version.size, 0));
                            m.1 += 1;
                            cx.missing_paths
                                .entry(j.hash)
                                .or_default()
                                .push(j.entry.version.path.clone());
                        }
                    }
                }
                // The first real error wins over the stops it caused.
                Err(e) => {
                    let stopped = matches!(failed, Some(crate::Error::Cancelled));
                    if failed.is_none() || (stopped && !matches!(e, crate::Error::Cancelled)) {
                        failed = Some(e);
                    }
                }
            }
        }
        let unlink_from = |staged: &[(&FileJob<'_>, OsString)]| {
            for (j, tmp) in staged {
                let _ = rustix::fs::unlinkat(&*j.dir, tmp, AtFlags::empty());
            }
        };
        if let Some(e) = failed {
            unlink_from(&staged);
            return Err(e);
        }
        if staged.is_empty() {
            return Ok(false);
        }
        if let Err(e) = rustix::fs::syncfs(&cx.dest.fd) {
            unlink_from(&staged);
            return Err(errno_err("cannot flush", &cx.dest.root)(e).into());
        }
        for (i, (j, tmp)) in staged.iter().enumerate() {
            let name = j.entry.rel.file_name().unwrap_or_default();
            let replace = j.entry.state == State::Replace;
            if let Err(err) = put_in_place(&j.dir, tmp, name, replace, &j.target) {
                unlink_from(&staged[i..]);
                return Err(err.into());
            }
            cx.report.files += 1;
            cx.report.bytes += j.entry.version.size;
            cx.progress.advance(1, 0);
        }
        Ok(true)
    }
}

impl BatchCtx<'_> {
    /// A copy on a disk did not match its hash: reported once, and moved
    /// aside when the catalog is the workstation's own.
    fn bad_copy(&mut self, j: &FileJob<'_>, d: usize, actual: ObjectId) -> crate::Result<()> {
        if !self.bad.insert((d, j.hash)) {
            return Ok(());
        }
        let (disk, hash) = (&self.disks[d], j.hash);
        let mut quarantined = false;
        if let Some(set) = self.workstation {
            self.catalog.remove_copies(disk.id(), &[hash])?;
            // Through the write gate: a disk in use by a sync, or of another
            // set, keeps its copy; the catalog no longer counts it anyway.
            quarantined = disk
                .claim(set)
                .and_then(|()| disk.quarantine(&hash))
                .is_ok();
        }
        self.progress.warn(
            Some(&j.entry.version.path),
            format!(
                "the copy on disk \"{}\" is damaged (expected {hash}, read {actual}){}",
                disk.label(),
                if quarantined {
                    "; it was moved aside and removed from the catalog"
                } else {
                    ""
                }
            ),
        );
        self.report.bad_copies.push(BadCopy {
            path: j.entry.version.path.clone(),
            disk: disk.label().to_string(),
            hash,
            actual,
            quarantined,
        });
        Ok(())
    }
}

/// Writes one file from `disk` (or an empty file) under a temp name in
/// `dir`, checks its hash, and sets its mode and mtime. `Ok(Ok(name))`: the
/// temp file, ready for the batch's flush; `Ok(Err(actual))`: the disk's
/// copy is damaged. The temp file never survives a mismatch or an error.
fn write_tmp(
    dir: &OwnedFd,
    e: &Entry,
    disk: Option<&Disk>,
    hash: ObjectId,
    target: &Path,
    progress: &Progress,
) -> crate::Result<Result<OsString, ObjectId>> {
    let tmp = tmp_name();
    let fd = rustix::fs::openat(
        dir,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(errno_err("cannot create", target))?;
    let mut out = File::from(fd);
    let result = (|| -> crate::Result<Result<(), ObjectId>> {
        let mut h = Hasher::default();
        if let Some(disk) = disk {
            let mut r = disk.open_object(&hash)?;
            crate::object::with_buffer(|buf| -> crate::Result<()> {
                loop {
                    progress.check()?;
                    let n = match r.read(buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(err) => {
                            return Err(Error::Io {
                                op: "cannot read from disk for",
                                path: target.to_path_buf(),
                                source: err,
                            }
                            .into());
                        }
                    };
                    h.update(&buf[..n]);
                    out.write_all(&buf[..n])
                        .map_err(io_err("cannot write", target))?;
                    progress.advance(0, n as u64);
                }
            })?;
        }
        let actual = h.finish();
        if actual != hash {
            return Ok(Err(actual));
        }
        // Start writing it out now, so the batch's flush finds it done.
        let _ = rustix::fs::fadvise(out.as_fd(), 0, None, rustix::fs::Advice::DontNeed);
        rustix::fs::fchmod(out.as_fd(), Mode::from_raw_mode(e.version.mode & 0o7777))
            .map_err(errno_err("cannot set the mode of", target))?;
        rustix::fs::futimens(out.as_fd(), &timestamps(e.version.mtime_ns))
            .map_err(errno_err("cannot set the time of", target))?;
        Ok(Ok(()))
    })();
    drop(out);
    match result {
        Ok(Ok(())) => Ok(Ok(tmp)),
        other => {
            let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
            other.map(|r| r.map(|()| OsString::new()))
        }
    }
}

/// One version of a file, when it was first seen, and the labels of the
/// disks that hold its content (sorted).
#[derive(Clone, Debug)]
pub struct Held {
    pub version: Version,
    /// When the snapshot that first holds it was taken.
    pub from: i64,
    pub disks: Vec<String>,
}

/// Every version of exactly `path`, oldest first, with the disks holding
/// each (for `coffer versions` and the window's version list).
pub fn versions_held(catalog: &Catalog, path: &Path) -> crate::Result<Vec<Held>> {
    let labels: HashMap<uuid::Uuid, String> = catalog
        .disks()?
        .into_iter()
        .map(|d| (d.id, d.label))
        .collect();
    let mut holders: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for c in catalog.copies()? {
        holders
            .entry(c.hash)
            .or_default()
            .push(labels.get(&c.disk_id).cloned().unwrap_or_default());
    }
    let times: HashMap<i64, i64> = catalog
        .snapshots()?
        .into_iter()
        .map(|s| (s.id, s.started_at))
        .collect();
    Ok(catalog
        .versions_of(path)?
        .into_iter()
        .map(|version| {
            let mut disks = version
                .hash
                .and_then(|h| holders.get(&h).cloned())
                .unwrap_or_default();
            disks.sort();
            Held {
                from: times
                    .get(&version.first_snapshot)
                    .copied()
                    .unwrap_or_default(),
                version,
                disks,
            }
        })
        .collect())
}

/// What to tell the user about a disk to plug in next, in the words the
/// job's notice, the CLI and the window all use:
/// `plug in "Blue" next: 3 files, 3.0 kB`.
pub fn plug_in_next(need: &DiskNeed) -> String {
    format!(
        "plug in \"{}\" next: {}, {}",
        need.label,
        crate::human::count(need.files, "file"),
        crate::human::bytes(need.bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_invalid_on_fat_are_found_and_fixed() {
        assert!(fat_invalid(OsStr::new("a:b")).is_some());
        assert!(fat_invalid(OsStr::new("end.")).is_some());
        assert!(fat_invalid(OsStr::new("CON.txt")).is_some());
        assert!(fat_invalid(OsStr::new("photo.jpg")).is_none());
        assert_eq!(fat_fix(OsStr::new("a:b?. ")), OsString::from("a_b_"));
        assert_eq!(
            numbered(OsStr::new("photo.jpg"), 2),
            OsString::from("photo (2).jpg")
        );
        assert_eq!(
            numbered(OsStr::new(".bashrc"), 3),
            OsString::from(".bashrc (3)")
        );
    }

    #[test]
    fn dot_dot_and_absolute_names_are_refused() {
        assert!(check_rel(Path::new("/x"), Path::new("a/../../etc")).is_err());
        assert!(check_rel(Path::new("/x"), Path::new("/etc")).is_err());
        assert!(check_rel(Path::new("/x"), Path::new("a/b")).is_ok());
    }

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            version: Version {
                id: 0,
                path: PathBuf::from("/src").join(path),
                kind,
                size: 0,
                mtime_ns: 0,
                inode: 0,
                mode: 0o644,
                target: None,
                hash: None,
                first_snapshot: 1,
                last_snapshot: 1,
            },
            rel: PathBuf::from(path),
            state: State::ToDo,
        }
    }

    #[test]
    fn case_collisions_are_refused_or_renamed() {
        let mk = || {
            vec![
                entry("Photo.JPG", Kind::File),
                entry("dir", Kind::Dir),
                entry("dir/x", Kind::File),
                entry("photo.jpg", Kind::File),
            ]
        };
        let mut e = mk();
        let err = handle_collisions(&mut e, false).unwrap_err();
        assert!(err.to_string().contains("/src/photo.jpg"), "{err}");
        let mut e = mk();
        let renamed = handle_collisions(&mut e, true).unwrap();
        assert_eq!(renamed.len(), 1);
        assert_eq!(e[3].rel, PathBuf::from("photo (2).jpg"));
        let mut e = vec![entry("a:b", Kind::Dir), entry("a:b/c", Kind::File)];
        handle_collisions(&mut e, true).unwrap();
        assert_eq!(e[1].rel, PathBuf::from("a_b/c"));
    }
}
