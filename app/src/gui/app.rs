//! `CofferApp`: the tabs, the shared context they work in, the folder
//! chooser, and the two halves of a frame.
//!
//! `logic()` drains volume and task events into state within a small time
//! budget and hands each finished job to the tab that started it; `ui()`
//! (`frame.rs`) only draws from state and records actions, which are
//! applied after drawing, each by its tab. Disk and catalog work runs on
//! `core::task` threads; the UI thread only edits the small config file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::config::{Config, Paths};
use coffer_core::task::Outcome;
use coffer_core::volumes::{self, MountSource, Mounts};
use coffer_core::{Catalog, Disk, Task, disk::io};

use super::action::{Action, Actions, Tab};
use super::archives::ArchivesTab;
use super::ctx::{Ctx, Shared, Status};
use super::disks::DisksTab;
use super::jobs::{Cancelled, Jobs, Kind};
use super::map::MapTab;
use super::messages::{self, Message};
use super::model::Model;
use super::picker::{Picker, Purpose, Way};
use super::restore::RestoreTab;
use super::sources::SourcesTab;
use super::{archives, restore, sources};

/// One struct per tab, each with its state, its tasks and its actions.
#[derive(Default)]
pub(super) struct Tabs {
    pub(super) disks: DisksTab,
    pub(super) sources: SourcesTab,
    pub(super) map: MapTab,
    pub(super) restore: RestoreTab,
    pub(super) archives: ArchivesTab,
}

pub struct CofferApp {
    pub(super) tab: Tab,
    pub(super) tabs: Tabs,
    pub(super) cx: Ctx,
    pub(super) picker: Picker,
    /// The log's last lines, while the log window is open.
    pub(super) log_view: Option<super::log_view::LogView>,
    /// The log file "Show log" reads.
    log_file: std::path::PathBuf,
    pub(super) actions: Actions,
    /// Reading the catalog's view model.
    refresh: Option<Task<Model>>,
    watcher: Option<volumes::Watcher>,
    /// When the agent's status was last read.
    agent_read: Option<Instant>,
    /// What the window remembers, as last saved.
    pub(super) remembered: super::remember::Remembered,
    /// Light, dark, or the system's.
    pub(super) theme: super::remember::Theme,
    /// The theme last handed to egui.
    theme_applied: Option<super::remember::Theme>,
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
        let mut tabs = Tabs::default();
        let remembered = super::remember::load(&paths);
        tabs.restore.set_dest(remembered.restore_dest.clone());
        tabs.archives.set_fields(
            remembered.archive_dir.clone(),
            remembered.archive_prefix.clone(),
            remembered.archive_restore_dest.clone(),
        );
        tabs.disks.manage.at_login = crate::desktop::autostart::Dirs::from_env().is_on();
        Ok(CofferApp {
            tab: Tab::Disks,
            tabs,
            cx: Ctx {
                shared: Shared {
                    paths,
                    mount_source,
                    config,
                    mounts: Mounts::default(),
                    model: Model::default(),
                    waker: None,
                    agent: None,
                },
                jobs: Jobs::default(),
                status: Status {
                    refresh: true,
                    ..Status::default()
                },
                unlock: super::unlock::Unlock::new(crate::keyring::Keyring::from_env()),
            },
            picker: Picker::new(Way::detect()),
            log_view: None,
            log_file: crate::log::log_file_path(),
            actions: Actions::default(),
            refresh: None,
            watcher: None,
            agent_read: None,
            theme: remembered.theme,
            remembered,
            theme_applied: None,
        })
    }

    /// Folders are chosen with the window's own chooser only (tests, and
    /// sessions whose system chooser does not work).
    pub fn with_folder_chooser_in_window(mut self) -> CofferApp {
        self.picker = Picker::new(Way::InWindow);
        self
    }

    /// Where the agent switch writes its autostart entry (tests).
    pub fn with_autostart(mut self, dirs: crate::desktop::autostart::Dirs) -> CofferApp {
        self.tabs.disks.manage.at_login = dirs.is_on();
        self.tabs.disks.manage.autostart = Some(dirs);
        self
    }

    /// The program the agent switch starts as `PROGRAM agent` (the window's
    /// own binary; tests leave it out, or give the real `coffer`).
    pub fn with_agent_program(mut self, program: std::path::PathBuf) -> CofferApp {
        self.tabs.disks.manage.agent_program = Some(program);
        self
    }

    /// "Show log" reads this file (tests point it into their world).
    pub fn with_log_file(mut self, path: std::path::PathBuf) -> CofferApp {
        self.log_file = path;
        self
    }

    /// Whether the desktop keyring is used (tests turn it off, or point
    /// it at a keyring of their own through the session bus).
    pub fn with_keyring(mut self, keyring: crate::keyring::Keyring) -> CofferApp {
        self.cx.unlock.set_keyring(keyring);
        self
    }

    /// The disk the passphrase dialog asks for, while it shows.
    pub fn asking_passphrase_for(&self) -> Option<&str> {
        self.cx.unlock.asking_for()
    }

    /// True while any background work runs (tests wait on this).
    pub fn busy(&self) -> bool {
        self.refresh.is_some()
            || self.cx.jobs.busy()
            || self.cx.unlock.busy()
            || self.tabs.disks.busy()
            || self.tabs.restore.busy()
            || self.tabs.archives.busy()
    }

    /// True when no background thread is still working: what is left is
    /// for `logic()` to collect (tests use this to act at a chosen moment
    /// between two frames).
    pub fn jobs_ended(&self) -> bool {
        self.refresh.as_ref().is_none_or(Task::is_finished)
            && self.cx.jobs.threads_ended()
            && self.cx.unlock.thread_ended()
            && self.tabs.disks.threads_ended()
            && self.tabs.restore.threads_ended()
            && self.tabs.archives.threads_ended()
    }

    /// Records an action as if a view had (tests use this for what has no
    /// widget of its own, such as a folder picked in the system's chooser).
    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub fn message(&self) -> Option<&Message> {
        self.cx.status.message.as_ref()
    }

    pub fn model(&self) -> &Model {
        &self.cx.model
    }

    pub fn config(&self) -> &Config {
        &self.cx.config
    }

    /// Drains events from the watcher and the tasks into state.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if self.cx.shared.waker.is_none() {
            let c = ctx.clone();
            let waker: Arc<dyn Fn() + Send + Sync> = Arc::new(move || c.request_repaint());
            match volumes::watch(self.cx.mount_source.clone(), waker.clone()) {
                Ok(w) => self.watcher = Some(w),
                Err(e) => self
                    .cx
                    .fail("Cannot watch for disks", messages::error_text(&e)),
            }
            self.cx.shared.waker = Some(waker);
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
                self.cx.shared.mounts = m;
                self.cx.refresh();
                self.tabs.disks.mounts_changed(&mut self.cx);
                self.tabs.restore.mounts_changed(&mut self.cx);
            }
        }
        self.read_agent(ctx);
        self.remember(ctx);
        self.cx.jobs.drain(start, BUDGET * 4);
        for f in self.cx.jobs.poll() {
            match f.kind {
                Kind::Sync | Kind::Verify => self.tabs.disks.finished(f, &mut self.cx),
                Kind::Restore => self.tabs.restore.finished(f, &mut self.cx),
                Kind::Archive => self.tabs.archives.finished(f, &mut self.cx),
            }
        }
        self.tabs.disks.poll(&mut self.cx);
        if let Some(a) = self.cx.unlock.poll(&self.cx.shared) {
            self.actions.push(a);
        }
        if let Some(out) = self.refresh.as_mut().and_then(Task::try_finish) {
            self.refresh = None;
            match out {
                Outcome::Completed { value, .. } => {
                    self.cx.shared.model = value;
                    // Cards known now: a disk plugged in before they were.
                    self.tabs.disks.mounts_changed(&mut self.cx);
                }
                Outcome::Failed(e) => self
                    .cx
                    .say(messages::failed_message("Cannot read the catalog", &e)),
                Outcome::Cancelled => {}
            }
        }
        if std::mem::take(&mut self.cx.status.catalog_changed) {
            self.tabs.restore.stale();
        }
        if self.cx.status.refresh && self.refresh.is_none() {
            self.start_refresh();
        }
        if let Some(a) = self.picker.poll(&self.cx.config.profile.basepath) {
            self.actions.push(a);
        }
        self.tabs
            .restore
            .poll(self.tab == Tab::Restore, &mut self.cx);
        let shared = &self.cx.shared;
        if let Some(next) = self.tabs.disks.poll_buckets(self.tab == Tab::Disks, shared) {
            // The next check of the bucket disks is due then.
            ctx.request_repaint_after(next);
        }
        self.tabs.archives.poll(self.tab == Tab::Archives, shared);
    }

    /// Applies the theme, and saves the remembered fields when they changed.
    fn remember(&mut self, ctx: &egui::Context) {
        let theme = self.theme;
        if self.theme_applied != Some(theme) {
            ctx.set_theme(theme.preference());
            self.theme_applied = Some(theme);
        }
        let (dir, prefix, dest) = self.tabs.archives.fields();
        let now = super::remember::Remembered {
            theme,
            restore_dest: self.tabs.restore.dest().to_string(),
            archive_dir: dir.to_string(),
            archive_prefix: prefix.to_string(),
            archive_restore_dest: dest.to_string(),
        };
        if now != self.remembered {
            if let Err(e) = super::remember::save(&self.cx.shared.paths, &now) {
                log::warn!("cannot remember the window's fields: {e}");
            }
            self.remembered = now;
        }
    }

    /// Reads what the background agent does (a small file), about once a
    /// second; when its job ends, the catalog it wrote is read again.
    fn read_agent(&mut self, ctx: &egui::Context) {
        if self
            .agent_read
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.agent_read = Some(Instant::now());
        let status = crate::agent::status::read(&self.cx.shared.paths);
        let job = status.as_ref().and_then(|s| s.job.clone());
        if self.cx.jobs.agent().is_some() && job.is_none() {
            self.cx.catalog_changed();
        }
        let alive = status.is_some();
        self.cx.jobs.set_agent(job);
        self.cx.shared.agent = status;
        if alive {
            // Its progress moves without any event of the window's.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
    }

    /// Reads the catalog's view model; the disks of this set the catalog
    /// has not seen (or not here) are registered first, so they get cards.
    fn start_refresh(&mut self) {
        self.cx.status.refresh = false;
        let shared = &self.cx.shared;
        let paths = shared.paths.clone();
        let profile = shared.config.profile.clone();
        let ours = shared.of_set();
        let connected = shared.connected();
        self.refresh = Some(coffer_core::task::spawn(
            "refresh",
            shared.waker.clone(),
            move |_| {
                let catalog = Catalog::open(&paths.catalog_file())?;
                for root in &ours {
                    // Its contents are counted at its sync.
                    let disk = Disk::open(root, io::real())?;
                    catalog.register(&disk, None)?;
                }
                drop(catalog);
                Model::load(&paths, &profile, &connected)
                    .map_err(|e| coffer_core::Error::Failed(messages::anyhow_text(&e)))
            },
        ));
    }

    /// Applies the actions recorded while drawing.
    pub fn apply_actions(&mut self) {
        for action in self.actions.take() {
            self.apply(action);
        }
    }

    fn apply(&mut self, action: Action) {
        let cx = &mut self.cx;
        match action {
            Action::Tab(t) => {
                self.tab = t;
                match t {
                    Tab::Restore => self.tabs.restore.stale(),
                    Tab::Archives => self.tabs.archives.stale(),
                    // The history also holds what the command line and the
                    // agent ran since the last read.
                    Tab::History => cx.refresh(),
                    Tab::Disks => self.tabs.disks.opened(),
                    Tab::Sources | Tab::Map => {}
                }
            }
            Action::Disks(a) => self.tabs.disks.apply(a, cx),
            Action::Sources(a) => self.tabs.sources.apply(a, cx),
            Action::Map(a) => self.tabs.map.apply(a),
            Action::Restore(a) => self.tabs.restore.apply(a, cx),
            Action::Archives(a) => self.tabs.archives.apply(a, cx),
            Action::Pick(purpose) => {
                self.picker.open(
                    purpose,
                    &cx.shared.config.profile.basepath,
                    &cx.shared.waker,
                );
            }
            Action::PickInWindow => self.picker.switch_to_window(&cx.config.profile.basepath),
            Action::Picked(purpose, path) => match purpose {
                Purpose::Source => self.tabs.sources.apply(sources::Action::Add(path), cx),
                Purpose::RestoreDest => self.tabs.restore.apply(restore::Action::Dest(path), cx),
                Purpose::ArchiveDir => self.tabs.archives.apply(archives::Action::Dir(path), cx),
                Purpose::ArchiveRestoreDest => self
                    .tabs
                    .archives
                    .apply(archives::Action::RestoreDest(path), cx),
            },
            Action::Cancel(kind) => {
                // A running job sees the flag at its next check; a chain
                // waiting for the user has nothing to notice it, so it ends
                // here.
                if let Cancelled::Held = cx.jobs.cancel(kind)
                    && kind == Kind::Sync
                {
                    self.tabs.disks.chain_cancelled(cx);
                }
            }
            Action::DismissMessage => cx.status.message = None,
            Action::ShowLog => {
                let all = self.log_view.as_ref().is_some_and(|l| l.show_all);
                self.log_view = Some(super::log_view::LogView::read(&self.log_file, all));
            }
            Action::LogShowAll(all) => {
                if let Some(l) = &mut self.log_view {
                    l.show_all = all;
                }
            }
            Action::CloseLog => self.log_view = None,
            Action::Theme(t) => self.theme = t,
            Action::Unlock(a) => {
                if let Some(m) = cx.unlock.answer(a, &cx.shared) {
                    cx.say(m);
                }
            }
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
