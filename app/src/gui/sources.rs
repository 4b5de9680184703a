//! The Sources tab: the folders to back up, with their exclusions, copies
//! wanted and priority; a folder is added through the folder chooser.
//!
//! Editing the config is the one piece of work done on the UI thread: the
//! file is small, and it is replaced atomically.

use std::path::PathBuf;

use coffer_core::config::Source;

use super::action::{Action as AppAction, Actions};
use super::ctx::Ctx;
use super::picker::Purpose;
use super::{shown, shown_path};

#[derive(Clone, Debug)]
pub enum Action {
    Add(PathBuf),
    Remove(PathBuf),
    Update(Source),
    /// The copies each file wants unless its folder says otherwise.
    Copies(u32),
}

/// The Sources tab's state.
#[derive(Default)]
pub struct SourcesTab {
    /// Why the last change was refused (a folder outside the basepath, a
    /// bad exclusion rule).
    pub error: Option<String>,
}

impl SourcesTab {
    pub fn apply(&mut self, action: Action, cx: &mut Ctx) {
        match action {
            Action::Add(path) => self.edit(cx, |p| {
                p.add_source(Source {
                    path,
                    excludes: Vec::new(),
                    copies: None,
                    priority: 0,
                    outside_basepath: false,
                })
                .map(|_| ())
            }),
            Action::Remove(path) => self.edit(cx, |p| p.remove_source(&path).map(|_| ())),
            Action::Copies(n) => self.edit(cx, |p| {
                p.copies = n.clamp(1, 9);
                Ok(())
            }),
            Action::Update(src) => self.edit(cx, |p| {
                for rule in &src.excludes {
                    coffer_core::config::check_rule(rule)?;
                }
                if let Some(s) = p.sources.iter_mut().find(|s| s.path == src.path) {
                    *s = src;
                }
                Ok(())
            }),
        }
    }

    /// Changes the profile and saves it; nothing changes when either fails.
    fn edit(
        &mut self,
        cx: &mut Ctx,
        edit: impl FnOnce(&mut coffer_core::Profile) -> Result<(), coffer_core::config::Error>,
    ) {
        let mut cfg = cx.shared.config.clone();
        match edit(&mut cfg.profile).and_then(|()| cfg.save(&cx.shared.paths)) {
            Ok(()) => {
                cx.shared.config = cfg;
                self.error = None;
                cx.refresh();
            }
            Err(e) => self.error = Some(super::messages::error_text(&e)),
        }
    }

    pub fn show(&self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        let profile = &cx.config.profile;
        ui.label(format!(
            "Folders to back up must lie under {}. Each file is kept on {} disks unless its folder says otherwise.",
            shown_path(&profile.basepath),
            profile.copies
        ));
        if ui.button("Add folder…").clicked() {
            out.push(AppAction::Pick(Purpose::Source));
        }
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, shown(e));
        }
        ui.separator();
        if profile.sources.is_empty() {
            ui.label("No folders yet.");
        }
        for src in &profile.sources {
            source_row(ui, src, profile.copies, out);
            ui.separator();
        }
    }
}

fn source_row(ui: &mut egui::Ui, src: &Source, default_copies: u32, out: &mut Actions) {
    let name = shown_path(&src.path);
    ui.horizontal(|ui| {
        ui.strong(name.as_ref());
        if ui.button(format!("Remove {name}")).clicked() {
            out.push(Action::Remove(src.path.clone()));
        }
    });
    ui.horizontal(|ui| {
        let mut copies = src.copies.unwrap_or(default_copies);
        let l = ui.label("Copies wanted");
        if ui
            .add(egui::DragValue::new(&mut copies).range(1..=9))
            .labelled_by(l.id)
            .changed()
        {
            out.push(Action::Update(Source {
                copies: Some(copies),
                ..src.clone()
            }));
        }
        let mut priority = src.priority;
        let l = ui.label("Priority");
        if ui
            .add(egui::DragValue::new(&mut priority).range(-100..=100))
            .labelled_by(l.id)
            .on_hover_text("Higher priority folders are copied first when a disk is short of room")
            .changed()
        {
            out.push(Action::Update(Source {
                priority,
                ..src.clone()
            }));
        }
    });
    ui.horizontal(|ui| {
        // The text being typed lives in egui's memory until it is saved.
        let id = ui.scope_id().with(("excludes", &src.path));
        let mut text = ui.data_mut(|d| {
            d.get_temp_mut_or_insert_with(id, || src.excludes.join(", "))
                .clone()
        });
        let l = ui.label("Exclude (patterns, comma separated)");
        let edit = ui.text_edit_singleline(&mut text).labelled_by(l.id);
        if edit.changed() {
            ui.data_mut(|d| d.insert_temp(id, text.clone()));
        }
        if ui.button("Save exclusions").clicked() {
            let excludes = text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            out.push(Action::Update(Source {
                excludes,
                ..src.clone()
            }));
        }
    });
}
