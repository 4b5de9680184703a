//! Starting the window's background work (plan, scan and sync, verify,
//! init, catalog refresh, the folder pickers), editing the config, and the
//! messages finished jobs leave. Split from `app.rs` to keep both short.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coffer_core::task::{Cancel, Outcome};
use coffer_core::{Catalog, Disk, human, io, sync};

use super::app::{Action, CofferApp, Kind, Live, Message, Pick, SyncChain, SyncResult};

impl CofferApp {
    pub(super) fn edit_sources(
        &mut self,
        edit: impl FnOnce(&mut coffer_core::Profile) -> Result<(), coffer_core::config::Error>,
    ) {
        let mut cfg = self.config.clone();
        let result = edit(&mut cfg.profile).and_then(|()| cfg.save(&self.paths));
        match result {
            Ok(()) => {
                self.config = cfg;
                self.source_error = None;
                self.refresh_again = true;
            }
            Err(e) => self.source_error = Some(e.to_string()),
        }
    }

    /// The native folder picker runs on its own thread (it blocks). Without a
    /// portal it answers `None` at once; an answer that fast cannot be a
    /// person pressing Cancel, so the in-app picker opens instead.
    pub(super) fn pick_folder(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let waker = self.waker.clone();
        let start = self.config.profile.basepath.clone();
        let title = self.picker_title();
        let spawned = std::thread::Builder::new()
            .name("coffer-picker".into())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title(title)
                    .set_directory(start)
                    .pick_folder();
                let _ = tx.send(picked);
                if let Some(w) = waker {
                    w();
                }
            });
        match spawned {
            Ok(_) => self.native_pick = Some((rx, Instant::now())),
            Err(_) => self.open_in_app_picker(),
        }
    }

    pub(super) fn poll_native_picker(&mut self) {
        let Some((rx, started)) = &self.native_pick else {
            return;
        };
        match rx.try_recv() {
            Ok(Some(path)) => {
                self.native_pick = None;
                let a = self.picked(path);
                self.actions.push(a);
            }
            Ok(None) => {
                let fast = started.elapsed() < Duration::from_millis(700);
                self.native_pick = None;
                if fast {
                    self.open_in_app_picker();
                }
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.native_pick = None;
                self.open_in_app_picker();
            }
        }
    }

    pub(super) fn open_in_app_picker(&mut self) {
        let mut d = egui_file::FileDialog::select_folder()
            .title(self.picker_title())
            .initial_path(self.config.profile.basepath.clone());
        d.open();
        self.picker = Some(d);
    }

    fn picker_title(&self) -> &'static str {
        match self.pick_for {
            Pick::Source => "Add a folder to back up",
            Pick::RestoreDest => "Restore into this folder",
            Pick::ArchiveDir => "Write archives into this folder",
            Pick::ArchiveRestoreDest => "Restore the archive into this folder",
        }
    }

    /// What a folder picked in either picker is for.
    pub(super) fn picked(&self, path: PathBuf) -> Action {
        match self.pick_for {
            Pick::Source => Action::AddSource(path),
            Pick::RestoreDest => Action::RestoreDest(path),
            Pick::ArchiveDir => Action::ArchiveDir(path),
            Pick::ArchiveRestoreDest => Action::ArchiveRestoreDest(path),
        }
    }

    pub(super) fn set_auto_sync(&mut self, id: uuid::Uuid, on: bool) {
        let paths = self.paths.clone();
        if let Some(c) = self.model.cards.iter_mut().find(|c| c.id == id) {
            c.auto_sync = on;
        }
        // A one-row update, still off the UI thread.
        self.chores.push(coffer_core::task::spawn(
            "auto-sync",
            self.waker.clone(),
            move |_| {
                let catalog = Catalog::open(&paths.catalog_file())?;
                if let Some(mut row) = catalog.disk(id)? {
                    row.auto_sync = on;
                    catalog.upsert_disk(&row)?;
                }
                Ok(())
            },
        ));
    }

    pub(super) fn begin_live(&mut self, kind: Kind, title: String) {
        self.message = None;
        self.live = Some((
            kind,
            Live {
                title,
                ..Live::default()
            },
        ));
    }

    /// Starts a sync chain: first a dry run, to show evictions before
    /// anything is deleted. Its cancel flag is made here, before any job of
    /// the chain, and every job of the chain is started with it.
    pub(super) fn start_plan(&mut self, root: PathBuf) {
        if self.running(Kind::Sync) {
            return;
        }
        let label = self.label_of(&root);
        self.begin_live(Kind::Sync, format!("Planning the sync of {label}"));
        let chain = SyncChain {
            root: root.clone(),
            cancel: Cancel::new(),
        };
        let paths = self.paths.clone();
        let profile = self.config.profile.clone();
        let mounts = self.mount_source.clone();
        self.planning = Some(coffer_core::task::spawn_with(
            "plan",
            self.waker.clone(),
            chain.cancel.clone(),
            move |p| {
                let job = coffer_core::jobs::SyncJob {
                    roots: vec![root],
                    scan: false,
                    opts: sync::Options {
                        dry_run: true,
                        ..sync::Options::default()
                    },
                    mounts,
                    // The window has no passphrase dialog yet: encrypted
                    // disks unlock with COFFER_PASSPHRASE or stay locked.
                    passphrases: coffer_core::disk::Passphrases::from_env(),
                };
                coffer_core::jobs::sync(&paths, &profile, &job, p)
            },
        ));
        self.sync_chain = Some(chain);
    }

    /// The chain's next step after its plan: scan, then sync. Not started
    /// once the chain was cancelled.
    pub(super) fn start_sync(&mut self) {
        let Some(chain) = &self.sync_chain else {
            return;
        };
        if self.syncing.is_some() {
            return;
        }
        if chain.cancel.is_cancelled() {
            self.end_sync_chain_cancelled();
            return;
        }
        let root = chain.root.clone();
        let cancel = chain.cancel.clone();
        let label = self.label_of(&root);
        self.begin_live(Kind::Sync, format!("Syncing {label}"));
        let paths = self.paths.clone();
        let profile = self.config.profile.clone();
        let mounts = self.mount_source.clone();
        self.syncing = Some(coffer_core::task::spawn_with(
            "sync",
            self.waker.clone(),
            cancel,
            move |p| {
                // The other connected disks of the set serve as sources.
                let job = coffer_core::jobs::SyncJob {
                    roots: vec![root],
                    scan: true,
                    opts: sync::Options::default(),
                    mounts,
                    // The window has no passphrase dialog yet: encrypted
                    // disks unlock with COFFER_PASSPHRASE or stay locked.
                    passphrases: coffer_core::disk::Passphrases::from_env(),
                };
                coffer_core::jobs::sync(&paths, &profile, &job, p)
            },
        ));
    }

    pub(super) fn start_verify(&mut self, root: PathBuf) {
        if self.verifying.is_some() || self.syncing.is_some() {
            return;
        }
        let label = self.label_of(&root);
        self.begin_live(Kind::Verify, format!("Verifying {label}"));
        let paths = self.paths.clone();
        let profile = self.config.profile.clone();
        self.verifying = Some(coffer_core::task::spawn(
            "verify",
            self.waker.clone(),
            move |p| {
                let pass = coffer_core::disk::Passphrases::from_env();
                coffer_core::jobs::verify(&paths, &profile, &root, None, &pass, p)
            },
        ));
    }

    pub(super) fn start_init(&mut self, root: PathBuf, label: String, quota: String) {
        let quota = match quota.trim() {
            "" => None,
            q => match human::parse_size(q) {
                Ok(q) => Some(q),
                Err(e) => {
                    if let Some(f) = &mut self.init_form {
                        f.error = Some(e.to_string());
                    }
                    return;
                }
            },
        };
        if label.trim().is_empty() {
            if let Some(f) = &mut self.init_form {
                f.error = Some("give the disk a name".into());
            }
            return;
        }
        let paths = self.paths.clone();
        let set_id = self.config.profile.set_id;
        self.initialising = Some(coffer_core::task::spawn(
            "init",
            self.waker.clone(),
            move |_| {
                let disk = Disk::init(&root, &label, set_id, quota, io::real())?;
                let cat = Catalog::open(&paths.catalog_file())?;
                cat.register(&disk, Some(0))?;
                Ok(format!(
                    "Disk \"{}\" is ready at {}",
                    disk.label(),
                    disk.root().display()
                ))
            },
        ));
    }

    pub(super) fn label_of(&self, root: &std::path::Path) -> String {
        self.mounts
            .disks
            .iter()
            .find(|v| v.root == root)
            .and_then(|v| v.identity.as_ref().ok())
            .map_or_else(|| human::path(root).into_owned(), |i| i.label.clone())
    }
}

pub(super) fn cancelled_message(title: &str) -> Message {
    Message {
        ok: false,
        title: title.into(),
        details: vec!["Everything copied before the cancel is kept and counted.".into()],
    }
}

pub(super) fn failed_message(title: &str, e: &coffer_core::Error) -> Message {
    Message {
        ok: false,
        title: title.into(),
        details: vec![format!("{e:#}")],
    }
}

/// The message a finished sync leaves.
pub fn sync_message(out: Outcome<SyncResult>) -> Message {
    match out {
        Outcome::Completed { value, warnings } => {
            let mut details = Vec::new();
            if let Some(a) = value.after.as_ref().filter(|a| !a.ok()) {
                details.push(format!("The command after the sync failed ({})", a.why()));
            }
            let Some(report) = value.disks.into_iter().next() else {
                return Message {
                    ok: warnings.is_empty(),
                    title: "Scanned; no disk was synced".into(),
                    details: warnings.iter().map(ToString::to_string).collect(),
                };
            };
            if let Some(s) = report.shortfall_message() {
                details.push(s);
            }
            if report.skipped_files > 0 {
                details.push(format!(
                    "{} files could not be read now and were skipped",
                    report.skipped_files
                ));
            }
            details.extend(warnings.iter().map(ToString::to_string));
            Message {
                ok: details.is_empty() && report.complete(),
                title: if report.up_to_date {
                    format!("{} {}", report.label, report.summary())
                } else {
                    format!("Sync of {} done: {}", report.label, report.summary())
                },
                details,
            }
        }
        Outcome::Cancelled => cancelled_message("Sync cancelled"),
        Outcome::Failed(e) => failed_message("Sync failed", &e),
    }
}
