//! The Disks tab: a card per known disk (sync, verify, sync when plugged
//! in), "Sync all connected disks", the folders that could become disks
//! and the "Use as backup disk…" form (`view`, `dialogs`); and what its
//! buttons start.
//!
//! A press of Sync starts a chain of steps under one claim and one cancel
//! flag: a dry run (the plan, to show what it would delete before anything
//! is), maybe a wait for "Sync anyway", then the scan and sync. Sync all
//! is the same chain over every connected disk of this backup set, which
//! the job service chooses (and only those: the bucket disks that answer
//! among them), scanning once. Bucket disks have cards of their own
//! (`bucket`), whose Sync starts the same chain with the bucket's URL.

mod bucket;
mod dialogs;
pub mod manage;
mod view;

use std::path::PathBuf;

use coffer_core::jobs::bucket::Away;
use coffer_core::jobs::{self, FrontEnd, SyncJob};
use coffer_core::task::Outcome;
use coffer_core::volumes::MountSource;
use coffer_core::{Catalog, Disk, Paths, Profile, Task, disk::io, human, sync};

use super::ctx::{Ctx, Shared};
use super::jobs::{Claim, Done, Finished, Kind, outcome_of};
use super::messages;

pub use dialogs::{init_dialog, plan_dialog};

#[derive(Clone, Debug)]
pub enum Action {
    /// Sync the disk at this mount point (or the bucket disk at this URL).
    Sync(PathBuf),
    /// Sync every connected disk of this backup set.
    SyncAll,
    /// "Sync anyway": the plan waiting in its dialog goes on to the sync.
    ConfirmSync,
    /// "Don't sync": the chain ends.
    DismissPlan,
    Verify(PathBuf),
    /// Open the "Use as backup disk…" form for this folder.
    OfferInit(PathBuf),
    Init {
        root: PathBuf,
        label: String,
        quota: String,
    },
    CloseInit,
    AutoSync(uuid::Uuid, bool),
    /// "Check again": find out again which bucket disks answer.
    CheckBuckets,
    /// The card's "Manage" menu and its dialogs.
    Manage(manage::Manage),
}

/// What a Sync press syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Disk(PathBuf),
    /// Every connected disk of this backup set.
    AllOfSet,
}

/// Where a sync chain is.
enum Step {
    Planning,
    /// The plan deletes data the user may not expect: its reports, awaiting
    /// "Sync anyway", and the disks it chose.
    Asking {
        reports: Vec<sync::Report>,
        chosen: Chosen,
    },
    Syncing,
}

/// The disks a sync chose, and the bucket disks of the set that did not
/// answer (said, not a failure).
type Chosen = (Vec<PathBuf>, Vec<Away>);

/// One press of Sync, from the plan until the sync ends.
struct Chain {
    target: Target,
    step: Step,
    /// What the plan said the sync will copy and delete, for its title.
    estimate: Option<String>,
}

/// The "Use as backup disk…" form.
#[derive(Clone, Debug, Default)]
pub struct InitForm {
    pub root: PathBuf,
    pub label: String,
    pub quota: String,
    pub error: Option<String>,
}

/// The Disks tab's state and its small tasks (its long jobs are in
/// [`super::jobs::Jobs`]).
#[derive(Default)]
pub struct DisksTab {
    init_form: Option<InitForm>,
    /// Setting up a disk: its label and mount point when done.
    initialising: Option<Task<(String, PathBuf)>>,
    /// Saving a card's "sync when plugged in" (a one-row update).
    chores: Vec<Task<()>>,
    chain: Option<Chain>,
    /// Mount points at the last volume event, to tell newly plugged disks.
    seen: Vec<PathBuf>,
    /// Rename, quota, eject, forget, and the agent switch.
    pub(crate) manage: manage::ManageState,
    /// Which bucket disks answer.
    buckets: bucket::Buckets,
}

impl DisksTab {
    /// True while one of the tab's own tasks runs.
    pub fn busy(&self) -> bool {
        self.initialising.is_some()
            || !self.chores.is_empty()
            || self.manage.busy()
            || self.buckets.checking()
    }

    pub fn threads_ended(&self) -> bool {
        self.initialising.as_ref().is_none_or(Task::is_finished)
            && self.chores.iter().all(Task::is_finished)
            && self.manage.threads_ended()
            && self.buckets.thread_ended()
    }

    /// Takes the buckets' check and starts the next when it is due (only
    /// while the tab shows); how long until the next one, then.
    pub fn poll_buckets(&mut self, visible: bool, shared: &Shared) -> Option<std::time::Duration> {
        self.buckets.poll(visible, shared)
    }

    /// The tab opened: the buckets are checked again.
    pub fn opened(&mut self) {
        self.buckets.stale();
    }

    pub fn apply(&mut self, action: Action, cx: &mut Ctx) {
        match action {
            Action::Sync(root) => self.start_chain(Target::Disk(root), cx),
            Action::SyncAll => self.start_chain(Target::AllOfSet, cx),
            Action::ConfirmSync => {
                if let Some(claim) = cx.jobs.take_held(Kind::Sync) {
                    self.confirm(claim, cx);
                }
            }
            Action::DismissPlan => {
                // Dropping the held claim ends the chain.
                drop(cx.jobs.take_held(Kind::Sync));
                self.chain = None;
            }
            Action::Verify(root) => self.start_verify(root, cx),
            Action::OfferInit(root) => {
                let label = root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.init_form = Some(InitForm {
                    root,
                    label,
                    ..InitForm::default()
                });
            }
            Action::Init { root, label, quota } => self.start_init(root, label, quota, cx),
            Action::CloseInit => self.init_form = None,
            Action::AutoSync(id, on) => self.set_auto_sync(id, on, cx),
            Action::CheckBuckets => self.buckets.stale(),
            Action::Manage(m) => self.manage.apply(m, cx),
        }
    }

    /// Takes the tab's finished small tasks.
    pub fn poll(&mut self, cx: &mut Ctx) {
        self.manage.poll(cx);
        let mut chores = std::mem::take(&mut self.chores);
        chores.retain_mut(|t| match t.try_finish() {
            None => true,
            Some(Outcome::Failed(e)) => {
                cx.say(messages::failed_message("Cannot save the setting", &e));
                false
            }
            Some(_) => false,
        });
        self.chores = chores;
        if let Some(out) = self.initialising.as_mut().and_then(Task::try_finish) {
            self.initialising = None;
            cx.refresh();
            match out {
                Outcome::Completed {
                    value: (label, root),
                    ..
                } => {
                    self.init_form = None;
                    cx.say(messages::disk_ready_message(&label, &root));
                }
                Outcome::Failed(e) => {
                    if let Some(f) = &mut self.init_form {
                        f.error = Some(messages::error_text(&e));
                    }
                }
                Outcome::Cancelled => {}
            }
        }
    }

    /// A sync or verify of this tab ended.
    pub fn finished(&mut self, f: Finished, cx: &mut Ctx) {
        match f.kind {
            Kind::Verify => {
                cx.refresh();
                let out = outcome_of(f.outcome, |d| match d {
                    Done::Verify(r) => Some(r),
                    _ => None,
                });
                cx.say(messages::verify_message(out));
            }
            Kind::Sync => match self.chain.as_ref().map(|c| &c.step) {
                Some(Step::Planning) => self.planned(f, cx),
                _ => self.synced(f, cx),
            },
            Kind::Restore | Kind::Archive => {}
        }
    }

    /// Cancel ended the chain while it waited for "Sync anyway".
    pub fn chain_cancelled(&mut self, cx: &mut Ctx) {
        self.chain = None;
        cx.say(messages::cancelled_message("Sync cancelled"));
    }

    /// Starts syncs for newly plugged disks of this set that sync
    /// automatically (one at a time: the others wait for the next plug-in).
    /// Called after each volume event and each read of the view model: a
    /// disk counts as seen only once its card is known, so one already
    /// plugged in when the window opens is synced once the cards are read.
    /// While the background agent runs, it syncs them, not the window.
    pub fn mounts_changed(&mut self, cx: &mut Ctx) {
        let of_set = cx.shared.of_set();
        let connected = cx.shared.connected();
        let card = |id: &uuid::Uuid| cx.shared.model.cards.iter().find(|c| c.id == *id);
        let newly: Vec<PathBuf> = connected
            .iter()
            .filter(|(id, root)| {
                of_set.contains(root)
                    && !self.seen.contains(root)
                    && card(id).is_some_and(|c| c.auto_sync)
            })
            .map(|(_, root)| root.clone())
            .collect();
        self.seen = connected
            .iter()
            .filter(|(id, _)| card(id).is_some())
            .map(|(_, root)| root.clone())
            .collect();
        if cx.shared.agent.is_some() {
            return;
        }
        if let Some(root) = newly.into_iter().next() {
            let target = Target::Disk(root);
            let free = cx
                .jobs
                .check(Kind::Sync, &sync_disks(&cx.shared, &target))
                .is_ok();
            if free && self.chain.is_none() {
                self.start_chain(target, cx);
            }
        }
    }

    fn start_chain(&mut self, target: Target, cx: &mut Ctx) {
        if self.chain.is_some() {
            return;
        }
        let title = format!("Planning the sync of {}", target_name(&cx.shared, &target));
        let disks = sync_disks(&cx.shared, &target);
        if !cx.unlocked(&disks, target.action()) {
            return;
        }
        let passphrases = cx.passphrases();
        let (paths, profile, mounts) = job_inputs(&cx.shared);
        let t = target.clone();
        let started = cx.start(Kind::Sync, disks, title, move |p| {
            let (roots, away) = roots_of(&t, &paths, &profile, &mounts)?;
            let job = SyncJob {
                roots,
                scan: false,
                opts: sync::Options {
                    dry_run: true,
                    ..sync::Options::default()
                },
                mounts,
                front: FrontEnd::Window,
                passphrases,
            };
            jobs::sync(&paths, &profile, &job, p).map(|r| Done::Plan(r, away))
        });
        if started {
            self.chain = Some(Chain {
                target,
                step: Step::Planning,
                estimate: None,
            });
        }
    }

    fn planned(&mut self, f: Finished, cx: &mut Ctx) {
        if f.claim.cancelled() {
            return self.chain_cancelled(cx);
        }
        let out = outcome_of(f.outcome, |d| match d {
            Done::Plan(r, away) => Some((r, away)),
            _ => None,
        });
        match out {
            Outcome::Completed {
                value: (value, away),
                ..
            } => {
                let roots: Vec<PathBuf> = value.disks.iter().map(|r| r.root.clone()).collect();
                let chosen = (roots, away);
                if let Some(c) = &mut self.chain {
                    let rate = messages::sync_rate(&cx.shared.model.history);
                    c.estimate = Some(messages::estimate(&value.disks, rate));
                }
                if value.disks.iter().any(|r| messages::Deletes::of(r).any()) {
                    // The chain waits for "Sync anyway" or Cancel.
                    let name = self.target_name(cx);
                    cx.jobs.hold(
                        f.claim,
                        format!("Waiting for your answer before syncing {name}"),
                    );
                    if let Some(c) = &mut self.chain {
                        c.step = Step::Asking {
                            reports: value.disks,
                            chosen,
                        };
                    }
                } else {
                    self.sync_step(f.claim, Some(chosen), cx);
                }
            }
            // No snapshot yet: nothing on a disk can be evicted, so go
            // straight to the scan and sync.
            Outcome::Failed(coffer_core::Error::Sync(sync::Error::NoSnapshot)) => {
                self.sync_step(f.claim, None, cx);
            }
            Outcome::Failed(e) => {
                self.chain = None;
                cx.say(messages::failed_message("Sync failed", &e));
            }
            Outcome::Cancelled => self.chain_cancelled(cx),
        }
    }

    /// "Sync anyway": the disks the plan chose are synced.
    fn confirm(&mut self, claim: Claim, cx: &mut Ctx) {
        let chosen = match self.chain.as_mut().map(|c| &mut c.step) {
            Some(Step::Asking { chosen, .. }) => std::mem::take(chosen),
            // Nothing was asked: the claim is dropped, and the chain ends.
            _ => {
                self.chain = None;
                return;
            }
        };
        self.sync_step(claim, Some(chosen), cx);
    }

    /// The chain's scan and sync, of the disks the plan chose (or, when
    /// there was no plan, those the target names now). Not started once it
    /// was cancelled.
    fn sync_step(&mut self, claim: Claim, chosen: Option<Chosen>, cx: &mut Ctx) {
        let Some(chain) = &mut self.chain else { return };
        if claim.cancelled() {
            return self.chain_cancelled(cx);
        }
        chain.step = Step::Syncing;
        let target = chain.target.clone();
        let title = format!(
            "Syncing {}{}",
            target_name(&cx.shared, &target),
            chain
                .estimate
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        let (paths, profile, mounts) = job_inputs(&cx.shared);
        let passphrases = cx.passphrases();
        cx.jobs.resume(&cx.shared.waker, claim, title, move |p| {
            let (roots, away) = match chosen {
                Some(c) => c,
                None => roots_of(&target, &paths, &profile, &mounts)?,
            };
            // The other connected disks of the set serve as sources.
            let job = SyncJob {
                roots,
                scan: true,
                opts: sync::Options::default(),
                mounts,
                front: FrontEnd::Window,
                passphrases,
            };
            jobs::sync(&paths, &profile, &job, p).map(|r| Done::Sync(r, away))
        });
    }

    fn synced(&mut self, f: Finished, cx: &mut Ctx) {
        self.chain = None;
        // A new snapshot: the Restore tab reads its list again.
        cx.catalog_changed();
        let cancelled = f.claim.cancelled();
        let mut away = Vec::new();
        let out = match f.outcome {
            Outcome::Completed {
                value: Done::Sync(r, gone),
                warnings,
            } => {
                away = gone;
                Outcome::Completed { value: r, warnings }
            }
            other => outcome_of(other, |_| None),
        };
        let completed = matches!(out, Outcome::Completed { .. });
        let mut message = messages::sync_message(out);
        message
            .details
            .extend(bucket::away_lines(&cx.shared, &away));
        if cancelled && completed {
            // The cancel came after the sync's last check: everything was
            // already copied, so say so rather than "cancelled".
            message
                .details
                .push("Cancel came too late: the sync had already finished".into());
        }
        cx.say(message);
    }

    fn start_verify(&mut self, root: PathBuf, cx: &mut Ctx) {
        let title = format!("Verifying {}", cx.shared.label_of(&root));
        let paths = cx.shared.paths.clone();
        let profile = cx.shared.config.profile.clone();
        let disks = vec![root.clone()];
        if !cx.unlocked(&disks, Action::Verify(root.clone())) {
            return;
        }
        let passphrases = cx.passphrases();
        cx.start(Kind::Verify, disks, title, move |p| {
            jobs::verify(
                &paths,
                &profile,
                &root,
                jobs::Slice::default(),
                FrontEnd::Window,
                &passphrases,
                p,
            )
            .map(Done::Verify)
        });
    }

    fn start_init(&mut self, root: PathBuf, label: String, quota: String, cx: &mut Ctx) {
        let refuse = |form: &mut Option<InitForm>, why: String| {
            if let Some(f) = form {
                f.error = Some(why);
            }
        };
        let quota = match quota.trim() {
            "" => None,
            q => match human::parse_size(q) {
                Ok(q) => Some(q),
                Err(e) => return refuse(&mut self.init_form, messages::error_text(&e)),
            },
        };
        if label.trim().is_empty() {
            return refuse(&mut self.init_form, "give the disk a name".into());
        }
        if self.initialising.is_some() {
            return;
        }
        let paths = cx.shared.paths.clone();
        let set_id = cx.shared.config.profile.set_id;
        self.initialising = Some(coffer_core::task::spawn(
            "init",
            cx.shared.waker.clone(),
            move |_| {
                let disk = Disk::init(&root, &label, set_id, quota, io::real())?;
                let cat = Catalog::open(&paths.catalog_file())?;
                cat.register(&disk, Some(0))?;
                Ok((disk.label().to_string(), disk.root().to_path_buf()))
            },
        ));
    }

    fn set_auto_sync(&mut self, id: uuid::Uuid, on: bool, cx: &mut Ctx) {
        let paths = cx.shared.paths.clone();
        let mounts = cx.shared.mount_source.clone();
        if let Some(c) = cx.shared.model.cards.iter_mut().find(|c| c.id == id) {
            c.auto_sync = on;
        }
        // A one-row update, still off the UI thread.
        self.chores.push(coffer_core::task::spawn(
            "auto-sync",
            cx.shared.waker.clone(),
            move |_| {
                let catalog = Catalog::open(&paths.catalog_file())?;
                jobs::manage::set_auto_sync(&catalog, &mounts, &id.to_string(), on)?;
                Ok(())
            },
        ));
    }

    fn target_name(&self, cx: &Ctx) -> String {
        self.chain
            .as_ref()
            .map(|c| target_name(&cx.shared, &c.target))
            .unwrap_or_default()
    }

    /// The plan waiting for "Sync anyway", if one is.
    fn asking(&self) -> Option<&[sync::Report]> {
        match self.chain.as_ref().map(|c| &c.step) {
            Some(Step::Asking { reports, .. }) => Some(reports),
            _ => None,
        }
    }
}

/// The disks a sync of `target` reads or writes: those it syncs and the
/// other connected disks of the set, which serve it as sources (and, for
/// every connected disk, the bucket disks the catalog knows, any of which
/// may answer by the time it starts).
pub fn sync_disks(shared: &Shared, target: &Target) -> Vec<PathBuf> {
    let mut disks = shared.of_set();
    match target {
        Target::Disk(root) if !disks.contains(root) => disks.push(root.clone()),
        Target::Disk(_) => {}
        Target::AllOfSet => disks.extend(shared.bucket_urls()),
    }
    disks
}

impl Target {
    /// The press that syncs it (applied again once its disks are unlocked).
    fn action(&self) -> Action {
        match self {
            Target::Disk(root) => Action::Sync(root.clone()),
            Target::AllOfSet => Action::SyncAll,
        }
    }
}

fn target_name(shared: &Shared, target: &Target) -> String {
    match target {
        Target::Disk(root) => shared.label_of(root),
        Target::AllOfSet => "every connected disk".into(),
    }
}

/// What a sync job's thread needs, cloned off the UI thread's state.
fn job_inputs(shared: &Shared) -> (Paths, Profile, MountSource) {
    (
        shared.paths.clone(),
        shared.config.profile.clone(),
        shared.mount_source.clone(),
    )
}

/// The disks `target` names now: the one, or every connected disk of this
/// backup set as the job service chooses them (the bucket disks that
/// answer among them, and those that did not).
fn roots_of(
    target: &Target,
    paths: &Paths,
    profile: &Profile,
    mounts: &MountSource,
) -> coffer_core::Result<Chosen> {
    match target {
        Target::Disk(root) => Ok((vec![root.clone()], Vec::new())),
        Target::AllOfSet => {
            let catalog = Catalog::open(&paths.catalog_file())?;
            jobs::disks::every_connected(&catalog, mounts, profile.set_id)
        }
    }
}
