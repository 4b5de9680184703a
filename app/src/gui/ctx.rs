//! What the tabs share, as one [`Ctx`]: [`Shared`] (folders, config,
//! connected disks, the catalog's view model, the waker), the running
//! [`Jobs`] and the window's [`Status`] (the message at the bottom, what
//! must be read again).
//!
//! A view never gets the whole app: it gets its own tab's state and a
//! `&Ctx`, and records what the user asked as actions. Only applying an
//! action (after the frame is drawn) or a finished job gets `&mut Ctx`.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use coffer_core::config::{Config, Paths};
use coffer_core::disk::Identity;
use coffer_core::human;
use coffer_core::task::Progress;
use coffer_core::volumes::{MountSource, Mounts};

use super::jobs::{Busy, Done, Jobs, Kind, Waker};
use super::messages::{self, Message};
use super::model::Model;

/// The state every tab reads.
pub struct Shared {
    pub paths: Paths,
    pub mount_source: MountSource,
    pub config: Config,
    /// The connected disks and unknown folders, as the watcher last saw them.
    pub mounts: Mounts,
    /// What the window shows from the catalog (cards, map, headline).
    pub model: Model,
    pub waker: Waker,
    /// The background agent, when one runs (its status file, read about
    /// once a second).
    pub agent: Option<crate::agent::status::AgentStatus>,
}

impl Shared {
    /// Connected disks whose identity file reads: mount point, identity.
    pub fn identified(&self) -> impl Iterator<Item = (&PathBuf, &Identity)> {
        self.mounts
            .disks
            .iter()
            .filter_map(|v| v.identity.as_ref().ok().map(|i| (&v.root, i)))
    }

    /// Connected disks of any backup set, by id and mount point.
    pub fn connected(&self) -> Vec<(uuid::Uuid, PathBuf)> {
        self.identified()
            .map(|(root, i)| (i.disk_id, root.clone()))
            .collect()
    }

    /// Mount points of the connected disks of this backup set.
    pub fn of_set(&self) -> Vec<PathBuf> {
        let set = self.config.profile.set_id;
        self.identified()
            .filter(|(_, i)| i.sets.contains(&set))
            .map(|(root, _)| root.clone())
            .collect()
    }

    /// A disk's label by its mount point, or a bucket disk's by its URL
    /// (the path or URL when it has none).
    pub fn label_of(&self, root: &Path) -> String {
        let bucket = || {
            self.model
                .cards
                .iter()
                .find(|c| c.url.as_deref() == Some(root))
                .map(|c| c.label.clone())
        };
        self.identified()
            .find(|(r, _)| *r == root)
            .map(|(_, i)| i.label.clone())
            .or_else(bucket)
            .unwrap_or_else(|| human::path(root).into_owned())
    }

    /// The URLs of the bucket disks the catalog knows.
    pub fn bucket_urls(&self) -> Vec<PathBuf> {
        self.model
            .cards
            .iter()
            .filter_map(|c| c.url.clone())
            .collect()
    }
}

/// The window-wide results of a tab's work: the message at the bottom, and
/// what must be read again.
#[derive(Default)]
pub struct Status {
    /// The last finished job's message.
    pub message: Option<Message>,
    /// Read the catalog's view model again.
    pub refresh: bool,
    /// The catalog has a new snapshot: views that list snapshots read again.
    pub catalog_changed: bool,
}

/// The context of every tab: the shared state, the running jobs and the
/// window's status. A view draws with `&Ctx`; a tab's actions and finished
/// jobs act through `&mut Ctx`.
pub struct Ctx {
    pub shared: Shared,
    pub jobs: Jobs,
    pub status: Status,
    /// Passphrases of encrypted disks, and the job waiting for one.
    pub unlock: super::unlock::Unlock,
}

impl Deref for Ctx {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Ctx {
    /// Why a job of `kind` on `disks` cannot start now (a button's hover
    /// text when it is greyed out).
    pub fn refusal(&self, kind: Kind, disks: &[PathBuf]) -> Option<String> {
        self.jobs
            .check(kind, disks)
            .err()
            .map(|b| self.busy_reason(&b))
    }

    fn busy_reason(&self, b: &Busy) -> String {
        messages::busy_reason(b, |r| self.shared.label_of(r))
    }

    /// Starts a job; a refusal by the rules becomes the message instead.
    /// Starting clears the last message (the progress panel takes its place).
    pub fn start(
        &mut self,
        kind: Kind,
        disks: Vec<PathBuf>,
        title: String,
        job: impl FnOnce(&Progress) -> coffer_core::Result<Done> + Send + 'static,
    ) -> bool {
        match self.jobs.start(&self.shared.waker, kind, disks, title, job) {
            Ok(()) => {
                self.status.message = None;
                true
            }
            Err(b) => {
                self.refused(&b);
                false
            }
        }
    }

    fn refused(&mut self, b: &Busy) {
        let why = self.busy_reason(b);
        self.say(Message::problem("Not started", why));
    }

    pub fn say(&mut self, m: Message) {
        self.status.message = Some(m);
    }

    pub fn fail(&mut self, title: &str, detail: String) {
        self.say(Message::problem(title, detail));
    }

    /// The catalog changed (a sync, a restore's quarantine, a new disk):
    /// the view model is read again.
    pub fn refresh(&mut self) {
        self.status.refresh = true;
    }

    /// A new snapshot: also the lists of snapshots are read again.
    pub fn catalog_changed(&mut self) {
        self.status.refresh = true;
        self.status.catalog_changed = true;
    }
}
