//! Restoring from archives: archive N (with its chain of bases) or some of
//! its paths, into a folder, through the destination writer restores from
//! disks use.
//!
//! The chain's manifests say which member of which volume of which archive
//! each file needs (whole, or a delta on the content before). The
//! destination is checked first; then every needed volume is read to its
//! end through the member reader (the checks of `archive verify`), the
//! files it needs staged in a private folder inside the destination
//! (deltas applied as they stream). Only when every volume was read and
//! checked do files take their names, folders appear, and modes and times
//! get set; special bits only when asked.
//!
//! Invariant: extraction never writes outside the destination; when a
//! restore fails before files take their names, the destination holds
//! exactly what it held before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::manifest::{DumpEntry, Entry, EntryKind, How, Manifest};
use super::member::{self, Reading, Want};
use super::open;
use super::stage::{Staged, Stager, Step};
use super::verify::manifest_of;
use super::{Error, Found};
use crate::object::ObjectId;
use crate::restore::dest::{Dest, Dir, Staging, file_type, move_in};
use crate::task::{Phase, Progress};

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Sequence number to restore.
    pub at: u64,
    /// Prefix of the archives; needed only when the folder holds several.
    pub prefix: Option<String>,
    /// Relative paths (files or folders) as listed in the manifest; all when empty.
    pub paths: Vec<String>,
    /// Replace existing files (never folders).
    pub overwrite: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default, as GNU tar
    /// does for ordinary users).
    pub keep_special_bits: bool,
}

/// A dump restored, with the command that loads it back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RestoredDump {
    pub name: String,
    pub path: PathBuf,
    pub load_command: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreReport {
    pub sequence: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// The archive files read, in order.
    pub read: Vec<PathBuf>,
    pub dumps: Vec<RestoredDump>,
}

/// What to do at a path of the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Put {
    New,
    /// Replace the regular file there (the user chose so).
    Replace,
    /// The folder, or the same symlink, is already there.
    Keep,
}

/// Folders this restore made for the destination itself; removed again
/// (when still empty) unless the restore succeeds.
struct MadeDirs {
    dirs: Vec<PathBuf>,
    keep: bool,
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        if !self.keep {
            for d in self.dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

fn corrupt(path: &Path, message: impl std::fmt::Display, files: Vec<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
        files,
    }
}

/// Archive `at` and its bases, full first, each with its manifest's SHA-256.
fn chain(dir: &Path, opts: &RestoreOptions) -> crate::Result<Vec<(Found, Manifest, ObjectId)>> {
    let all = super::find(dir, opts.prefix.as_deref())?;
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

/// Restores the tree (or `paths`) of archive `at` from `dir` into `dest`.
pub fn restore(
    dir: &Path,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> crate::Result<RestoreReport> {
    let chain = chain(dir, opts)?;
    let Some((_, target, _)) = chain.last() else {
        return Err(Error::NotFound {
            dir: dir.to_path_buf(),
            sequence: opts.at,
        }
        .into());
    };

    // What to restore.
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
    let selected: Vec<&Entry> = target.entries.iter().filter(|e| picks(&e.path)).collect();
    let dumps: Vec<&DumpEntry> = target
        .dumps
        .iter()
        .filter(|d| picks(&d.member_path()))
        .collect();
    for w in &wanted {
        let any = selected
            .iter()
            .any(|e| e.path == *w || e.path.starts_with(&format!("{w}/")))
            || dumps
                .iter()
                .any(|d| d.member_path().starts_with(w.as_str()));
        if !any {
            return Err(Error::NotInArchive {
                path: w.clone(),
                sequence: opts.at,
            }
            .into());
        }
    }

    let (needs, vols, total_bytes, room) = plan(&chain, &selected, &dumps)?;

    // Check the destination before writing anything.
    let (dest_w, made) = Dest::create(dest)?;
    let mut made = MadeDirs {
        dirs: made,
        keep: false,
    };
    let dest_root = dest_w.root().to_path_buf();
    let mut plain: Vec<(String, EntryKind, Put)> = selected
        .iter()
        .map(|e| (e.path.clone(), e.kind, Put::New))
        .chain(
            dumps
                .iter()
                .map(|d| (d.member_path(), EntryKind::File, Put::New)),
        )
        .collect();
    let mut conflicts = Vec::new();
    for (p, kind, put) in &mut plain {
        progress.check()?;
        let rel = Path::new(p.as_str());
        let Some(d) = dest_w.dir(rel.parent().unwrap_or(Path::new("")), false)? else {
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
            (T::RegularFile, EntryKind::File | EntryKind::Symlink) if opts.overwrite => {
                Put::Replace
            }
            _ => {
                conflicts.push(dest_root.join(rel));
                continue;
            }
        };
    }
    if !conflicts.is_empty() {
        return Err(Error::Exists { paths: conflicts }.into());
    }
    if let Some(free) = dest_w.free_bytes()
        && room > free
    {
        return Err(Error::NoRoom {
            dest: dest_root,
            needed: room,
            free,
        }
        .into());
    }
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
        }
    }

    // Read every needed volume to its end, staging what it holds for us.
    progress.phase(Phase::Restoring, plain.len() as u64, total_bytes);
    let mut report = RestoreReport {
        sequence: opts.at,
        ..RestoreReport::default()
    };
    let staging = dest_w.staging()?;
    let keep_special = opts.keep_special_bits;
    let mut staged: HashMap<String, Staged> = HashMap::new();
    for (i, (found, m, digest)) in chain.iter().enumerate() {
        let Some(needs) = needs.get(i).filter(|n| !n.is_empty()) else {
            continue;
        };
        let mut done: HashSet<String> = HashSet::new();
        for &v in vols.get(i).into_iter().flat_map(BTreeMap::keys) {
            let path = found.volume_path(dir, v);
            let file = open::open_file(&path)?;
            let mut sink = Stager {
                archive: &path,
                dest_root: &dest_root,
                staging: staging.dir(),
                needs,
                staged: &mut staged,
                done: &mut done,
                pending: None,
                keep_special,
                progress,
            };
            let read = member::read_volume(
                file,
                &path,
                Want::Exactly(m, *digest),
                v,
                &mut sink,
                progress,
                Reading::Restore,
            );
            if let Err(crate::Error::Archive(Error::ManifestDiffers { .. })) = &read
                && let Ok((other, _)) = manifest_of(&path)
                && other.id != m.id
            {
                // A volume of another archive under this one's name.
                return Err(Error::WrongBase {
                    path,
                    sequence: m.sequence,
                    expected: m.id,
                    found: other.id,
                }
                .into());
            }
            read?;
            report.read.push(path);
        }
        // Every member asked of this archive must have been found.
        for (mp, step) in needs {
            if !done.contains(mp) {
                return Err(corrupt(
                    found.first(),
                    format!("member for {} not found", step.file),
                    vec![step.file.clone()],
                )
                .into());
            }
        }
    }

    // Everything was read and checked: flush it, then put it in place.
    dest_w.flush()?;
    let placing = Placing {
        dest: &dest_w,
        staging: &staging,
        plain: &plain,
        selected: &selected,
        keep_special,
    };
    place(&placing, &mut staged, &mut report, progress)?;
    dest_w.flush()?;
    made.keep = true;
    drop(staging);
    for d in dumps {
        report.dumps.push(RestoredDump {
            name: d.name.clone(),
            path: dest_root.join(d.member_path()),
            load_command: d.load_command.clone(),
        });
    }
    Ok(report)
}

/// Member path → step, per archive of the chain.
type Needs = Vec<HashMap<String, Step>>;
/// Volume → files it provides, per archive of the chain.
type Vols = Vec<BTreeMap<u32, Vec<String>>>;

/// Each selected file's steps through the chain, newest first until one
/// holds it whole; with the bytes of content to read and the room the
/// restored files take (a sparse file's data only, when its content is
/// the sparse member's).
fn plan(
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

/// What is put in place once every volume was read and checked.
struct Placing<'a> {
    dest: &'a Dest,
    staging: &'a Staging<'a>,
    /// Every path to restore, its kind, and what to do at it.
    plain: &'a [(String, EntryKind, Put)],
    /// The manifest's entries selected (for symlink targets, modes, times).
    selected: &'a [&'a Entry],
    /// Setuid, setgid and sticky bits kept.
    keep_special: bool,
}

/// Puts everything in place: folders (0700 until the end), staged files
/// renamed in, symlinks, then folders' modes and times, deepest first.
fn place(
    placing: &Placing<'_>,
    staged: &mut HashMap<String, Staged>,
    report: &mut RestoreReport,
    progress: &Progress,
) -> crate::Result<()> {
    let Placing {
        dest,
        staging,
        plain,
        selected,
        keep_special,
    } = *placing;
    let by_path: HashMap<&str, &Entry> = selected.iter().map(|e| (e.path.as_str(), *e)).collect();
    let mut parent_dir: Option<(PathBuf, Dir)> = None;
    for (p, kind, put) in plain {
        let rel = Path::new(p.as_str());
        let shown = dest.root().join(rel);
        if *kind == EntryKind::Dir {
            dest.dir(rel, true)?;
            progress.advance(1, 0);
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = match parent_dir.take() {
            Some((at, d)) if at == parent => d,
            _ => dest
                .dir(parent, true)?
                .ok_or_else(|| crate::restore::Error::Unsafe {
                    path: shown.clone(),
                    reason: "its folder vanished".into(),
                })?,
        };
        let name = rel.file_name().unwrap_or_default();
        let entry = by_path.get(p.as_str());
        match kind {
            EntryKind::File => {
                let st = staged
                    .remove(p)
                    .ok_or_else(|| crate::Error::Panic(format!("{p} was not staged")))?;
                move_in(
                    staging.dir(),
                    &st.name,
                    &dir,
                    name,
                    *put == Put::Replace,
                    &shown,
                )?;
                if let Some(e) = entry {
                    report.files += 1;
                    report.bytes += e.size;
                }
            }
            EntryKind::Symlink if *put != Put::Keep => {
                if let Some(e) = entry {
                    let target = e.target.as_deref().unwrap_or_default();
                    dir.make_symlink(
                        std::ffi::OsStr::new(target),
                        name,
                        e.mtime_ns,
                        *put == Put::Replace,
                        &shown,
                        |_, _| {},
                    )?;
                    report.symlinks += 1;
                }
            }
            _ => {}
        }
        parent_dir = Some((parent.to_path_buf(), dir));
        progress.advance(1, 0);
    }
    drop(parent_dir);
    // Folders last, deepest first, so their mtimes stick.
    let mut dirs: Vec<&Entry> = selected
        .iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .copied()
        .collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
    for e in dirs {
        if let Some(d) = dest.dir(Path::new(&e.path), false)? {
            d.set_meta(e.mode, e.mtime_ns, keep_special)?;
            report.dirs += 1;
        }
    }
    Ok(())
}
