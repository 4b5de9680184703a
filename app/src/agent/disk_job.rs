//! One plugged-in disk, as the agent sees to it: synced when its
//! auto-sync is on, then a slice of it verified within the time budget,
//! with a notification when the sync starts and when it ends, and when a
//! verify finds damage.
//!
//! Invariant: a disk another Coffer process holds (the window syncing it)
//! is left alone without a failure notice; every job goes through
//! `core::jobs` as the agent's.

use std::path::Path;
use std::sync::Arc;

use coffer_core::config::{Config, Paths};
use coffer_core::jobs::{self, FrontEnd};
use coffer_core::task::{self, Event, Outcome, Progress};
use coffer_core::volumes::MountSource;
use coffer_core::{Catalog, human};

use super::status::AgentJob;
use super::{Options, Shared};
use crate::desktop::notify::{Notifier, Urgency};

/// The disk at `root` was plugged in (or was there when the agent
/// started): syncs it if it is a known disk of this set with auto-sync on.
pub(super) fn plugged(
    paths: &Paths,
    source: &MountSource,
    root: &Path,
    opts: &Options,
    notifier: &Notifier,
    shared: &Arc<Shared>,
) -> anyhow::Result<()> {
    let Ok(identity) = coffer_core::disk::read_identity(root) else {
        return Ok(());
    };
    let file = paths.catalog_file();
    if !file.exists() {
        return Ok(());
    }
    // Read again for every disk: the window may have changed them.
    let cfg = Config::load_or_default(paths)?;
    let row = Catalog::open(&file)?.disk(identity.disk_id)?;
    let Some(row) = row.filter(|r| r.auto_sync) else {
        return Ok(());
    };
    if !identity.sets.contains(&cfg.profile.set_id) {
        return Ok(());
    }
    let label = human::escape(&row.label).into_owned();
    log::info!(
        "agent: {} plugged in at {}: syncing",
        label,
        human::path(root)
    );
    let job = jobs::SyncJob {
        roots: vec![root.to_path_buf()],
        scan: true,
        opts: coffer_core::sync::Options::default(),
        mounts: source.clone(),
        front: FrontEnd::Agent,
        // The agent asks no one: encrypted disks unlock with
        // COFFER_PASSPHRASE or stay locked.
        passphrases: coffer_core::disk::Passphrases::from_env(),
    };
    let note = notifier.send(
        0,
        &format!("Backing up to {label}"),
        "Coffer copies what changed; leave the disk plugged in until it says it is done",
        Urgency::Low,
    );
    let outcome = watched(shared, "sync", &row, root, |p| {
        jobs::sync(paths, &cfg.profile, &job, p)
    });
    let replace = note.unwrap_or(0);
    match outcome {
        Outcome::Completed { value, warnings } => {
            let mut body: Vec<String> = value.disks.iter().map(|d| capital(&d.summary())).collect();
            body.extend(value.disks.iter().filter_map(|d| d.shortfall_message()));
            if !warnings.is_empty() {
                body.push(format!(
                    "{} could not be read: see Coffer's History",
                    human::count(warnings.len() as u64, "file")
                ));
            }
            let (summary, urgency) = if value.complete() && warnings.is_empty() {
                (format!("{label} is backed up"), Urgency::Normal)
            } else {
                (format!("{label} is backed up in part"), Urgency::Critical)
            };
            notifier.send(replace, &summary, &body.join("\n"), urgency);
        }
        Outcome::Failed(e) if e.is_disk_in_use() => {
            // The window (or a command) is writing it: it says so itself.
            log::info!("agent: {label} is in use by another Coffer: left alone");
            return Ok(());
        }
        Outcome::Failed(e) => {
            notifier.send(
                replace,
                &format!("Backup to {label} failed"),
                &human::escape(&e.to_string()),
                Urgency::Critical,
            );
            return Ok(());
        }
        Outcome::Cancelled => return Ok(()),
    }
    if opts.verify_budget.is_zero() {
        return Ok(());
    }
    let slice = jobs::Slice {
        limit: None,
        budget: Some(opts.verify_budget),
    };
    let outcome = watched(shared, "verify", &row, root, |p| {
        jobs::verify(
            paths,
            &cfg.profile,
            root,
            slice,
            FrontEnd::Agent,
            &coffer_core::disk::Passphrases::from_env(),
            p,
        )
    });
    match outcome {
        Outcome::Completed { value, .. } => {
            let r = &value.report;
            if !r.bad.is_empty() || r.missing > 0 || !r.strays.is_empty() {
                notifier.send(
                    0,
                    &format!("{label} has damaged copies"),
                    &format!(
                        "{}. They were moved aside; the next sync copies them again",
                        capital(&coffer_core::verify::summary(r))
                    ),
                    Urgency::Critical,
                );
            }
        }
        Outcome::Failed(e) if !e.is_disk_in_use() => {
            log::warn!("agent: verify of {label} failed: {e}");
        }
        _ => {}
    }
    Ok(())
}

/// Runs `job` on this thread, its progress shared with the window.
fn watched<T>(
    shared: &Arc<Shared>,
    kind: &str,
    row: &coffer_core::catalog::DiskRow,
    root: &Path,
    job: impl FnOnce(&Progress) -> coffer_core::Result<T>,
) -> Outcome<T> {
    shared.set_job(Some(AgentJob {
        kind: kind.into(),
        disk_id: row.id,
        label: row.label.clone(),
        root: root.to_path_buf(),
        phase: "Starting".into(),
        ..AgentJob::default()
    }));
    let to = shared.clone();
    let progress = Progress::new(move |ev| {
        if let Event::Progress(c) = ev {
            to.update(|j| {
                j.phase = c.phase.map_or("Starting", |p| p.label()).into();
                j.files_done = c.files_done;
                j.files_total = c.files_total;
                j.bytes_done = c.bytes_done;
                j.bytes_total = c.bytes_total;
            });
        }
    });
    let outcome = task::run(&progress, job);
    shared.set_job(None);
    outcome
}

/// The sentence with its first letter in capitals.
fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
