//! The tar member reader: every volume is read through here, by `archive
//! verify`, by restore and by the writer's read-back, with the same checks.
//!
//! Members are iterated raw (`entries` reads GNU long names, long links
//! and PAX headers under a cap, and normalises every name: `./a`, `a/`,
//! `a/.` are `a`; absolute names and `..` are refused). The first member
//! is `manifest.json`; every other member must be listed by the manifest
//! for this volume, once, with the type and the size the manifest gives
//! (compared before a byte of it is read), and its data is read through
//! `take(size)`, hashed and checked against the manifest (by restore, only
//! what it writes: see [`Reading`]). A delta nobody applies has its
//! commands checked. What the manifest lists and the volume lacks is an
//! error too.
//!
//! Invariant: a volume is accepted only if it holds exactly what its
//! manifest says, nothing more and nothing else.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use super::Error;
use super::entries::{Hashing, bad_member, kind_name, next_member};
pub(crate) use super::entries::{PER_MEMBER, damaged, read_manifest_member};
use super::manifest::{self, EntryKind, How, MANIFEST_NAME, Manifest};
use super::open::{self, SLACK};
use super::pipe::Pipe;
use super::sparse::{Expand, MapError};
use crate::object::{Hasher, ObjectId};
use crate::task::Progress;

/// What the manifest says one member of a volume is.
pub(crate) struct Expect<'m> {
    kind: EntryKind,
    size: u64,
    /// For a delta: the size of the content it makes.
    makes: Option<u64>,
    /// For a sparse member: the size of the content it stands for.
    sparse: Option<u64>,
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
                    sparse: None,
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
            _ => (e.stored_size(), e.sha256.as_deref(), None),
        };
        out.insert(
            mp,
            Expect {
                kind: EntryKind::File,
                size,
                makes,
                sparse: e.sparse.map(|_| e.size),
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
                sparse: None,
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

/// How a volume is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Every member hashed, every byte counted as progress (`archive
    /// verify`, the writer's read-back, [`check_stream`]).
    Verify,
    /// A member the sink does not take is checked like any other (listed,
    /// once, of its type and size, read to its end under the gzip CRC), but
    /// not hashed: its bytes go nowhere, and hashing them would make
    /// restoring one file cost a hash of its whole volume. The sink counts
    /// what it writes.
    Restore,
}

/// Reads volume `v` of an archive (a gzip stream) to its very end and
/// checks every member; file members pass through `sink`. Errors name
/// `shown`.
pub(crate) fn read_volume<R: Read>(
    file: R,
    shown: &Path,
    want: Want<'_>,
    v: u32,
    sink: &mut dyn Sink,
    progress: &Progress,
    reading: Reading,
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
    let mut pipe = Pipe::default();
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
                // What the member's data stands for: its bytes, or for a
                // sparse member the content its map and extents make.
                let content = match (x.sparse, h.sparse) {
                    (None, None) => x.size,
                    (Some(want), Some(got)) if want == got => want,
                    (Some(want), Some(got)) => {
                        return Err(bad_member(
                            shown,
                            &h.name,
                            format!(
                                "is a sparse file of {got} bytes, but the manifest says {want}"
                            ),
                        )
                        .into());
                    }
                    (Some(_), None) => {
                        return Err(bad_member(
                            shown,
                            &h.name,
                            "is stored whole, but the manifest lists a sparse member",
                        )
                        .into());
                    }
                    (None, Some(_)) => {
                        return Err(bad_member(
                            shown,
                            &h.name,
                            "is a sparse member, but the manifest lists it stored whole",
                        )
                        .into());
                    }
                };
                let taken_raw = entry.take(x.size);
                let inner: Box<dyn Read + '_> = match x.sparse {
                    None => Box::new(taken_raw),
                    Some(_) => Box::new(
                        Expand::open(io::BufReader::new(taken_raw), content, x.size).map_err(
                            |e| match e {
                                MapError::Io(e) => damaged(shown, &e, vec![h.name.clone()]),
                                MapError::Bad(why) => {
                                    bad_member(shown, &h.name, format!("is refused: {why}"))
                                }
                            },
                        )?,
                    ),
                };
                let mut data = Hashing {
                    inner,
                    hasher: Hasher::default(),
                    n: 0,
                };
                let taken = sink.member(&h.name, &mut data)?;
                if let (false, Some(makes)) = (taken, x.makes) {
                    check_delta(shown, &h.name, &mut data, makes)?;
                }
                let verify = reading == Reading::Verify;
                let digest = finish_member(
                    &mut data,
                    content,
                    (&mut pipe, &mut buf),
                    progress,
                    verify,
                    verify || taken,
                )
                .map_err(|e| match e {
                    Drained::Io(e) => damaged(shown, &e, vec![h.name.clone()]).into(),
                    Drained::Stop(e) => e,
                })?;
                if data.n != content {
                    return Err(bad_member(
                        shown,
                        &h.name,
                        format!("ends after {} of its {content} bytes", data.n),
                    )
                    .into());
                }
                if let Some(d) = digest
                    && x.check != Some(d.to_hex().as_str())
                {
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

/// Members with at least this much left to read are hashed on the helper
/// thread; for smaller ones the round trip costs more than it saves.
const PIPE_MIN: u64 = 1 << 20;

/// Why reading the rest of a member stopped.
enum Drained {
    Io(io::Error),
    Stop(crate::Error),
}

/// Reads what is left of a member of `size` bytes. With `hash`, returns
/// the SHA-256 of all of it: hashed here, or on the helper thread when much
/// is left. With `count`, every byte read counts as progress.
fn finish_member<R: Read>(
    data: &mut Hashing<R>,
    size: u64,
    (pipe, buf): (&mut Pipe, &mut [u8]),
    progress: &Progress,
    count: bool,
    hash: bool,
) -> Result<Option<ObjectId>, Drained> {
    let stop = Drained::Stop;
    let piped =
        hash && size.saturating_sub(data.n) >= PIPE_MIN && pipe.begin(&data.hasher).is_some();
    loop {
        progress.check().map_err(stop)?;
        let mut chunk = if piped { pipe.buffer() } else { Vec::new() };
        let into: &mut [u8] = if piped { &mut chunk } else { &mut *buf };
        let read = data.inner.read(into);
        let k = match read {
            Ok(k) if k > 0 => k,
            other => {
                if piped {
                    pipe.keep(chunk);
                }
                match other {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Drained::Io(e)),
                    _ => break,
                }
            }
        };
        data.n += k as u64;
        if count {
            progress.advance(0, k as u64);
        }
        if piped {
            if !pipe.send(chunk, k) {
                return Err(stop(crate::Error::Panic(
                    "the hashing thread stopped".into(),
                )));
            }
        } else if hash {
            data.hasher.update(buf.get(..k).unwrap_or_default());
        }
    }
    match (hash, piped) {
        (false, _) => Ok(None),
        (true, false) => Ok(Some(data.hasher.clone().finish())),
        (true, true) => pipe
            .end()
            .map(Some)
            .ok_or_else(|| stop(crate::Error::Panic("the hashing thread stopped".into()))),
    }
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
        Reading::Verify,
    )?;
    Ok((c.members, c.bytes))
}
