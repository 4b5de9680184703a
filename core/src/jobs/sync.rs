//! Syncing the chosen disks of this backup set: the profile's command
//! before the sync, its dump commands, one scan (its new content copied to
//! the first disk on the read that hashes it), each disk in turn (the other
//! connected disks of the set serving as sources for what the workstation
//! lost), and the command after the sync, whatever the outcome.
//!
//! A dry run writes nothing to any disk and runs neither commands nor
//! dumps; when it scans, it works on a scratch copy of the catalog, so the
//! snapshot it takes is thrown away with it.
//!
//! Invariant: nothing is scanned or written when the command before the
//! sync fails; the command after it runs once the one before has run.

use std::path::PathBuf;
use std::process::Stdio;

use super::{Error, disks, dumps};
use crate::catalog::Catalog;
use crate::command::Ran;
use crate::config::{Paths, Profile};
use crate::disk::Disk;
use crate::task::Progress;
use crate::volumes::MountSource;

/// What to sync.
#[derive(Clone, Debug)]
pub struct SyncJob {
    /// The disks, by mount path (the first takes the scan's copies), or by
    /// URL for a bucket disk (`s3://BUCKET/PREFIX`, synced after the rest).
    pub roots: Vec<PathBuf>,
    /// Scan first (else sync against the latest snapshot).
    pub scan: bool,
    pub opts: crate::sync::Options,
    /// Where the other connected disks (sources, not targets) are found.
    pub mounts: MountSource,
    /// Who runs it, for the history.
    pub front: super::FrontEnd,
    /// What unlocks encrypted disks.
    pub passphrases: crate::disk::Passphrases,
}

/// How the job went.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncReport {
    pub dry_run: bool,
    /// The profile's command before the sync, when it has one.
    pub before: Option<Ran>,
    pub dumps: Vec<dumps::Dumped>,
    pub scan: Option<crate::scan::Report>,
    pub disks: Vec<crate::sync::Report>,
    /// The command after the sync, when the profile has one.
    pub after: Option<Ran>,
}

impl SyncReport {
    /// True when every disk took all it should and the command after the
    /// sync (if any) succeeded.
    pub fn complete(&self) -> bool {
        self.disks.iter().all(crate::sync::Report::complete)
            && self.after.as_ref().is_none_or(Ran::ok)
    }
}

/// A copy of the catalog to try things on: a dry run's.
fn scratch(paths: &Paths) -> crate::Result<(Catalog, tempfile::TempDir)> {
    let live = Catalog::open(&paths.catalog_file())?;
    let dir = tempfile::Builder::new()
        .prefix(".dry-run-")
        .tempdir_in(&paths.data_dir)
        .map_err(|e| crate::Error::Failed(format!("cannot make a scratch catalog: {e}")))?;
    let copy = dir.path().join("catalog.sqlite");
    live.export_to(&copy)?;
    Ok((Catalog::open(&copy)?, dir))
}

/// Runs a sync job (see the module's text), recorded in the history
/// unless it is a dry run.
pub fn sync(
    paths: &Paths,
    profile: &Profile,
    job: &SyncJob,
    progress: &Progress,
) -> crate::Result<SyncReport> {
    if job.opts.dry_run {
        return sync_unrecorded(paths, profile, job, progress);
    }
    let disks = super::history::disks_at(&job.roots);
    super::record(
        paths,
        job.front,
        super::JobKind::Sync,
        &disks,
        progress,
        |p| sync_unrecorded(paths, profile, job, p),
    )
}

fn sync_unrecorded(
    paths: &Paths,
    profile: &Profile,
    job: &SyncJob,
    progress: &Progress,
) -> crate::Result<SyncReport> {
    let dry = job.opts.dry_run;
    // A dry run that scans works on a scratch copy, so the snapshot it
    // takes is not kept; one that does not scan only plans.
    let (mut catalog, _scratch) = if dry && job.scan {
        let (c, d) = scratch(paths)?;
        (c, Some(d))
    } else {
        (Catalog::open(&paths.catalog_file())?, None)
    };
    let mut report = SyncReport {
        dry_run: dry,
        ..SyncReport::default()
    };
    let hooks = !dry;
    if hooks && let Some(cmd) = &profile.before_sync {
        progress.notice(format!("Running the command before the sync: {cmd}"));
        let ran = crate::command::run(cmd, Stdio::null(), &[("COFFER_PHASE", "before")], progress)?;
        report.before = Some(ran.clone());
        if !ran.ok() {
            after(profile, "failed", &mut report, progress);
            return Err(Error::Before { ran }.into());
        }
    }
    let result = run(paths, profile, job, &mut catalog, &mut report, progress);
    if hooks {
        let outcome = match &result {
            Ok(()) => "ok",
            Err(crate::Error::Cancelled) => "cancelled",
            Err(_) => "failed",
        };
        after(profile, outcome, &mut report, progress);
    }
    result.map(|()| report)
}

/// The command after the sync; its failure is a warning (the sync's own
/// outcome stands).
fn after(profile: &Profile, outcome: &str, report: &mut SyncReport, progress: &Progress) {
    let Some(cmd) = &profile.after_sync else {
        return;
    };
    progress.notice(format!("Running the command after the sync: {cmd}"));
    // It runs even when the sync was cancelled.
    let own = Progress::silent();
    match crate::command::run(
        cmd,
        Stdio::null(),
        &[("COFFER_PHASE", "after"), ("COFFER_RESULT", outcome)],
        &own,
    ) {
        Ok(ran) => {
            if !ran.ok() {
                progress.warn(
                    None,
                    format!(
                        "the command after the sync (`{cmd}`) failed ({})",
                        ran.why()
                    ),
                );
            }
            report.after = Some(ran);
        }
        Err(e) => progress.warn(None, e.to_string()),
    }
}

fn run(
    paths: &Paths,
    profile: &Profile,
    job: &SyncJob,
    catalog: &mut Catalog,
    report: &mut SyncReport,
    progress: &Progress,
) -> crate::Result<()> {
    let mut targets = Vec::new();
    let mut buckets = Vec::new();
    for r in &job.roots {
        if super::bucket::is_bucket(r) {
            let url = r.to_string_lossy();
            buckets.push(super::bucket::open_bucket(
                &url,
                &job.passphrases,
                Some(profile.set_id),
            )?);
        } else {
            targets.push(disks::open(r, &job.passphrases)?);
        }
    }
    // Other connected disks of the set serve as sources.
    let sources: Vec<Disk> = disks::of_set(&job.mounts, catalog, profile.set_id)?
        .into_iter()
        .filter(|(id, _)| !targets.iter().any(|t| t.id() == *id))
        .filter_map(|(_, root)| disks::open_source(&root, &job.passphrases))
        .collect();
    if job.scan && !job.opts.dry_run {
        report.dumps = dumps::run(paths, profile, catalog, progress)?;
    }
    let profile = &dumps::scan_profile(paths, profile);
    for i in 0..targets.len() {
        let (before, rest) = targets.split_at_mut(i);
        let Some((this, after)) = rest.split_first_mut() else {
            break;
        };
        let others: Vec<&Disk> = before
            .iter()
            .chain(after.iter())
            .chain(sources.iter())
            .collect();
        // The scan goes with the first disk's sync: what it reads new is
        // copied to that disk on the same read.
        if i == 0 && job.scan {
            let (s, r) =
                crate::sync::scan_and_sync(catalog, profile, this, &others, &job.opts, progress)?;
            report.scan = Some(s);
            report.disks.push(r);
        } else {
            report.disks.push(crate::sync::sync(
                catalog, profile, this, &others, &job.opts, progress,
            )?);
        }
    }
    if targets.is_empty() && job.scan {
        report.scan = Some(crate::scan::scan(catalog, profile, progress)?);
    }
    // Buckets after the local disks: every connected disk may serve.
    let local: Vec<&Disk> = targets.iter().chain(sources.iter()).collect();
    for b in &buckets {
        let uploads = b.bucket().settings().uploads;
        report.disks.push(crate::sync::sync_bucket(
            catalog, profile, b, &local, &job.opts, uploads, progress,
        )?);
    }
    Ok(())
}
