//! `CofferApp`: the window's state, the background tasks it runs, and the
//! `Action`s the views record.
//!
//! `logic()` drains task and volume events into state within a small time
//! budget; `ui()` only draws from state and records `Action`s, which are
//! applied after drawing. Disk and catalog work runs on `core::task` threads;
//! the UI thread only edits the small config file.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use coffer_core::config::{Config, Paths, Source};
use coffer_core::task::{Cancel, Counters, Event, Outcome, Rate, Warning};
use coffer_core::volumes::{self, MountSource, Mounts};
use coffer_core::{Catalog, Disk, Task, human, io, sync};

use super::jobs::{cancelled_message, failed_message, sync_message};
use super::model::Model;

/// The views, one per tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Disks,
    Sources,
    Map,
    Restore,
    Archives,
}

/// What the user asked for while a frame was drawn.
#[derive(Clone, Debug)]
pub enum Action {
    Tab(Tab),
    PickFolder,
    PickFolderInApp,
    AddSource(PathBuf),
    RemoveSource(PathBuf),
    UpdateSource(Source),
    Sync(PathBuf),
    /// "Sync anyway": the plan waiting in its dialog goes on to the sync.
    ConfirmSync,
    DismissPlan,
    Cancel(Kind),
    Verify(PathBuf),
    OfferInit(PathBuf),
    Init {
        root: PathBuf,
        label: String,
        quota: String,
    },
    CloseInit,
    /// Show the last lines of the log file.
    ShowLog,
    CloseLog,
    AutoSync(uuid::Uuid, bool),
    DismissMessage,
    MapInto(Option<PathBuf>),
    /// Read the Restore view's listing from another catalog.
    RestoreOrigin(super::restore_view::Origin),
    RestoreSnapshot(i64),
    RestoreDetails(PathBuf),
    PickRestoreDest,
    PickRestoreDestInApp,
    RestoreDest(PathBuf),
    Restore,
    Archive {
        full: bool,
    },
    VerifyArchive(String),
    PickArchiveDir,
    PickArchiveDirInApp,
    ArchiveDir(PathBuf),
    /// Choose an archive of the list (by its name, `PREFIX-N`): its
    /// manifest is read so that paths can be ticked to restore.
    SelectArchive(String),
    PickArchiveRestoreDest,
    PickArchiveRestoreDestInApp,
    ArchiveRestoreDest(PathBuf),
    /// Restore the ticked paths (or everything) as of the chosen archive.
    RestoreArchive,
}

/// What a folder picker's answer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Source,
    RestoreDest,
    ArchiveDir,
    ArchiveRestoreDest,
}

/// The kinds of long work; one of each may run at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sync,
    Verify,
    Restore,
    Archive,
}

/// What a running job has said so far.
#[derive(Default)]
pub struct Live {
    pub title: String,
    pub counters: Counters,
    pub rate: Rate,
    pub warnings: Vec<Warning>,
    pub notices: Vec<String>,
}

/// A finished job's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub ok: bool,
    pub title: String,
    pub details: Vec<String>,
}

/// The "Use as backup disk…" form.
#[derive(Clone, Debug, Default)]
pub struct InitForm {
    pub root: PathBuf,
    pub label: String,
    pub quota: String,
    pub error: Option<String>,
}

pub(super) type SyncResult = coffer_core::jobs::SyncReport;

/// One press of Sync: a plan, maybe a wait for "Sync anyway", then the scan
/// and sync. Every job of the chain is started with its one cancel flag, so
/// Cancel stops the chain wherever it is, also between two jobs.
pub(super) struct SyncChain {
    pub(super) root: PathBuf,
    pub(super) cancel: Cancel,
}

pub struct CofferApp {
    pub(super) paths: Paths,
    pub(super) mount_source: MountSource,
    pub(super) config: Config,
    pub(super) tab: Tab,
    pub(super) model: Model,
    pub(super) mounts: Mounts,
    pub(super) map_dir: Option<PathBuf>,
    pub(super) message: Option<Message>,
    pub(super) source_error: Option<String>,
    /// A plan that deletes data the user may not expect, awaiting "Sync anyway".
    pub(super) plan: Option<sync::Report>,
    pub(super) init_form: Option<InitForm>,
    /// The log's last lines, while the log window is open.
    pub(super) log_view: Option<String>,
    pub(super) picker: Option<egui_file::FileDialog>,
    pub(super) live: Option<(Kind, Live)>,
    pub(super) actions: Vec<Action>,
    pub(super) waker: Option<Arc<dyn Fn() + Send + Sync>>,
    pub(super) watcher: Option<volumes::Watcher>,
    pub(super) refresh: Option<Task<Model>>,
    pub(super) refresh_again: bool,
    pub(super) planning: Option<Task<coffer_core::jobs::SyncReport>>,
    pub(super) syncing: Option<Task<SyncResult>>,
    pub(super) verifying: Option<Task<coffer_core::jobs::VerifyReport>>,
    pub(super) initialising: Option<Task<String>>,
    pub(super) chores: Vec<Task<()>>,
    /// From Sync until its chain ends (its plan or sync is running, or its
    /// plan waits in the dialog).
    pub(super) sync_chain: Option<SyncChain>,
    pub(super) native_pick: Option<(Receiver<Option<PathBuf>>, Instant)>,
    pub(super) seen: Vec<PathBuf>,
    pub(super) restore: super::restore_view::State,
    pub(super) restoring: Option<Task<coffer_core::restore::Report>>,
    /// What the folder being picked is for.
    pub(super) pick_for: Pick,
    pub(super) archives: super::archive_view::State,
    pub(super) archiving: Option<Task<Message>>,
}

/// How long `logic()` may spend draining events per frame.
const BUDGET: Duration = Duration::from_millis(4);

impl CofferApp {
    /// The app over these folders and mount source; nothing starts until
    /// the first frame (which brings the egui context for waking).
    pub fn new(paths: Paths, mount_source: MountSource) -> anyhow::Result<CofferApp> {
        let config = Config::load_or_default(&paths)?;
        if !paths.config_file().exists() {
            // The backup set's id must not change between runs.
            config.save(&paths)?;
        }
        Ok(CofferApp {
            paths,
            mount_source,
            config,
            tab: Tab::Disks,
            model: Model::default(),
            mounts: Mounts::default(),
            map_dir: None,
            message: None,
            source_error: None,
            plan: None,
            init_form: None,
            log_view: None,
            picker: None,
            live: None,
            actions: Vec::new(),
            waker: None,
            watcher: None,
            refresh: None,
            refresh_again: true,
            planning: None,
            syncing: None,
            verifying: None,
            initialising: None,
            chores: Vec::new(),
            sync_chain: None,
            native_pick: None,
            seen: Vec::new(),
            restore: super::restore_view::State::default(),
            restoring: None,
            pick_for: Pick::Source,
            archives: super::archive_view::State::default(),
            archiving: None,
        })
    }

    /// True while any background job runs (tests wait on this).
    pub fn busy(&self) -> bool {
        self.refresh.is_some()
            || self.planning.is_some()
            || self.syncing.is_some()
            || self.verifying.is_some()
            || self.initialising.is_some()
            || !self.chores.is_empty()
            || self.restoring.is_some()
            || self.restore.busy()
            || self.archiving.is_some()
            || self.archives.busy()
    }

    /// True when no job thread is still working: what is left is for
    /// `logic()` to collect (tests use this to act at a chosen moment
    /// between two frames).
    pub fn jobs_ended(&self) -> bool {
        fn ended<T>(t: &Option<Task<T>>) -> bool {
            t.as_ref().is_none_or(Task::is_finished)
        }
        ended(&self.refresh)
            && ended(&self.planning)
            && ended(&self.syncing)
            && ended(&self.verifying)
            && ended(&self.initialising)
            && ended(&self.restoring)
            && ended(&self.archiving)
            && self.chores.iter().all(Task::is_finished)
    }

    /// Records an action as if a view had (tests use this for what has no
    /// widget of its own, such as a folder picked in the native dialog).
    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub fn message(&self) -> Option<&Message> {
        self.message.as_ref()
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connected disks whose identity file reads: mount point, identity.
    pub(super) fn identified(
        &self,
    ) -> impl Iterator<Item = (&PathBuf, &coffer_core::disk::Identity)> {
        self.mounts
            .disks
            .iter()
            .filter_map(|v| v.identity.as_ref().ok().map(|i| (&v.root, i)))
    }

    /// Connected disks of this set, by id and mount point.
    pub(super) fn present(&self) -> Vec<(uuid::Uuid, PathBuf)> {
        self.identified()
            .map(|(root, i)| (i.disk_id, root.clone()))
            .collect()
    }

    pub(super) fn running(&self, kind: Kind) -> bool {
        match kind {
            // The chain outlives its jobs: it also runs while its plan
            // waits in the dialog.
            Kind::Sync => self.sync_chain.is_some(),
            Kind::Verify => self.verifying.is_some(),
            Kind::Restore => self.restoring.is_some(),
            Kind::Archive => self.archiving.is_some(),
        }
    }

    /// Drains events from the watcher and the tasks into state.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if self.waker.is_none() {
            let c = ctx.clone();
            let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || c.request_repaint());
            match volumes::watch(self.mount_source.clone(), waker.clone()) {
                Ok(w) => self.watcher = Some(w),
                Err(e) => self.fail("Cannot watch for disks", format!("{e:#}")),
            }
            self.waker = Some(waker);
        }
        let start = Instant::now();
        if let Some(w) = &self.watcher {
            let mut latest = None;
            while start.elapsed() < BUDGET {
                match w.events.try_recv() {
                    Ok(m) => latest = Some(m),
                    Err(_) => break,
                }
            }
            if let Some(m) = latest {
                self.mounts = m;
                self.refresh_again = true;
                self.auto_sync();
            }
        }
        self.drain_live(start);
        self.finish_tasks();
        if self.refresh_again && self.refresh.is_none() {
            self.start_refresh();
        }
        self.poll_native_picker();
        self.finish_restore();
        self.poll_restore();
        self.poll_archives();
    }

    fn drain_live(&mut self, start: Instant) {
        let events = match self.live.as_ref().map(|l| l.0) {
            Some(Kind::Sync) => self
                .syncing
                .as_ref()
                .map(Task::drain)
                .or_else(|| self.planning.as_ref().map(Task::drain)),
            Some(Kind::Verify) => self.verifying.as_ref().map(Task::drain),
            Some(Kind::Restore) => self.restoring.as_ref().map(Task::drain),
            Some(Kind::Archive) => self.archiving.as_ref().map(Task::drain),
            None => None,
        };
        let (Some(events), Some((_, live))) = (events, self.live.as_mut()) else {
            return;
        };
        for e in events {
            match e {
                Event::Progress(c) => {
                    live.rate.sample(Instant::now(), c.bytes_done);
                    live.counters = c;
                }
                Event::Warning(w) => live.warnings.push(w),
                Event::Notice(n) => live.notices.push(n),
            }
            if start.elapsed() > BUDGET * 4 {
                // The rest were already received; dropping a few progress
                // samples only costs smoothness, and warnings also come
                // back with the outcome.
                break;
            }
        }
    }

    fn finish_tasks(&mut self) {
        let mut chores = std::mem::take(&mut self.chores);
        chores.retain_mut(|t| match t.try_finish() {
            None => true,
            Some(Outcome::Failed(e)) => {
                self.fail("Cannot save the setting", format!("{e:#}"));
                false
            }
            Some(_) => false,
        });
        self.chores = chores;
        if let Some(out) = self.refresh.as_mut().and_then(Task::try_finish) {
            self.refresh = None;
            match out {
                Outcome::Completed { value, .. } => self.model = value,
                Outcome::Failed(e) => self.fail("Cannot read the catalog", format!("{e:#}")),
                Outcome::Cancelled => {}
            }
        }
        if let Some(out) = self.planning.as_mut().and_then(Task::try_finish) {
            self.planning = None;
            if self.sync_chain_cancelled() {
                self.end_sync_chain_cancelled();
            } else {
                self.finish_plan(out);
            }
        }
        if let Some(out) = self.syncing.as_mut().and_then(Task::try_finish) {
            self.syncing = None;
            let cancelled = self
                .sync_chain
                .take()
                .is_some_and(|c| c.cancel.is_cancelled());
            self.live = None;
            self.refresh_again = true;
            // A new snapshot: the Restore view reads the list again.
            self.restore.stale = true;
            let completed = matches!(out, Outcome::Completed { .. });
            let mut message = sync_message(out);
            if cancelled && completed {
                // The cancel came after the sync's last check: everything
                // was already copied, so say so rather than "cancelled".
                message
                    .details
                    .push("Cancel came too late: the sync had already finished".into());
            }
            self.message = Some(message);
        }
        if let Some(out) = self.verifying.as_mut().and_then(Task::try_finish) {
            self.verifying = None;
            self.live = None;
            self.refresh_again = true;
            self.message = Some(match out {
                Outcome::Completed { value, warnings } => {
                    let value = value.report;
                    let mut details: Vec<String> = value
                        .bad
                        .iter()
                        .map(|b| format!("{}: {}", b.hash, b.reason))
                        .collect();
                    details.extend(warnings.iter().map(ToString::to_string));
                    Message {
                        ok: value.bad.is_empty() && value.missing == 0 && warnings.is_empty(),
                        title: format!(
                            "Verified {} objects ({}): {} bad, {} missing",
                            value.checked,
                            human::bytes(value.bytes),
                            value.bad.len(),
                            value.missing
                        ),
                        details,
                    }
                }
                Outcome::Cancelled => cancelled_message("Verify cancelled"),
                Outcome::Failed(e) => failed_message("Verify failed", &e),
            });
        }
        if let Some(out) = self.initialising.as_mut().and_then(Task::try_finish) {
            self.initialising = None;
            self.refresh_again = true;
            match out {
                Outcome::Completed { value, .. } => {
                    self.init_form = None;
                    self.message = Some(Message {
                        ok: true,
                        title: value,
                        details: Vec::new(),
                    });
                }
                Outcome::Failed(e) => {
                    if let Some(f) = &mut self.init_form {
                        f.error = Some(format!("{e:#}"));
                    }
                }
                Outcome::Cancelled => {}
            }
        }
    }

    fn finish_plan(&mut self, out: Outcome<coffer_core::jobs::SyncReport>) {
        match out {
            Outcome::Completed { value, .. } => {
                let Some(value) = value.disks.into_iter().next() else {
                    self.start_sync();
                    return;
                };
                if value.plan.evictions().next().is_some() {
                    // The chain waits for "Sync anyway" or Cancel.
                    self.plan = Some(value);
                } else {
                    self.start_sync();
                }
            }
            // No snapshot yet: nothing on the disk can be evicted, so
            // go straight to the scan and sync.
            Outcome::Failed(coffer_core::Error::Sync(sync::Error::NoSnapshot)) => self.start_sync(),
            Outcome::Failed(e) => {
                self.sync_chain = None;
                self.live = None;
                self.fail("Sync failed", format!("{e:#}"));
            }
            Outcome::Cancelled => self.end_sync_chain_cancelled(),
        }
    }

    pub(super) fn sync_chain_cancelled(&self) -> bool {
        self.sync_chain
            .as_ref()
            .is_some_and(|c| c.cancel.is_cancelled())
    }

    /// Ends the sync chain between two of its jobs (none of them runs).
    pub(super) fn end_sync_chain_cancelled(&mut self) {
        self.sync_chain = None;
        self.plan = None;
        self.cancelled("Sync cancelled");
    }

    fn start_refresh(&mut self) {
        self.refresh_again = false;
        let paths = self.paths.clone();
        let profile = self.config.profile.clone();
        let ours: Vec<PathBuf> = self
            .mounts
            .disks
            .iter()
            .filter(|v| {
                v.identity
                    .as_ref()
                    .is_ok_and(|i| i.sets.contains(&profile.set_id))
            })
            .map(|v| v.root.clone())
            .collect();
        let present = self.present();
        self.refresh = Some(coffer_core::task::spawn(
            "refresh",
            self.waker.clone(),
            move |_| {
                let catalog = Catalog::open(&paths.catalog_file())?;
                for root in &ours {
                    // A disk of this set the catalog has not seen (or not
                    // here) gets its card; its contents are counted at sync.
                    let disk = Disk::open(root, io::real())?;
                    catalog.register(&disk, None)?;
                }
                drop(catalog);
                Model::load(&paths, &profile, &present)
                    .map_err(|e| coffer_core::Error::Panic(format!("{e:#}")))
            },
        ));
    }

    /// Starts syncs for newly plugged disks set to sync automatically.
    fn auto_sync(&mut self) {
        let present = self.present();
        let newly: Vec<PathBuf> = present
            .iter()
            .filter(|(id, root)| {
                !self.seen.contains(root)
                    && self.model.cards.iter().any(|c| c.id == *id && c.auto_sync)
            })
            .map(|p| p.1.clone())
            .collect();
        self.seen = present.into_iter().map(|p| p.1).collect();
        if let Some(root) = newly.into_iter().next()
            && !self.running(Kind::Sync)
        {
            self.actions.push(Action::Sync(root));
        }
    }

    pub(super) fn fail(&mut self, title: &str, detail: String) {
        self.message = Some(Message {
            ok: false,
            title: title.into(),
            details: vec![detail],
        });
    }

    pub(super) fn cancelled(&mut self, title: &str) {
        self.live = None;
        self.message = Some(cancelled_message(title));
    }

    /// Applies the actions recorded while drawing.
    pub fn apply_actions(&mut self) {
        for action in std::mem::take(&mut self.actions) {
            self.apply(action);
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Tab(t) => {
                self.tab = t;
                self.restore.stale |= t == Tab::Restore;
                self.archives.stale |= t == Tab::Archives;
            }
            Action::PickFolder => {
                self.pick_for = Pick::Source;
                self.pick_folder();
            }
            Action::PickFolderInApp => {
                self.pick_for = Pick::Source;
                self.open_in_app_picker();
            }
            Action::AddSource(path) => self.edit_sources(|p| {
                p.add_source(Source {
                    path,
                    excludes: Vec::new(),
                    copies: None,
                    priority: 0,
                    outside_basepath: false,
                })
                .map(|_| ())
            }),
            Action::RemoveSource(path) => {
                self.edit_sources(|p| p.remove_source(&path).map(|_| ()));
            }
            Action::UpdateSource(src) => self.edit_sources(|p| {
                for rule in &src.excludes {
                    coffer_core::config::check_rule(rule)?;
                }
                if let Some(s) = p.sources.iter_mut().find(|s| s.path == src.path) {
                    *s = src;
                }
                Ok(())
            }),
            Action::Sync(root) => self.start_plan(root),
            Action::ConfirmSync => {
                self.plan = None;
                self.start_sync();
            }
            Action::DismissPlan => {
                self.plan = None;
                self.live = None;
                self.sync_chain = None;
            }
            Action::Cancel(kind) => match kind {
                Kind::Sync => {
                    // The plan and the sync were started with this flag:
                    // whichever runs sees it at its next check, and the
                    // sync is never started once it is set.
                    if let Some(c) = &self.sync_chain {
                        c.cancel.cancel();
                    }
                    if self.planning.is_none()
                        && self.syncing.is_none()
                        && self.sync_chain.is_some()
                    {
                        // The plan waits in its dialog: nothing runs to
                        // notice the flag, so the chain ends here.
                        self.end_sync_chain_cancelled();
                    }
                }
                Kind::Verify => {
                    if let Some(t) = &self.verifying {
                        t.cancel();
                    }
                }
                Kind::Restore => {
                    if let Some(t) = &self.restoring {
                        t.cancel();
                    }
                }
                Kind::Archive => {
                    if let Some(t) = &self.archiving {
                        t.cancel();
                    }
                }
            },
            Action::Verify(root) => self.start_verify(root),
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
            Action::Init { root, label, quota } => self.start_init(root, label, quota),
            Action::CloseInit => self.init_form = None,
            Action::ShowLog => self.log_view = Some(log_tail(&crate::log::log_file_path(), 400)),
            Action::CloseLog => self.log_view = None,
            Action::AutoSync(id, on) => self.set_auto_sync(id, on),
            Action::DismissMessage => self.message = None,
            Action::MapInto(dir) => self.map_dir = dir,
            Action::RestoreSnapshot(id) => {
                self.restore.want = Some(id);
                self.restore.stale = true;
                self.restore.selected.clear();
                self.restore.details_of = None;
            }
            Action::RestoreDetails(path) => self.show_versions(path),
            Action::PickRestoreDest => {
                self.pick_for = Pick::RestoreDest;
                self.pick_folder();
            }
            Action::PickRestoreDestInApp => {
                self.pick_for = Pick::RestoreDest;
                self.open_in_app_picker();
            }
            Action::PickArchiveDir => {
                self.pick_for = Pick::ArchiveDir;
                self.pick_folder();
            }
            Action::PickArchiveDirInApp => {
                self.pick_for = Pick::ArchiveDir;
                self.open_in_app_picker();
            }
            Action::ArchiveDir(path) => {
                self.archives.dir = path.display().to_string();
                self.archives.stale = true;
            }
            Action::RestoreDest(path) => {
                self.restore.dest = path.display().to_string();
                self.restore.original = false;
            }
            Action::RestoreOrigin(origin) => self.set_restore_origin(origin),
            Action::Restore => self.start_restore(),
            Action::Archive { full } => self.start_archive(full),
            Action::VerifyArchive(name) => self.start_archive_verify(name),
            Action::SelectArchive(name) => self.select_archive(name),
            Action::PickArchiveRestoreDest => {
                self.pick_for = Pick::ArchiveRestoreDest;
                self.pick_folder();
            }
            Action::PickArchiveRestoreDestInApp => {
                self.pick_for = Pick::ArchiveRestoreDest;
                self.open_in_app_picker();
            }
            Action::ArchiveRestoreDest(path) => {
                self.archives.restore_dest = path.display().to_string();
            }
            Action::RestoreArchive => self.start_archive_restore(),
        }
    }
}

impl eframe::App for CofferApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        CofferApp::logic(self, ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }
}

/// The last `lines` lines of the log file (at most 1 MiB: rotation keeps it
/// small, so reading it on the UI thread is cheap), or why there are none.
pub(super) fn log_tail(path: &std::path::Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            // Coffer escapes what it logs; a log written by an older
            // version, or edited, may still hold controls.
            let tail: Vec<_> = all[from..].iter().map(|l| super::shown(l)).collect();
            format!("{}\n\n{}", super::shown_path(path), tail.join("\n"))
        }
        Err(e) => format!("No log to show at {}: {e}", super::shown_path(path)),
    }
}

#[cfg(test)]
mod log_tests {
    #[test]
    fn log_tail_keeps_the_last_lines_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("coffer.log");
        let text: String = (0..10).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let tail = super::log_tail(&p, 3);
        assert!(tail.starts_with(&p.display().to_string()));
        assert!(tail.ends_with("line 7\nline 8\nline 9"), "{tail}");
        assert!(!tail.contains("line 6"));
        assert!(super::log_tail(&dir.path().join("none.log"), 3).starts_with("No log to show"));
    }
}
