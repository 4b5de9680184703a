//! The Sources view: the folders to back up, with their exclusions, copies
//! wanted and priority; adding one with the native folder picker or, when
//! there is none, the in-app one.

use coffer_core::config::Source;

use super::app::{Action, CofferApp};
use super::{shown, shown_path};

pub fn show(app: &mut CofferApp, ui: &mut egui::Ui) {
    let profile = app.config.profile.clone();
    ui.label(format!(
        "Folders to back up must lie under {} (the storage basepath). Each file wants {} copies unless its folder says otherwise.",
        shown_path(&profile.basepath),
        profile.copies
    ));
    ui.horizontal(|ui| {
        if ui.button("Add folder…").clicked() {
            app.actions.push(Action::PickFolder);
        }
        if ui.button("Browse in app…").clicked() {
            app.actions.push(Action::PickFolderInApp);
        }
    });
    if let Some(e) = &app.source_error {
        ui.colored_label(ui.visuals().error_fg_color, shown(e));
    }
    ui.separator();
    if profile.sources.is_empty() {
        ui.label("No folders yet.");
    }
    for src in &profile.sources {
        source_row(app, ui, src, profile.copies);
        ui.separator();
    }
}

fn source_row(app: &mut CofferApp, ui: &mut egui::Ui, src: &Source, default_copies: u32) {
    let name = shown_path(&src.path);
    ui.horizontal(|ui| {
        ui.strong(name.as_ref());
        if ui.button(format!("Remove {name}")).clicked() {
            app.actions.push(Action::RemoveSource(src.path.clone()));
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
            app.actions.push(Action::UpdateSource(Source {
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
            app.actions.push(Action::UpdateSource(Source {
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
            app.actions.push(Action::UpdateSource(Source {
                excludes,
                ..src.clone()
            }));
        }
    });
}

/// The in-app folder picker, when open.
pub fn picker(app: &mut CofferApp, ctx: &egui::Context) {
    let Some(dialog) = &mut app.picker else {
        return;
    };
    dialog.show(ctx);
    match dialog.state() {
        egui_file::State::Selected => {
            if let Some(p) = dialog.path().map(std::path::Path::to_path_buf) {
                let a = app.picked(p);
                app.actions.push(a);
            }
            app.picker = None;
        }
        egui_file::State::Cancelled | egui_file::State::Closed => app.picker = None,
        egui_file::State::Open => {}
    }
}
