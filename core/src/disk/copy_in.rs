//! Copying bytes into `coffer/tmp/`: one temp file per part above the file
//! system's size limit, hashed on the way, sealed on an encrypted disk,
//! whole blocks of zeros left as holes where the file system makes them.
//!
//! Invariant: what a `Pending` names holds exactly the bytes hashed into
//! it; a copy that failed leaves none of its parts behind.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::store::{Pending, Resume};
use super::{Disk, Error, TMP};
use crate::disk::CopyInError;
use crate::disk::io::IoFile;
use crate::object::with_buffer;

/// Whether a write failed because the file grew past what the file
/// system holds in one file (EFBIG; FUSE drivers also say EPERM, EINVAL or
/// EOVERFLOW).
fn size_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(27 | 1 | 22 | 75))
}

impl Disk {
    /// The copy behind [`write_tmp`](Self::write_tmp) and
    /// [`stage`](Self::stage): into temp files named after `name`, in parts
    /// above the file system's size limit, hashing on the way.
    pub(super) fn copy_in(
        &self,
        name: &str,
        src: &mut dyn Read,
        resume: Resume,
        mut each: impl FnMut(u64) -> Result<(), crate::Error>,
    ) -> Result<Pending, CopyInError> {
        let io = self.gate()?;
        let mut sealer = self.object_sealer()?;
        let mut sealed = Vec::new();
        let mut limit = self.max_file_size();
        let Resume {
            mut hasher,
            mut parts,
            written,
        } = resume;
        let mut total = written;
        let mut cur: Option<(Box<dyn IoFile>, u64)> = match parts.last() {
            Some(last) => Some((
                io.append(&self.root, last).map_err(|e| {
                    CopyInError::from(Error::io("cannot reopen", &self.root.show(last), e))
                })?,
                // Every part before the last one is full.
                written.saturating_sub((parts.len() as u64 - 1).saturating_mul(limit)),
            )),
            None => None,
        };
        let new_part = |parts: &mut Vec<PathBuf>| -> Result<Box<dyn IoFile>, CopyInError> {
            let p = Path::new(TMP).join(format!("{name}.p{:03}", parts.len() + 1));
            let f = io.create_new(&self.root, &p).map_err(|e| {
                CopyInError::from(Error::io("cannot create", &self.root.show(&p), e))
            })?;
            parts.push(p);
            Ok(f)
        };
        let shown = |parts: &[PathBuf]| self.root.show(parts.last().cloned().unwrap_or_default());
        // Whole blocks of zeros (the holes of a sparse source among them)
        // are left as holes where the disk's file system makes them.
        let holes = self.fs_kind().unix();
        // Whether the part being written ends in a hole, so far.
        let mut short = false;
        // Writes bytes out across parts (sealed ones on an encrypted disk),
        // leaving whole blocks of zeros as holes where that is possible.
        let mut put = |mut chunk: &[u8],
                       cur: &mut Option<(Box<dyn IoFile>, u64)>,
                       parts: &mut Vec<PathBuf>,
                       short: &mut bool|
         -> Result<(), CopyInError> {
            while !chunk.is_empty() {
                if cur.as_ref().is_none_or(|(_, w)| *w >= limit) {
                    if let Some((mut f, w)) = cur.take() {
                        if *short {
                            f.set_len(w)
                                .map_err(|e| Error::io("cannot write", &shown(parts), e))?;
                        }
                        f.sync_all()
                            .map_err(|e| Error::io("cannot flush", &shown(parts), e))?;
                    }
                    *short = false;
                    *cur = Some((new_part(parts)?, 0));
                }
                let Some((f, written)) = cur.as_mut() else {
                    break;
                };
                let take = (limit - *written).min(chunk.len() as u64) as usize;
                let piece = &chunk[..take];
                let wrote = if holes {
                    write_skipping(f.as_mut(), piece, *written, short)
                } else {
                    f.write_all(piece)
                };
                match wrote {
                    Ok(()) => {}
                    // A file system that refuses a file this big (FAT
                    // through a FUSE driver that is not recognised):
                    // what it holds so far is a part, the rest goes on
                    // in the next one, and later objects are cut sooner.
                    Err(e) if size_refused(&e) && *written >= 1 << 31 => {
                        // Whatever of the chunk got in goes (a file
                        // system at its limit may not cut it back, but
                        // then it took nothing).
                        let got = f
                            .size()
                            .map_err(|e| Error::io("cannot write", &shown(parts), e))?;
                        if got != *written {
                            f.set_len(*written)
                                .map_err(|e| Error::io("cannot write", &shown(parts), e))?;
                        }
                        *short = false;
                        limit = *written;
                        self.learn_max_file(limit);
                        continue;
                    }
                    Err(e) => return Err(Error::io("cannot write", &shown(parts), e).into()),
                }
                *written += take as u64;
                chunk = &chunk[take..];
            }
            Ok(())
        };
        let result: Result<(), CopyInError> = with_buffer(|buf| {
            loop {
                let n = match src.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(CopyInError::Read(e)),
                };
                hasher.update(&buf[..n]);
                match sealer.as_mut() {
                    None => put(&buf[..n], &mut cur, &mut parts, &mut short)?,
                    Some(s) => {
                        sealed.clear();
                        s.push(&buf[..n], &mut |b| {
                            sealed.extend_from_slice(b);
                            Ok(())
                        })
                        .map_err(|e| Error::io("cannot seal", &shown(&parts), e))?;
                        put(&sealed, &mut cur, &mut parts, &mut short)?;
                    }
                }
                total += n as u64;
                each(n as u64)?;
            }
            if let Some(s) = sealer.take() {
                sealed.clear();
                s.finish(&mut |b| {
                    sealed.extend_from_slice(b);
                    Ok(())
                })
                .map_err(|e| Error::io("cannot seal", &shown(&parts), e))?;
                put(&sealed, &mut cur, &mut parts, &mut short)?;
            }
            if parts.is_empty() {
                cur = Some((new_part(&mut parts)?, 0));
            }
            if let Some((f, w)) = cur.as_mut() {
                if short {
                    f.set_len(*w)
                        .map_err(|e| Error::io("cannot write", &shown(&parts), e))?;
                }
                f.start_flush();
            }
            Ok(())
        });
        drop(cur);
        match result {
            Ok(()) => Ok(Pending {
                hash: hasher.finish(),
                size: total,
                parts,
            }),
            Err(e) => {
                self.discard(&parts);
                Err(e)
            }
        }
    }
}

/// Writes `piece`, which lands at offset `at` of an object's part on a
/// disk, leaving whole blocks of zeros as holes (through
/// [`IoFile::skip`]); `short` tells whether the
/// part now ends in one, so the caller gives it its length.
fn write_skipping(f: &mut dyn IoFile, piece: &[u8], at: u64, short: &mut bool) -> io::Result<()> {
    for (zero, r) in crate::meta::sparse::runs(piece, at) {
        if zero {
            f.skip(r.len() as u64)?;
            *short = true;
        } else {
            f.write_all(&piece[r])?;
            *short = false;
        }
    }
    Ok(())
}
