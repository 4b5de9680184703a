//! The Restore view: pick a catalog (this computer's, or a connected disk's
//! own copy when the computer's is gone), a snapshot, tick files and folders
//! in its tree (or find them with the search box), see a file's versions and
//! the disks that hold it, choose where to restore and what to do with paths
//! that exist there, and restore on a background task.
//!
//! Catalog reads (the snapshot listing, a file's versions) run on
//! `core::task` threads; this view only draws what they returned.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_core::catalog::{Kind as EntryKind, Snapshot, Version};
use coffer_core::restore::{self, At, Existing, Held, Options};
use coffer_core::task::Outcome;
use coffer_core::{Catalog, Disk, Task, human, io};

use super::app::{Action, CofferApp, Kind, Message};
use super::jobs::{cancelled_message, failed_message};
use super::{shown, shown_path};

/// Which catalog the view reads and restores from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// This computer's catalog.
    #[default]
    Workstation,
    /// The newest valid catalog copy on a connected disk: what a new
    /// machine, or one whose catalog is lost, restores from.
    Disk { root: PathBuf, label: String },
}

/// The catalog file a listing was read from, for the tasks that follow it
/// (a file's versions, the restore). A disk's copy lives in a private temp
/// folder that is removed when the last listing holding it is dropped.
#[derive(Clone)]
pub enum CatalogFile {
    Workstation(PathBuf),
    Copy {
        path: PathBuf,
        _dir: Arc<tempfile::TempDir>,
    },
}

impl CatalogFile {
    fn open(&self) -> coffer_core::Result<Catalog> {
        Ok(match self {
            CatalogFile::Workstation(p) => Catalog::open(p)?,
            CatalogFile::Copy { path, .. } => Catalog::open_copy(path)?,
        })
    }
}

/// What the listing task read from the catalog.
#[derive(Default)]
pub struct Listing {
    /// Where it was read from; `None` while nothing was (no catalog yet).
    pub catalog: Option<CatalogFile>,
    pub snapshots: Vec<Snapshot>,
    /// The snapshot shown (the newest when none was asked for).
    pub snapshot: Option<i64>,
    /// Its entries, sorted by path.
    pub entries: Vec<Version>,
    /// Indices of each folder's children, by the folder's path.
    pub children: HashMap<PathBuf, Vec<usize>>,
    /// Entries whose parent is not in the snapshot (the sources).
    pub roots: Vec<usize>,
    /// Each entry's path in lower case, made once for the search box
    /// (which filters on every frame).
    pub lower: Vec<String>,
}

impl Listing {
    /// Indices of the entries whose path contains `query` (lower case).
    pub fn search<'a>(&'a self, query: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.lower
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.contains(query))
            .map(|(i, _)| i)
    }
}

/// The Restore view's state.
#[derive(Default)]
pub struct State {
    pub listing: Listing,
    pub loading: Option<Task<Listing>>,
    pub load_error: Option<String>,
    /// The snapshot asked for; `None` = the newest.
    pub want: Option<i64>,
    /// Set when the tab opens or the catalog changed: reload the listing.
    pub stale: bool,
    pub selected: BTreeSet<PathBuf>,
    pub search: String,
    pub details_of: Option<PathBuf>,
    pub details: Option<Task<Vec<Held>>>,
    pub held: Vec<Held>,
    pub origin: Origin,
    /// Restore where the files were (under the storage basepath) rather
    /// than into `dest`.
    pub original: bool,
    pub dest: String,
    /// Paths that already exist: refuse and list them (the default), leave
    /// them, or replace them.
    pub existing: Existing,
    /// Rename names that clash on a case-insensitive (FAT/exFAT)
    /// destination instead of refusing.
    pub rename_collisions: bool,
}

impl State {
    pub fn busy(&self) -> bool {
        self.loading.is_some() || self.details.is_some()
    }
}

/// Reads the snapshots and the entries of `want` (the newest when `None`)
/// from the catalog `origin` names.
fn load(origin: &Origin, workstation: &Path, want: Option<i64>) -> coffer_core::Result<Listing> {
    match origin {
        Origin::Workstation => {
            if !workstation.exists() {
                return Ok(Listing::default());
            }
            let file = CatalogFile::Workstation(workstation.to_path_buf());
            listing(&file.open()?, file, want)
        }
        Origin::Disk { root, .. } => {
            let disk = Disk::open(root, io::real())?;
            // A damaged slot is no news here: the other one was read.
            let (cat, dir, _problems) = restore::open_disk_catalog(&disk)?;
            let file = CatalogFile::Copy {
                path: cat.path().to_path_buf(),
                _dir: Arc::new(dir),
            };
            listing(&cat, file, want)
        }
    }
}

fn listing(cat: &Catalog, file: CatalogFile, want: Option<i64>) -> coffer_core::Result<Listing> {
    let mut snapshots = cat.snapshots()?;
    snapshots.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    let snapshot = want
        .filter(|w| snapshots.iter().any(|s| s.id == *w))
        .or_else(|| snapshots.first().map(|s| s.id));
    let Some(id) = snapshot else {
        return Ok(Listing {
            catalog: Some(file),
            snapshots,
            ..Listing::default()
        });
    };
    let entries = restore::select(cat, id, &[])?;
    let index: HashMap<&Path, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, v)| (v.path.as_path(), i))
        .collect();
    let mut children: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, v) in entries.iter().enumerate() {
        match v.path.parent().filter(|p| index.contains_key(p)) {
            Some(p) => children.entry(p.to_path_buf()).or_default().push(i),
            None => roots.push(i),
        }
    }
    let lower = lower_paths(&entries);
    Ok(Listing {
        catalog: Some(file),
        snapshots,
        snapshot,
        entries,
        children,
        roots,
        lower,
    })
}

/// Each entry's path in lower case, for [`Listing::search`].
fn lower_paths(entries: &[Version]) -> Vec<String> {
    entries
        .iter()
        .map(|v| v.path.to_string_lossy().to_lowercase())
        .collect()
}

/// Every version of `path` with the disks holding each, newest first.
fn versions_of(catalog: &CatalogFile, path: &Path) -> coffer_core::Result<Vec<Held>> {
    let mut out = restore::versions_held(&catalog.open()?, path)?;
    out.reverse();
    Ok(out)
}

impl CofferApp {
    /// Starts loading the listing when it is stale; takes finished loads.
    pub(super) fn poll_restore(&mut self) {
        let r = &mut self.restore;
        if let Some(out) = r.loading.as_mut().and_then(Task::try_finish) {
            r.loading = None;
            match out {
                Outcome::Completed { value, .. } => {
                    r.load_error = None;
                    r.listing = value;
                }
                Outcome::Failed(e) => r.load_error = Some(format!("{e:#}")),
                Outcome::Cancelled => {}
            }
        }
        if let Some(out) = r.details.as_mut().and_then(Task::try_finish) {
            r.details = None;
            match out {
                Outcome::Completed { value, .. } => r.held = value,
                Outcome::Failed(e) => r.load_error = Some(format!("{e:#}")),
                Outcome::Cancelled => {}
            }
        }
        if self.tab == super::Tab::Restore && r.stale && r.loading.is_none() {
            r.stale = false;
            let catalog = self.paths.catalog_file();
            let want = r.want;
            let origin = r.origin.clone();
            r.loading = Some(coffer_core::task::spawn(
                "restore-listing",
                self.waker.clone(),
                move |_| load(&origin, &catalog, want),
            ));
        }
    }

    /// Reads from another catalog: the snapshot, ticks and details of the
    /// last one mean nothing there.
    pub(super) fn set_restore_origin(&mut self, origin: Origin) {
        let r = &mut self.restore;
        if r.origin == origin {
            return;
        }
        if matches!(origin, Origin::Disk { .. }) {
            // A disk's catalog does not say where this computer keeps files.
            r.original = false;
        }
        r.origin = origin;
        r.listing = Listing::default();
        r.load_error = None;
        r.want = None;
        r.stale = true;
        r.selected.clear();
        r.details_of = None;
        r.held.clear();
    }

    pub(super) fn show_versions(&mut self, path: PathBuf) {
        let Some(catalog) = self.restore.listing.catalog.clone() else {
            return;
        };
        self.restore.held.clear();
        self.restore.details_of = Some(path.clone());
        self.restore.details = Some(coffer_core::task::spawn(
            "versions",
            self.waker.clone(),
            move |_| versions_of(&catalog, &path),
        ));
    }

    /// Restores the ticked paths of the shown snapshot into the destination,
    /// from the disks connected now.
    pub(super) fn start_restore(&mut self) {
        if self.restoring.is_some() {
            return;
        }
        let r = &self.restore;
        let Some(snapshot) = r.listing.snapshot else {
            return self.fail("Nothing to restore", "There is no snapshot yet.".into());
        };
        if r.selected.is_empty() {
            return self.fail(
                "Nothing to restore",
                "Tick the files or folders to restore.".into(),
            );
        }
        let Some(catalog) = r.listing.catalog.clone() else {
            return self.fail("Nothing to restore", "There is no snapshot yet.".into());
        };
        let workstation =
            matches!(catalog, CatalogFile::Workstation(_)).then_some(self.config.profile.set_id);
        let (dest, within, title) = if r.original && workstation.is_some() {
            let base = self.config.profile.basepath.clone();
            let title = format!(
                "Restoring to where the files were, under {}",
                base.display()
            );
            (None, Some(base), title)
        } else {
            let dest = PathBuf::from(r.dest.trim());
            if !dest.is_absolute() {
                return self.fail(
                    "Choose where to restore",
                    format!("\"{}\" is not a full folder path.", r.dest.trim()),
                );
            }
            let title = format!("Restoring into {}", dest.display());
            (Some(dest), None, title)
        };
        let opts = Options {
            at: Some(At::Snapshot(snapshot)),
            paths: r.selected.iter().cloned().collect(),
            dest,
            within,
            existing: r.existing,
            case_insensitive: false,
            rename_collisions: r.rename_collisions,
            keep_special_bits: false,
        };
        let roots: Vec<PathBuf> = self.present().into_iter().map(|p| p.1).collect();
        self.begin_live(Kind::Restore, title);
        self.restoring = Some(coffer_core::task::spawn(
            "restore",
            self.waker.clone(),
            move |p| {
                let mut cat = catalog.open()?;
                let known = cat.disks()?;
                let disks: Vec<Disk> = roots
                    .iter()
                    .filter_map(|r| Disk::open(r, io::real()).ok())
                    .filter(|d| known.iter().any(|k| k.id == d.id()))
                    .collect();
                restore::restore(&mut cat, workstation, &disks, &opts, p)
            },
        ));
    }

    pub(super) fn finish_restore(&mut self) {
        if let Some(out) = self.restoring.as_mut().and_then(Task::try_finish) {
            self.restoring = None;
            self.live = None;
            self.refresh_again = true;
            self.message = Some(restore_message(out));
        }
    }
}

/// The message a finished restore leaves: what was restored, then what
/// is still missing and which disk to plug in next.
pub fn restore_message(out: Outcome<restore::Report>) -> Message {
    let (r, warnings) = match out {
        Outcome::Completed { value, warnings } => (value, warnings),
        Outcome::Cancelled => return cancelled_message("Restore cancelled"),
        Outcome::Failed(e) => return restore_failed_message(&e),
    };
    let mut details = Vec::new();
    if r.already_done > 0 {
        details.push(format!(
            "{} already there",
            human::count(r.already_done, "file")
        ));
    }
    if !r.skipped_existing.is_empty() {
        details.push(format!(
            "Left {} untouched (choose \"Replace them\" to replace them): {}",
            human::count(r.skipped_existing.len() as u64, "existing path"),
            list(&r.skipped_existing)
        ));
    }
    for b in &r.bad_copies {
        details.push(format!(
            "Damaged copy of {} on disk \"{}\"{}",
            shown_path(&b.path),
            b.disk,
            if b.quarantined {
                " (moved aside and removed from the catalog)"
            } else {
                ""
            }
        ));
    }
    if !r.complete() {
        details.push(format!(
            "{} ({}) still missing",
            human::count(r.missing_files, "file"),
            human::bytes(r.missing_bytes)
        ));
        for n in &r.plug_next {
            details.push(sentence(&restore::plug_in_next(n)));
        }
        if !r.unavailable.is_empty() {
            details.push(format!(
                "{} on no known disk: {}",
                human::count(r.unavailable.len() as u64, "file"),
                list(&r.unavailable)
            ));
        }
    }
    details.extend(warnings.iter().map(ToString::to_string));
    Message {
        ok: r.complete() && r.bad_copies.is_empty() && warnings.is_empty(),
        title: format!(
            "Restored {} ({}) into {} from the snapshot of {}",
            human::count(r.files, "file"),
            human::bytes(r.bytes),
            shown_path(&r.dest),
            human::time(r.snapshot_time)
        ),
        details,
    }
}

/// The message of a restore that failed. A restore refused before writing
/// (paths that exist, names that clash on FAT) says which of the window's
/// choices goes on, where the command line's text names its flags.
pub fn restore_failed_message(e: &coffer_core::Error) -> Message {
    let title = "Restore failed";
    let (first, listed): (String, Vec<String>) = match e {
        coffer_core::Error::Restore(restore::Error::Conflicts { paths }) => (
            format!(
                "Nothing was restored: {} in the destination. Choose \"Leave them as they are\" or \"Replace them\", or another folder.",
                if paths.len() == 1 {
                    "1 path to restore already exists".to_string()
                } else {
                    format!("{} paths to restore already exist", paths.len())
                }
            ),
            paths
                .iter()
                .map(|p| format!("Exists: {}", shown_path(p)))
                .collect(),
        ),
        coffer_core::Error::Restore(restore::Error::Collisions { names }) => (
            format!(
                "Nothing was restored: {} on this case-insensitive (FAT/exFAT) destination. Tick \"Rename clashing names\", or choose another folder.",
                if names.len() == 1 {
                    "1 name would clash or is invalid".to_string()
                } else {
                    format!("{} names would clash or are invalid", names.len())
                }
            ),
            names
                .iter()
                .map(|(p, why)| format!("{}: {why}", shown_path(p)))
                .collect(),
        ),
        other => return failed_message(title, other),
    };
    let mut details = vec![first];
    details.extend(listed.into_iter().take(50));
    Message {
        ok: false,
        title: title.into(),
        details,
    }
}

/// `s` with a capital first letter: a line of its own in the message.
fn sentence(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn list(paths: &[PathBuf]) -> String {
    let mut s: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| shown_path(p).into_owned())
        .collect();
    if paths.len() > 10 {
        s.push(format!("and {} more", paths.len() - 10));
    }
    s.join(", ")
}

/// An entry's name as drawn (a catalog holds any byte a file system allows).
fn name_of(v: &Version) -> String {
    v.path.file_name().map_or_else(
        || shown_path(&v.path).into_owned(),
        |n| human::os_str(n).into_owned(),
    )
}

/// The connected disks a restore can read a catalog from: (root, label).
fn disks_with_catalogs(app: &CofferApp) -> Vec<(PathBuf, String)> {
    app.identified()
        .map(|(root, i)| (root.clone(), i.label.clone()))
        .collect()
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Workstation => "This computer's catalog".to_string(),
        Origin::Disk { label, .. } => format!("The catalog on disk \"{}\" alone", shown(label)),
    }
}

pub fn show(app: &mut CofferApp, ui: &mut egui::Ui) {
    let disks = disks_with_catalogs(app);
    let basepath = app.config.profile.basepath.clone();
    let r = &mut app.restore;
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let l = ui.label("Read from");
        let mut origins = vec![Origin::Workstation];
        origins.extend(disks.iter().map(|(root, label)| Origin::Disk {
            root: root.clone(),
            label: label.clone(),
        }));
        if !origins.contains(&r.origin) {
            // The disk read from was unplugged: keep showing what was read.
            origins.push(r.origin.clone());
        }
        egui::ComboBox::from_id_salt("restore-origin")
            .selected_text(origin_text(&r.origin))
            .show_ui(ui, |ui| {
                for o in origins {
                    let text = origin_text(&o);
                    if ui.selectable_label(o == r.origin, text).clicked() {
                        actions.push(Action::RestoreOrigin(o));
                    }
                }
            })
            .response
            .on_hover_text(
                "A disk's own catalog restores everything that disk holds, with no catalog on this computer",
            )
            .labelled_by(l.id);
    });
    if r.listing.snapshots.is_empty() {
        if r.loading.is_some() {
            ui.label("Reading the catalog…");
        } else {
            if let Some(e) = &r.load_error {
                ui.colored_label(ui.visuals().error_fg_color, shown(e));
            } else if r.origin == Origin::Workstation {
                ui.label("No snapshots on this computer yet: sync a disk first.");
            } else {
                ui.label("That disk's catalog holds no snapshot.");
            }
            if r.origin == Origin::Workstation {
                // A new computer, or a lost catalog: any one disk restores.
                for (root, label) in &disks {
                    if ui
                        .button(format!("Restore from disk \"{}\" alone", shown(label)))
                        .on_hover_text("Read the catalog that disk carries (for a new computer)")
                        .clicked()
                    {
                        actions.push(Action::RestoreOrigin(Origin::Disk {
                            root: root.clone(),
                            label: label.clone(),
                        }));
                    }
                }
            }
        }
        app.actions.extend(actions);
        return;
    }
    ui.horizontal(|ui| {
        let l = ui.label("Snapshot");
        let current = r
            .listing
            .snapshots
            .iter()
            .find(|s| Some(s.id) == r.listing.snapshot)
            .map_or_else(String::new, snapshot_text);
        egui::ComboBox::from_id_salt("snapshot")
            .selected_text(current)
            .show_ui(ui, |ui| {
                for s in &r.listing.snapshots {
                    if ui
                        .selectable_label(Some(s.id) == r.listing.snapshot, snapshot_text(s))
                        .clicked()
                    {
                        actions.push(Action::RestoreSnapshot(s.id));
                    }
                }
            })
            .response
            .labelled_by(l.id);
        if r.loading.is_some() {
            ui.spinner();
        }
    });
    if let Some(e) = &r.load_error {
        ui.colored_label(ui.visuals().error_fg_color, shown(e));
    }
    ui.horizontal(|ui| {
        let l = ui.label("Search");
        ui.text_edit_singleline(&mut r.search).labelled_by(l.id);
    });
    ui.separator();
    let query = r.search.trim().to_lowercase();
    if query.is_empty() {
        for i in r.listing.roots.clone() {
            tree_row(r, ui, i, &mut actions);
        }
    } else {
        let hits: Vec<usize> = r.listing.search(&query).take(501).collect();
        for (drawn, &i) in hits.iter().enumerate() {
            if drawn == 500 {
                ui.label("…more matches; narrow the search");
                break;
            }
            let label = shown_path(&r.listing.entries[i].path).into_owned();
            entry_row(r, ui, i, label, &mut actions);
        }
        if hits.is_empty() {
            ui.label("No match in this snapshot.");
        }
    }
    ui.separator();
    details(r, ui);
    let from_disk = matches!(r.listing.catalog, Some(CatalogFile::Copy { .. }));
    ui.add_enabled_ui(!from_disk, |ui| {
        ui.radio_value(
            &mut r.original,
            true,
            format!("Where they were (under {})", shown_path(&basepath)),
        )
        .on_disabled_hover_text(
            "A disk's catalog does not say where this computer keeps files: choose a folder",
        );
    });
    ui.horizontal(|ui| {
        let l = ui.radio_value(&mut r.original, false, "Into this folder");
        ui.add_enabled(
            !r.original,
            egui::TextEdit::singleline(&mut r.dest).desired_width(400.0),
        )
        .labelled_by(l.id);
        if ui.button("Choose folder…").clicked() {
            actions.push(Action::PickRestoreDest);
        }
        if ui.button("Browse folders in app…").clicked() {
            actions.push(Action::PickRestoreDestInApp);
        }
    });
    ui.horizontal(|ui| {
        ui.label("Paths that already exist:");
        ui.radio_value(&mut r.existing, Existing::Refuse, "Stop and list them")
            .on_hover_text("Nothing is written while any path to restore exists");
        ui.radio_value(&mut r.existing, Existing::Skip, "Leave them as they are");
        ui.radio_value(&mut r.existing, Existing::Overwrite, "Replace them")
            .on_hover_text("Files only: a folder or symlink in the way is never replaced");
    });
    ui.checkbox(&mut r.rename_collisions, "Rename clashing names")
        .on_hover_text(
            "On FAT/exFAT, names that differ only in case, or hold characters FAT refuses, get a new name such as \"name (2).txt\" instead of stopping the restore",
        );
    ui.horizontal(|ui| {
        let n = r.selected.len();
        let button = ui.add_enabled(
            n > 0 && (r.original || !r.dest.trim().is_empty()),
            egui::Button::new("Restore ticked items"),
        );
        if button.clicked() {
            actions.push(Action::Restore);
        }
        ui.label(format!("{} ticked", human::count(n as u64, "item")));
    });
    app.actions.extend(actions);
}

fn snapshot_text(s: &Snapshot) -> String {
    format!(
        "{} ({} files, {})",
        human::time(s.started_at),
        s.files,
        human::bytes(s.bytes)
    )
}

/// A folder (expandable) or a file of the tree.
fn tree_row(r: &mut State, ui: &mut egui::Ui, i: usize, actions: &mut Vec<Action>) {
    let v = &r.listing.entries[i];
    if v.kind != EntryKind::Dir {
        let name = name_of(v);
        entry_row(r, ui, i, name, actions);
        return;
    }
    let path = v.path.clone();
    let root = r.listing.roots.contains(&i);
    let name = if root {
        shown_path(&path).into_owned()
    } else {
        name_of(v)
    };
    let id = ui.make_persistent_id(("restore-tree", &path));
    egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, root)
        .show_header(ui, |ui| {
            let mut on = r.selected.contains(&path);
            if ui.checkbox(&mut on, name).changed() {
                toggle(r, &path, on);
            }
        })
        .body(|ui| {
            for c in r.listing.children.get(&path).cloned().unwrap_or_default() {
                tree_row(r, ui, c, actions);
            }
        });
}

fn entry_row(r: &mut State, ui: &mut egui::Ui, i: usize, label: String, actions: &mut Vec<Action>) {
    let v = &r.listing.entries[i];
    let path = v.path.clone();
    let is_file = v.kind == EntryKind::File;
    let size = v.size;
    ui.horizontal(|ui| {
        let mut on = r.selected.contains(&path) || r.selected.iter().any(|s| path.starts_with(s));
        if ui.checkbox(&mut on, label).changed() {
            toggle(r, &path, on);
        }
        if is_file {
            ui.weak(human::bytes(size));
            if ui
                .small_button("Versions")
                .on_hover_text("Earlier versions and the disks holding each")
                .clicked()
            {
                actions.push(Action::RestoreDetails(path.clone()));
            }
        }
    });
}

fn toggle(r: &mut State, path: &Path, on: bool) {
    if on {
        r.selected.insert(path.to_path_buf());
    } else {
        // Unticking also unticks what lies under it and what holds it.
        r.selected
            .retain(|s| !s.starts_with(path) && !path.starts_with(s));
    }
}

/// The selected file's versions and where each is held.
fn details(r: &State, ui: &mut egui::Ui) {
    let Some(path) = &r.details_of else { return };
    ui.strong(format!("Versions of {}", shown_path(path)));
    if r.details.is_some() {
        ui.spinner();
        return;
    }
    for h in &r.held {
        let v = &h.version;
        let on = if h.disks.is_empty() {
            if v.kind == EntryKind::File && v.size > 0 {
                "no disk".to_string()
            } else {
                "nothing to copy".to_string()
            }
        } else {
            shown(&h.disks.join(", ")).into_owned()
        };
        ui.label(format!(
            "From {} (snapshots {}–{}), {}: on {}",
            human::time(h.from),
            v.first_snapshot,
            v.last_snapshot,
            human::bytes(v.size),
            on
        ));
    }
    ui.separator();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_matches_any_part_of_the_path_in_any_case() {
        let version = |path: &str| Version {
            id: 0,
            path: PathBuf::from(path),
            kind: EntryKind::File,
            size: 0,
            mtime_ns: 0,
            inode: 0,
            mode: 0o644,
            target: None,
            hash: None,
            first_snapshot: 1,
            last_snapshot: 1,
            attrs: Default::default(),
        };
        let entries = vec![
            version("/home/me/Photos"),
            version("/home/me/Photos/IMG_1.JPG"),
            version("/home/me/Letters/img.txt"),
        ];
        let lower = lower_paths(&entries);
        let l = Listing {
            entries,
            lower,
            ..Listing::default()
        };
        assert_eq!(l.search("img").collect::<Vec<_>>(), [1, 2]);
        assert_eq!(l.search("photos").collect::<Vec<_>>(), [0, 1]);
        assert_eq!(l.search("letters/img").collect::<Vec<_>>(), [2]);
        assert_eq!(l.search("nothing").count(), 0);
    }

    #[test]
    fn a_refused_restore_names_the_window_choice_that_goes_on() {
        let m = restore_failed_message(&coffer_core::Error::Restore(restore::Error::Collisions {
            names: vec![(PathBuf::from("/out/A.txt"), "same name as a.txt".into())],
        }));
        assert!(!m.ok);
        assert!(m.details[0].contains("1 name would clash"), "{m:?}");
        assert!(m.details[0].contains("\"Rename clashing names\""), "{m:?}");
        assert_eq!(m.details[1], "/out/A.txt: same name as a.txt");
        let m = restore_failed_message(&coffer_core::Error::Restore(restore::Error::Conflicts {
            paths: vec![PathBuf::from("/out/a"), PathBuf::from("/out/b")],
        }));
        assert!(
            m.details[0].contains("2 paths to restore already exist"),
            "{m:?}"
        );
        assert!(!m.details[0].contains("--"), "no command-line flags: {m:?}");
    }

    #[test]
    fn an_incomplete_restore_says_which_disk_to_plug_in_next() {
        let report = restore::Report {
            dest: PathBuf::from("/tmp/out"),
            files: 2,
            missing_files: 3,
            missing_bytes: 3000,
            plug_next: vec![restore::DiskNeed {
                disk_id: uuid::Uuid::nil(),
                label: "Red".into(),
                files: 3,
                bytes: 3000,
            }],
            skipped_existing: vec![PathBuf::from("/tmp/out/a.txt")],
            ..restore::Report::default()
        };
        let m = restore_message(Outcome::Completed {
            value: report,
            warnings: Vec::new(),
        });
        assert!(!m.ok);
        assert!(m.title.starts_with("Restored 2 files"), "{m:?}");
        assert!(
            m.details
                .iter()
                .any(|d| d.starts_with("Plug in \"Red\" next: 3 files")),
            "{m:?}"
        );
        assert!(
            m.details
                .iter()
                .any(|d| d.starts_with("Left 1 existing path untouched")),
            "{m:?}"
        );
    }
}
