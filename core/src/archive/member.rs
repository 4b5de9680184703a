//! The tar member reader: every volume is read through here, by `archive
//! verify`, by restore and by the writer's read-back, with the same checks.
//!
//! Members are iterated raw, so GNU long names, long links and PAX headers
//! are read here, each checked against a small cap before its data is read
//! (the tar crate would read them whole into memory). Every name is
//! normalised (`./a`, `a/`, `a/.` are `a`) and must be relative and free of
//! `..`. The first member is `manifest.json`; every other member must be
//! listed by the manifest for this volume, once, with the type and the size
//! the manifest gives (compared before a byte of it is read), and its data
//! is read through `take(size)`, hashed and checked against the manifest.
//! What the manifest lists and the volume lacks is an error too.
//!
//! Invariant: a volume is accepted only if it holds exactly what its
//! manifest says, nothing more and nothing else.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use super::Error;
use super::manifest::{self, EntryKind, How, MANIFEST_NAME, Manifest};
use super::open::{self, Grant, SLACK};
use crate::object::{Hasher, ObjectId};
use crate::task::Progress;

/// Most bytes of extension data (GNU long name and long link, PAX
/// records) one member may carry: a path or link target is at most 4 KiB.
const EXTENSION_CAP: u64 = 16 << 10;

/// Bytes a member may take beyond its data: its header, up to three
/// extension headers and their data.
pub(crate) const PER_MEMBER: u64 = 512 + 3 * 512 + EXTENSION_CAP;

/// A member's header as read, with its name normalised.
pub(crate) struct Header {
    pub(crate) name: String,
    pub(crate) kind: tar::EntryType,
    pub(crate) size: u64,
    pub(crate) link: Option<Vec<u8>>,
}

/// What a kind of member is called in messages.
fn kind_name(t: tar::EntryType) -> String {
    use tar::EntryType as T;
    match t {
        T::Regular | T::Continuous => "file".into(),
        T::Directory => "folder".into(),
        T::Symlink => "symlink".into(),
        T::Link => "hard link".into(),
        T::Char => "character device".into(),
        T::Block => "block device".into(),
        T::Fifo => "FIFO".into(),
        T::GNUSparse => "sparse file".into(),
        T::XGlobalHeader => "global PAX header".into(),
        other => format!("member of type {:?}", char::from(other.as_byte())),
    }
}

/// A damaged stream: the tar or gzip layer failed, or the budget ran out.
pub(crate) fn damaged(shown: &Path, e: &io::Error, files: Vec<String>) -> Error {
    let message = match open::exceeded(e) {
        Some(x) => x.to_string(),
        None => e.to_string(),
    };
    Error::Corrupt {
        path: shown.to_path_buf(),
        message,
        files,
    }
}

fn bad_member(shown: &Path, member: &str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: shown.to_path_buf(),
        message: format!("member `{member}` {reason}"),
        files: vec![member.to_string()],
    }
}

fn unsafe_member(shown: &Path, raw: &[u8], reason: &str) -> Error {
    Error::Unsafe {
        path: shown.to_path_buf(),
        member: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the small data of an extension header, refusing more than `left`.
fn small<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    left: &mut u64,
    shown: &Path,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let size = entry.size();
    if size > *left {
        return Err(unsafe_member(
            shown,
            &entry.path_bytes(),
            &format!("its {what} of {size} bytes is longer than any path Coffer writes"),
        ));
    }
    *left -= size;
    let mut out = Vec::new();
    entry
        .take(size)
        .read_to_end(&mut out)
        .map_err(|e| damaged(shown, &e, Vec::new()))?;
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// The next member of a raw tar stream, with any GNU long name, long link
/// or PAX header it comes with applied to it.
pub(crate) fn next_member<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    shown: &Path,
) -> Result<Option<(Header, tar::Entry<'a, R>)>, Error> {
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax_size: Option<u64> = None;
    let mut pax = false;
    let mut left = EXTENSION_CAP;
    loop {
        let mut entry = match entries.next() {
            None if long_name.is_some() || long_link.is_some() || pax => {
                return Err(Error::Corrupt {
                    path: shown.to_path_buf(),
                    message: "it ends with an extension header and no member after it".into(),
                    files: Vec::new(),
                });
            }
            None => return Ok(None),
            Some(Err(e)) => return Err(damaged(shown, &e, Vec::new())),
            Some(Ok(e)) => e,
        };
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        let twice = || Error::Corrupt {
            path: shown.to_path_buf(),
            message: "two extension headers of the same kind describe one member".into(),
            files: Vec::new(),
        };
        match kind {
            T::GNULongName => {
                if long_name.is_some() {
                    return Err(twice());
                }
                long_name = Some(small(&mut entry, &mut left, shown, "GNU long name")?);
                continue;
            }
            T::GNULongLink => {
                if long_link.is_some() {
                    return Err(twice());
                }
                long_link = Some(small(&mut entry, &mut left, shown, "GNU long link")?);
                continue;
            }
            T::XHeader => {
                if pax {
                    return Err(twice());
                }
                pax = true;
                let data = small(&mut entry, &mut left, shown, "PAX header")?;
                // Only the records that change what the member is are used.
                for rec in tar::PaxExtensions::new(&data) {
                    let rec = rec.map_err(|e| damaged(shown, &e, Vec::new()))?;
                    match rec.key_bytes() {
                        b"path" => long_name = Some(rec.value_bytes().to_vec()),
                        b"linkpath" => long_link = Some(rec.value_bytes().to_vec()),
                        b"size" => {
                            let s = std::str::from_utf8(rec.value_bytes())
                                .ok()
                                .and_then(|s| s.parse::<u64>().ok());
                            let Some(s) = s else {
                                return Err(unsafe_member(
                                    shown,
                                    &entry.path_bytes(),
                                    "its PAX size is not a number",
                                ));
                            };
                            pax_size = Some(s);
                        }
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        let raw = long_name.unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = manifest::normalize(&raw).map_err(|why| unsafe_member(shown, &raw, why))?;
        let size = entry.size();
        // The reader steps over the header's size; a PAX size that says
        // otherwise would make two readers see two archives.
        if let Some(p) = pax_size.filter(|p| *p != size) {
            return Err(bad_member(
                shown,
                &name,
                format!("has a PAX size of {p} bytes, but its header says {size}"),
            ));
        }
        let link = long_link.or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
        return Ok(Some((
            Header {
                name,
                kind,
                size,
                link,
            },
            entry,
        )));
    }
}

/// Reads the first member, which must be `manifest.json` of at most the
/// manifest cap, granting its size to the stream's budget first. Returns
/// its SHA-256, and its bytes when `keep` (else they are only hashed: a
/// manifest can be large, and every volume repeats it).
pub(crate) fn read_manifest_member<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    shown: &Path,
    grant: &Grant,
    keep: bool,
) -> Result<(Vec<u8>, ObjectId), Error> {
    let not = |message: String| Error::NotAnArchive {
        path: shown.to_path_buf(),
        message,
    };
    let Some((h, entry)) = next_member(entries, shown)? else {
        return Err(not("it is empty".into()));
    };
    if h.name != MANIFEST_NAME || !matches!(h.kind, tar::EntryType::Regular) {
        return Err(not("its first member is not manifest.json".into()));
    }
    if h.size > manifest::MANIFEST_CAP {
        return Err(not(format!(
            "its manifest.json declares {} bytes, more than the {} a manifest may have",
            h.size,
            manifest::MANIFEST_CAP
        )));
    }
    grant.add(h.size.div_ceil(512) * 512);
    let mut data = Hashing {
        inner: entry.take(h.size),
        hasher: Hasher::default(),
        n: 0,
    };
    let mut bytes = Vec::new();
    let read = if keep {
        data.read_to_end(&mut bytes).map(|_| ())
    } else {
        io::copy(&mut data, &mut io::sink()).map(|_| ())
    };
    read.map_err(|e| damaged(shown, &e, Vec::new()))?;
    if data.n != h.size {
        return Err(not("its manifest.json is cut short".into()));
    }
    Ok((bytes, data.hasher.finish()))
}

/// What the manifest says one member of a volume is.
pub(crate) struct Expect<'m> {
    kind: EntryKind,
    size: u64,
    /// For a delta: the size of the content it makes.
    makes: Option<u64>,
    /// SHA-256 (files) or target (symlinks).
    check: Option<&'m str>,
    seen: bool,
}

/// The members volume `v` must hold, by path (the manifest aside).
pub(crate) fn expected(m: &Manifest, v: u32) -> HashMap<String, Expect<'_>> {
    let mut out = HashMap::new();
    if v == 1 {
        for e in &m.entries {
            let check = match e.kind {
                EntryKind::Dir => None,
                EntryKind::Symlink => e.target.as_deref(),
                EntryKind::File => continue,
            };
            out.insert(
                e.path.clone(),
                Expect {
                    kind: e.kind,
                    size: 0,
                    makes: None,
                    check,
                    seen: false,
                },
            );
        }
    }
    for e in m.members_in_volume(v) {
        let Some(mp) = e.member_path() else { continue };
        let (size, sha, makes) = match (&e.delta, e.how) {
            (Some(d), Some(How::Delta)) => (d.size, Some(d.sha256.as_str()), Some(e.size)),
            _ => (e.size, e.sha256.as_deref(), None),
        };
        out.insert(
            mp,
            Expect {
                kind: EntryKind::File,
                size,
                makes,
                check: sha,
                seen: false,
            },
        );
    }
    for d in m.dumps.iter().filter(|d| d.volume == v) {
        out.insert(
            d.member_path(),
            Expect {
                kind: EntryKind::File,
                size: d.size,
                makes: None,
                check: Some(d.sha256.as_str()),
                seen: false,
            },
        );
    }
    out
}

/// The budget of a volume's members: their data in whole blocks, plus what
/// each may carry beyond it.
fn budget(expected: &HashMap<String, Expect<'_>>) -> u64 {
    expected.values().fold(SLACK, |acc, e| {
        acc.saturating_add(e.size.div_ceil(512).saturating_mul(512))
            .saturating_add(PER_MEMBER)
    })
}

/// Where the data of a volume's file members go.
pub(crate) trait Sink {
    /// A file member the manifest lists, about to be read: `data` yields
    /// exactly its bytes. The sink reads what it wants; the reader reads
    /// (and hashes) the rest. True when the sink took the member's data
    /// (then a delta was applied, which checks it whole).
    fn member(&mut self, member: &str, data: &mut dyn Read) -> crate::Result<bool>;
    /// The member's bytes matched the manifest's size and SHA-256.
    fn checked(&mut self, member: &str) -> crate::Result<()>;
}

/// A sink that keeps nothing (verify).
pub(crate) struct Discard;

impl Sink for Discard {
    fn member(&mut self, _: &str, _: &mut dyn Read) -> crate::Result<bool> {
        Ok(false)
    }
    fn checked(&mut self, _: &str) -> crate::Result<()> {
        Ok(())
    }
}

/// Which manifest a volume must start with.
pub(crate) enum Want<'a> {
    /// Whatever valid manifest it holds (`archive verify`).
    Own,
    /// Exactly the bytes of this SHA-256, which parse to this manifest
    /// (restore and the writer's read-back).
    Exactly(&'a Manifest, ObjectId),
    /// One equal to this manifest.
    Equal(&'a Manifest),
}

/// What reading a volume found.
pub(crate) struct Checked {
    /// The manifest, when it was parsed here ([`Want::Own`]).
    pub(crate) manifest: Option<Manifest>,
    pub(crate) members: u64,
    pub(crate) bytes: u64,
}

/// Hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Hasher,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.n += n as u64;
        Ok(n)
    }
}

/// Reads volume `v` of an archive (a gzip stream) to its very end and
/// checks every member; file members pass through `sink`. Errors name
/// `shown`. With `advance_all`, every byte read counts as progress (verify);
/// otherwise the sink counts what it writes.
pub(crate) fn read_volume<R: Read>(
    file: R,
    shown: &Path,
    want: Want<'_>,
    v: u32,
    sink: &mut dyn Sink,
    progress: &Progress,
    advance_all: bool,
) -> crate::Result<Checked> {
    let (stream, grant) = open::stream(file, PER_MEMBER + SLACK);
    let mut ar = tar::Archive::new(stream);
    let mut entries = ar
        .entries()
        .map_err(|e| damaged(shown, &e, Vec::new()))?
        .raw(true);
    let keep = !matches!(want, Want::Exactly(..));
    let (first, digest) = read_manifest_member(&mut entries, shown, &grant, keep)?;
    let differs = || Error::ManifestDiffers {
        path: shown.to_path_buf(),
    };
    let own = match want {
        Want::Own => Some(manifest::parse_in(shown, &first)?),
        Want::Exactly(_, want) if digest != want => return Err(differs().into()),
        Want::Equal(m) if manifest::parse_in(shown, &first)? != *m => {
            return Err(differs().into());
        }
        _ => None,
    };
    drop(first);
    let m: &Manifest = match (&want, &own) {
        (_, Some(m)) => m,
        (Want::Exactly(m, _) | Want::Equal(m), None) => m,
        (Want::Own, None) => return Err(crate::Error::Panic("no manifest".into())),
    };
    if v == 0 || v > m.volumes {
        return Err(Error::Corrupt {
            path: shown.to_path_buf(),
            message: format!("it is volume {v} of an archive of {} volumes", m.volumes),
            files: Vec::new(),
        }
        .into());
    }
    let mut expect = expected(m, v);
    grant.add(budget(&expect));
    let mut left = expect.len();
    let (mut members, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    while let Some((h, entry)) = next_member(&mut entries, shown)? {
        progress.check()?;
        let Some(x) = expect.get_mut(&h.name) else {
            return Err(if h.name == MANIFEST_NAME {
                bad_member(shown, &h.name, "appears twice")
            } else {
                Error::Corrupt {
                    path: shown.to_path_buf(),
                    message: format!(
                        "unexpected member `{}`: the manifest does not list it",
                        h.name
                    ),
                    files: vec![h.name.clone()],
                }
            }
            .into());
        };
        if x.seen {
            return Err(bad_member(shown, &h.name, "appears twice").into());
        }
        x.seen = true;
        left -= 1;
        use tar::EntryType as T;
        let type_ok = matches!(
            (x.kind, h.kind),
            (EntryKind::File, T::Regular | T::Continuous)
                | (EntryKind::Dir, T::Directory)
                | (EntryKind::Symlink, T::Symlink)
        );
        if !type_ok {
            let listed = match x.kind {
                EntryKind::File => "file",
                EntryKind::Dir => "folder",
                EntryKind::Symlink => "symlink",
            };
            return Err(bad_member(
                shown,
                &h.name,
                format!(
                    "is a {}, but the manifest lists a {listed}",
                    kind_name(h.kind)
                ),
            )
            .into());
        }
        if h.size != x.size {
            return Err(bad_member(
                shown,
                &h.name,
                format!(
                    "declares {} bytes in its header, but the manifest says {}",
                    h.size, x.size
                ),
            )
            .into());
        }
        match x.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink => {
                if h.link.as_deref() != x.check.map(str::as_bytes) {
                    return Err(bad_member(shown, &h.name, "is a symlink to another target").into());
                }
            }
            EntryKind::File => {
                let mut data = Hashing {
                    inner: entry.take(x.size),
                    hasher: Hasher::default(),
                    n: 0,
                };
                let taken = sink.member(&h.name, &mut data)?;
                if let (false, Some(makes)) = (taken, x.makes) {
                    check_delta(shown, &h.name, &mut data, makes)?;
                }
                loop {
                    progress.check()?;
                    let k = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(damaged(shown, &e, vec![h.name.clone()]).into()),
                    };
                    if advance_all {
                        progress.advance(0, k as u64);
                    }
                }
                if data.n != x.size {
                    return Err(bad_member(
                        shown,
                        &h.name,
                        format!("ends after {} of its {} bytes", data.n, x.size),
                    )
                    .into());
                }
                if x.check != Some(data.hasher.finish().to_hex().as_str()) {
                    return Err(bad_member(shown, &h.name, "does not match its SHA-256").into());
                }
                sink.checked(&h.name)?;
                bytes += data.n;
            }
        }
        members += 1;
    }
    // The entries borrow the archive; they are done with once it is taken.
    let rest = ar.into_inner();
    drain(rest, shown)?;
    if left > 0 {
        let mut missing: Vec<String> = expect
            .into_iter()
            .filter(|(_, x)| !x.seen)
            .map(|(k, _)| k)
            .collect();
        missing.sort();
        return Err(Error::Corrupt {
            path: shown.to_path_buf(),
            message: "members are missing (truncated?)".into(),
            files: missing,
        }
        .into());
    }
    Ok(Checked {
        manifest: own,
        members,
        bytes,
    })
}

/// Checks the commands of a delta member nobody applies here: well formed,
/// and making exactly the `makes` bytes the manifest gives its file.
fn check_delta(shown: &Path, member: &str, data: &mut dyn Read, makes: u64) -> crate::Result<()> {
    let file = member
        .strip_prefix(manifest::DELTA_DIR)
        .and_then(|f| f.strip_prefix('/'))
        .unwrap_or(member);
    let bad = |message: String| Error::Delta {
        path: shown.to_path_buf(),
        file: file.to_string(),
        message,
    };
    match super::delta::check(data, makes) {
        Ok(n) if n == makes => Ok(()),
        Ok(n) => Err(bad(format!("it makes {n} bytes, but the manifest says {makes}")).into()),
        Err(super::delta::DeltaError::Io(e)) => {
            Err(damaged(shown, &e, vec![file.to_string()]).into())
        }
        Err(e) => Err(bad(e.to_string()).into()),
    }
}

/// Reads the stream to its very end so every gzip member's CRC and length
/// are checked, and the tar padding holds nothing but zeros.
fn drain<R: Read>(mut rest: R, shown: &Path) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if buf.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
                    return Err(Error::Corrupt {
                        path: shown.to_path_buf(),
                        message: "data after the end of the tar stream".into(),
                        files: Vec::new(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(damaged(shown, &e, Vec::new())),
        }
    }
}

/// Checks a gzip'd tar stream as volume `volume` of the archive `manifest`
/// describes, with every check `archive verify` makes: the fuzzable entry
/// point of the member reader. Returns the members and content bytes read.
pub fn check_stream<R: Read>(
    reader: R,
    manifest: &Manifest,
    volume: u32,
) -> crate::Result<(u64, u64)> {
    let c = read_volume(
        reader,
        Path::new("<stream>"),
        Want::Equal(manifest),
        volume,
        &mut Discard,
        &Progress::silent(),
        false,
    )?;
    Ok((c.members, c.bytes))
}
