//! The Restore tab's plan: what pressing the button would do, in one line
//! beside it ("Restores 12 files (3.4 MB) into … from disk "Blue"; 1
//! exists and will be kept as both"), from `core::restore::plan` on a
//! `core::task` thread. It is planned again when the ticks, the
//! destination, the policy, the catalog or the connected disks change, and
//! after a restore (the destination changed).

use std::path::PathBuf;

use coffer_core::restore::{self, Options};
use coffer_core::task::Outcome;
use coffer_core::{Task, jobs};

use super::listing::CatalogFile;
use crate::gui::ctx::Shared;
use crate::gui::messages;

/// What a plan is made from; a plan shown is one made from the inputs of now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Key {
    catalog: PathBuf,
    workstation: Option<uuid::Uuid>,
    opts: Options,
    /// The connected disks' mount points.
    disks: Vec<PathBuf>,
}

/// What a restore job is made of, as the tab's fields say now.
pub(super) struct Inputs {
    pub(super) catalog: CatalogFile,
    pub(super) workstation: Option<uuid::Uuid>,
    pub(super) opts: Options,
}

impl Inputs {
    pub(super) fn key(&self, shared: &Shared) -> Key {
        let mut disks: Vec<PathBuf> = shared.connected().into_iter().map(|(_, r)| r).collect();
        disks.sort();
        Key {
            catalog: match &self.catalog {
                CatalogFile::Workstation(p) | CatalogFile::Copy { path: p, .. } => p.clone(),
            },
            workstation: self.workstation,
            opts: self.opts.clone(),
            disks,
        }
    }
}

/// A plan being made.
struct Running {
    key: Key,
    task: Task<String>,
    /// Forgotten while it ran: what it says may no longer hold.
    stale: bool,
}

/// The plan in flight and the last one made.
#[derive(Default)]
pub(super) struct Planner {
    running: Option<Running>,
    /// The last plan's line (or why it cannot run), and what it was made from.
    made: Option<(Key, Result<String, String>)>,
}

impl Planner {
    pub(super) fn busy(&self) -> bool {
        self.running.is_some()
    }

    pub(super) fn thread_ended(&self) -> bool {
        self.running.as_ref().is_none_or(|r| r.task.is_finished())
    }

    /// The destination or the catalog changed: plan again.
    pub(super) fn forget(&mut self) {
        self.made = None;
        if let Some(r) = self.running.as_mut() {
            r.stale = true;
        }
    }

    /// Takes a finished plan, and starts one for `inputs` when the last
    /// one was made from other inputs.
    pub(super) fn poll(
        &mut self,
        inputs: Option<Inputs>,
        shared: &Shared,
        passphrases: &coffer_core::disk::Passphrases,
    ) {
        if let Some(r) = self.running.as_mut()
            && let Some(out) = r.task.try_finish()
        {
            let line = match out {
                Outcome::Completed { value, .. } => Ok(value),
                Outcome::Failed(e) => Err(messages::error_text(&e)),
                Outcome::Cancelled => Err("cancelled".into()),
            };
            if !r.stale {
                self.made = Some((r.key.clone(), line));
            }
            self.running = None;
        }
        let Some(inputs) = inputs else {
            return;
        };
        let key = inputs.key(shared);
        let made = self.made.as_ref().is_some_and(|(k, _)| *k == key);
        if made || self.running.is_some() {
            return;
        }
        let mounts = shared.mount_source.clone();
        let passphrases = passphrases.clone();
        let task = coffer_core::task::spawn("restore-plan", shared.waker.clone(), move |p| {
            let cat = inputs.catalog.open()?;
            // A disk's own catalog may not list the disk it came from.
            let from = match &inputs.catalog {
                CatalogFile::Copy { root, .. } => Some(root.as_path()),
                CatalogFile::Workstation(_) => None,
            };
            let readers = jobs::disks::Readers::open(&cat, &mounts, from, &passphrases)?;
            let plan = restore::plan(
                &cat,
                inputs.workstation,
                &readers.sources(),
                &inputs.opts,
                p,
            )?;
            Ok(plan.summary())
        });
        self.running = Some(Running {
            key,
            task,
            stale: false,
        });
    }

    /// The line for `key`, once its plan is made: the summary, or why the
    /// restore would be refused.
    pub(super) fn line(&self, key: &Key) -> Option<&Result<String, String>> {
        self.made.as_ref().filter(|(k, _)| k == key).map(|(_, l)| l)
    }

    pub(super) fn planning(&self) -> bool {
        self.running.is_some()
    }
}
