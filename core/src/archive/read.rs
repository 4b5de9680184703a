//! Reading archives: the manifest, verifying every member, and restoring
//! member by member with the restore safety rules (never `Archive::unpack`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::manifest::{EntryKind, FORMAT_VERSION, How, MANIFEST_NAME, Manifest};
use super::{Error, Found, Name, io_err};
use crate::object::{Hasher, ObjectId};
use crate::task::{Phase, Progress};

/// Largest manifest accepted (guards against a hostile member size).
const MANIFEST_LIMIT: u64 = 1 << 30;

fn open_stream(
    path: &Path,
) -> Result<tar::Archive<MultiGzDecoder<std::io::BufReader<std::fs::File>>>, Error> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    Ok(tar::Archive::new(MultiGzDecoder::new(
        std::io::BufReader::with_capacity(1 << 20, f),
    )))
}

fn corrupt(path: &Path, message: impl std::fmt::Display, files: Vec<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
        files,
    }
}

/// Checks that a member path is relative, plain and stays inside.
fn check_member(archive: &Path, member: &str) -> Result<(), Error> {
    let unsafe_ = |reason: &str| Error::Unsafe {
        path: archive.to_path_buf(),
        member: member.to_string(),
        reason: reason.to_string(),
    };
    if member.is_empty() {
        return Err(unsafe_("empty path"));
    }
    if member.contains('\0') {
        return Err(unsafe_("NUL in path"));
    }
    for c in Path::new(member).components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => return Err(unsafe_("`.` in path")),
            Component::ParentDir => return Err(unsafe_("`..` in path")),
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_("absolute path")),
        }
    }
    Ok(())
}

/// The member's path as text, checked.
fn member_path<R: Read>(archive: &Path, e: &tar::Entry<'_, R>) -> Result<String, Error> {
    let bytes = e.path_bytes();
    let s = std::str::from_utf8(&bytes).map_err(|_| Error::Unsafe {
        path: archive.to_path_buf(),
        member: String::from_utf8_lossy(&bytes).into_owned(),
        reason: "name is not UTF-8".into(),
    })?;
    let s = s.trim_end_matches('/').to_string();
    check_member(archive, &s)?;
    Ok(s)
}

fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest, Error> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| Error::NotAnArchive {
        path: path.to_path_buf(),
        message: format!("bad manifest.json: {e}"),
    })?;
    if m.format > FORMAT_VERSION {
        return Err(Error::NewerFormat {
            path: path.to_path_buf(),
            found: m.format,
        });
    }
    for e in &m.entries {
        check_member(path, &e.path)?;
        if let Some(mp) = e.member_path() {
            check_member(path, &mp)?;
        }
    }
    // A path under a symlink of the same tree would be written through it.
    let links: HashSet<&str> = m
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Symlink)
        .map(|e| e.path.as_str())
        .collect();
    for e in &m.entries {
        let mut p = Path::new(&e.path);
        while let Some(parent) = p.parent() {
            if parent.to_str().is_some_and(|s| links.contains(s)) {
                return Err(Error::Unsafe {
                    path: path.to_path_buf(),
                    member: e.path.clone(),
                    reason: "lies under a symlink of the archive".into(),
                });
            }
            p = parent;
        }
    }
    for d in &m.dumps {
        if d.name.contains('/') || d.name.is_empty() || d.name.starts_with('.') {
            return Err(Error::Unsafe {
                path: path.to_path_buf(),
                member: d.member_path(),
                reason: "bad dump name".into(),
            });
        }
    }
    Ok(m)
}

/// Reads the first member of an archive (or any of its volumes) and returns
/// the parsed manifest and its bytes. Reads only the start of the file.
fn manifest_of(path: &Path) -> Result<(Manifest, Vec<u8>), Error> {
    let mut ar = open_stream(path)?;
    let mut entries = ar.entries().map_err(|e| corrupt(path, e, Vec::new()))?;
    let not = |message: &str| Error::NotAnArchive {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let mut first = match entries.next() {
        Some(Ok(e)) => e,
        Some(Err(e)) => return Err(corrupt(path, e, Vec::new())),
        None => return Err(not("it is empty")),
    };
    if first.path_bytes().as_ref() != MANIFEST_NAME.as_bytes() {
        return Err(not("its first member is not manifest.json"));
    }
    if first.size() > MANIFEST_LIMIT {
        return Err(not("manifest.json is too large"));
    }
    let mut bytes = Vec::with_capacity(first.size() as usize);
    first
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(path, e, Vec::new()))?;
    let m = parse_manifest(path, &bytes)?;
    Ok((m, bytes))
}

/// The manifest of an archive file (any volume carries it).
pub fn read_manifest(path: &Path) -> Result<Manifest, Error> {
    manifest_of(path).map(|(m, _)| m)
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub sequence: u64,
    pub kind: super::Kind,
    pub volume: u32,
    pub volumes: u32,
    pub members: u64,
    pub bytes: u64,
}

/// Reads one archive file to its end and checks every member against the
/// manifest.
pub fn verify(path: &Path, progress: &Progress) -> crate::Result<VerifyReport> {
    let (m, bytes) = manifest_of(path)?;
    let volume = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(Name::parse)
        .and_then(|n| n.volume)
        .unwrap_or(1);
    let (members, b) = verify_volume(path, path, &bytes, volume, progress)?;
    Ok(VerifyReport {
        path: path.to_path_buf(),
        sequence: m.sequence,
        kind: m.kind,
        volume,
        volumes: m.volumes,
        members,
        bytes: b,
    })
}

/// Reads volume `v` at `path` to its end: the manifest must be exactly
/// `manifest_bytes`, and every member must be expected and match its hash.
/// Errors name `shown` (the final name of a temp file).
pub(crate) fn verify_volume(
    path: &Path,
    shown: &Path,
    manifest_bytes: &[u8],
    v: u32,
    progress: &Progress,
) -> crate::Result<(u64, u64)> {
    let m = parse_manifest(shown, manifest_bytes)?;
    // Member path → (entry type, size, sha).
    let mut expected: BTreeMap<String, (tar::EntryType, u64, Option<String>)> = BTreeMap::new();
    if v == 1 {
        for e in &m.entries {
            match e.kind {
                EntryKind::Dir => {
                    expected.insert(e.path.clone(), (tar::EntryType::Directory, 0, None));
                }
                EntryKind::Symlink => {
                    expected.insert(
                        e.path.clone(),
                        (tar::EntryType::Symlink, 0, e.target.clone()),
                    );
                }
                EntryKind::File => {}
            }
        }
    }
    for e in m.members_in_volume(v) {
        let Some(mp) = e.member_path() else { continue };
        let (size, sha) = match (&e.delta, e.how) {
            (Some(d), Some(How::Delta)) => (d.size, d.sha256.clone()),
            _ => (e.size, e.sha256.clone().unwrap_or_default()),
        };
        expected.insert(mp, (tar::EntryType::Regular, size, Some(sha)));
    }
    for d in m.dumps.iter().filter(|d| d.volume == v) {
        expected.insert(
            d.member_path(),
            (tar::EntryType::Regular, d.size, Some(d.sha256.clone())),
        );
    }
    let all: Vec<String> = expected.keys().cloned().collect();
    let mut ar = open_stream(path)?;
    let mut seen = 0u64;
    let mut bytes = 0u64;
    {
        let entries = ar.entries().map_err(|e| corrupt(shown, e, all.clone()))?;
        let mut first = true;
        for entry in entries {
            progress.check()?;
            let mut entry =
                entry.map_err(|e| corrupt(shown, e, expected.keys().cloned().collect()))?;
            if first {
                first = false;
                let mut got = Vec::new();
                entry
                    .read_to_end(&mut got)
                    .map_err(|e| corrupt(shown, e, all.clone()))?;
                if entry.path_bytes().as_ref() != MANIFEST_NAME.as_bytes() || got != manifest_bytes
                {
                    return Err(corrupt(
                        shown,
                        "manifest.json differs from the archive's manifest",
                        all,
                    )
                    .into());
                }
                continue;
            }
            let mp = member_path(shown, &entry)?;
            let Some((ty, size, sha)) = expected.remove(&mp) else {
                return Err(corrupt(shown, format!("unexpected member {mp}"), vec![mp]).into());
            };
            let et = entry.header().entry_type();
            let ok_type =
                et == ty || (ty == tar::EntryType::Regular && et == tar::EntryType::Continuous);
            if !ok_type {
                return Err(
                    corrupt(shown, format!("member {mp} has the wrong type"), vec![mp]).into(),
                );
            }
            if ty == tar::EntryType::Symlink {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                if target != sha {
                    return Err(corrupt(
                        shown,
                        format!("symlink {mp} has the wrong target"),
                        vec![mp],
                    )
                    .into());
                }
            } else if ty == tar::EntryType::Regular {
                let mut h = Hasher::default();
                let mut buf = vec![0u8; 1 << 16];
                let mut n = 0u64;
                loop {
                    let k = entry
                        .read(&mut buf)
                        .map_err(|e| corrupt(shown, e, vec![mp.clone()]))?;
                    if k == 0 {
                        break;
                    }
                    h.update(&buf[..k]);
                    n += k as u64;
                    progress.advance(0, k as u64);
                }
                if n != size || Some(h.finish().to_hex()) != sha {
                    return Err(corrupt(
                        shown,
                        format!("member {mp} does not match its SHA-256"),
                        vec![mp],
                    )
                    .into());
                }
                bytes += n;
            }
            seen += 1;
        }
    }
    drain(ar, shown, &all)?;
    if !expected.is_empty() {
        let missing: Vec<String> = expected.into_keys().collect();
        return Err(corrupt(shown, "members are missing (truncated?)", missing).into());
    }
    Ok((seen, bytes))
}

/// Reads the gzip stream to its very end so every member's CRC and length
/// are checked, and the tar padding holds nothing else.
fn drain<R: Read>(ar: tar::Archive<R>, shown: &Path, files: &[String]) -> Result<(), Error> {
    let mut rest = ar.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if buf[..n].iter().any(|&b| b != 0) {
                    return Err(corrupt(
                        shown,
                        "data after the end of the tar stream",
                        Vec::new(),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(shown, e, files.to_vec())),
        }
    }
}

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

/// One step of rebuilding a file: a member in one archive of the chain.
struct Step {
    file: String,
    how: How,
    /// Content hash after this step.
    sha: String,
    /// For deltas: delta hash and the base content hash.
    delta: Option<(String, String)>,
    size: u64,
}

/// Restores the tree (or `paths`) of archive `at` from `dir` into `dest`.
pub fn restore(
    dir: &Path,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> crate::Result<RestoreReport> {
    let all = super::find(dir, opts.prefix.as_deref())?;
    let not_found = || Error::NotFound {
        dir: dir.to_path_buf(),
        sequence: opts.at,
    };
    let mut hits = all.iter().filter(|f| f.sequence == opts.at);
    let top = hits.next().ok_or_else(not_found)?;
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

    // The chain, full first.
    let mut chain: Vec<(Found, Manifest)> = vec![(top.clone(), read_manifest(top.first())?)];
    loop {
        let (f, m) = chain.last().ok_or(not_found())?;
        let (Some(b), Some(bid)) = (m.base_sequence, m.base_id) else {
            break;
        };
        let shown = f.first().to_path_buf();
        let found = all
            .iter()
            .find(|x| x.sequence == b && x.prefix == f.prefix)
            .ok_or_else(|| Error::NotFound {
                dir: dir.to_path_buf(),
                sequence: b,
            })?;
        let bm = read_manifest(found.first())?;
        if bm.id != bid {
            return Err(Error::WrongBase {
                path: shown,
                sequence: b,
                expected: bid,
                found: bm.id,
            }
            .into());
        }
        chain.push((found.clone(), bm));
    }
    chain.reverse();
    let n = chain.len() - 1;
    let target = &chain[n].1;

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
    let selected: Vec<&super::Entry> = target.entries.iter().filter(|e| picks(&e.path)).collect();
    let dumps: Vec<&super::manifest::DumpEntry> = target
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

    // Plan each file's steps through the chain.
    let index: Vec<HashMap<&str, &super::Entry>> = chain
        .iter()
        .map(|(_, m)| m.entries.iter().map(|e| (e.path.as_str(), e)).collect())
        .collect();
    // needs[i]: member path → step; vols[i]: volumes of archive i to read.
    let mut needs: Vec<HashMap<String, Step>> = (0..chain.len()).map(|_| HashMap::new()).collect();
    let mut vols: Vec<BTreeMap<u32, Vec<String>>> =
        (0..chain.len()).map(|_| BTreeMap::new()).collect();
    let mut total_bytes = 0u64;
    for e in selected.iter().filter(|e| e.kind == EntryKind::File) {
        total_bytes += e.size;
        let mut i = n;
        let mut cur = *e;
        loop {
            let how = cur.how.unwrap_or(How::New);
            if how != How::Same {
                let mp = cur.member_path().unwrap_or_else(|| cur.path.clone());
                let vol = cur.volume.unwrap_or(1);
                vols[i].entry(vol).or_default().push(e.path.clone());
                needs[i].insert(
                    mp,
                    Step {
                        file: e.path.clone(),
                        how,
                        sha: cur.sha256.clone().unwrap_or_default(),
                        delta: cur
                            .delta
                            .as_ref()
                            .map(|d| (d.sha256.clone(), d.base_sha256.clone())),
                        size: cur.size,
                    },
                );
            }
            if matches!(how, How::New | How::Whole) {
                break;
            }
            let shown = chain[i].0.first().to_path_buf();
            if i == 0 {
                return Err(corrupt(
                    &shown,
                    format!("{} has no base content in the chain", e.path),
                    vec![e.path.clone()],
                )
                .into());
            }
            i -= 1;
            cur = match index[i].get(e.path.as_str()) {
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
    for d in &dumps {
        total_bytes += d.size;
        vols[n].entry(d.volume).or_default().push(d.member_path());
        needs[n].insert(
            d.member_path(),
            Step {
                file: d.member_path(),
                how: How::New,
                sha: d.sha256.clone(),
                delta: None,
                size: d.size,
            },
        );
    }

    // Check the destination before writing anything.
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    let mut conflicts = Vec::new();
    let mut plain: Vec<(String, EntryKind)> =
        selected.iter().map(|e| (e.path.clone(), e.kind)).collect();
    plain.extend(dumps.iter().map(|d| (d.member_path(), EntryKind::File)));
    for (p, kind) in &plain {
        let full = dest.join(p);
        check_parents(dest, Path::new(p))?;
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() && *kind == EntryKind::Dir => {}
            Ok(m) if m.is_dir() || !opts.overwrite || *kind == EntryKind::Dir => {
                conflicts.push(full)
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    path: full,
                    source: e,
                }
                .into());
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Exists { paths: conflicts }.into());
    }

    // Folders first (parents of everything included).
    let mut dirs: Vec<String> = Vec::new();
    for (p, kind) in &plain {
        let mut acc = PathBuf::new();
        let parts: Vec<&str> = p.split('/').collect();
        let upto = if *kind == EntryKind::Dir {
            parts.len()
        } else {
            parts.len() - 1
        };
        for part in &parts[..upto] {
            acc.push(part);
            let full = dest.join(&acc);
            match std::fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::ThroughSymlink {
                        path: dest.join(p),
                        link: full,
                    }
                    .into());
                }
                Err(_) => {
                    std::fs::create_dir(&full).map_err(io_err(&full))?;
                }
            }
        }
        if *kind == EntryKind::Dir {
            dirs.push(p.clone());
        }
    }

    progress.phase(Phase::Restoring, plain.len() as u64, total_bytes);
    let mut report = RestoreReport {
        sequence: opts.at,
        ..RestoreReport::default()
    };
    let mut staged: HashMap<String, tempfile::TempPath> = HashMap::new();
    let mut done: HashSet<String> = HashSet::new();
    for (i, (found, m)) in chain.iter().enumerate() {
        if needs[i].is_empty() {
            continue;
        }
        for (&v, files) in &vols[i] {
            let path = found.volume_path(dir, v);
            if !path.exists() {
                return Err(Error::MissingVolume {
                    path,
                    files: files.clone(),
                }
                .into());
            }
            let (vm, _) = manifest_of(&path)?;
            if vm.id != m.id {
                return Err(Error::WrongBase {
                    path: path.clone(),
                    sequence: m.sequence,
                    expected: m.id,
                    found: vm.id,
                }
                .into());
            }
            report.read.push(path.clone());
            restore_volume(
                &path,
                dest,
                &needs[i],
                &mut staged,
                &mut done,
                files,
                progress,
            )?;
        }
        // Every member asked of this archive must have been found.
        for (mp, step) in &needs[i] {
            if !done.remove(mp) {
                return Err(corrupt(
                    found.first(),
                    format!("member for {} not found", step.file),
                    vec![step.file.clone()],
                )
                .into());
            }
        }
    }

    // Put files in place: mode, mtime, flush, rename without replacing.
    for (p, kind) in &plain {
        let full = dest.join(p);
        match kind {
            EntryKind::File => {
                let tp = staged
                    .remove(p)
                    .ok_or_else(|| crate::Error::Panic(format!("{p} not staged")))?;
                let entry = selected.iter().find(|e| e.path == *p);
                let (mode, mtime) = entry.map_or((0o600, None), |e| (e.mode, Some(e.mtime_ns)));
                use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                let f = std::fs::File::options()
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&tp)
                    .map_err(io_err(&full))?;
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(io_err(&full))?;
                if let Some(t) = mtime {
                    f.set_modified(time_of(t)).map_err(io_err(&full))?;
                }
                f.sync_all().map_err(io_err(&full))?;
                drop(f);
                if opts.overwrite {
                    std::fs::rename(&tp, &full).map_err(io_err(&full))?;
                } else {
                    rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        &*tp,
                        rustix::fs::CWD,
                        &full,
                        rustix::fs::RenameFlags::NOREPLACE,
                    )
                    .map_err(|e| Error::Io {
                        path: full.clone(),
                        source: e.into(),
                    })?;
                }
                let _ = tp.keep();
                if entry.is_some() {
                    report.files += 1;
                    report.bytes += entry.map_or(0, |e| e.size);
                }
            }
            EntryKind::Symlink => {
                let Some(e) = selected.iter().find(|e| e.path == *p) else {
                    continue;
                };
                if opts.overwrite && std::fs::symlink_metadata(&full).is_ok() {
                    std::fs::remove_file(&full).map_err(io_err(&full))?;
                }
                std::os::unix::fs::symlink(e.target.as_deref().unwrap_or(""), &full)
                    .map_err(io_err(&full))?;
                let t = time_of(e.mtime_ns);
                let ts = rustix::fs::Timestamps {
                    last_access: timespec(t),
                    last_modification: timespec(t),
                };
                let _ = rustix::fs::utimensat(
                    rustix::fs::CWD,
                    &full,
                    &ts,
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                );
                report.symlinks += 1;
            }
            EntryKind::Dir => {}
        }
        progress.advance(1, 0);
    }
    // Folders last, deepest first, so their mtimes stick.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in &dirs {
        let Some(e) = selected.iter().find(|e| e.path == *d) else {
            continue;
        };
        let full = dest.join(d);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(e.mode))
            .map_err(io_err(&full))?;
        let f = std::fs::File::open(&full).map_err(io_err(&full))?;
        f.set_modified(time_of(e.mtime_ns)).map_err(io_err(&full))?;
        report.dirs += 1;
    }
    for d in dumps {
        report.dumps.push(RestoredDump {
            name: d.name.clone(),
            path: dest.join(d.member_path()),
            load_command: d.load_command.clone(),
        });
    }
    Ok(report)
}

fn time_of(ns: i64) -> std::time::SystemTime {
    let base = std::time::UNIX_EPOCH;
    if ns >= 0 {
        base + std::time::Duration::from_nanos(ns as u64)
    } else {
        base - std::time::Duration::from_nanos(ns.unsigned_abs())
    }
}

fn timespec(t: std::time::SystemTime) -> rustix::fs::Timespec {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rustix::fs::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// No existing parent of `rel` under `dest` may be a symlink or a file.
fn check_parents(dest: &Path, rel: &Path) -> Result<(), Error> {
    let mut acc = dest.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        acc.push(c);
        match std::fs::symlink_metadata(&acc) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::ThroughSymlink {
                    path: dest.join(rel),
                    link: acc,
                });
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::Exists { paths: vec![acc] });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads one volume to its end, staging the members `needs` asks for.
fn restore_volume(
    path: &Path,
    dest: &Path,
    needs: &HashMap<String, Step>,
    staged: &mut HashMap<String, tempfile::TempPath>,
    done: &mut HashSet<String>,
    files: &[String],
    progress: &Progress,
) -> crate::Result<()> {
    let mut ar = open_stream(path)?;
    {
        let entries = ar.entries().map_err(|e| corrupt(path, e, files.to_vec()))?;
        for entry in entries {
            progress.check()?;
            let mut entry = entry.map_err(|e| corrupt(path, e, files.to_vec()))?;
            let mp = member_path(path, &entry)?;
            let Some(step) = needs.get(&mp) else {
                // Not asked for: read past it (the tar reader skips its data).
                continue;
            };
            let et = entry.header().entry_type();
            if !(et == tar::EntryType::Regular || et == tar::EntryType::Continuous) {
                return Err(corrupt(
                    path,
                    format!("member {mp} is not a regular file"),
                    vec![step.file.clone()],
                )
                .into());
            }
            let full = dest.join(&step.file);
            let parent = full.parent().unwrap_or(dest);
            let mut tmp = tempfile::Builder::new()
                .prefix(".coffer-restore-")
                .tempfile_in(parent)
                .map_err(io_err(parent))?;
            match step.how {
                How::New | How::Whole => {
                    let mut h = Hasher::default();
                    let mut buf = vec![0u8; 1 << 16];
                    loop {
                        let k = entry
                            .read(&mut buf)
                            .map_err(|e| corrupt(path, e, vec![step.file.clone()]))?;
                        if k == 0 {
                            break;
                        }
                        h.update(&buf[..k]);
                        tmp.write_all(&buf[..k]).map_err(io_err(&full))?;
                        progress.advance(0, k as u64);
                    }
                    if h.finish().to_hex() != step.sha {
                        return Err(corrupt(
                            path,
                            format!("{} does not match its SHA-256", step.file),
                            vec![step.file.clone()],
                        )
                        .into());
                    }
                }
                How::Delta => {
                    let (delta_sha, base_sha) = step.delta.clone().unwrap_or_default();
                    let mut delta = Vec::new();
                    entry
                        .read_to_end(&mut delta)
                        .map_err(|e| corrupt(path, e, vec![step.file.clone()]))?;
                    if ObjectId::of(&delta).to_hex() != delta_sha {
                        return Err(corrupt(
                            path,
                            format!("the delta of {} does not match its SHA-256", step.file),
                            vec![step.file.clone()],
                        )
                        .into());
                    }
                    let delta_err = |message: String| Error::Delta {
                        path: path.to_path_buf(),
                        file: step.file.clone(),
                        message,
                    };
                    let base_tmp = staged
                        .get(&step.file)
                        .ok_or_else(|| delta_err("its base content is not in the chain".into()))?;
                    let base = std::fs::read(base_tmp).map_err(io_err(base_tmp))?;
                    if ObjectId::of(&base).to_hex() != base_sha {
                        return Err(delta_err("it was made against another base".into()).into());
                    }
                    let mut out = Vec::with_capacity(step.size as usize);
                    fast_rsync::apply_limited(&base, &delta, &mut out, step.size as usize)
                        .map_err(|e| delta_err(e.to_string()))?;
                    if ObjectId::of(&out).to_hex() != step.sha {
                        return Err(delta_err(
                            "the result does not match the manifest's SHA-256".into(),
                        )
                        .into());
                    }
                    tmp.write_all(&out).map_err(io_err(&full))?;
                    progress.advance(0, out.len() as u64);
                }
                How::Same => {}
            }
            // Closed until it is put in place: a restore of many files must
            // not hold a descriptor for each.
            staged.insert(step.file.clone(), tmp.into_temp_path());
            done.insert(mp);
        }
    }
    drain(ar, path, files)?;
    Ok(())
}
