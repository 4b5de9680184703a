//! One scan, in two steps: [`Pass::begin`] walks the sources and compares
//! what it finds with the previous snapshot (and with what an interrupted
//! scan journaled), so the files to read are known; [`Pass::finish`] reads
//! and hashes them, on all cores, then records the snapshot. A sync acts in
//! between (it commits what an interrupted sync left, before new copies
//! start filling the disk's cache).
//!
//! Invariant: a file is read again only if its size, mtime or inode differ
//! from what the previous snapshot or the journal recorded.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::hash::hash_settled;
use super::walk::{Walked, attach_xattrs, walk_sources};
use super::{Error, Found, Report};
use crate::catalog::{
    Cached, Catalog, Journal, Kind, NewVersion, Note, ScanDelta, Snapshot, Version,
};
use crate::config::Profile;
use crate::disk::Stage;
use crate::object::ObjectId;
use crate::task::{Phase, Progress};

/// A scan between its walk and its reads.
pub struct Pass<'a> {
    stage: Option<&'a Stage<'a>>,
    journal: Option<&'a Journal>,
    own_journal: Option<Journal>,
    progress: &'a Progress,
    started_at: i64,
    prev_snap: Option<Snapshot>,
    prev: Vec<Version>,
    /// The catalog's attribute sets, by id: what `prev` refers to.
    digests: FxHashMap<i64, [u8; 32]>,
    /// Versions of the previous snapshot seen again unchanged.
    kept: Vec<bool>,
    added: Vec<NewVersion>,
    /// Files to read, with their version in the previous snapshot.
    to_hash: ToRead,
    unreadable: Vec<std::path::PathBuf>,
    report: Report,
}

impl<'a> Pass<'a> {
    /// Walks the sources and decides what must be read.
    pub fn begin(
        catalog: &Catalog,
        profile: &'a Profile,
        stage: Option<&'a Stage<'a>>,
        journal: Option<&'a Journal>,
        progress: &'a Progress,
    ) -> crate::Result<Pass<'a>> {
        if profile.sources.is_empty() {
            return Err(Error::NoSources.into());
        }
        let own_journal = match journal {
            Some(_) => None,
            None => Some(Journal::start(catalog.path())?),
        };
        let started_at = crate::now();
        // Coffer's own catalog must never be backed up while it is written.
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
                let digests = catalog.xattr_digests()?.into_iter().collect();
                Ok((snap, versions, catalog.scan_cache()?, digests))
            });
            let walked = walker
                .join()
                .unwrap_or_else(|_| Err(crate::Error::Panic("the folder walk panicked".into())));
            (walked, prev)
        });
        let (prev_snap, prev, cache, digests) = prev?;
        let Walked { found, unreadable } = walked?;
        let mut pass = Pass {
            stage,
            journal,
            own_journal,
            progress,
            started_at,
            prev_snap,
            kept: vec![false; prev.len()],
            prev,
            digests,
            added: Vec::new(),
            to_hash: Vec::new(),
            unreadable,
            report: Report::default(),
        };
        pass.compare(found, &cache);
        if let Some(s) = stage {
            s.expect(pass.to_hash.iter().map(|(f, _, _)| f.size));
        }
        Ok(pass)
    }

    /// Decides, for each thing found, whether it is unchanged, known
    /// content under new metadata, a move, content an interrupted scan
    /// read, or something to read.
    fn compare(&mut self, mut found: Vec<Found>, cache: &FxHashMap<Vec<u8>, Cached>) {
        let mut by_path: FxHashMap<&[u8], usize> =
            FxHashMap::with_capacity_and_hasher(self.prev.len(), Default::default());
        for (i, v) in self.prev.iter().enumerate() {
            by_path.insert(v.path.as_os_str().as_bytes(), i);
        }
        // The attributes of what did not change since the version before
        // (same kind, device, inode and ctime) are taken as recorded.
        let prev = &self.prev;
        attach_xattrs(
            &mut found,
            |f| {
                let v = &prev[*by_path.get(f.path.as_os_str().as_bytes())?];
                (v.kind == f.kind
                    && v.inode == f.inode
                    && v.attrs.dev == f.attrs.dev
                    && v.attrs.ctime_ns.is_some()
                    && v.attrs.ctime_ns == f.attrs.ctime_ns)
                    .then_some(v.attrs.xattrs)
            },
            self.progress,
        );
        // Built only when a file turns up under a path the catalog does not know.
        let mut by_ident: Option<FxHashMap<(u64, u64, i64), ObjectId>> = None;
        let mut to_read: Vec<(Found, Option<usize>)> = Vec::new();
        for f in found {
            self.report.files += u64::from(f.kind == Kind::File);
            self.report.bytes += f.size;
            let known = by_path.get(f.path.as_os_str().as_bytes()).copied();
            match known.map(|i| (i, &self.prev[i])) {
                Some((i, v)) if f.live && v.kind == Kind::File => {
                    // Its log may have changed while its main file did not.
                    to_read.push((f, Some(i)));
                }
                Some((i, v)) if f.same_everything(v, &self.digests) => self.kept[i] = true,
                Some((_, v)) if f.kind != Kind::File => {
                    self.report.changed += u64::from(v.kind != Kind::Dir);
                    self.added.push(f.version(None));
                }
                Some((_, v)) if f.same_content(v) => {
                    // Only the mode, owner, links or attributes changed: a
                    // new version, same content. A version an older Coffer
                    // recorded (no owner) is only completed, not changed.
                    self.report.changed += u64::from(v.attrs.uid.is_some());
                    let h = v.hash;
                    self.added.push(f.version(h));
                }
                Some((i, _)) => {
                    self.report.changed += 1;
                    to_read.push((f, Some(i)));
                }
                None if f.kind != Kind::File => {
                    self.report.added += u64::from(f.kind == Kind::Symlink);
                    self.added.push(f.version(None));
                }
                None => {
                    let prev = &self.prev;
                    let idents = by_ident.get_or_insert_with(|| {
                        prev.iter()
                            .filter(|v| v.kind == Kind::File)
                            .filter_map(|v| v.hash.map(|h| ((v.inode, v.size, v.mtime_ns), h)))
                            .collect()
                    });
                    match idents.get(&(f.inode, f.size, f.mtime_ns)) {
                        Some(h) => {
                            self.report.moved += 1;
                            self.added.push(f.version(Some(*h)));
                        }
                        None => {
                            self.report.added += 1;
                            to_read.push((f, None));
                        }
                    }
                }
            }
        }
        // What an interrupted scan already read is not read again.
        for (f, prev) in to_read {
            if f.live {
                self.to_hash.push(unread(f, prev));
                continue;
            }
            let hit = cache
                .get(f.path.as_os_str().as_bytes())
                .filter(|c| (c.size, c.mtime_ns, c.inode) == (f.size, f.mtime_ns, f.inode))
                .map(|c| c.hash);
            match hit {
                Some(h) => {
                    self.report.resumed_files += 1;
                    if let Some(s) = self.stage {
                        s.note_path(&h, &f.path);
                    }
                    self.added.push(f.version(Some(h)));
                }
                None => self.to_hash.push(unread(f, prev)),
            }
        }
    }

    /// Reads and hashes what must be read, then records the snapshot (none
    /// when nothing changed).
    pub fn finish(mut self, catalog: &mut Catalog) -> crate::Result<Report> {
        let (stage, progress) = (self.stage, self.progress);
        let journal = match (self.journal, &self.own_journal) {
            (Some(j), _) | (None, Some(j)) => j,
            (None, None) => return Err(Error::NoSources.into()),
        };
        let to_hash = std::mem::take(&mut self.to_hash);
        // Consistent copies of live databases are made here, on the
        // workstation, beside the catalog.
        let scratch = catalog
            .path()
            .parent()
            .unwrap_or(Path::new("."))
            .join("tmp");
        let hash_bytes: u64 = to_hash.iter().map(|(f, _, _)| f.size).sum();
        progress.phase(Phase::Hashing, to_hash.len() as u64, hash_bytes);
        // The other links of a file read once are not read again.
        let (to_hash, links) = split_links(to_hash);
        // Each file's hash goes into its own row: one list at a time in
        // memory, never a second one as large.
        let hash_all = |mut list: ToRead| {
            // Largest first, so no core is left alone with a big file at the end.
            list.sort_unstable_by_key(|(f, _, _)| std::cmp::Reverse(f.size));
            list.par_iter_mut()
                // One file per task: sizes vary wildly, so every file is up for stealing.
                .with_max_len(1)
                .for_each(|(f, _, r)| {
                    progress.current(&f.path);
                    *r = hash_settled(f, stage, journal, &scratch, progress);
                    progress.advance(1, 0);
                });
            list
        };
        let mut hashed = hash_all(to_hash);
        let (linked, again) = same_links(&hashed, links, stage, journal, progress);
        // Counted below as read; they took the hash of a link that was.
        let (linked_files, linked_bytes) = (
            linked.len() as u64,
            linked.iter().map(|(f, _, _)| f.size).sum::<u64>(),
        );
        hashed.extend(linked);
        hashed.extend(hash_all(again));
        progress.check()?;
        // Everything learned is in the catalog before the snapshot is.
        journal.flush();
        if let Some(j) = self.own_journal.take() {
            j.finish()?;
        }
        // One allocation of the final size: doubling would hold the old
        // and the new buffer at once (tens of MiB at 200,000 files).
        self.added.reserve(hashed.len());
        for (f, prev, r) in hashed {
            match r {
                // A live database read again and found as it was.
                Ok(h)
                    if prev.is_some_and(|i| {
                        self.prev[i].hash == Some(h)
                            && f.same_everything(&self.prev[i], &self.digests)
                    }) =>
                {
                    if let Some(i) = prev {
                        self.kept[i] = true;
                    }
                }
                Ok(h) => {
                    self.report.hashed_files += 1;
                    self.report.hashed_bytes += f.size;
                    self.added.push(f.version(Some(h)));
                }
                Err(msg) => {
                    progress.warn(Some(&f.path), format!("{msg}; kept as it was"));
                    if let Some(i) = prev {
                        self.kept[i] = true;
                    }
                }
            }
        }
        self.report.hashed_files = self.report.hashed_files.saturating_sub(linked_files);
        self.report.hashed_bytes = self.report.hashed_bytes.saturating_sub(linked_bytes);
        self.record(catalog)
    }

    /// Ends the versions not seen again and records the snapshot.
    fn record(mut self, catalog: &mut Catalog) -> crate::Result<Report> {
        // Versions not seen again ended in the previous snapshot, unless
        // they lie in something that could not be read.
        let added_paths: FxHashSet<&[u8]> = self
            .added
            .iter()
            .map(|v| v.path.as_os_str().as_bytes())
            .collect();
        let mut ended = Vec::new();
        for (v, _) in self.prev.iter().zip(&self.kept).filter(|(_, k)| !**k) {
            let replaced = added_paths.contains(v.path.as_os_str().as_bytes());
            let unreadable = self.unreadable.iter().any(|u| v.path.starts_with(u));
            if !replaced && unreadable {
                continue;
            }
            if !replaced && v.kind == Kind::File {
                self.report.removed += 1;
            }
            ended.push(v.id);
        }
        drop(added_paths);
        let mut report = self.report;
        if let Some(p) = &self.prev_snap
            && self.added.is_empty()
            && ended.is_empty()
        {
            catalog.clear_scan_cache()?;
            report.snapshot = p.id;
            return Ok(report);
        }
        self.progress.phase(Phase::WritingCatalog, 1, 0);
        // The walk's order depends on thread timing; the catalog's does not.
        let mut added = self.added;
        added.sort_by(|a, b| a.path.cmp(&b.path));
        let uids = added.iter().filter_map(|v| v.attrs.uid).collect();
        let gids = added.iter().filter_map(|v| v.attrs.gid).collect();
        let delta = ScanDelta {
            started_at: self.started_at,
            ended,
            owners: crate::meta::owner::names_of(&uids, &gids),
            added,
            files: report.files,
            bytes: report.bytes,
        };
        report.snapshot = catalog.apply_scan(self.prev_snap.map(|s| s.id), &delta)?;
        report.new_snapshot = true;
        Ok(report)
    }
}

/// A file read, with its version in the previous snapshot and its hash.
type Hashed = (Found, Option<usize>, Result<ObjectId, String>);

/// Files to read, each with its version in the previous snapshot and a
/// place for its hash (see [`unread`]).
type ToRead = Vec<Hashed>;

/// A file not read yet.
fn unread(f: Found, prev: Option<usize>) -> Hashed {
    (f, prev, Err(String::new()))
}

/// Sets apart the files to read whose device and inode another one to read
/// shares (hard links): only the first of each is read.
fn split_links(mut list: ToRead) -> (ToRead, ToRead) {
    let mut seen: FxHashSet<(u64, u64)> = FxHashSet::default();
    // In place: the first link of each inode stays where it is.
    let rest = list
        .extract_if(.., |(f, _, _)| {
            f.link_key().is_some_and(|k| !f.live && !seen.insert(k))
        })
        .collect();
    (list, rest)
}

/// The other links of a file that was read take its hash when they still
/// have the size and mtime it had when read (one inode: one content); the
/// rest are read like any file.
fn same_links(
    hashed: &[Hashed],
    links: ToRead,
    stage: Option<&Stage<'_>>,
    journal: &Journal,
    progress: &Progress,
) -> (Vec<Hashed>, ToRead) {
    if links.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let read: FxHashMap<(u64, u64), (u64, i64, ObjectId)> = hashed
        .iter()
        .filter_map(|(f, _, r)| Some((f.link_key()?, (f.size, f.mtime_ns, *r.as_ref().ok()?))))
        .collect();
    let (mut done, mut again) = (Vec::new(), Vec::new());
    for (f, prev, r) in links {
        match f.link_key().and_then(|k| read.get(&k)) {
            Some(&(size, mtime_ns, h)) if size == f.size && mtime_ns == f.mtime_ns => {
                if let Some(s) = stage {
                    s.note_path(&h, &f.path);
                }
                journal.note(Note::Hashed {
                    path: f.path.clone(),
                    cached: Cached {
                        size,
                        mtime_ns,
                        inode: f.inode,
                        hash: h,
                    },
                });
                progress.advance(1, size);
                done.push((f, prev, Ok(h)));
            }
            _ => again.push((f, prev, r)),
        }
    }
    (done, again)
}
