//! An S3-compatible bucket as storage: where a bucket disk keeps its
//! identity file, objects and catalog slots, under `s3://BUCKET/PREFIX`.
//!
//! Built on Apache Arrow's `object_store` (AWS signing, retries with
//! exponential backoff on throttling, server errors and broken
//! connections, multipart uploads, conditional puts by ETag), driven from
//! plain threads through a small tokio runtime the bucket owns: every
//! method here blocks, like the local disk's.
//!
//! The pieces: this file (the location, the connection, reading, listing,
//! deleting), [`creds`] (the standard AWS variables and
//! `~/.aws/credentials`), [`upload`] (uploads in bounded memory, then
//! checked).
//!
//! Invariant: an object appears under its key only whole (a single PUT, or
//! a completed multipart upload; an upload that fails is aborted), and an
//! upload is reported done only after the bucket was asked what it holds
//! under the key and said the size that was sent. A conditional write
//! never replaces what another writer put there since it was read.

pub mod creds;
pub mod disk;
mod slots;
mod upload;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

pub use creds::Settings;
pub use disk::{BucketDisk, DiskError};
pub use upload::{Condition, Stored};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Location(String),
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        source: object_store::Error,
    },
    #[error("cannot {what} {url}")]
    Op {
        what: &'static str,
        url: String,
        source: object_store::Error,
    },
    #[error("cannot read {url}")]
    Read { url: String, source: std::io::Error },
    #[error("{url} was changed by another writer since it was read")]
    Changed { url: String },
    #[error("{url} exists already")]
    Exists { url: String },
    #[error("{url} holds {got} bytes after an upload of {sent}")]
    Verify { url: String, sent: u64, got: u64 },
    #[error("{url} is missing after an upload")]
    Vanished { url: String },
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
}

/// Where a bucket disk lives: `s3://BUCKET/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Without leading or trailing slash; may be empty.
    pub prefix: String,
}

impl Location {
    /// Parses `s3://BUCKET[/PREFIX]`. The bucket name follows S3's rules
    /// (3 to 63 of `a-z 0-9 . -`); the prefix has no empty, `.` or `..`
    /// parts and no control characters.
    pub fn parse(url: &str) -> Result<Location, Error> {
        let bad = |why: &str| {
            Error::Location(format!(
                "{} is not a bucket location ({why}); write s3://BUCKET/PREFIX",
                crate::human::escape(url)
            ))
        };
        let rest = url.strip_prefix("s3://").ok_or_else(|| bad("no s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
        if !(3..=63).contains(&bucket.len()) || !bucket.chars().all(ok_char) {
            return Err(bad("a bucket name is 3 to 63 of a-z, 0-9, '.' and '-'"));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty()
            && prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == ".." || p.chars().any(char::is_control))
        {
            return Err(bad("the prefix has an empty, '.' or '..' part"));
        }
        if prefix.len() > 512 {
            return Err(bad("the prefix is longer than 512 bytes"));
        }
        Ok(Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The URL of `key` under this location, for messages.
    pub fn url(&self, key: &str) -> String {
        let mut u = format!("s3://{}", self.bucket);
        for part in [self.prefix.as_str(), key] {
            if !part.is_empty() {
                u.push('/');
                u.push_str(part);
            }
        }
        crate::human::escape(&u).into_owned()
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url(""))
    }
}

/// A connected bucket. Cheap to share between threads.
pub struct Bucket {
    loc: Location,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    settings: Settings,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({})", self.loc)
    }
}

/// The TLS provider, installed once for the process (reqwest is built
/// without one of its own, so ring serves).
fn tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Bucket {
    /// Connects to the bucket at `loc` with `settings`. Nothing is sent
    /// yet: [`Bucket::check`] says whether it answers.
    pub fn connect(loc: &Location, settings: &Settings) -> Result<Bucket, Error> {
        tls();
        let s = settings;
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&loc.bucket)
            .with_region(&s.region)
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: s.backoff,
                    max_backoff: Duration::from_secs(15),
                    base: 2.0,
                },
                max_retries: s.retries,
                retry_timeout: s.retry_timeout,
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(s.timeout)
                    .with_allow_http(
                        s.endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            );
        if let Some(e) = &s.endpoint {
            // A custom endpoint (MinIO, Garage, moto…) takes path-style
            // requests: http://host/bucket/key.
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&s.access_key_id, &s.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = &s.session_token {
                b = b.with_token(t);
            }
        }
        let store = b.build().map_err(|source| Error::Connect {
            url: loc.url(""),
            source,
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("coffer-s3")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Bucket {
            loc: loc.clone(),
            store: Arc::new(store),
            rt,
            settings: s.clone(),
        })
    }

    pub fn location(&self) -> &Location {
        &self.loc
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn key(&self, key: &str) -> Key {
        if self.loc.prefix.is_empty() {
            Key::from(key)
        } else {
            Key::from(format!("{}/{key}", self.loc.prefix))
        }
    }

    /// `key` relative to the prefix, for a listed location.
    fn relative<'a>(&self, listed: &'a str) -> &'a str {
        if self.loc.prefix.is_empty() {
            listed
        } else {
            listed
                .strip_prefix(self.loc.prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(listed)
        }
    }

    fn op(&self, what: &'static str, key: &str) -> impl FnOnce(object_store::Error) -> Error {
        let url = self.loc.url(key);
        move |source| Error::Op { what, url, source }
    }

    /// Whether the bucket answers (and these credentials may list it).
    pub fn check(&self) -> Result<(), Error> {
        let prefix = self.key("");
        self.rt
            .block_on(self.store.list_with_delimiter(Some(&prefix)))
            .map(|_| ())
            .map_err(|source| Error::Connect {
                url: self.loc.url(""),
                source,
            })
    }

    /// The size and ETag of what is under `key`, or `None`.
    pub fn head(&self, key: &str) -> Result<Option<Stored>, Error> {
        match self.rt.block_on(self.store.head(&self.key(key))) {
            Ok(m) => Ok(Some(Stored {
                size: m.size,
                e_tag: m.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.op("look up", key)(e)),
        }
    }

    /// Every key under `under` (relative to the prefix), with its size.
    pub fn list(&self, under: &str) -> Result<BTreeMap<String, u64>, Error> {
        let prefix = self.key(under);
        let mut out = BTreeMap::new();
        self.rt.block_on(async {
            let mut s = self.store.list(Some(&prefix));
            while let Some(m) = s.next().await {
                let m = m.map_err(self.op("list", under))?;
                out.insert(self.relative(m.location.as_ref()).to_string(), m.size);
            }
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    /// Deletes `key` (nothing there is no error).
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        match self.rt.block_on(self.store.delete(&self.key(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.op("delete", key)(e)),
        }
    }

    /// Copies `from` to `to` inside the bucket (no bytes through here).
    pub fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        self.rt
            .block_on(self.store.copy(&self.key(from), &self.key(to)))
            .map_err(self.op("copy", from))
    }

    /// A reader of what is under `key` (`None`: nothing is), streamed:
    /// memory stays at one network chunk whatever the size.
    pub fn get(&self, key: &str) -> Result<Option<Reader>, Error> {
        let r = match self.rt.block_on(self.store.get(&self.key(key))) {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.op("read", key)(e)),
        };
        Ok(Some(Reader {
            rt: self.rt.handle().clone(),
            url: self.loc.url(key),
            stream: r.into_stream(),
            chunk: bytes::Bytes::new(),
        }))
    }

    /// All of what is under `key`, up to `cap` bytes (more is an error).
    pub fn get_all(&self, key: &str, cap: u64) -> Result<Option<Vec<u8>>, Error> {
        let Some(r) = self.get(key)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        r.take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|source| Error::Read {
                url: self.loc.url(key),
                source,
            })?;
        if out.len() as u64 > cap {
            return Err(Error::Read {
                url: self.loc.url(key),
                source: std::io::Error::other(format!("is larger than {cap} bytes")),
            });
        }
        Ok(Some(out))
    }
}

/// What is stored under a key, read as a stream.
pub struct Reader {
    rt: tokio::runtime::Handle,
    url: String,
    stream: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("{}: {e}", self.url)));
                }
            }
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed_and_bad_ones_refused() {
        let l = Location::parse("s3://my-bucket.1/home/cloud/").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("my-bucket.1", "home/cloud")
        );
        assert_eq!(
            l.url("coffer-disk.json"),
            "s3://my-bucket.1/home/cloud/coffer-disk.json"
        );
        assert_eq!(Location::parse("s3://abc").unwrap().url("k"), "s3://abc/k");
        for bad in [
            "abc",
            "https://abc/x",
            "s3://ab",
            "s3://Upper",
            "s3://abc/a//b",
            "s3://abc/../x",
            "s3://abc/./x",
            "s3://abc/a\u{7}b",
        ] {
            let err = Location::parse(bad).unwrap_err().to_string();
            assert!(err.contains("s3://BUCKET/PREFIX"), "{bad}: {err}");
        }
    }
}
