//! The Archives tab: write a full or incremental tar.gz archive of the
//! sources into a folder, list the archives there (as `coffer archive ls`),
//! verify one, and restore from one (as `coffer archive restore`): the
//! archive chosen is the point restored, its chain of bases is core's to
//! find; paths ticked in its manifest, or everything, go into a destination.
//!
//! The pieces: `list` (the folder's archives and a manifest's tree, read on
//! `core::task` threads), `view` (drawing); writing, verifying and
//! restoring are started here and run in [`super::jobs::Jobs`].

mod list;
mod view;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use coffer_core::archive::{self, Mode, Options, RestoreOptions};
use coffer_core::jobs::{self, FrontEnd, JobKind};
use coffer_core::task::Outcome;
use coffer_core::{Task, human};

use super::ctx::{Ctx, Shared};
use super::jobs::{Done, Finished, Kind, outcome_of};
use super::messages;

use list::{Item, Row};

#[derive(Clone, Debug)]
pub enum Action {
    /// Write an archive: a full one, or what changed since the last.
    Write {
        full: bool,
    },
    /// Read back every volume of the archive named `PREFIX-N`.
    Verify(String),
    /// List the archives of this folder.
    Dir(PathBuf),
    /// List the folder again.
    Refresh,
    /// Choose an archive of the list (by its name, `PREFIX-N`): its
    /// manifest is read so that paths can be ticked to restore.
    Select(String),
    RestoreDest(PathBuf),
    /// Restore the ticked paths (or everything) as of the chosen archive.
    Restore,
}

/// What the running archive job is, for its message.
enum Job {
    Write,
    Verify { name: String },
    Restore { name: String, dest: PathBuf },
}

/// The Archives tab's state and its reading tasks.
#[derive(Default)]
pub struct ArchivesTab {
    dir: String,
    prefix: String,
    rows: Vec<Row>,
    listing: Option<Task<Vec<Row>>>,
    list_error: Option<String>,
    stale: bool,
    selected: Option<String>,
    /// The chosen archive's tree, read from its manifest.
    items: Vec<Item>,
    /// The items as folders and what each holds.
    tree: list::Tree,
    reading: Option<Task<Vec<Item>>>,
    read_error: Option<String>,
    filter: String,
    /// Paths ticked to restore; none means everything.
    ticked: BTreeSet<String>,
    restore_dest: String,
    replace: bool,
    job: Option<Job>,
}

impl ArchivesTab {
    /// The folder, prefix and restore destination (remembered across
    /// restarts).
    pub fn fields(&self) -> (&str, &str, &str) {
        (&self.dir, &self.prefix, &self.restore_dest)
    }

    pub fn set_fields(&mut self, dir: String, prefix: String, restore_dest: String) {
        self.dir = dir;
        self.prefix = prefix;
        self.restore_dest = restore_dest;
        self.stale = true;
    }

    pub fn busy(&self) -> bool {
        self.listing.is_some() || self.reading.is_some()
    }

    pub fn threads_ended(&self) -> bool {
        self.listing.as_ref().is_none_or(Task::is_finished)
            && self.reading.as_ref().is_none_or(Task::is_finished)
    }

    /// The folder is listed again when the tab is next shown.
    pub fn stale(&mut self) {
        self.stale = true;
    }

    /// True when `path` is ticked, itself or through a folder holding it.
    pub fn is_ticked(&self, path: &str) -> bool {
        self.ticked.iter().any(|t| under(path, t))
    }

    /// Ticks or unticks `path`; unticking also unticks what lies under it
    /// and the folders holding it (as the Restore tab does).
    pub fn tick(&mut self, path: &str, on: bool) {
        if on {
            self.ticked.insert(path.to_string());
        } else {
            self.ticked.retain(|t| !under(t, path) && !under(path, t));
        }
    }

    fn dir(&self) -> Option<PathBuf> {
        let d = PathBuf::from(self.dir.trim());
        d.is_absolute().then_some(d)
    }

    fn prefix(&self) -> Option<String> {
        let p = self.prefix.trim();
        (!p.is_empty()).then(|| p.to_string())
    }

    pub fn apply(&mut self, action: Action, cx: &mut Ctx) {
        match action {
            Action::Write { full } => self.start_write(full, cx),
            Action::Verify(name) => self.start_verify(name, cx),
            Action::Dir(path) => {
                self.dir = path.display().to_string();
                self.stale = true;
            }
            Action::Refresh => self.stale = true,
            Action::Select(name) => self.select(name, &cx.shared),
            Action::RestoreDest(path) => self.restore_dest = path.display().to_string(),
            Action::Restore => self.start_restore(cx),
        }
    }

    /// Takes finished reads, and lists the folder when it is stale and the
    /// tab is shown.
    pub fn poll(&mut self, shown: bool, shared: &Shared) {
        if let Some(out) = self.listing.as_mut().and_then(Task::try_finish) {
            self.listing = None;
            match out {
                Outcome::Completed { value, .. } => {
                    self.list_error = None;
                    self.rows = value;
                }
                Outcome::Failed(e) => self.list_error = Some(messages::error_text(&e)),
                Outcome::Cancelled => {}
            }
        }
        if let Some(out) = self.reading.as_mut().and_then(Task::try_finish) {
            self.reading = None;
            match out {
                Outcome::Completed { value, .. } => {
                    self.read_error = None;
                    self.tree = list::tree(&value);
                    self.items = value;
                }
                Outcome::Failed(e) => self.read_error = Some(messages::error_text(&e)),
                Outcome::Cancelled => {}
            }
        }
        if shown
            && self.stale
            && self.listing.is_none()
            && let Some(dir) = self.dir()
        {
            self.stale = false;
            let prefix = self.prefix();
            self.listing = Some(coffer_core::task::spawn(
                "archive-ls",
                shared.waker.clone(),
                move |_| list::list(&dir, prefix.as_deref()),
            ));
        }
    }

    /// The archive job ended: its message, and the folder listed again.
    pub fn finished(&mut self, f: Finished, cx: &mut Ctx) {
        self.stale = true;
        let job = "Archive job";
        let message = match self.job.take() {
            Some(Job::Write) | None => messages::archive_message(
                job,
                outcome_of(f.outcome, |d| match d {
                    Done::ArchiveWritten(r) => Some(r),
                    _ => None,
                }),
                |r| messages::archive_written_message(&r),
            ),
            Some(Job::Verify { name }) => messages::archive_message(
                job,
                outcome_of(f.outcome, |d| match d {
                    Done::ArchiveVerified(r) => Some(r),
                    _ => None,
                }),
                |v| messages::archive_verified_message(&name, &v),
            ),
            Some(Job::Restore { name, dest }) => messages::archive_message(
                &format!("Restore from {name}"),
                outcome_of(f.outcome, |d| match d {
                    Done::ArchiveRestored(r) => Some(r),
                    _ => None,
                }),
                |r| messages::archive_restored_message(&name, &dest, &r),
            ),
        };
        cx.say(message);
    }

    fn start_write(&mut self, full: bool, cx: &mut Ctx) {
        let Some(dir) = self.dir() else {
            return cx.fail(
                "Choose the archive folder",
                format!("\"{}\" is not a full folder path.", self.dir.trim()),
            );
        };
        let opts = Options {
            prefix: self.prefix(),
            volume_size: None,
        };
        let mode = if full {
            Mode::Full
        } else {
            Mode::Incremental { since: None }
        };
        let profile = cx.shared.config.profile.clone();
        let what = if full { "full" } else { "incremental" };
        let title = format!("Writing a {what} archive into {}", dir.display());
        let paths = cx.shared.paths.clone();
        let started = cx.start(Kind::Archive, Vec::new(), title, move |p| {
            jobs::record(&paths, FrontEnd::Window, JobKind::Archive, &[], p, |p| {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    coffer_core::Error::Failed(format!("cannot create {}: {e}", human::path(&dir)))
                })?;
                archive::create(&profile, &dir, mode, &opts, p)
            })
            .map(Done::ArchiveWritten)
        });
        if started {
            self.job = Some(Job::Write);
        }
    }

    fn start_verify(&mut self, name: String, cx: &mut Ctx) {
        let Some(row) = self.rows.iter().find(|r| r.name == name) else {
            return;
        };
        let files = row.files.clone();
        let title = format!("Verifying archive {name}");
        let paths = cx.shared.paths.clone();
        let started = cx.start(Kind::Archive, Vec::new(), title, move |p| {
            jobs::record(
                &paths,
                FrontEnd::Window,
                JobKind::ArchiveVerify,
                &[],
                p,
                |p| {
                    files
                        .iter()
                        .map(|f| archive::verify(f, p))
                        .collect::<coffer_core::Result<Vec<_>>>()
                },
            )
            .map(Done::ArchiveVerified)
        });
        if started {
            self.job = Some(Job::Verify { name });
        }
    }

    /// Chooses the archive to restore from and reads its manifest.
    fn select(&mut self, name: String, shared: &Shared) {
        if self.selected.as_ref() == Some(&name)
            && (self.reading.is_some() || !self.items.is_empty())
        {
            return;
        }
        let Some(first) = self
            .rows
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.files.first().cloned())
        else {
            return;
        };
        self.selected = Some(name);
        self.ticked.clear();
        self.items.clear();
        self.read_error = None;
        self.reading = Some(coffer_core::task::spawn(
            "archive-manifest",
            shared.waker.clone(),
            move |_| list::items(&first),
        ));
    }

    /// Restores the ticked paths (everything when none is ticked) as of the
    /// chosen archive into the destination; core reads the chain it needs.
    fn start_restore(&mut self, cx: &mut Ctx) {
        let Some(row) = self
            .selected
            .as_ref()
            .and_then(|n| self.rows.iter().find(|r| &r.name == n))
        else {
            return cx.fail(
                "Choose an archive",
                "Click an archive in the list to restore from it.".into(),
            );
        };
        let dest = PathBuf::from(self.restore_dest.trim());
        if !dest.is_absolute() {
            return cx.fail(
                "Choose where to restore",
                format!(
                    "\"{}\" is not a full folder path.",
                    self.restore_dest.trim()
                ),
            );
        }
        // The folder the archive was listed from, whatever the folder
        // field says now.
        let Some(dir) = row
            .files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
        else {
            return;
        };
        let name = row.name.clone();
        let opts = RestoreOptions {
            at: row.sequence,
            prefix: Some(row.prefix.clone()),
            paths: self.ticked.iter().cloned().collect(),
            overwrite: self.replace,
            keep_special_bits: false,
        };
        let title = format!("Restoring {name} into {}", dest.display());
        let to = dest.clone();
        let paths = cx.shared.paths.clone();
        let started = cx.start(Kind::Archive, Vec::new(), title, move |p| {
            jobs::record(
                &paths,
                FrontEnd::Window,
                JobKind::ArchiveRestore,
                &[],
                p,
                |p| archive::restore(&dir, &to, &opts, p),
            )
            .map(Done::ArchiveRestored)
        });
        if started {
            self.job = Some(Job::Restore { name, dest });
        }
    }
}

/// True when the `/`-separated `path` is `folder` or lies under it.
fn under(path: &str, folder: &str) -> bool {
    path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticking_a_folder_ticks_what_it_holds_and_unticking_inside_unticks_it() {
        let mut s = ArchivesTab::default();
        s.tick("docs", true);
        assert!(s.is_ticked("docs/a.txt") && s.is_ticked("docs"));
        assert!(!s.is_ticked("docs2/a.txt"), "a sibling with a longer name");
        s.tick("docs/a.txt", false);
        assert!(s.ticked.is_empty());
        s.tick("docs/a.txt", true);
        s.tick("docs/sub/b.txt", true);
        s.tick("docs", false);
        assert!(
            s.ticked.is_empty(),
            "unticking a folder unticks what it holds"
        );
    }
}
