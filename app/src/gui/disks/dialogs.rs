//! The Disks tab's dialogs: "Use as backup disk…" (a name and an optional
//! quota) and "Before this sync" (what a plan would copy and delete,
//! before it does). Both are modal: Enter is the main button, Esc cancels.

use super::{Action, DisksTab};
use crate::gui::action::Actions;
use crate::gui::dialog::{self, Key};
use crate::gui::messages;
use crate::gui::{shown, shown_path};

/// "Use as backup disk…": a name and an optional quota. The fields are the
/// form's own state, edited as typed.
pub fn init_dialog(tab: &mut DisksTab, ctx: &egui::Context, out: &mut Actions) {
    let busy = tab.initialising.is_some();
    let Some(form) = &mut tab.init_form else {
        return;
    };
    let (clicked, key) = dialog::modal(ctx, "init", "Use as backup disk", |ui| {
        ui.label(format!(
            "Coffer will keep its backups in a \"coffer\" folder on {}. Other files there are left alone.",
            shown_path(&form.root)
        ));
        ui.horizontal(|ui| {
            let l = ui.label("Disk name");
            ui.text_edit_singleline(&mut form.label).labelled_by(l.id);
        });
        ui.horizontal(|ui| {
            let l = ui.label("Quota (optional, e.g. 200 GB)");
            ui.text_edit_singleline(&mut form.quota).labelled_by(l.id);
        });
        if let Some(e) = &form.error {
            ui.colored_label(ui.visuals().error_fg_color, shown(e));
        }
        let mut clicked = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!busy, egui::Button::new("Use this disk"))
                .clicked()
            {
                clicked = Some(true);
            }
            if ui.button("Close").clicked() {
                clicked = Some(false);
            }
        });
        clicked
    });
    match (clicked, key) {
        (Some(true), _) | (None, Key::Enter) if !busy => out.push(Action::Init {
            root: form.root.clone(),
            label: form.label.clone(),
            quota: form.quota.clone(),
        }),
        (Some(false), _) | (None, Key::Cancel) => out.push(Action::CloseInit),
        _ => {}
    }
}

/// Shows a plan that deletes data the user may not expect before it runs.
pub fn plan_dialog(tab: &DisksTab, ctx: &egui::Context, out: &mut Actions) {
    let Some(reports) = tab.asking() else { return };
    let (clicked, key) = dialog::modal(ctx, "plan", "Before this sync", |ui| {
        // Each paragraph names its disk by label.
        for p in messages::plan_question(reports) {
            ui.label(shown(&p));
        }
        let mut clicked = None;
        ui.horizontal(|ui| {
            if ui.button("Sync anyway").clicked() {
                clicked = Some(true);
            }
            if ui.button("Don't sync").clicked() {
                clicked = Some(false);
            }
        });
        clicked
    });
    match (clicked, key) {
        (Some(true), _) | (None, Key::Enter) => out.push(Action::ConfirmSync),
        (Some(false), _) | (None, Key::Cancel) => out.push(Action::DismissPlan),
        _ => {}
    }
}
