//! Staging for an archive restore: the member reader's sink that writes
//! the members a restore needs into the private staging folder, whole files
//! as they stream and deltas applied to the content staged before them.
//!
//! Invariant: a staged file counts only once the member reader checked the
//! member's size and SHA-256 (and, for a delta, its result matched the
//! manifest's); whatever fails is removed from the staging folder at once.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use super::Error;
use super::delta::{self, DeltaError};
use super::manifest::How;
use super::member::{self, Sink};
use crate::meta::sparse::HoleWriter;
use crate::object::Hasher;
use crate::restore::dest::{Dir, set_file_meta};
use crate::task::Progress;

/// One step of rebuilding a file: a member in one archive of the chain.
#[derive(Debug)]
pub(super) struct Step {
    pub(super) file: String,
    pub(super) how: How,
    /// Content hash after this step.
    pub(super) sha: String,
    /// For deltas: the base content hash.
    pub(super) base_sha: Option<String>,
    pub(super) size: u64,
    /// Stored as a sparse member: written back with its holes.
    pub(super) sparse: bool,
    /// For the file's last step: its mode and mtime.
    pub(super) last: Option<(u32, Option<i64>)>,
}

/// A file's content staged so far: its name in the staging folder and the
/// SHA-256 it was checked against.
pub(super) struct Staged {
    pub(super) name: OsString,
    pub(super) sha: String,
}

/// The member reader's sink for a restore: stages what `needs` asks for.
pub(super) struct Stager<'a> {
    pub(super) archive: &'a Path,
    pub(super) dest_root: &'a Path,
    pub(super) staging: &'a Dir,
    pub(super) needs: &'a HashMap<String, Step>,
    pub(super) staged: &'a mut HashMap<String, Staged>,
    pub(super) done: &'a mut HashSet<String>,
    /// Written, waiting for the reader's hash check.
    pub(super) pending: Option<(String, Staged)>,
    pub(super) keep_special: bool,
    pub(super) progress: &'a Progress,
}

/// A writer that hashes what it writes and keeps its own write error apart
/// from the reader's.
struct Out<W> {
    inner: W,
    hasher: Hasher,
    failed: bool,
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf).inspect_err(|_| self.failed = true)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

impl Stager<'_> {
    fn stage(
        &self,
        step: &Step,
        data: &mut dyn Read,
        out: &File,
        shown: &Path,
    ) -> crate::Result<()> {
        let write_err = |source| crate::restore::Error::Io {
            op: "cannot write",
            path: shown.to_path_buf(),
            source,
        };
        let mut w = Out {
            inner: BufWriter::with_capacity(1 << 16, out),
            hasher: Hasher::default(),
            failed: false,
        };
        match step.how {
            How::Delta => {
                let delta_err = |message: String| Error::Delta {
                    path: self.archive.to_path_buf(),
                    file: step.file.clone(),
                    message,
                };
                let base = self
                    .staged
                    .get(&step.file)
                    .ok_or_else(|| delta_err("its base content is not in the chain".into()))?;
                if step.base_sha.as_deref() != Some(base.sha.as_str()) {
                    return Err(delta_err("it was made against another base".into()).into());
                }
                let base_file = self.staging.open_tmp(&base.name, shown)?;
                let made = match delta::apply(&base_file, data, &mut w, step.size) {
                    Ok(n) => n,
                    Err(DeltaError::Io(e)) if w.failed => return Err(write_err(e).into()),
                    Err(DeltaError::Io(e)) => {
                        return Err(
                            member::damaged(self.archive, &e, vec![step.file.clone()]).into()
                        );
                    }
                    Err(e) => return Err(delta_err(e.to_string()).into()),
                };
                if made != step.size {
                    return Err(delta_err(format!(
                        "it makes {made} bytes, but the manifest says {}",
                        step.size
                    ))
                    .into());
                }
                if w.hasher.clone().finish().to_hex() != step.sha {
                    return Err(delta_err(
                        "the result does not match the manifest's SHA-256".into(),
                    )
                    .into());
                }
                self.progress.advance(0, made);
            }
            How::New | How::Whole | How::Same if step.sparse => {
                // Whole blocks of zeros (the holes the map left out, and any
                // its data holds) stay holes.
                let mut holes = HoleWriter::new(out);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    self.progress.check()?;
                    let k = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(
                                member::damaged(self.archive, &e, vec![step.file.clone()]).into()
                            );
                        }
                    };
                    holes
                        .write(buf.get(..k).unwrap_or_default())
                        .map_err(write_err)?;
                    self.progress.advance(0, k as u64);
                }
                holes.finish().map_err(write_err)?;
            }
            How::New | How::Whole | How::Same => {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    self.progress.check()?;
                    let k = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(
                                member::damaged(self.archive, &e, vec![step.file.clone()]).into()
                            );
                        }
                    };
                    w.write_all(buf.get(..k).unwrap_or_default())
                        .map_err(write_err)?;
                    self.progress.advance(0, k as u64);
                }
            }
        }
        w.flush().map_err(write_err)?;
        drop(w);
        if let Some((mode, mtime)) = step.last {
            set_file_meta(out, mode, mtime, self.keep_special, shown)?;
        }
        Ok(())
    }
}

impl Sink for Stager<'_> {
    fn member(&mut self, member: &str, data: &mut dyn Read) -> crate::Result<bool> {
        let Some(step) = self.needs.get(member) else {
            return Ok(false);
        };
        let shown = self.dest_root.join(&step.file);
        let (tmp, out) = self.staging.create_tmp(&shown)?;
        let r = self.stage(step, data, &out, &shown);
        drop(out);
        if let Err(e) = r {
            self.staging.remove(&tmp);
            return Err(e);
        }
        self.pending = Some((
            member.to_string(),
            Staged {
                name: tmp,
                sha: step.sha.clone(),
            },
        ));
        Ok(true)
    }

    fn checked(&mut self, member: &str) -> crate::Result<()> {
        let Some((m, st)) = self.pending.take() else {
            return Ok(());
        };
        let Some(step) = self.needs.get(&m).filter(|_| m == member) else {
            self.staging.remove(&st.name);
            return Ok(());
        };
        if let Some(old) = self.staged.insert(step.file.clone(), st) {
            self.staging.remove(&old.name);
        }
        self.done.insert(m);
        Ok(())
    }
}
