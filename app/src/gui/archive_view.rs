//! The Archives view: write a full or incremental tar.gz archive of the
//! sources into a folder, list the archives there (as `coffer archive ls`)
//! and verify one. Listing, writing and verifying run on `core::task`
//! threads; writing and verifying show the shared progress panel.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use coffer_core::archive::{self, Mode, Options};
use coffer_core::task::Outcome;
use coffer_core::{Task, human};

use super::app::{Action, CofferApp, Kind, Message};
use super::jobs::{cancelled_message, failed_message};

/// One archive found in the folder.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub text: String,
    pub files: Vec<PathBuf>,
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
}

impl State {
    pub fn busy(&self) -> bool {
        self.listing.is_some()
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
        let size: u64 = f
            .files
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
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
            text,
            files: f.files.clone(),
        });
    }
    Ok(rows)
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
                Outcome::Cancelled => cancelled_message("Archive job cancelled"),
                Outcome::Failed(e) => failed_message("Archive job failed", &e),
            });
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
        if self.archiving.is_some() {
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
                        .map(|f| format!("Wrote {}", f.display()))
                        .collect(),
                })
            },
        ));
    }

    pub(super) fn start_archive_verify(&mut self, name: String) {
        if self.archiving.is_some() {
            return;
        }
        let Some(row) = self.archives.rows.iter().find(|r| r.name == name) else {
            return;
        };
        let files = row.files.clone();
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
                        r.path.display(),
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
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    ui.separator();
    if a.rows.is_empty() {
        ui.label("No archives in this folder.");
    }
    for r in &a.rows {
        ui.horizontal(|ui| {
            let on = a.selected.as_deref() == Some(r.name.as_str());
            if ui.selectable_label(on, &r.name).clicked() {
                a.selected = Some(r.name.clone());
            }
            ui.label(&r.text);
        });
    }
    if let Some(name) = a.selected.clone()
        && ui.button(format!("Verify {name}")).clicked()
    {
        actions.push(Action::VerifyArchive(name));
    }
    app.actions.extend(actions);
}
