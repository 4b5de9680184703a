//! Uploads: one PUT for what fits in a part, else a multipart upload of
//! `part_size` parts, `parallel` at a time (memory bounded whatever the
//! size, and aborted when anything fails so no parts are left billed);
//! then the bucket is asked what it holds under the key, and the upload is
//! done only if that is what was sent. Small writes can be conditional
//! (create only, or replace only the version read), for the identity file
//! and the catalog slots.
//!
//! Invariant: no upload is reported done before the bucket said it holds
//! what was sent: a single PUT's ETag is the MD5 of the bytes sent, or a
//! HEAD says that many bytes under the key, with the ETag the upload got.

use std::io::Read;

use object_store::{
    ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};

use super::{Bucket, Error};

/// What the bucket holds under a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    pub e_tag: Option<String>,
}

/// When a write may go ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Whatever is there.
    Any,
    /// Only if nothing is there yet.
    Absent,
    /// Only if what is there still has this ETag.
    Matches(String),
}

/// The ETag S3 gives a single PUT of `bytes` (without SSE-KMS): the MD5
/// in hex, quoted.
fn md5_tag(bytes: &[u8]) -> String {
    use md5::Digest;
    let d = md5::Md5::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Fills `buf` from `src` up to its capacity; the bytes read.
fn fill(src: &mut dyn Read, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<usize> {
    buf.clear();
    let got = src.take(cap as u64).read_to_end(buf)?;
    Ok(got)
}

impl Bucket {
    /// Uploads all of `src` under `key`; `each` sees the bytes read (an
    /// error from it, such as a cancel, stops the upload).
    pub fn put(
        &self,
        key: &str,
        src: &mut dyn Read,
        each: &mut dyn FnMut(u64) -> std::io::Result<()>,
    ) -> Result<Stored, Error> {
        let part = self.settings.part_size.max(super::creds::MIN_PART);
        let url = self.loc.url(key);
        let read_err = |source| Error::Read {
            url: format!("what is uploaded to {url}"),
            source,
        };
        let mut buf = Vec::with_capacity(part);
        let n = fill(src, &mut buf, part).map_err(read_err)?;
        each(n as u64).map_err(read_err)?;
        let path = self.key(key);
        let (sent, result) = if n < part {
            // It all fits in one PUT, which S3 makes visible whole or not.
            let md5 = md5_tag(&buf);
            let r = self
                .rt
                .block_on(
                    self.store
                        .put(&path, PutPayload::from(std::mem::take(&mut buf))),
                )
                .map_err(self.op("upload", key))?;
            if r.e_tag.as_deref() == Some(md5.as_str()) {
                // The bucket says it holds exactly the bytes sent.
                return Ok(Stored {
                    size: n as u64,
                    e_tag: r.e_tag,
                });
            }
            (n as u64, r)
        } else {
            let upload = self
                .rt
                .block_on(self.store.put_multipart(&path))
                .map_err(self.op("start uploading", key))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, part);
            let mut sent = 0u64;
            let r: Result<(), Error> = self.rt.block_on(async {
                let mut next = std::mem::take(&mut buf);
                loop {
                    sent += next.len() as u64;
                    w.put(bytes::Bytes::from(next));
                    w.wait_for_capacity(self.settings.parallel.max(1))
                        .await
                        .map_err(self.op("upload", key))?;
                    let mut b = Vec::with_capacity(part);
                    let n = fill(src, &mut b, part).map_err(read_err)?;
                    if n == 0 {
                        return Ok(());
                    }
                    each(n as u64).map_err(read_err)?;
                    next = b;
                }
            });
            match r {
                Ok(()) => {
                    let done = self
                        .rt
                        .block_on(w.finish())
                        .map_err(self.op("finish uploading", key))?;
                    (sent, done)
                }
                Err(e) => {
                    // The parts sent so far are dropped by the bucket.
                    let _ = self.rt.block_on(w.abort());
                    return Err(e);
                }
            }
        };
        self.verify(key, sent, result.e_tag)
    }

    /// Writes `bytes` under `key` if `when` holds: `Ok(None)` when it does
    /// not (another writer was first), else what is stored, checked.
    pub fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        when: Condition,
    ) -> Result<Option<Stored>, Error> {
        let sent = bytes.len() as u64;
        let mode = match when {
            Condition::Any => PutMode::Overwrite,
            Condition::Absent => PutMode::Create,
            Condition::Matches(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self.rt.block_on(
            self.store
                .put_opts(&self.key(key), PutPayload::from(bytes), opts),
        ) {
            Ok(r) => self.verify(key, sent, r.e_tag).map(Some),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(None),
            Err(e) => Err(self.op("upload", key)(e)),
        }
    }

    /// Asks the bucket what it holds under `key` after an upload of `sent`
    /// bytes that got `e_tag`.
    fn verify(&self, key: &str, sent: u64, e_tag: Option<String>) -> Result<Stored, Error> {
        let url = self.loc.url(key);
        let Some(got) = self.head(key)? else {
            return Err(Error::Vanished { url });
        };
        if got.size != sent {
            return Err(Error::Verify {
                url,
                sent,
                got: got.size,
            });
        }
        if e_tag.is_some() && got.e_tag.is_some() && got.e_tag != e_tag {
            return Err(Error::Changed { url });
        }
        Ok(got)
    }
}
