//! The Restore tab: pick a catalog (this computer's, or a connected disk's
//! own copy when the computer's is gone), a snapshot, tick files and
//! folders in its tree (or find them with the search box), see a file's
//! versions and the disks that hold it, choose where to restore and what to
//! do with paths that exist there, and restore.
//!
//! The pieces: `listing` (what is read from a catalog, on `core::task`
//! threads), `tree` (the snapshot's tree and a file's versions), `view`
//! (the catalog and snapshot choosers, the destination and options); the
//! restore job itself is started here and runs in [`super::jobs::Jobs`].

mod listing;
mod plan;
mod tree;
mod view;

use std::collections::BTreeSet;
use std::path::PathBuf;

use coffer_core::jobs::{FrontEnd, JobKind};
use coffer_core::restore::{self, At, Existing, Held, Options};
use coffer_core::task::Outcome;
use coffer_core::{Task, jobs};

use super::ctx::{Ctx, Shared};
use super::jobs::{Done, Finished, Kind, outcome_of};
use super::messages;

pub use listing::Origin;
use listing::{CatalogFile, Listing};
use plan::{Inputs, Planner};

#[derive(Clone, Debug)]
pub enum Action {
    /// Read the listing from another catalog.
    Origin(Origin),
    Snapshot(i64),
    /// Show a file's versions and the disks holding each.
    Versions(PathBuf),
    /// Restore into this folder.
    Dest(PathBuf),
    /// Restore the ticked items.
    Restore,
    /// Show a folder in the file manager (after a restore).
    OpenFolder(PathBuf),
    /// Read the listing again (a disk's passphrase was given).
    Reload,
}

/// The Restore tab's state and its reading tasks.
#[derive(Default)]
pub struct RestoreTab {
    listing: Listing,
    loading: Option<Task<Listing>>,
    load_error: Option<String>,
    /// The snapshot asked for; `None` = the newest.
    want: Option<i64>,
    /// Set when the tab opens or the catalog changed: read the listing again.
    stale: bool,
    selected: BTreeSet<PathBuf>,
    search: String,
    details_of: Option<PathBuf>,
    details: Option<Task<Vec<Held>>>,
    held: Vec<Held>,
    origin: Origin,
    /// Restore where the files were (under the storage basepath) rather
    /// than into `dest`.
    original: bool,
    dest: String,
    /// Paths that already exist: refuse and list them (the default), leave
    /// them, or replace them.
    existing: Existing,
    /// Rename names that clash on a case-insensitive (FAT/exFAT)
    /// destination instead of refusing.
    rename_collisions: bool,
    /// Where the last restore wrote (for "Open folder").
    restored_to: Option<PathBuf>,
    /// Where the running restore writes.
    writing_to: Option<PathBuf>,
    /// The disks the last restore asked for ("plug in X next"): plugging
    /// one in starts it again, and it restores what it still lacks.
    waiting_for: Vec<uuid::Uuid>,
    /// What pressing Restore would do, planned as the fields change.
    planner: Planner,
    /// The window's passphrases as the planner last saw them.
    unlock_seen: u64,
}

impl RestoreTab {
    pub fn busy(&self) -> bool {
        self.loading.is_some() || self.details.is_some() || self.planner.busy()
    }

    pub fn threads_ended(&self) -> bool {
        self.loading.as_ref().is_none_or(Task::is_finished)
            && self.details.as_ref().is_none_or(Task::is_finished)
            && self.planner.thread_ended()
    }

    /// The listing is read again when the tab is next shown.
    pub fn stale(&mut self) {
        self.stale = true;
        self.planner.forget();
    }

    pub fn apply(&mut self, action: Action, cx: &mut Ctx) {
        match action {
            Action::Origin(origin) => self.set_origin(origin),
            Action::Snapshot(id) => {
                self.want = Some(id);
                self.stale = true;
                self.selected.clear();
                self.details_of = None;
            }
            Action::Versions(path) => self.show_versions(path, &cx.shared),
            Action::Dest(path) => {
                self.dest = path.display().to_string();
                self.original = false;
            }
            Action::Restore => self.start(cx),
            Action::OpenFolder(dir) => open_folder(&dir, cx),
            Action::Reload => self.stale = true,
        }
    }

    /// The destination typed or chosen (remembered across restarts).
    pub fn dest(&self) -> &str {
        &self.dest
    }

    pub fn set_dest(&mut self, dest: String) {
        self.dest = dest;
    }

    /// A disk the last restore asked for is plugged in: it goes on.
    pub fn mounts_changed(&mut self, cx: &mut Ctx) {
        if self.waiting_for.is_empty() {
            return;
        }
        let plugged = cx
            .shared
            .connected()
            .iter()
            .any(|(id, _)| self.waiting_for.contains(id));
        if plugged
            && cx
                .jobs
                .check(Kind::Restore, &restore_disks(&cx.shared))
                .is_ok()
        {
            self.waiting_for.clear();
            self.start(cx);
        }
    }

    /// Takes finished reads, and starts reading the listing when it is
    /// stale and the tab is shown.
    pub fn poll(&mut self, shown: bool, cx: &mut Ctx) {
        if self.unlock_seen != cx.unlock.generation {
            // A disk the last plan could not read may be unlocked now.
            self.unlock_seen = cx.unlock.generation;
            self.planner.forget();
        }
        let passphrases = cx.passphrases();
        if let Some(out) = self.loading.as_mut().and_then(Task::try_finish) {
            self.loading = None;
            match out {
                Outcome::Completed { value, .. } => {
                    self.load_error = None;
                    self.listing = value;
                }
                Outcome::Failed(e) => self.load_error = Some(messages::error_text(&e)),
                Outcome::Cancelled => {}
            }
        }
        if let Some(out) = self.details.as_mut().and_then(Task::try_finish) {
            self.details = None;
            match out {
                Outcome::Completed { value, .. } => self.held = value,
                Outcome::Failed(e) => self.load_error = Some(messages::error_text(&e)),
                Outcome::Cancelled => {}
            }
        }
        // The plan of what the button would do, while the tab is shown.
        let inputs = (shown && !self.stale && self.loading.is_none())
            .then(|| self.inputs(&cx.shared).ok().map(|(i, _)| i))
            .flatten();
        self.planner.poll(inputs, &cx.shared, &passphrases);
        if shown && self.stale && self.loading.is_none() {
            self.stale = false;
            if let Origin::Disk { root, label } = &self.origin
                && !cx.unlocked(std::slice::from_ref(root), Action::Reload)
            {
                // Read once its passphrase is given.
                self.load_error = Some(format!(
                    "{label} is encrypted: its backups are listed once its passphrase is given."
                ));
                return;
            }
            let shared = &cx.shared;
            let catalog = shared.paths.catalog_file();
            let want = self.want;
            let origin = self.origin.clone();
            self.loading = Some(coffer_core::task::spawn(
                "restore-listing",
                shared.waker.clone(),
                move |_| listing::load(&origin, &catalog, want, &passphrases),
            ));
        }
    }

    /// The restore ended.
    pub fn finished(&mut self, f: Finished, cx: &mut Ctx) {
        // A damaged copy found on the way is moved aside and forgotten.
        cx.refresh();
        let out = outcome_of(f.outcome, |d| match d {
            Done::Restore(r) => Some(r),
            _ => None,
        });
        self.waiting_for.clear();
        // What is at the destination changed: the plan is made again.
        self.planner.forget();
        if let Outcome::Completed { value, .. } = &out {
            self.waiting_for = value.plug_next.iter().map(|n| n.disk_id).collect();
            let wrote = value.files + value.symlinks + value.already_done > 0;
            let dest = self.writing_to.take();
            if wrote {
                self.restored_to = dest;
            }
        }
        cx.say(messages::restore_message(out));
    }

    /// Reads from another catalog: the snapshot, ticks and details of the
    /// last one mean nothing there.
    fn set_origin(&mut self, origin: Origin) {
        if self.origin == origin {
            return;
        }
        if matches!(origin, Origin::Disk { .. }) {
            // A disk's catalog does not say where this computer keeps files.
            self.original = false;
        }
        self.origin = origin;
        self.listing = Listing::default();
        self.load_error = None;
        self.want = None;
        self.stale = true;
        self.selected.clear();
        self.details_of = None;
        self.held.clear();
    }

    fn show_versions(&mut self, path: PathBuf, shared: &Shared) {
        let Some(catalog) = self.listing.catalog.clone() else {
            return;
        };
        self.held.clear();
        self.details_of = Some(path.clone());
        self.details = Some(coffer_core::task::spawn(
            "versions",
            shared.waker.clone(),
            move |_| listing::versions_of(&catalog, &path),
        ));
    }

    /// The restore the tab's fields describe now, with the title of its
    /// job; or what is missing, as a message's title and details.
    fn inputs(&self, shared: &Shared) -> Result<(Inputs, String), (&'static str, String)> {
        let nothing = "Nothing to restore";
        let Some(snapshot) = self.listing.snapshot else {
            return Err((nothing, "There is no snapshot yet.".into()));
        };
        if self.selected.is_empty() {
            return Err((nothing, "Tick the files or folders to restore.".into()));
        }
        let Some(catalog) = self.listing.catalog.clone() else {
            return Err((nothing, "There is no snapshot yet.".into()));
        };
        let profile = &shared.config.profile;
        let workstation = matches!(catalog, CatalogFile::Workstation(_)).then_some(profile.set_id);
        let (dest, within, title) = if self.original && workstation.is_some() {
            let base = profile.basepath.clone();
            let title = format!(
                "Restoring to where the files were, under {}",
                base.display()
            );
            (None, Some(base), title)
        } else {
            let dest = PathBuf::from(self.dest.trim());
            if !dest.is_absolute() {
                return Err((
                    "Choose where to restore",
                    format!("\"{}\" is not a full folder path.", self.dest.trim()),
                ));
            }
            let title = format!("Restoring into {}", dest.display());
            (Some(dest), None, title)
        };
        let opts = Options {
            at: Some(At::Snapshot(snapshot)),
            paths: self.selected.iter().cloned().collect(),
            dest,
            within,
            existing: self.existing,
            case_insensitive: false,
            rename_collisions: self.rename_collisions,
            keep_special_bits: false,
        };
        Ok((
            Inputs {
                catalog,
                workstation,
                opts,
            },
            title,
        ))
    }

    /// Restores the ticked paths of the shown snapshot into the destination,
    /// from the known disks connected now.
    fn start(&mut self, cx: &mut Ctx) {
        let (inputs, title) = match self.inputs(&cx.shared) {
            Ok(i) => i,
            Err((title, details)) => return cx.fail(title, details),
        };
        let Inputs {
            catalog,
            workstation,
            opts,
        } = inputs;
        if !cx.unlocked(&restore_readers(&cx.shared, &catalog), Action::Restore) {
            return;
        }
        let passphrases = cx.passphrases();
        self.writing_to = opts.dest.clone().or_else(|| opts.within.clone());
        let mounts = cx.shared.mount_source.clone();
        let disks = restore_disks(&cx.shared);
        let paths = cx.shared.paths.clone();
        cx.start(Kind::Restore, disks, title, move |p| {
            let mut cat = catalog.open()?;
            // A disk's own catalog may not list the disk it came from.
            let from = match &catalog {
                CatalogFile::Copy { root, .. } => Some(root.as_path()),
                CatalogFile::Workstation(_) => None,
            };
            let readers = jobs::disks::Readers::open(&cat, &mounts, from, &passphrases)?;
            let held = jobs::history::held(&readers.disks);
            jobs::record(&paths, FrontEnd::Window, JobKind::Restore, &held, p, |p| {
                restore::restore_from(&mut cat, workstation, &readers.sources(), &opts, p)
            })
            .map(Done::Restore)
        });
    }
}

/// The disks a restore may read (and move a damaged copy aside on): every
/// connected disk, since which of them the catalog knows is read with it.
fn restore_disks(shared: &Shared) -> Vec<PathBuf> {
    shared
        .connected()
        .into_iter()
        .map(|(_, root)| root)
        .collect()
}

/// The connected disks a restore from `catalog` reads, whose passphrases
/// it needs: those of its backup sets (this computer's, or those of the
/// disk the catalog came from).
fn restore_readers(shared: &Shared, catalog: &CatalogFile) -> Vec<PathBuf> {
    let sets: Vec<uuid::Uuid> = match catalog {
        CatalogFile::Workstation(_) => vec![shared.config.profile.set_id],
        CatalogFile::Copy { root, .. } => shared
            .identified()
            .filter(|(r, _)| *r == root)
            .flat_map(|(_, i)| i.sets.clone())
            .collect(),
    };
    let mut roots: Vec<PathBuf> = shared
        .identified()
        .filter(|(_, i)| i.sets.iter().any(|s| sets.contains(s)))
        .map(|(root, _)| root.clone())
        .collect();
    // The bucket disks this computer's catalog knows are read too.
    if matches!(catalog, CatalogFile::Workstation(_)) {
        roots.extend(shared.bucket_urls());
    }
    roots
}

/// Shows `dir` in the desktop's file manager (`xdg-open`), reaped when it
/// ends; a desktop without one says so.
fn open_folder(dir: &std::path::Path, cx: &mut Ctx) {
    match std::process::Command::new("xdg-open")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            let _ = std::thread::Builder::new()
                .name("coffer-open-folder".into())
                .spawn(move || child.wait());
        }
        Err(e) => cx.fail(
            "Cannot open the folder",
            format!("xdg-open {}: {e}", dir.display()),
        ),
    }
}
