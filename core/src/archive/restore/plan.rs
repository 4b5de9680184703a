//! An archive restore as a plan: which archive files of the chain are read,
//! which member each file comes from (whole, or a delta on the content
//! before), what the destination already holds and what is done with it,
//! and the room it takes, all found before anything is written.
//! [`restore`](super::restore) builds a plan and executes that very plan;
//! `coffer archive restore --dry-run` shows one and stops there.
//!
//! Invariant: building a plan writes nothing, not even the destination
//! folder; a plan executes only into the destination it looked at.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::super::manifest::{DumpEntry, Entry, EntryKind, How, Manifest};
use super::super::stage::Step;
use super::super::verify::manifest_of;
use super::super::{Error, Found};
use super::{Put, RestoreOptions, corrupt};
use crate::object::ObjectId;
use crate::restore::dest::{Dest, file_type};
use crate::task::{Phase, Progress};

/// Everything an archive restore will do, before it does any of it.
#[derive(Debug, serde::Serialize)]
pub struct ArchivePlan {
    pub sequence: u64,
    /// Where the files go (resolved; made when the run starts if missing).
    pub dest: PathBuf,
    /// Whether the destination folder exists already.
    pub dest_exists: bool,
    /// Files to write, and the bytes of content they hold.
    pub files: u64,
    pub bytes: u64,
    /// Folders to make (or keep, when one is there already).
    pub dirs: u64,
    pub symlinks: u64,
    /// Dumps to restore (each one file, counted apart from `files`).
    pub dumps: u64,
    /// Room the restored files take (a sparse file's data only).
    pub room: u64,
    /// Free room at the destination, when it exists.
    pub free: Option<u64>,
    /// Regular files at the destination that are replaced (`--overwrite`).
    pub replaced: Vec<PathBuf>,
    /// Folders and symlinks already there as the archive holds them.
    pub kept: u64,
    /// The archive files read, in order.
    pub read: Vec<PathBuf>,
    #[serde(skip)]
    pub(super) run: Prepared,
}

/// What the run takes from the plan as it is, so it does what the plan said.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) dir: PathBuf,
    /// Archive `sequence` and its bases, full first, each with its
    /// manifest's SHA-256.
    pub(super) chain: Vec<(Found, Manifest, ObjectId)>,
    /// Indices of the entries and dumps of the top manifest restored.
    pub(super) selected: Vec<usize>,
    pub(super) dumps: Vec<usize>,
    pub(super) needs: Needs,
    pub(super) vols: Vols,
    /// Every path to restore, its kind, and what to do at it.
    pub(super) plain: Vec<(String, EntryKind, Put)>,
    pub(super) keep_special: bool,
    pub(super) dest_asked: PathBuf,
    pub(super) dest: Option<Dest>,
}

impl Prepared {
    /// The manifest restored from (the newest of the chain).
    pub(super) fn target(&self) -> &Manifest {
        // A chain always holds the archive asked for (checked when planned).
        &self.chain[self.chain.len() - 1].1
    }
}

/// Member path → step, per archive of the chain.
pub(super) type Needs = Vec<HashMap<String, Step>>;
/// Volume → files it provides, per archive of the chain.
pub(super) type Vols = Vec<BTreeMap<u32, Vec<String>>>;

/// Plans restoring the tree (or `paths`) of archive `opts.at` from `dir`
/// into `dest`, writing nothing. Fails as the run would: a path not in the
/// archive, a base or volume missing, a conflict at the destination, not
/// enough room there.
pub fn plan(
    dir: &Path,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> crate::Result<ArchivePlan> {
    progress.phase(Phase::Planning, 0, 0);
    let chain = chain(dir, opts)?;
    let target = &chain[chain.len() - 1].1;
    let (selected, dumps) = select(target, opts)?;
    let sel: Vec<&Entry> = selected.iter().map(|&i| &target.entries[i]).collect();
    let dmp: Vec<&DumpEntry> = dumps.iter().map(|&i| &target.dumps[i]).collect();
    let (needs, vols, bytes, room) = steps(&chain, &sel, &dmp)?;

    // The destination as it is now: open when it exists, else where it
    // will be made. One that is not there yet holds nothing.
    let dest_w = Dest::open(dest)?;
    let dest_root = match &dest_w {
        Some(d) => d.root().to_path_buf(),
        None => Dest::would_create(dest)?,
    };
    let mut plain: Vec<(String, EntryKind, Put)> = sel
        .iter()
        .map(|e| (e.path.clone(), e.kind, Put::New))
        .chain(
            dmp.iter()
                .map(|d| (d.member_path(), EntryKind::File, Put::New)),
        )
        .collect();
    let mut free = None;
    if let Some(d) = &dest_w {
        look(d, &sel, &mut plain, opts.overwrite, progress)?;
        free = d.free_bytes();
        if let Some(free) = free
            && room > free
        {
            return Err(Error::NoRoom {
                dest: dest_root,
                needed: room,
                free,
            }
            .into());
        }
    }
    let mut read = Vec::new();
    for (i, (found, _, _)) in chain.iter().enumerate() {
        for (&v, files) in vols.get(i).into_iter().flatten() {
            let path = found.volume_path(dir, v);
            if std::fs::symlink_metadata(&path).is_err() {
                return Err(Error::MissingVolume {
                    path,
                    files: files.clone(),
                }
                .into());
            }
            read.push(path);
        }
    }
    let count = |k: EntryKind| sel.iter().filter(|e| e.kind == k).count() as u64;
    let (files, dirs, symlinks) = (
        count(EntryKind::File),
        count(EntryKind::Dir),
        count(EntryKind::Symlink),
    );
    let plan = ArchivePlan {
        sequence: opts.at,
        dest: dest_root.clone(),
        dest_exists: dest_w.is_some(),
        files,
        bytes,
        dirs,
        symlinks,
        dumps: dumps.len() as u64,
        room,
        free,
        replaced: plain
            .iter()
            .filter(|(_, _, put)| *put == Put::Replace)
            .map(|(p, _, _)| dest_root.join(p))
            .collect(),
        kept: plain.iter().filter(|(_, _, put)| *put == Put::Keep).count() as u64,
        read,
        run: Prepared {
            dir: dir.to_path_buf(),
            chain,
            selected,
            dumps,
            needs,
            vols,
            plain,
            keep_special: opts.keep_special_bits,
            dest_asked: dest.to_path_buf(),
            dest: dest_w,
        },
    };
    progress.flush();
    Ok(plan)
}

/// The entries and dumps of `target` that `opts.paths` pick (all when
/// empty), as indices; a path that picks nothing is an error.
fn select(target: &Manifest, opts: &RestoreOptions) -> crate::Result<(Vec<usize>, Vec<usize>)> {
    let wanted: Vec<String> = opts
        .paths
        .iter()
        .map(|p| p.trim_matches('/').to_string())
        .collect();
    let picks = |path: &str| {
        wanted.is_empty()
            || wanted.iter().any(|w| {
                path == w
                    || path
                        .strip_prefix(w.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
    };
    let selected: Vec<usize> = (0..target.entries.len())
        .filter(|&i| picks(&target.entries[i].path))
        .collect();
    let dumps: Vec<usize> = (0..target.dumps.len())
        .filter(|&i| picks(&target.dumps[i].member_path()))
        .collect();
    for w in &wanted {
        let any = selected.iter().any(|&i| {
            let p = &target.entries[i].path;
            p == w || p.starts_with(&format!("{w}/"))
        }) || dumps
            .iter()
            .any(|&i| target.dumps[i].member_path().starts_with(w.as_str()));
        if !any {
            return Err(Error::NotInArchive {
                path: w.clone(),
                sequence: opts.at,
            }
            .into());
        }
    }
    Ok((selected, dumps))
}

/// What to do at each path the destination already holds: keep a folder
/// or the same symlink, replace a regular file when `overwrite`; anything
/// else is a conflict, and the restore is refused naming every one.
fn look(
    dest: &Dest,
    selected: &[&Entry],
    plain: &mut [(String, EntryKind, Put)],
    overwrite: bool,
    progress: &Progress,
) -> crate::Result<()> {
    let mut conflicts = Vec::new();
    for (p, kind, put) in plain.iter_mut() {
        progress.check()?;
        let rel = Path::new(p.as_str());
        let Some(d) = dest.dir(rel.parent().unwrap_or(Path::new("")), false)? else {
            continue;
        };
        let name = rel.file_name().unwrap_or_default();
        let Some(st) = d.stat(name) else { continue };
        use rustix::fs::FileType as T;
        let link_target = || {
            selected
                .iter()
                .find(|e| e.path == *p)
                .and_then(|e| e.target.clone())
        };
        *put = match (file_type(&st), *kind) {
            (T::Directory, EntryKind::Dir) => Put::Keep,
            (T::Symlink, EntryKind::Symlink)
                if d.link_target(name).map(PathBuf::into_os_string)
                    == link_target().map(OsString::from) =>
            {
                Put::Keep
            }
            (T::RegularFile, EntryKind::File | EntryKind::Symlink) if overwrite => Put::Replace,
            _ => {
                conflicts.push(dest.root().join(rel));
                continue;
            }
        };
    }
    if !conflicts.is_empty() {
        return Err(Error::Exists { paths: conflicts }.into());
    }
    Ok(())
}

/// Archive `at` and its bases, full first, each with its manifest's SHA-256.
fn chain(dir: &Path, opts: &RestoreOptions) -> crate::Result<Vec<(Found, Manifest, ObjectId)>> {
    let all = super::super::find(dir, opts.prefix.as_deref())?;
    let not_found = |sequence| Error::NotFound {
        dir: dir.to_path_buf(),
        sequence,
    };
    let mut hits = all.iter().filter(|f| f.sequence == opts.at);
    let top = hits.next().ok_or_else(|| not_found(opts.at))?;
    if let Some(other) = hits.next() {
        return Err(Error::NotAnArchive {
            path: other.first().to_path_buf(),
            message: format!(
                "several archives are numbered {} (prefixes {} and {}); pass --prefix",
                opts.at, top.prefix, other.prefix
            ),
        }
        .into());
    }
    let (m, b) = manifest_of(top.first())?;
    let mut chain = vec![(top.clone(), m, b)];
    // Bases are numbered below their incrementals (the manifest parser
    // checks it), so this ends.
    while let Some((f, m, _)) = chain.last() {
        let (Some(b), Some(bid)) = (m.base_sequence, m.base_id) else {
            break;
        };
        let shown = f.first().to_path_buf();
        let found = all
            .iter()
            .find(|x| x.sequence == b && x.prefix == f.prefix)
            .ok_or_else(|| not_found(b))?;
        let (bm, bb) = manifest_of(found.first())?;
        if bm.id != bid {
            return Err(Error::WrongBase {
                path: shown,
                sequence: b,
                expected: bid,
                found: bm.id,
            }
            .into());
        }
        chain.push((found.clone(), bm, bb));
    }
    chain.reverse();
    Ok(chain)
}

/// Each selected file's steps through the chain, newest first until one
/// holds it whole; with the bytes of content to read and the room the
/// restored files take (a sparse file's data only, when its content is
/// the sparse member's).
fn steps(
    chain: &[(Found, Manifest, ObjectId)],
    selected: &[&Entry],
    dumps: &[&DumpEntry],
) -> crate::Result<(Needs, Vols, u64, u64)> {
    let index: Vec<HashMap<&str, &Entry>> = chain
        .iter()
        .map(|(_, m, _)| m.entries.iter().map(|e| (e.path.as_str(), e)).collect())
        .collect();
    let mut needs: Needs = (0..chain.len()).map(|_| HashMap::new()).collect();
    let mut vols: Vols = (0..chain.len()).map(|_| BTreeMap::new()).collect();
    let mut total_bytes = 0u64;
    let mut room = 0u64;
    let n = chain.len().saturating_sub(1);
    for e in selected.iter().filter(|e| e.kind == EntryKind::File) {
        total_bytes = total_bytes.saturating_add(e.size);
        let mut i = n;
        let mut cur = *e;
        let mut last = Some((e.mode, Some(e.mtime_ns)));
        loop {
            let how = cur.how.unwrap_or(How::New);
            if let (true, Some(mp), Some(v)) = (how.stored_here(), cur.member_path(), cur.volume) {
                if let Some(vs) = vols.get_mut(i) {
                    vs.entry(v).or_default().push(e.path.clone());
                }
                if let Some(ns) = needs.get_mut(i) {
                    ns.insert(
                        mp,
                        Step {
                            file: e.path.clone(),
                            how,
                            sha: cur.sha256.clone().unwrap_or_default(),
                            base_sha: cur.delta.as_ref().map(|d| d.base_sha256.clone()),
                            size: cur.size,
                            sparse: cur.sparse.is_some() && how != How::Delta,
                            last: last.take(),
                        },
                    );
                }
            }
            if matches!(how, How::New | How::Whole) {
                let whole_here = cur.sparse.is_some() && same_since(&index, i, n, &e.path);
                room = room.saturating_add(if whole_here {
                    cur.stored_size()
                } else {
                    e.size
                });
                break;
            }
            let shown = chain
                .get(i)
                .map(|c| c.0.first().to_path_buf())
                .unwrap_or_default();
            if i == 0 {
                return Err(corrupt(
                    &shown,
                    format!("{} has no base content in the chain", e.path),
                    vec![e.path.clone()],
                )
                .into());
            }
            i -= 1;
            cur = match index.get(i).and_then(|x| x.get(e.path.as_str())) {
                Some(b) if b.kind == EntryKind::File => b,
                _ => {
                    return Err(corrupt(
                        &shown,
                        format!("{} is missing from its base", e.path),
                        vec![e.path.clone()],
                    )
                    .into());
                }
            };
        }
    }
    for d in dumps {
        total_bytes = total_bytes.saturating_add(d.size);
        room = room.saturating_add(d.size);
        if let Some(vs) = vols.get_mut(n) {
            vs.entry(d.volume).or_default().push(d.member_path());
        }
        if let Some(ns) = needs.get_mut(n) {
            ns.insert(
                d.member_path(),
                Step {
                    file: d.member_path(),
                    how: How::New,
                    sha: d.sha256.clone(),
                    base_sha: None,
                    size: d.size,
                    sparse: false,
                    last: Some((0o600, None)),
                },
            );
        }
    }
    Ok((needs, vols, total_bytes, room))
}

/// Whether archives `from + 1 ..= to` of the chain all hold `path` as the
/// same content (no delta on top of archive `from`'s).
fn same_since(index: &[HashMap<&str, &Entry>], from: usize, to: usize, path: &str) -> bool {
    (from + 1..=to).all(|k| {
        index
            .get(k)
            .and_then(|x| x.get(path))
            .is_some_and(|e| e.how == Some(How::Same))
    })
}
