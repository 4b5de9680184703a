//! Walking the sources, applying exclusions, detecting changes and hashing.
//!
//! A scan compares what it finds with the latest snapshot: a file whose
//! size, mtime (to the nanosecond) and inode are unchanged keeps its hash; a
//! file found under a new path with the inode, size and mtime of a known file
//! is a move and is not read again; everything else is hashed, on all cores.
//! A file that changes while it is read is read again, and reported if it
//! never settles.
//!
//! As it hashes, a scan journals each hash (and each copy it stages on a
//! disk), so that a scan killed half-way resumes: a file still as it was
//! when the killed scan read it is not read again.
//!
//! Invariant: what cannot be read (a folder, a file, a whole missing source)
//! is reported and carried forward unchanged, never recorded as deleted. A
//! scan that finds nothing changed writes no new snapshot.

use rustc_hash::{FxHashMap, FxHashSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::catalog::{
    Cached, Catalog, Journal, Kind, NewVersion, Note, ScanDelta, Staging, Version,
};
use crate::config::Profile;
use crate::disk::{CopyInError, Stage};
use crate::object::{self, ObjectId};
use crate::task::{Phase, Progress};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the profile has no sources; add a folder first (coffer source add PATH)")]
    NoSources,
    #[error("bad exclusion rules for {path}: {message}")]
    Rules { path: PathBuf, message: String },
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The snapshot that now describes the sources.
    pub snapshot: i64,
    /// False when nothing changed and the previous snapshot still holds.
    pub new_snapshot: bool,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub moved: u64,
    pub hashed_files: u64,
    pub hashed_bytes: u64,
    /// Files not read again because an interrupted scan had read them
    /// (unchanged since).
    pub resumed_files: u64,
}

/// One thing found on the workstation.
#[derive(Clone, Debug)]
struct Found {
    path: PathBuf,
    kind: Kind,
    size: u64,
    mtime_ns: i64,
    inode: u64,
    mode: u32,
    target: Option<PathBuf>,
}

impl Found {
    fn from_meta(
        path: PathBuf,
        meta: &std::fs::Metadata,
        kind: Kind,
        target: Option<PathBuf>,
    ) -> Found {
        Found {
            path,
            kind,
            size: if kind == Kind::File { meta.len() } else { 0 },
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            inode: meta.ino(),
            mode: meta.mode() & 0o7777,
            target,
        }
    }

    fn version(&self, hash: Option<ObjectId>) -> NewVersion {
        NewVersion {
            path: self.path.clone(),
            kind: self.kind,
            size: self.size,
            mtime_ns: self.mtime_ns,
            inode: self.inode,
            mode: self.mode,
            target: self.target.clone(),
            hash,
        }
    }

    /// Same content for sure, without reading: size, mtime and inode agree.
    fn same_content(&self, v: &Version) -> bool {
        v.kind == self.kind
            && v.size == self.size
            && v.mtime_ns == self.mtime_ns
            && v.inode == self.inode
    }

    fn same_everything(&self, v: &Version) -> bool {
        self.same_content(v) && v.mode == self.mode && v.target == self.target
    }
}

/// Builds the exclusion matcher of one source (shared with `archive`).
pub(crate) fn matcher(
    profile: &Profile,
    root: &Path,
    rules: &[String],
) -> Result<ignore::gitignore::Gitignore, Error> {
    let mut b = ignore::gitignore::GitignoreBuilder::new(root);
    for rule in profile.excludes.iter().chain(rules) {
        b.add_line(None, rule).map_err(|e| Error::Rules {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    b.build().map_err(|e| Error::Rules {
        path: root.to_path_buf(),
        message: e.to_string(),
    })
}

/// Takes a snapshot of the profile's sources into `catalog`.
pub fn scan(
    catalog: &mut Catalog,
    profile: &Profile,
    progress: &Progress,
) -> crate::Result<Report> {
    scan_into(catalog, profile, None, None, progress)
}

/// Takes a snapshot like [`scan`], and copies each file it reads into
/// `stage` (a disk's `tmp/`) on the same read, as far as the stage has room.
/// What it learns goes into `journal` (or a journal of its own).
pub fn scan_into(
    catalog: &mut Catalog,
    profile: &Profile,
    stage: Option<&Stage>,
    journal: Option<&Journal>,
    progress: &Progress,
) -> crate::Result<Report> {
    if profile.sources.is_empty() {
        return Err(Error::NoSources.into());
    }
    let own_journal = match journal {
        Some(_) => None,
        None => Some(Journal::start(catalog.path())?),
    };
    let journal = match (journal, &own_journal) {
        (Some(j), _) | (None, Some(j)) => j,
        (None, None) => return Err(Error::NoSources.into()),
    };
    let started_at = crate::now();
    // Coffer's own catalog must never be backed up while it is being written.
    let own_dir = catalog.path().parent().map(Path::to_path_buf);
    progress.phase(Phase::Scanning, 0, 0);

    // The sources are walked (on all cores) while this thread loads the
    // previous snapshot to compare with.
    let (walked, prev) = std::thread::scope(|s| {
        let walker = s.spawn(|| walk_sources(profile, own_dir.as_deref(), progress));
        let prev = catalog.latest_snapshot().and_then(|snap| {
            let versions = match &snap {
                Some(s) => catalog.versions_alive(s.id)?,
                None => Vec::new(),
            };
            Ok((snap, versions, catalog.scan_cache()?))
        });
        let walked = walker
            .join()
            .unwrap_or_else(|_| Err(crate::Error::Panic("the folder walk panicked".into())));
        (walked, prev)
    });
    let (prev_snap, prev, cache) = prev?;
    // A hash an interrupted scan took of a file still exactly as it was.
    let cached = |f: &Found| {
        cache
            .get(f.path.as_os_str().as_bytes())
            .filter(|c| (c.size, c.mtime_ns, c.inode) == (f.size, f.mtime_ns, f.inode))
            .map(|c| c.hash)
    };
    let Walked { found, unreadable } = walked?;
    let mut by_path: FxHashMap<&[u8], usize> =
        FxHashMap::with_capacity_and_hasher(prev.len(), Default::default());
    for (i, v) in prev.iter().enumerate() {
        by_path.insert(v.path.as_os_str().as_bytes(), i);
    }
    // Built only when a file turns up under a path the catalog does not know.
    let mut by_ident: Option<FxHashMap<(u64, u64, i64), ObjectId>> = None;

    // Decide, for each thing found, whether it is unchanged, known content
    // under new metadata, a move, or something to read.
    let mut report = Report::default();
    let mut kept = vec![false; prev.len()];
    let mut added: Vec<NewVersion> = Vec::new();
    let mut to_hash: Vec<Found> = Vec::new();
    for f in found {
        report.files += u64::from(f.kind == Kind::File);
        report.bytes += f.size;
        let known = by_path
            .get(f.path.as_os_str().as_bytes())
            .map(|&i| (i, &prev[i]));
        match known {
            Some((i, v)) if f.same_everything(v) => {
                kept[i] = true;
            }
            Some((_, v)) if f.kind != Kind::File => {
                report.changed += u64::from(v.kind != Kind::Dir);
                added.push(f.version(None));
            }
            Some((_, v)) if f.same_content(v) => {
                // Only the mode changed: a new version with the same content.
                report.changed += 1;
                added.push(f.version(v.hash));
            }
            Some(_) => {
                report.changed += 1;
                match cached(&f) {
                    Some(h) => {
                        report.resumed_files += 1;
                        if let Some(s) = stage {
                            s.note_path(&h, &f.path);
                        }
                        added.push(f.version(Some(h)));
                    }
                    None => to_hash.push(f),
                }
            }
            None if f.kind != Kind::File => {
                report.added += u64::from(f.kind == Kind::Symlink);
                added.push(f.version(None));
            }
            None => {
                let idents = by_ident.get_or_insert_with(|| {
                    prev.iter()
                        .filter(|v| v.kind == Kind::File)
                        .filter_map(|v| v.hash.map(|h| ((v.inode, v.size, v.mtime_ns), h)))
                        .collect()
                });
                match idents.get(&(f.inode, f.size, f.mtime_ns)) {
                    Some(h) => {
                        report.moved += 1;
                        added.push(f.version(Some(*h)));
                    }
                    None => {
                        report.added += 1;
                        match cached(&f) {
                            Some(h) => {
                                report.resumed_files += 1;
                                if let Some(s) = stage {
                                    s.note_path(&h, &f.path);
                                }
                                added.push(f.version(Some(h)));
                            }
                            None => to_hash.push(f),
                        }
                    }
                }
            }
        }
    }

    let hash_bytes: u64 = to_hash.iter().map(|f| f.size).sum();
    if let Some(s) = stage {
        s.expect(to_hash.iter().map(|f| f.size));
    }
    progress.phase(Phase::Hashing, to_hash.len() as u64, hash_bytes);
    // Largest first, so no core is left alone with a big file at the end.
    to_hash.sort_unstable_by_key(|f| std::cmp::Reverse(f.size));
    let hashed: Vec<(Found, Result<ObjectId, String>)> = to_hash
        .into_par_iter()
        // One file per task: sizes vary wildly, so every file is up for stealing.
        .with_max_len(1)
        .map(|mut f| {
            progress.current(&f.path);
            let r = hash_settled(&mut f, stage, journal, progress);
            progress.advance(1, 0);
            (f, r)
        })
        .collect();
    progress.check()?;
    // Everything learned is in the catalog before the snapshot is.
    journal.flush();
    if let Some(j) = own_journal {
        j.finish()?;
    }
    for (f, r) in hashed {
        match r {
            Ok(h) => {
                report.hashed_files += 1;
                report.hashed_bytes += f.size;
                added.push(f.version(Some(h)));
            }
            Err(msg) => {
                progress.warn(Some(&f.path), format!("{msg}; kept as it was"));
                if let Some(&i) = by_path.get(f.path.as_os_str().as_bytes()) {
                    kept[i] = true;
                }
            }
        }
    }

    // Versions not seen again ended in the previous snapshot, unless they lie
    // in something we could not read.
    let added_paths: FxHashSet<&[u8]> = added
        .iter()
        .map(|v| v.path.as_os_str().as_bytes())
        .collect();
    let mut ended = Vec::new();
    for (v, _) in prev.iter().zip(&kept).filter(|(_, k)| !**k) {
        let replaced = added_paths.contains(v.path.as_os_str().as_bytes());
        if !replaced
            && unreadable
                .iter()
                .any(|u| v.path.starts_with(u) && v.path != *u)
        {
            continue;
        }
        if !replaced && unreadable.contains(&v.path) {
            continue;
        }
        if !replaced && v.kind == Kind::File {
            report.removed += 1;
        }
        ended.push(v.id);
    }

    if let Some(p) = &prev_snap
        && added.is_empty()
        && ended.is_empty()
    {
        catalog.clear_scan_cache()?;
        report.snapshot = p.id;
        return Ok(report);
    }
    progress.phase(Phase::WritingCatalog, 1, 0);
    // The walk's order depends on thread timing; the catalog's does not.
    added.sort_by(|a, b| a.path.cmp(&b.path));
    let delta = ScanDelta {
        started_at,
        ended,
        added,
        files: report.files,
        bytes: report.bytes,
    };
    report.snapshot = catalog.apply_scan(prev_snap.map(|s| s.id), &delta)?;
    report.new_snapshot = true;
    Ok(report)
}

/// What walking the sources found.
#[derive(Default)]
struct Walked {
    found: Vec<Found>,
    /// Folders whose contents could not be listed: what they held stays as it was.
    unreadable: Vec<PathBuf>,
}

impl Walked {
    fn merge(&mut self, other: Walked) {
        self.found.extend(other.found);
        self.unreadable.extend(other.unreadable);
    }
}

/// Walks every source (symlinks are recorded, never followed), applying
/// the exclusions. Only a cancel is an error: what cannot be read is
/// warned about and listed as unreadable.
fn walk_sources(
    profile: &Profile,
    own_dir: Option<&Path>,
    progress: &Progress,
) -> crate::Result<Walked> {
    let mut all = Walked::default();
    for source in &profile.sources {
        progress.check()?;
        let root = &source.path;
        let meta = match std::fs::symlink_metadata(root) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => {
                progress.warn(
                    Some(root),
                    "source is no longer a folder; its files are kept as they were",
                );
                all.unreadable.push(root.clone());
                continue;
            }
            Err(e) => {
                progress.warn(
                    Some(root),
                    format!("source folder cannot be read ({e}); its files are kept as they were"),
                );
                all.unreadable.push(root.clone());
                continue;
            }
        };
        let rules = matcher(profile, root, &source.excludes)?;
        all.found
            .push(Found::from_meta(root.clone(), &meta, Kind::Dir, None));
        progress.advance(1, 0);
        let walk = Walk {
            rules: &rules,
            own_dir,
            progress,
        };
        all.merge(walk.dir(root)?);
    }
    Ok(all)
}

struct Walk<'a> {
    rules: &'a ignore::gitignore::Gitignore,
    own_dir: Option<&'a Path>,
    progress: &'a Progress,
}

impl Walk<'_> {
    /// Everything under `dir`, its subfolders walked in parallel. Entries
    /// are stat'ed relative to their folder (no path lookups).
    fn dir(&self, dir: &Path) -> crate::Result<Walked> {
        let mut w = Walked::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) => {
                self.progress
                    .warn(Some(dir), format!("cannot be read ({e}); kept as it was"));
                w.unreadable.push(dir.to_path_buf());
                return Ok(w);
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            self.progress.check()?;
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.progress
                        .warn(Some(dir), format!("cannot be read ({e}); kept as it was"));
                    w.unreadable.push(dir.to_path_buf());
                    break;
                }
            };
            let path = entry.path();
            let ft = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    self.progress
                        .warn(Some(&path), format!("cannot be read ({e}); kept as it was"));
                    w.unreadable.push(path);
                    continue;
                }
            };
            if self.own_dir == Some(path.as_path())
                || self.rules.matched(&path, ft.is_dir()).is_ignore()
            {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    self.progress
                        .warn(Some(&path), format!("cannot be read ({e}); kept as it was"));
                    w.unreadable.push(path);
                    continue;
                }
            };
            let f = if ft.is_dir() {
                subdirs.push(path.clone());
                Found::from_meta(path, &meta, Kind::Dir, None)
            } else if ft.is_symlink() {
                match std::fs::read_link(&path) {
                    Ok(t) => Found::from_meta(path, &meta, Kind::Symlink, Some(t)),
                    Err(e) => {
                        self.progress.warn(
                            Some(&path),
                            format!("cannot read the link ({e}); kept as it was"),
                        );
                        w.unreadable.push(path);
                        continue;
                    }
                }
            } else if ft.is_file() {
                Found::from_meta(path, &meta, Kind::File, None)
            } else {
                self.progress.warn(
                    Some(&path),
                    "not a regular file, folder or symlink; skipped",
                );
                continue;
            };
            self.progress.advance(1, f.size);
            w.found.push(f);
        }
        let below: Vec<crate::Result<Walked>> = subdirs.par_iter().map(|d| self.dir(d)).collect();
        for b in below {
            w.merge(b?);
        }
        Ok(w)
    }
}

/// Hashes a file, reading it again if it changes while read. Updates `f`
/// with the metadata the hash belongs to. With a stage that has room, the
/// same read also copies the file there.
fn hash_settled(
    f: &mut Found,
    stage: Option<&Stage>,
    journal: &Journal,
    progress: &Progress,
) -> Result<ObjectId, String> {
    const TRIES: usize = 3;
    let mut tries = 0;
    while tries < TRIES {
        let mut file = std::fs::File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&f.path)
            .map_err(|e| format!("cannot be read ({e})"))?;
        let before = file
            .metadata()
            .map_err(|e| format!("cannot be read ({e})"))?;
        if !before.is_file() {
            return Err("is no longer a regular file".into());
        }
        let each = |n: u64| {
            progress.advance(0, n);
            progress.check()
        };
        let (hash, n, staged) = match stage.filter(|s| s.reserve(before.len())) {
            Some(stage) => {
                // Journaled first: a copy a kill interrupts can be resumed.
                let tag = crate::disk::new_tag();
                journal.note(Note::Staging {
                    disk: stage.disk().id(),
                    staging: Staging {
                        name: tag.clone(),
                        path: f.path.clone(),
                        size: before.len(),
                        mtime_ns: before.mtime() * 1_000_000_000 + before.mtime_nsec(),
                        inode: before.ino(),
                    },
                });
                match stage.disk().stage_as(&tag, &mut file, each) {
                    Ok(p) => (p.hash, p.size, Some((stage, p))),
                    Err(e) => {
                        stage.unreserve(before.len());
                        match e {
                            CopyInError::Read(e) => return Err(format!("cannot be read ({e})")),
                            CopyInError::Other(crate::Error::Cancelled) => {
                                return Err("cancelled".into());
                            }
                            CopyInError::Other(_) => {
                                // The disk failed: stop staging and just
                                // hash. The sync that follows meets the
                                // disk's trouble and reports it.
                                stage.stop();
                                continue;
                            }
                        }
                    }
                }
            }
            None => {
                let (hash, n) = object::hash_reader(&mut file, |n| {
                    each(n).map_err(|_| std::io::Error::other("cancelled"))
                })
                .map_err(|e| format!("cannot be read ({e})"))?;
                (hash, n, None)
            }
        };
        tries += 1;
        let after =
            std::fs::symlink_metadata(&f.path).map_err(|e| format!("vanished while read ({e})"));
        let settled = after.as_ref().is_ok_and(|after| {
            after.len() == n
                && before.len() == n
                && after.mtime() == before.mtime()
                && after.mtime_nsec() == before.mtime_nsec()
                && after.ino() == before.ino()
        });
        if let Some((stage, p)) = staged {
            if settled {
                stage.keep(p, Some(&f.path));
            } else {
                stage.unreserve(p.size);
                stage.disk().discard_pending(p);
            }
        }
        let after = after?;
        if settled {
            *f = Found::from_meta(f.path.clone(), &after, Kind::File, None);
            journal.note(Note::Hashed {
                path: f.path.clone(),
                cached: Cached {
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                    inode: f.inode,
                    hash,
                },
            });
            return Ok(hash);
        }
    }
    Err(format!("kept changing while it was read ({TRIES} tries)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use std::fs;

    struct Fixture {
        _dir: tempfile::TempDir,
        src: PathBuf,
        cat: Catalog,
        profile: Profile,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("a.txt"), b"alpha").unwrap();
        fs::write(src.join("sub/b.txt"), b"beta").unwrap();
        fs::write(src.join("skip.tmp"), b"tmp").unwrap();
        let cat = Catalog::open(&dir.path().join("data/catalog.sqlite")).unwrap();
        let profile = Profile {
            set_id: uuid::Uuid::nil(),
            name: "t".into(),
            basepath: dir.path().to_path_buf(),
            copies: 2,
            sources: vec![Source {
                path: src.clone(),
                excludes: vec!["*.tmp".into()],
                copies: None,
                priority: 0,
                outside_basepath: false,
            }],
            excludes: vec![],
            dumps: vec![],
        };
        Fixture {
            _dir: dir,
            src,
            cat,
            profile,
        }
    }

    fn run(fx: &mut Fixture) -> Report {
        scan(&mut fx.cat, &fx.profile, &Progress::silent()).unwrap()
    }

    fn paths(fx: &Fixture, snap: i64) -> Vec<String> {
        fx.cat
            .versions_in(snap)
            .unwrap()
            .into_iter()
            .map(|v| v.path.strip_prefix(&fx.src).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn first_scan_hashes_everything_not_excluded() {
        let mut fx = fixture();
        let r = run(&mut fx);
        assert_eq!((r.files, r.hashed_files, r.new_snapshot), (2, 2, true));
        assert_eq!(
            paths(&fx, r.snapshot),
            vec!["", "a.txt", "sub", "sub/b.txt"]
        );
    }

    #[test]
    fn unchanged_tree_reads_nothing_and_writes_no_snapshot() {
        let mut fx = fixture();
        let first = run(&mut fx);
        let again = run(&mut fx);
        assert_eq!(
            (again.hashed_files, again.new_snapshot, again.snapshot),
            (0, false, first.snapshot)
        );
    }

    #[test]
    fn changes_are_detected_and_old_versions_kept() {
        let mut fx = fixture();
        let first = run(&mut fx);
        fs::write(fx.src.join("a.txt"), b"alpha two").unwrap();
        fs::remove_file(fx.src.join("sub/b.txt")).unwrap();
        fs::write(fx.src.join("c.txt"), b"gamma").unwrap();
        let second = run(&mut fx);
        assert_eq!(
            (
                second.changed,
                second.removed,
                second.added,
                second.hashed_files
            ),
            (1, 1, 1, 2)
        );
        assert!(paths(&fx, first.snapshot).contains(&"sub/b.txt".to_string()));
        assert!(!paths(&fx, second.snapshot).contains(&"sub/b.txt".to_string()));
        let a = fx.cat.versions_of(&fx.src.join("a.txt")).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].hash, Some(ObjectId::of(b"alpha")));
        assert_eq!(a[1].hash, Some(ObjectId::of(b"alpha two")));
    }

    #[test]
    fn a_rename_is_recognised_without_reading() {
        let mut fx = fixture();
        run(&mut fx);
        fs::rename(fx.src.join("sub/b.txt"), fx.src.join("b-moved.txt")).unwrap();
        let r = run(&mut fx);
        assert_eq!((r.moved, r.hashed_files, r.removed), (1, 0, 1));
    }

    #[test]
    fn same_size_same_second_edit_is_caught_by_nanoseconds() {
        let mut fx = fixture();
        run(&mut fx);
        let p = fx.src.join("a.txt");
        let before = fs::metadata(&p).unwrap();
        fs::write(&p, b"ALPHA").unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        let t = before.modified().unwrap() + std::time::Duration::from_nanos(1);
        f.set_modified(t).unwrap();
        let r = run(&mut fx);
        assert_eq!((r.changed, r.hashed_files), (1, 1));
    }

    #[test]
    fn symlinks_are_recorded_not_followed() {
        let mut fx = fixture();
        std::os::unix::fs::symlink("/etc", fx.src.join("etc-link")).unwrap();
        let r = run(&mut fx);
        let v = fx.cat.versions_in(r.snapshot).unwrap();
        let link = v.iter().find(|v| v.path.ends_with("etc-link")).unwrap();
        assert_eq!(
            (link.kind, link.target.as_deref()),
            (Kind::Symlink, Some(Path::new("/etc")))
        );
        assert_eq!(r.files, 2);
    }

    #[test]
    fn unreadable_folder_is_reported_and_kept() {
        if rustix::process::geteuid().is_root() {
            // Root reads everything; the "missing source" test covers the rule.
            return;
        }
        let mut fx = fixture();
        run(&mut fx);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(fx.src.join("sub"), fs::Permissions::from_mode(0o000)).unwrap();
        let progress = Progress::silent();
        let r = scan(&mut fx.cat, &fx.profile, &progress).unwrap();
        fs::set_permissions(fx.src.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(r.removed, 0);
        assert!(!progress.warnings().is_empty());
    }

    #[test]
    fn missing_source_is_reported_not_deleted() {
        let mut fx = fixture();
        let first = run(&mut fx);
        fs::rename(&fx.src, fx.src.with_extension("away")).unwrap();
        let progress = Progress::silent();
        let r = scan(&mut fx.cat, &fx.profile, &progress).unwrap();
        assert_eq!(
            (r.removed, r.snapshot, r.new_snapshot),
            (0, first.snapshot, false)
        );
        assert!(progress.warnings()[0].message.contains("cannot be read"));
    }
}
