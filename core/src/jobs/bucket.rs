//! Bucket disks in jobs: named by their URL (`s3://BUCKET/PREFIX`) where a
//! local disk is named by its mount path, reached with the standard AWS
//! variables and files (`bucket::Settings::from_env`).
//!
//! Invariant: a bucket disk is opened unlocked or not at all, and only one
//! of this backup set is written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bucket::{Bucket, BucketDisk, DiskError, Location, Settings};
use crate::disk::Passphrases;

/// Whether a job's disk `root` names a bucket.
pub fn is_bucket(root: &Path) -> bool {
    root.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Reaches the bucket disk at `url` and reads its identity (nothing is
/// unlocked or written).
fn reach(url: &str) -> crate::Result<BucketDisk> {
    Ok(reach_with(url, &Settings::from_env())?)
}

fn reach_with(url: &str, settings: &Settings) -> Result<BucketDisk, DiskError> {
    let loc = Location::parse(url)?;
    BucketDisk::open(Bucket::connect(&loc, settings)?)
}

/// Finds out whether the bucket disk at `url` answers now, and reads its
/// identity (nothing is unlocked or written); when it does not, why in
/// plain words ([`why`]). A few quick retries, not the minutes a sync's
/// requests are given: a bucket that does not answer within seconds counts
/// as not connected, like a disk not plugged in.
pub fn probe(url: &str) -> Result<BucketDisk, String> {
    reach_quickly(url).map_err(|e| why(&e))
}

/// Reaches the bucket disk at `url` with a few quick retries ([`probe`]'s),
/// and reads its identity.
pub(super) fn reach_quickly(url: &str) -> Result<BucketDisk, DiskError> {
    let settings = Settings {
        retries: 2,
        backoff: Duration::from_millis(200),
        retry_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(20),
        ..Settings::from_env()
    };
    reach_with(url, &settings)
}

/// Opens the bucket disk at `url`, unlocked with `pass` when encrypted,
/// and checks that it belongs to the backup set `set` (when given).
pub fn open_bucket(
    url: &str,
    pass: &Passphrases,
    set: Option<uuid::Uuid>,
) -> crate::Result<BucketDisk> {
    let disk = reach(url)?;
    if let Some(set) = set
        && !disk.identity.sets.contains(&set)
    {
        return Err(crate::Error::Failed(format!(
            "{} belongs to another backup set; nothing was written",
            disk.bucket().location()
        )));
    }
    disk.unlock_with(&*pass.0)?;
    Ok(disk)
}

/// The bucket disks `catalog` knows that answer now, unlocked with `pass`
/// (one that does not unlock, or does not answer within seconds, as
/// [`probe`] asks, is left out, like a disk not plugged in).
pub fn open_known(catalog: &crate::Catalog, pass: &Passphrases) -> crate::Result<Vec<BucketDisk>> {
    let mut out = Vec::new();
    for row in catalog.disks()? {
        let Some(url) = row.last_mount.as_deref().and_then(|p| p.to_str()) else {
            continue;
        };
        if !url.starts_with("s3://") || reach_quickly(url).is_err() {
            continue;
        }
        if let Ok(d) = open_bucket(url, pass, None)
            && d.identity.disk_id == row.id
        {
            out.push(d);
        }
    }
    Ok(out)
}

/// The URLs of the bucket disks `catalog` knows.
pub fn known_urls(catalog: &crate::Catalog) -> crate::Result<Vec<std::path::PathBuf>> {
    Ok(catalog
        .disks()?
        .into_iter()
        .filter_map(|r| r.last_mount)
        .filter(|p| is_bucket(p))
        .collect())
}

/// A bucket disk that did not answer, and why.
pub type Away = (PathBuf, String);

/// The bucket disks of the backup set `set` that `catalog` knows: those
/// that answer now (by URL, [`probe`]), and those that do not, with why in
/// plain words ([`why`]). A bucket is connected whenever it is reachable,
/// so "every connected disk" takes the first; nothing is unlocked or
/// written here.
pub fn of_set(
    catalog: &crate::Catalog,
    set: uuid::Uuid,
) -> crate::Result<(Vec<PathBuf>, Vec<Away>)> {
    let (mut reachable, mut away) = (Vec::new(), Vec::new());
    for url in known_urls(catalog)? {
        let opened = url
            .to_str()
            .ok_or_else(|| "its address is not text".to_string())
            .and_then(probe);
        match opened {
            Ok(d) if d.identity.sets.contains(&set) => reachable.push(url),
            // Another set's bucket is not this set's to sync.
            Ok(_) => {}
            Err(why) => away.push((url, why)),
        }
    }
    Ok((reachable, away))
}

/// Why reaching a bucket disk failed, in plain words for a person: what
/// went wrong (refused, timed out, no such name, credentials refused, no
/// Coffer disk there, a server error by its HTTP status). Nothing the
/// server or the client library said is quoted (error bodies, requests,
/// retry details); what is not recognised is said as such.
pub fn why(e: &DiskError) -> String {
    use crate::bucket::Error;
    match e {
        DiskError::NotADisk { .. } => {
            return "there is no Coffer disk at this address (no such bucket, or no coffer-disk.json under this prefix)".into();
        }
        DiskError::BadIdentity { .. } => {
            return "its coffer-disk.json cannot be read as a Coffer disk's".into();
        }
        DiskError::Bucket(Error::Location(why)) => return why.clone(),
        DiskError::Bucket(Error::Runtime(_)) => {
            return "the network runtime could not be started".into();
        }
        _ => {}
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(o) = c.downcast_ref::<object_store::Error>() {
            match o {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => {
                    return "the server refused these credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)".into();
                }
                object_store::Error::NotFound { .. } => {
                    return "the server has no such bucket".into();
                }
                _ => {}
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return REFUSED.into(),
                ErrorKind::TimedOut => return LATE.into(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                    return "the server dropped the connection".into();
                }
                _ => {}
            }
        }
        let text = c.to_string().to_ascii_lowercase();
        // The client's retry error is private to it: only the status
        // (three digits) is taken from its text.
        if let Some(status) = http_status(&text) {
            return format!("the server answered with an error (HTTP {status})");
        }
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return "the server's name was not found (no network, or a mistyped AWS_ENDPOINT_URL)"
                .into();
        }
        if text.contains("connection refused") {
            return REFUSED.into();
        }
        if text.contains("timed out") {
            return LATE.into();
        }
        cause = c.source();
    }
    "it did not answer as an S3 server should".into()
}

const REFUSED: &str = "nothing answers at the server's address (connection refused)";
const LATE: &str = "the server did not answer in time";

/// The HTTP status in the client's "status code: 503 …", if the text holds one.
fn http_status(text: &str) -> Option<&str> {
    let (_, after) = text.split_once("status code: ")?;
    let code = after.get(..3)?;
    code.bytes().all(|b| b.is_ascii_digit()).then_some(code)
}
