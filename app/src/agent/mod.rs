//! `coffer agent`: Coffer without its window. It watches the mounted
//! volumes (`core::volumes::watch`: `POLLPRI` on `/proc/self/mountinfo`, or
//! the test root of `COFFER_MOUNT_ROOT`), syncs each disk of this backup
//! set whose auto-sync is on when it appears (a disk already plugged in
//! when the agent starts included), then verifies a slice of it within a
//! time budget (a rolling scrub: the least recently verified copies
//! first, so successive plug-ins cover the whole disk). It tells the
//! desktop through notifications (`desktop::notify`) and reminds of disks
//! left unsynced. Its jobs go through `core::jobs`, like the window's and
//! the command line's, and are recorded in the history as the agent's.
//!
//! `status` is what it tells the window; `install` switches starting it
//! at login; `disk_job` runs one disk's sync and verify.
//!
//! Invariant: one agent per user (the instance lock); a disk is written
//! only under its own lock (`Disk::claim`), so the agent and the window
//! never sync the same disk at once, and a disk the window holds is left
//! for the next plug-in without a failure notice.

mod disk_job;
pub mod install;
pub mod status;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coffer_core::config::{Config, Paths};
use coffer_core::volumes::{self, MountSource};
use coffer_core::{Catalog, human};

use crate::desktop::Bus;
use crate::desktop::notify::{Notifier, Urgency};
use status::AgentStatus;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long the verify after each sync may read (zero: no verify).
    pub verify_budget: Duration,
    /// Remind of a disk not synced for this long.
    pub remind_after: Duration,
    /// The bus notifications go to.
    pub bus: Bus,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            verify_budget: Duration::from_secs(120),
            remind_after: Duration::from_secs(30 * 24 * 3600),
            bus: Bus::Default,
        }
    }
}

/// How often reminders are looked for.
const REMIND_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Why `run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Another agent of this user runs already.
    AlreadyRunning,
}

/// The status the agent shares, and whether it changed since written.
pub(crate) struct Shared {
    status: Mutex<(AgentStatus, bool)>,
}

impl Shared {
    pub(crate) fn set_job(&self, job: Option<status::AgentJob>) {
        if let Ok(mut g) = self.status.lock() {
            g.0.job = job;
            g.1 = true;
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut status::AgentJob)) {
        if let Ok(mut g) = self.status.lock()
            && let Some(j) = g.0.job.as_mut()
        {
            f(j);
            g.1 = true;
        }
    }
}

/// Runs the agent until it is stopped (or returns at once when another
/// agent runs).
pub fn run(paths: &Paths, opts: &Options) -> anyhow::Result<Ended> {
    let Some(_instance) = status::lock(paths)? else {
        return Ok(Ended::AlreadyRunning);
    };
    log::info!("agent started (pid {})", std::process::id());
    let shared = Arc::new(Shared {
        status: Mutex::new((
            AgentStatus {
                pid: std::process::id(),
                ..AgentStatus::default()
            },
            true,
        )),
    });
    spawn_status_writer(paths.clone(), shared.clone())?;
    let notifier = Notifier::connect(&opts.bus);
    let source = MountSource::from_env();
    let watcher = volumes::watch(source.clone(), Arc::new(|| {}))
        .context("cannot watch the mounted volumes")?;
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut reminded: Option<Instant> = None;
    loop {
        let mounts = match watcher.events.recv_timeout(Duration::from_secs(60)) {
            // Only the latest state matters after a long job.
            Ok(first) => Some(watcher.events.try_iter().last().unwrap_or(first)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the volume watcher stopped")
            }
        };
        if let Some(m) = mounts {
            let now: HashSet<PathBuf> = m.disks.iter().map(|v| v.root.clone()).collect();
            let plugged: Vec<PathBuf> = m
                .disks
                .iter()
                .filter(|v| !seen.contains(&v.root))
                .map(|v| v.root.clone())
                .collect();
            seen = now;
            for root in plugged {
                if let Err(e) = disk_job::plugged(paths, &source, &root, opts, &notifier, &shared) {
                    log::warn!("agent: {}: {e:#}", human::path(&root));
                }
            }
        }
        if reminded.is_none_or(|t| t.elapsed() >= REMIND_EVERY) {
            reminded = Some(Instant::now());
            match reminders(paths, &source, opts.remind_after) {
                Ok(list) => {
                    for (summary, body) in list {
                        notifier.send(0, &summary, &body, Urgency::Normal);
                    }
                }
                Err(e) => log::warn!("agent: cannot look for reminders: {e:#}"),
            }
        }
    }
}

/// Writes the status when it changed, at most once a second, and at
/// least every [`status::HEARTBEAT`] so the window knows the agent lives.
fn spawn_status_writer(paths: Paths, shared: Arc<Shared>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("coffer-agent-status".into())
        .spawn(move || {
            let mut written = Instant::now() - status::HEARTBEAT;
            loop {
                let due = written.elapsed() >= status::HEARTBEAT;
                let snapshot = shared.status.lock().ok().and_then(|mut g| {
                    (g.1 || due).then(|| {
                        g.1 = false;
                        g.0.updated_at = coffer_core::now();
                        g.0.clone()
                    })
                });
                if let Some(s) = snapshot {
                    if let Err(e) = status::write(&paths, &s) {
                        log::warn!("agent: {e:#}");
                    }
                    written = Instant::now();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .context("cannot start the agent's status thread")?;
    Ok(())
}

/// The reminders due now: each known disk of this set that is not
/// connected and was last synced longer than `after` ago (or never,
/// once it is that old).
fn reminders(
    paths: &Paths,
    source: &MountSource,
    after: Duration,
) -> anyhow::Result<Vec<(String, String)>> {
    let file = paths.catalog_file();
    if !file.exists() {
        return Ok(Vec::new());
    }
    let cfg = Config::load_or_default(paths)?;
    let catalog = Catalog::open(&file)?;
    let rows = catalog.disks()?;
    let present = volumes::present(source, &rows);
    let connected: HashSet<uuid::Uuid> = present
        .iter()
        .filter_map(|v| v.identity.as_ref().ok().map(|i| i.disk_id))
        .collect();
    let status = coffer_core::redundancy::status(&catalog, &cfg.profile)?;
    let one_copy: u64 = status.disks.iter().map(|d| d.lost.bytes).sum();
    let stale: Vec<(String, i64)> = rows
        .iter()
        .filter(|d| !connected.contains(&d.id))
        .map(|d| (d.label.clone(), d.last_sync.unwrap_or(d.created_at)))
        .collect();
    Ok(reminder_words(&stale, one_copy, coffer_core::now(), after))
}

/// "Blue WD has not been synced for 30 days" / "12 GB has only one copy:
/// plug it in to back it up", for each disk synced last before `after` ago.
fn reminder_words(
    disks: &[(String, i64)],
    one_copy: u64,
    now: i64,
    after: Duration,
) -> Vec<(String, String)> {
    let limit = i64::try_from(after.as_secs()).unwrap_or(i64::MAX);
    disks
        .iter()
        .filter(|(_, t)| now.saturating_sub(*t) >= limit)
        .map(|(label, t)| {
            let days = now.saturating_sub(*t) / 86_400;
            let summary = format!(
                "{} has not been synced for {}",
                human::escape(label),
                human::count(days.max(0) as u64, "day")
            );
            let body = if one_copy > 0 {
                format!(
                    "{} has only one copy: plug it in to back it up",
                    human::bytes(one_copy)
                )
            } else {
                "Plug it in to bring it up to date".to_string()
            };
            (summary, body)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_is_reminded_of_once_it_was_left_long_enough() {
        let day = 86_400;
        let now = 100 * day;
        let disks = vec![
            ("Blue WD".to_string(), now - 31 * day),
            ("Red".to_string(), now - 2 * day),
        ];
        let month = Duration::from_secs(30 * day as u64);
        assert_eq!(
            reminder_words(&disks, 12_000_000_000, now, month),
            vec![(
                "Blue WD has not been synced for 31 days".to_string(),
                "12 GB has only one copy: plug it in to back it up".to_string()
            )]
        );
        assert_eq!(
            reminder_words(&disks, 0, now, Duration::from_secs(day as u64))[1].1,
            "Plug it in to bring it up to date"
        );
    }
}
