//! Hard links: files that were one file in the snapshot (same device and
//! inode, same content) are made one file again. The first of each group
//! is restored like any file; each other is linked to it afterwards, inside
//! the destination only (`linkat` between two folders of the destination,
//! never following a symlink, the linked inode checked to be the one
//! restored). Where the destination cannot hold links (FAT, exFAT, or
//! another file system mounted inside it), each is a separate copy of the
//! first, checked against its hash, and counted.
//!
//! Invariant: a link is only ever made to a file this restore wrote or
//! found whole at the destination, under the destination.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::attrs::Fidelity;
use super::dest::{Dest, Dir, file_type, put_in_place, set_file_meta};
use super::select::{Entry, State};
use super::{Error, Report, io_err};
use crate::catalog::Kind;
use crate::meta::sparse::HoleWriter;
use crate::object::{Hasher, ObjectId};

/// For each entry that is another link of an earlier one, the earlier one's
/// index (the first of its group).
pub(super) fn groups(entries: &[Entry]) -> HashMap<usize, usize> {
    let mut first: HashMap<(u64, u64, Option<ObjectId>, u64), usize> = HashMap::new();
    let mut out = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let v = &e.version;
        if v.kind != Kind::File || v.attrs.nlink < 2 || e.state == State::Skipped {
            continue;
        }
        match first.entry((v.attrs.dev, v.inode, v.hash, v.size)) {
            std::collections::hash_map::Entry::Occupied(o) => {
                out.insert(i, *o.get());
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    out
}

/// What the links need from the restore around them.
pub(super) struct LinkCtx<'a> {
    pub(super) dest: &'a Dest,
    pub(super) fid: &'a Fidelity,
    pub(super) keep_special: bool,
    pub(super) report: &'a mut Report,
    pub(super) missing: &'a mut BTreeMap<ObjectId, (u64, u64)>,
    pub(super) missing_paths: &'a mut BTreeMap<ObjectId, Vec<PathBuf>>,
    pub(super) progress: &'a crate::task::Progress,
}

/// Makes every other link of each group, once its first file is in place.
/// True when something was written.
pub(super) fn make_links(
    entries: &[Entry],
    followers: &HashMap<usize, usize>,
    cx: &mut LinkCtx<'_>,
) -> crate::Result<bool> {
    let mut order: Vec<(usize, usize)> = followers.iter().map(|(f, l)| (*f, *l)).collect();
    order.sort_unstable();
    let mut wrote = false;
    for (f, l) in order {
        cx.progress.check()?;
        let (Some(fe), Some(le)) = (entries.get(f), entries.get(l)) else {
            continue;
        };
        if !matches!(fe.state, State::ToDo | State::Replace) {
            continue;
        }
        let target = cx.dest.root().join(&fe.rel);
        cx.progress.current(&target);
        let v = &fe.version;
        let hash = v.hash.unwrap_or_else(|| ObjectId::of(b""));
        let (lparent, lname) = split(&le.rel);
        // FAT keeps mtimes to two seconds: there the copy's hash check is
        // what tells the first link is the file restored.
        let first = cx.dest.dir(lparent, false)?.and_then(|d| {
            let st = d.stat(lname)?;
            let mtime = st.st_mtime * 1_000_000_000 + st.st_mtime_nsec as i64;
            (file_type(&st) == rustix::fs::FileType::RegularFile
                && st.st_size as u64 == le.version.size
                && (mtime == le.version.mtime_ns || !cx.fid.unix))
                .then_some((d, (st.st_dev, st.st_ino)))
        });
        let Some((ldir, ident)) = first else {
            // Its first link could not be restored: neither can it.
            let m = cx.missing.entry(hash).or_insert((v.size, 0));
            m.1 += 1;
            cx.missing_paths
                .entry(hash)
                .or_default()
                .push(v.path.clone());
            continue;
        };
        let (parent, name) = split(&fe.rel);
        let dir = cx.dest.dir(parent, true)?.ok_or_else(|| Error::Unsafe {
            path: target.clone(),
            reason: "its folder vanished".into(),
        })?;
        let replace = fe.state == State::Replace;
        let linked = if cx.fid.unix {
            dir.link_from(&ldir, lname, ident, name, replace, &target)?
        } else {
            Err(Errno::PERM)
        };
        match linked {
            Ok(()) => cx.report.links += 1,
            Err(_) => {
                cx.fid
                    .tally
                    .links
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let c = LinkCopy {
                    from: (&ldir, lname),
                    to: (&dir, name),
                    entry: fe,
                    hash,
                    replace,
                    target: &target,
                };
                copy_of(&c, cx)?;
            }
        }
        cx.report.files += 1;
        cx.report.bytes += v.size;
        cx.progress.advance(1, v.size);
        wrote = true;
    }
    Ok(wrote)
}

fn split(rel: &Path) -> (&Path, &std::ffi::OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or_default(),
    )
}

/// One link written as a separate copy of the first: where the bytes are
/// and where they go.
struct LinkCopy<'a> {
    /// The first link, in place already: its folder and name.
    from: (&'a Dir, &'a std::ffi::OsStr),
    /// This link's folder and name.
    to: (&'a Dir, &'a std::ffi::OsStr),
    entry: &'a Entry,
    hash: ObjectId,
    /// Replace the regular file at its name (the user chose so).
    replace: bool,
    /// Its path, for messages.
    target: &'a Path,
}

/// A separate copy of the first link where the destination holds no links:
/// read back from the destination, checked against its hash, flushed, put
/// in place.
fn copy_of(c: &LinkCopy<'_>, cx: &LinkCtx<'_>) -> crate::Result<()> {
    let LinkCopy {
        from: (from, from_name),
        to: (dir, name),
        entry: e,
        hash,
        replace,
        target,
    } = *c;
    let mut src = from.open_tmp(from_name, target)?;
    let (tmp, out) = dir.create_tmp(target)?;
    let done = (|| -> crate::Result<()> {
        let mut h = Hasher::default();
        let mut holes = (e.version.attrs.sparse && cx.fid.unix).then(|| HoleWriter::new(&out));
        crate::object::with_buffer(|buf| -> crate::Result<()> {
            loop {
                let n = match src.read(buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(io_err("cannot read", target)(err).into()),
                };
                let chunk = buf.get(..n).unwrap_or_default();
                h.update(chunk);
                match holes.as_mut() {
                    Some(w) => w.write(chunk),
                    None => std::io::Write::write_all(&mut &out, chunk),
                }
                .map_err(io_err("cannot write", target))?;
            }
        })?;
        if let Some(w) = holes {
            w.finish().map_err(io_err("cannot write", target))?;
        }
        if h.finish() != hash || out.metadata().map(|m| m.size()).ok() != Some(e.version.size) {
            return Err(Error::Unsafe {
                path: target.to_path_buf(),
                reason: "the file it is a link of changed during the restore; it was left alone"
                    .into(),
            }
            .into());
        }
        cx.fid.apply(out.as_fd(), &e.version);
        set_file_meta(
            &out,
            e.version.mode,
            Some(e.version.mtime_ns),
            cx.keep_special,
            target,
        )?;
        cx.fid.mode_kept(out.as_fd(), &e.version);
        out.sync_all().map_err(io_err("cannot flush", target))?;
        put_in_place(dir, &tmp, dir, name, replace, target)?;
        Ok(())
    })();
    if done.is_err() {
        dir.remove(&tmp);
    }
    done
}
