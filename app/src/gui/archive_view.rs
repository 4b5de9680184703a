//! The Archives view: write a full or incremental tar.gz archive of the
//! sources into a folder, list the archives there (as `coffer archive ls`),
//! verify one, and restore from one (as `coffer archive restore`): the
//! archive chosen is the point restored, its chain of bases is core's to
//! find; paths ticked in its manifest, or everything, go into a destination.
//! Listing, reading a manifest, writing, verifying and restoring run on
//! `core::task` threads; the last three show the shared progress panel.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use coffer_core::archive::{self, EntryKind, Mode, Options, RestoreOptions, RestoreReport};
use coffer_core::task::Outcome;
use coffer_core::{Task, human};

use super::app::{Action, CofferApp, Kind, Message};
use super::jobs::{cancelled_message, failed_message};
use super::{shown, shown_path};

/// One archive found in the folder.
#[derive(Clone, Debug)]
pub struct Row {
    /// `PREFIX-N`, as the list shows it.
    pub name: String,
    pub prefix: String,
    pub sequence: u64,
    pub text: String,
    pub files: Vec<PathBuf>,
}

/// A path of the chosen archive's tree (or one of its dumps), as listed in
/// its manifest: `/`-separated and relative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub path: String,
    pub dir: bool,
    pub size: u64,
}

#[derive(Default)]
pub struct State {
    pub dir: String,
    pub prefix: String,
    pub rows: Vec<Row>,
    pub listing: Option<Task<Vec<Row>>>,
    pub list_error: Option<String>,
    pub stale: bool,
    pub selected: Option<String>,
    /// The chosen archive's tree, read from its manifest.
    pub items: Vec<Item>,
    pub reading: Option<Task<Vec<Item>>>,
    pub read_error: Option<String>,
    pub filter: String,
    /// Paths ticked to restore; none means everything.
    pub ticked: BTreeSet<String>,
    pub restore_dest: String,
    pub replace: bool,
    /// What the running archive job is, for its cancelled or failed message.
    pub job: String,
}

impl State {
    pub fn busy(&self) -> bool {
        self.listing.is_some() || self.reading.is_some()
    }

    /// True when `path` is ticked, itself or through a folder holding it.
    pub fn is_ticked(&self, path: &str) -> bool {
        self.ticked.iter().any(|t| {
            path == t
                || path
                    .strip_prefix(t.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// Ticks or unticks `path`; unticking also unticks what lies under it
    /// and the folders holding it (as the Restore view does).
    pub fn tick(&mut self, path: &str, on: bool) {
        if on {
            self.ticked.insert(path.to_string());
        } else {
            let under =
                |a: &str, b: &str| a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
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
}

/// The archives in `dir`, described as `coffer archive ls` does.
fn list(dir: &Path, prefix: Option<&str>) -> coffer_core::Result<Vec<Row>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let found = archive::find(dir, prefix)?;
    let mut rows = Vec::new();
    for f in &found {
        let name = format!("{}-{}", f.prefix, f.sequence);
        let size = f.size_on_disk();
        let text = match archive::read_manifest(f.first()) {
            Ok(m) => {
                let mut t = format!(
                    "{}, {}: {} files ({}); {}",
                    match m.base_sequence {
                        Some(b) => format!("incremental against {b}"),
                        None => "full".into(),
                    },
                    human::time(m.created_at),
                    m.file_count(),
                    human::bytes(m.total_bytes()),
                    human::bytes(size)
                );
                if m.volumes > 1 {
                    let _ = write!(t, ", {} volumes ({} present)", m.volumes, f.files.len());
                }
                t
            }
            Err(e) => format!("unreadable: {e}"),
        };
        rows.push(Row {
            name,
            prefix: f.prefix.clone(),
            sequence: f.sequence,
            text,
            files: f.files.clone(),
        });
    }
    Ok(rows)
}

/// The tree and dumps an archive's manifest lists, sorted by path.
fn items(first: &Path) -> coffer_core::Result<Vec<Item>> {
    let m = archive::read_manifest(first)?;
    let mut out: Vec<Item> = m
        .entries
        .iter()
        .map(|e| Item {
            path: e.path.clone(),
            dir: e.kind == EntryKind::Dir,
            size: e.size,
        })
        .chain(m.dumps.iter().map(|d| Item {
            path: d.member_path(),
            dir: false,
            size: d.size,
        }))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The message of a restore from archive `name` that went through.
pub fn restored_message(name: &str, dest: &Path, r: &RestoreReport) -> Message {
    let mut details: Vec<String> = r
        .read
        .iter()
        .map(|p| format!("Read {}", shown_path(p)))
        .collect();
    for d in &r.dumps {
        let mut line = format!("Dump \"{}\" is at {}", d.name, shown_path(&d.path));
        if let Some(l) = &d.load_command {
            let _ = write!(line, "; load it back with: {l} < {}", shown_path(&d.path));
        }
        details.push(line);
    }
    Message {
        ok: true,
        title: format!(
            "Restored {name} into {}: {} ({}), {}, {}",
            shown_path(dest),
            human::count(r.files, "file"),
            human::bytes(r.bytes),
            human::count(r.dirs, "folder"),
            human::count(r.symlinks, "symlink")
        ),
        details,
    }
}

/// The message of an archive job that failed. A restore refused because
/// files exist in the destination says what the window offers instead of
/// the command line's `--overwrite`.
pub fn archive_failed_message(title: &str, e: &coffer_core::Error) -> Message {
    let coffer_core::Error::Archive(archive::Error::Exists { paths }) = e else {
        return failed_message(title, e);
    };
    let mut details: Vec<String> = vec![format!(
        "Nothing was restored: {} of the paths to restore already exist in the destination. Tick \"Replace existing files\" to replace them, or choose another folder.",
        paths.len()
    )];
    details.extend(paths.iter().map(|p| format!("Exists: {}", shown_path(p))));
    Message {
        ok: false,
        title: title.into(),
        details,
    }
}

impl CofferApp {
    pub(super) fn poll_archives(&mut self) {
        let a = &mut self.archives;
        if let Some(out) = a.listing.as_mut().and_then(Task::try_finish) {
            a.listing = None;
            match out {
                Outcome::Completed { value, .. } => {
                    a.list_error = None;
                    a.rows = value;
                }
                Outcome::Failed(e) => a.list_error = Some(format!("{e:#}")),
                Outcome::Cancelled => {}
            }
        }
        if let Some(out) = self.archiving.as_mut().and_then(Task::try_finish) {
            self.archiving = None;
            self.live = None;
            self.archives.stale = true;
            self.message = Some(match out {
                Outcome::Completed {
                    mut value,
                    warnings,
                } => {
                    value.ok &= warnings.is_empty();
                    value
                        .details
                        .extend(warnings.iter().map(ToString::to_string));
                    value
                }
                Outcome::Cancelled => {
                    cancelled_message(&format!("{} cancelled", self.archives.job))
                }
                Outcome::Failed(e) => {
                    archive_failed_message(&format!("{} failed", self.archives.job), &e)
                }
            });
        }
        let a = &mut self.archives;
        if let Some(out) = a.reading.as_mut().and_then(Task::try_finish) {
            a.reading = None;
            match out {
                Outcome::Completed { value, .. } => {
                    a.read_error = None;
                    a.items = value;
                }
                Outcome::Failed(e) => a.read_error = Some(format!("{e:#}")),
                Outcome::Cancelled => {}
            }
        }
        let a = &mut self.archives;
        if self.tab == super::Tab::Archives && a.stale && a.listing.is_none() {
            a.stale = false;
            if let Some(dir) = a.dir() {
                let prefix = a.prefix();
                a.listing = Some(coffer_core::task::spawn(
                    "archive-ls",
                    self.waker.clone(),
                    move |_| list(&dir, prefix.as_deref()),
                ));
            }
        }
    }

    pub(super) fn start_archive(&mut self, full: bool) {
        if self.running(Kind::Archive) {
            return;
        }
        let Some(dir) = self.archives.dir() else {
            return self.fail(
                "Choose the archive folder",
                format!(
                    "\"{}\" is not a full folder path.",
                    self.archives.dir.trim()
                ),
            );
        };
        let opts = Options {
            prefix: self.archives.prefix(),
            volume_size: None,
        };
        let mode = if full {
            Mode::Full
        } else {
            Mode::Incremental { since: None }
        };
        let profile = self.config.profile.clone();
        let what = if full { "full" } else { "incremental" };
        self.archives.job = "Archive job".into();
        self.begin_live(
            Kind::Archive,
            format!("Writing a {what} archive into {}", dir.display()),
        );
        self.archiving = Some(coffer_core::task::spawn(
            "archive",
            self.waker.clone(),
            move |p| {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    coffer_core::Error::Panic(format!("cannot create {}: {e}", dir.display()))
                })?;
                let r = archive::create(&profile, &dir, mode, &opts, p)?;
                Ok(Message {
                    ok: true,
                    title: format!(
                        "Archive {} written: {} entries, {} new, {} changed, {} deleted; {} compressed",
                        r.sequence,
                        r.entries,
                        r.new_files,
                        r.changed_files,
                        r.deleted,
                        human::bytes(r.compressed_bytes)
                    ),
                    details: r
                        .files
                        .iter()
                        .map(|f| format!("Wrote {}", shown_path(f)))
                        .collect(),
                })
            },
        ));
    }

    pub(super) fn start_archive_verify(&mut self, name: String) {
        if self.running(Kind::Archive) {
            return;
        }
        let Some(row) = self.archives.rows.iter().find(|r| r.name == name) else {
            return;
        };
        let files = row.files.clone();
        self.archives.job = "Archive job".into();
        self.begin_live(Kind::Archive, format!("Verifying archive {name}"));
        self.archiving = Some(coffer_core::task::spawn(
            "archive-verify",
            self.waker.clone(),
            move |p| {
                let mut details = Vec::new();
                for f in &files {
                    let r = archive::verify(f, p)?;
                    details.push(format!(
                        "{}: good ({} members, {} of content)",
                        shown_path(&r.path),
                        r.members,
                        human::bytes(r.bytes)
                    ));
                }
                Ok(Message {
                    ok: true,
                    title: format!("Archive {name} is good"),
                    details,
                })
            },
        ));
    }

    /// Chooses the archive to restore from and reads its manifest.
    pub(super) fn select_archive(&mut self, name: String) {
        let a = &mut self.archives;
        if a.selected.as_ref() == Some(&name) && (a.reading.is_some() || !a.items.is_empty()) {
            return;
        }
        let Some(row) = a.rows.iter().find(|r| r.name == name) else {
            return;
        };
        let first = row.files[0].clone();
        a.selected = Some(name);
        a.ticked.clear();
        a.items.clear();
        a.read_error = None;
        a.reading = Some(coffer_core::task::spawn(
            "archive-manifest",
            self.waker.clone(),
            move |_| items(&first),
        ));
    }

    /// Restores the ticked paths (everything when none is ticked) as of the
    /// chosen archive into the destination; core reads the chain it needs.
    pub(super) fn start_archive_restore(&mut self) {
        if self.running(Kind::Archive) {
            return;
        }
        let a = &self.archives;
        let Some(row) = a
            .selected
            .as_ref()
            .and_then(|n| a.rows.iter().find(|r| &r.name == n))
        else {
            return self.fail(
                "Choose an archive",
                "Click an archive in the list to restore from it.".into(),
            );
        };
        let dest = PathBuf::from(a.restore_dest.trim());
        if !dest.is_absolute() {
            return self.fail(
                "Choose where to restore",
                format!("\"{}\" is not a full folder path.", a.restore_dest.trim()),
            );
        }
        // The folder the archive was listed from, whatever the folder
        // field says now.
        let Some(dir) = row.files[0].parent().map(Path::to_path_buf) else {
            return;
        };
        let name = row.name.clone();
        let opts = RestoreOptions {
            at: row.sequence,
            prefix: Some(row.prefix.clone()),
            paths: a.ticked.iter().cloned().collect(),
            overwrite: a.replace,
            keep_special_bits: false,
        };
        self.archives.job = format!("Restore from {name}");
        self.begin_live(
            Kind::Archive,
            format!("Restoring {name} into {}", dest.display()),
        );
        self.archiving = Some(coffer_core::task::spawn(
            "archive-restore",
            self.waker.clone(),
            move |p| {
                let r = archive::restore(&dir, &dest, &opts, p)?;
                Ok(restored_message(&name, &dest, &r))
            },
        ));
    }
}

pub fn show(app: &mut CofferApp, ui: &mut egui::Ui) {
    let a = &mut app.archives;
    let mut actions = Vec::new();
    ui.label("Archives are tar.gz files of the sources, readable without Coffer.");
    ui.horizontal(|ui| {
        let l = ui.label("Archive folder");
        if ui
            .add(egui::TextEdit::singleline(&mut a.dir).desired_width(400.0))
            .labelled_by(l.id)
            .lost_focus()
        {
            a.stale = true;
        }
        if ui.button("Choose folder…").clicked() {
            actions.push(Action::PickArchiveDir);
        }
        if ui.button("Browse folders in app…").clicked() {
            actions.push(Action::PickArchiveDirInApp);
        }
    });
    ui.horizontal(|ui| {
        let l = ui.label("Name prefix");
        ui.add(egui::TextEdit::singleline(&mut a.prefix).desired_width(120.0))
            .labelled_by(l.id)
            .on_hover_text("Empty: the profile's name");
        if ui.button("Refresh list").clicked() {
            a.stale = true;
        }
    });
    ui.horizontal(|ui| {
        let ok = a.dir().is_some();
        if ui
            .add_enabled(ok, egui::Button::new("Full archive"))
            .clicked()
        {
            actions.push(Action::Archive { full: true });
        }
        if ui
            .add_enabled(ok, egui::Button::new("Incremental"))
            .clicked()
        {
            actions.push(Action::Archive { full: false });
        }
        if a.listing.is_some() {
            ui.spinner();
        }
    });
    if let Some(e) = &a.list_error {
        ui.colored_label(ui.visuals().error_fg_color, shown(e));
    }
    ui.separator();
    if a.rows.is_empty() {
        ui.label("No archives in this folder.");
    }
    for r in &a.rows {
        ui.horizontal(|ui| {
            let on = a.selected.as_deref() == Some(r.name.as_str());
            // Names come from file names, the text from the manifest.
            if ui.selectable_label(on, shown(&r.name)).clicked() {
                actions.push(Action::SelectArchive(r.name.clone()));
            }
            ui.label(shown(&r.text));
        });
    }
    if let Some(name) = a.selected.clone()
        && a.rows.iter().any(|r| r.name == name)
    {
        if ui.button(format!("Verify {}", shown(&name))).clicked() {
            actions.push(Action::VerifyArchive(name.clone()));
        }
        ui.separator();
        restore_section(a, ui, &name, &mut actions);
    }
    app.actions.extend(actions);
}

/// Most rows of the archive's tree drawn at once; the filter finds the rest.
const SHOWN: usize = 500;

/// Restoring from the chosen archive: tick paths, choose the destination.
fn restore_section(a: &mut State, ui: &mut egui::Ui, name: &str, actions: &mut Vec<Action>) {
    ui.strong(format!("Restore as of {}", shown(name)));
    ui.label(
        "The files as they were when this archive was written; for an \
         incremental, Coffer also reads the archives it builds on. Tick \
         files or folders, or none for everything.",
    );
    if a.reading.is_some() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading the archive's list of files…");
        });
    }
    if let Some(e) = &a.read_error {
        ui.colored_label(ui.visuals().error_fg_color, shown(e));
    }
    if !a.items.is_empty() {
        ui.horizontal(|ui| {
            let l = ui.label("Filter");
            ui.text_edit_singleline(&mut a.filter).labelled_by(l.id);
        });
        let query = a.filter.trim().to_lowercase();
        let mut drawn = 0;
        let mut toggles = Vec::new();
        egui::ScrollArea::vertical()
            .id_salt("archive-items")
            .max_height(300.0)
            .show(ui, |ui| {
                for item in &a.items {
                    if !query.is_empty() && !item.path.to_lowercase().contains(&query) {
                        continue;
                    }
                    drawn += 1;
                    if drawn > SHOWN {
                        ui.label("…more; narrow the filter");
                        break;
                    }
                    ui.horizontal(|ui| {
                        let mut on = a.is_ticked(&item.path);
                        // Member paths are the manifest's, any text at all.
                        let label = if item.dir {
                            format!("{}/", shown(&item.path))
                        } else {
                            shown(&item.path).into_owned()
                        };
                        if ui.checkbox(&mut on, label).changed() {
                            toggles.push((item.path.clone(), on));
                        }
                        if !item.dir {
                            ui.weak(human::bytes(item.size));
                        }
                    });
                }
                if drawn == 0 {
                    ui.label("No match in this archive.");
                }
            });
        for (path, on) in toggles {
            a.tick(&path, on);
        }
    }
    ui.horizontal(|ui| {
        match a.ticked.len() {
            0 => ui.label("Nothing ticked: everything is restored"),
            n => ui.label(format!("{} ticked", human::count(n as u64, "item"))),
        };
        if !a.ticked.is_empty() && ui.button("Untick all").clicked() {
            a.ticked.clear();
        }
    });
    ui.horizontal(|ui| {
        let l = ui.label("Restore into");
        ui.add(egui::TextEdit::singleline(&mut a.restore_dest).desired_width(400.0))
            .labelled_by(l.id);
        if ui.button("Choose destination…").clicked() {
            actions.push(Action::PickArchiveRestoreDest);
        }
        if ui.button("Browse destinations in app…").clicked() {
            actions.push(Action::PickArchiveRestoreDestInApp);
        }
    });
    ui.checkbox(&mut a.replace, "Replace existing files");
    let ready = !a.restore_dest.trim().is_empty() && a.reading.is_none();
    if ui
        .add_enabled(
            ready,
            egui::Button::new(format!("Restore from {}", shown(name))),
        )
        .clicked()
    {
        actions.push(Action::RestoreArchive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticking_a_folder_ticks_what_it_holds_and_unticking_inside_unticks_it() {
        let mut s = State::default();
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

    #[test]
    fn a_refused_restore_names_the_existing_paths_and_the_way_out() {
        let e = coffer_core::Error::Archive(archive::Error::Exists {
            paths: vec![PathBuf::from("/out/docs/a.txt")],
        });
        let m = archive_failed_message("Restore from home-1 failed", &e);
        assert!(!m.ok);
        assert_eq!(m.title, "Restore from home-1 failed");
        assert!(m.details[0].starts_with("Nothing was restored"), "{m:?}");
        assert!(m.details[0].contains("Replace existing files"), "{m:?}");
        assert!(!m.details[0].contains("--overwrite"), "{m:?}");
        assert_eq!(m.details[1], "Exists: /out/docs/a.txt");
    }

    #[test]
    fn other_archive_errors_keep_the_path_and_cause() {
        let e = coffer_core::Error::Archive(archive::Error::Unsafe {
            path: PathBuf::from("/nas/home-1.tar.gz"),
            member: "../evil".into(),
            reason: "it leaves the destination".into(),
        });
        let m = archive_failed_message("Restore from home-1 failed", &e);
        assert_eq!(
            m.details,
            vec![
                "/nas/home-1.tar.gz holds an unsafe member `../evil`: it leaves the destination; nothing was extracted"
            ]
        );
    }

    #[test]
    fn a_restore_message_counts_and_says_how_to_load_dumps() {
        let r = RestoreReport {
            sequence: 2,
            files: 3,
            bytes: 2000,
            dirs: 1,
            read: vec![PathBuf::from("/nas/home-1.tar.gz")],
            dumps: vec![archive::RestoredDump {
                name: "db".into(),
                path: PathBuf::from("/out/dumps/db"),
                load_command: Some("psql".into()),
            }],
            ..RestoreReport::default()
        };
        let m = restored_message("home-2", Path::new("/out"), &r);
        assert!(m.ok);
        assert_eq!(
            m.title,
            "Restored home-2 into /out: 3 files (2.0 kB), 1 folder, 0 symlinks"
        );
        assert_eq!(
            m.details,
            vec![
                "Read /nas/home-1.tar.gz",
                "Dump \"db\" is at /out/dumps/db; load it back with: psql < /out/dumps/db"
            ]
        );
    }
}
