//! Verifying a disk: re-reading its objects against their names, then
//! refreshing the disk's catalog copy so it says what was found.
//!
//! Invariant: a verify that moved anything aside leaves the disk's own
//! catalog copy in step with what it holds.

use std::path::Path;

use crate::catalog::Catalog;
use crate::config::{Paths, Profile};
use crate::task::Progress;

/// How verifying one disk went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifyReport {
    pub label: String,
    pub root: std::path::PathBuf,
    pub report: crate::verify::Report,
}

/// How much of a disk one verify reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Slice {
    /// At most this many copies (the least recently verified).
    pub limit: Option<u64>,
    /// Stop starting new copies once this much time has passed: a rolling
    /// scrub, which covers the whole disk over successive runs since the
    /// least recently verified go first.
    pub budget: Option<std::time::Duration>,
}

/// Verifies a slice of the disk at `root` (of this backup set), then
/// writes its catalog copy; recorded in the history as run by `front`.
pub fn verify(
    paths: &Paths,
    profile: &Profile,
    root: &Path,
    slice: Slice,
    front: super::FrontEnd,
    pass: &crate::disk::Passphrases,
    progress: &Progress,
) -> crate::Result<VerifyReport> {
    let disks = super::history::disks_at(&[root]);
    super::record(
        paths,
        front,
        super::JobKind::Verify,
        &disks,
        progress,
        |p| verify_unrecorded(paths, profile, root, slice, pass, p),
    )
}

fn verify_unrecorded(
    paths: &Paths,
    profile: &Profile,
    root: &Path,
    slice: Slice,
    pass: &crate::disk::Passphrases,
    progress: &Progress,
) -> crate::Result<VerifyReport> {
    let mut catalog = Catalog::open(&paths.catalog_file())?;
    if super::bucket::is_bucket(root) {
        let url = root.to_string_lossy();
        let disk = super::bucket::open_bucket(&url, pass, Some(profile.set_id))?;
        let report = crate::verify_bucket::verify_bucket(
            &mut catalog,
            &disk,
            profile.set_id,
            slice.limit,
            progress,
        )?;
        let profile = super::dumps::scan_profile(paths, profile);
        crate::sync::write_bucket_catalog(&catalog, &profile, &disk)?;
        return Ok(VerifyReport {
            label: disk.identity.label.clone(),
            root: root.to_path_buf(),
            report,
        });
    }
    let mut disk = super::disks::open(root, pass)?;
    let report = crate::verify::verify(
        &mut catalog,
        &mut disk,
        profile.set_id,
        slice.limit,
        slice.budget,
        progress,
    )?;
    crate::sync::write_catalog_copy(&catalog, &super::dumps::scan_profile(paths, profile), &disk)?;
    Ok(VerifyReport {
        label: disk.label().to_string(),
        root: disk.root().to_path_buf(),
        report,
    })
}
