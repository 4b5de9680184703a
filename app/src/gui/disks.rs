//! The Disks view: a card per known disk, the folders that could become
//! disks, and the "Use as backup disk…" form.

use coffer_core::human;

use super::app::{Action, CofferApp, Kind};
use super::model::DiskCard;
use super::{shown, shown_path};

pub fn show(app: &mut CofferApp, ui: &mut egui::Ui) {
    if app.model.cards.is_empty() {
        ui.label("No backup disks yet. Plug in a USB disk and choose \"Use as backup disk…\".");
    }
    let cards = app.model.cards.clone();
    for card in &cards {
        card_ui(app, ui, card);
        ui.add_space(6.0);
    }
    let set_id = app.config.profile.set_id;
    for v in &app.mounts.disks {
        match &v.identity {
            Err(e) => {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "Unreadable disk at {}: {}",
                        shown_path(&v.root),
                        shown(&e.to_string())
                    ),
                );
            }
            Ok(id) if !id.sets.contains(&set_id) => {
                ui.label(format!(
                    "\"{}\" at {} belongs to another backup set",
                    shown(&id.label),
                    shown_path(&v.root)
                ));
            }
            Ok(_) => {}
        }
    }
    if !app.mounts.unknown.is_empty() {
        ui.separator();
        ui.heading("Other mounted folders");
    }
    for root in app.mounts.unknown.clone() {
        ui.horizontal(|ui| {
            ui.label(shown_path(&root));
            if ui.button("Use as backup disk…").clicked() {
                app.actions.push(Action::OfferInit(root.clone()));
            }
        });
    }
}

fn card_ui(app: &mut CofferApp, ui: &mut egui::Ui, card: &DiskCard) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            let dot = if card.root.is_some() {
                egui::Color32::from_rgb(60, 170, 90)
            } else {
                egui::Color32::GRAY
            };
            let state = if card.root.is_some() {
                "connected"
            } else {
                "not connected"
            };
            super::swatch(ui, dot, state);
            ui.heading(shown(&card.label));
            // "Connected at" a mount path, which any disk's name can be.
            ui.label(shown(&card.presence));
        });
        space_bar(ui, card);
        ui.label(format!(
            "{} objects missing from it · last sync {} · last verify {}",
            card.missing, card.last_sync, card.last_verify
        ));
        if card.only_copy.files > 0 {
            ui.label(format!(
                "If this disk were lost: {} in {} files would have no copy left",
                human::bytes(card.only_copy.bytes),
                card.only_copy.files
            ));
        } else {
            ui.label("If this disk were lost: nothing would be left without a copy");
        }
        ui.horizontal(|ui| {
            let connected = card.root.clone();
            let busy = app.running(Kind::Sync) || app.running(Kind::Verify);
            let sync = ui.add_enabled(
                connected.is_some() && !busy,
                egui::Button::new(format!("Sync {}", shown(&card.label))),
            );
            if sync.clicked()
                && let Some(r) = &connected
            {
                app.actions.push(Action::Sync(r.clone()));
            }
            let verify = ui.add_enabled(
                connected.is_some() && !busy,
                egui::Button::new(format!("Verify {}", shown(&card.label))),
            );
            if verify.clicked()
                && let Some(r) = &connected
            {
                app.actions.push(Action::Verify(r.clone()));
            }
            let mut auto = card.auto_sync;
            if ui
                .checkbox(
                    &mut auto,
                    format!("Sync {} when plugged in", shown(&card.label)),
                )
                .changed()
            {
                app.actions.push(Action::AutoSync(card.id, auto));
            }
        });
    });
}

/// Current data, old versions, other files and free room, as one bar.
fn space_bar(ui: &mut egui::Ui, card: &DiskCard) {
    let b = card.bar;
    let colors = [
        egui::Color32::from_rgb(52, 120, 200),
        egui::Color32::from_rgb(140, 110, 200),
        egui::Color32::from_rgb(150, 150, 150),
        ui.visuals().extreme_bg_color,
    ];
    let names = ["current data", "old versions", "other files", "free"];
    let values = [b.current, b.old, b.other, b.free];
    let summary = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{} {n}", human::bytes(v)))
        .collect::<Vec<_>>()
        .join(", ");
    let width = ui.available_width().min(600.0);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 14.0), egui::Sense::hover());
    response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ProgressIndicator, true, &summary));
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 3.0, colors[3]);
    let mut x = rect.left();
    for (i, f) in b.fractions().iter().enumerate().take(3) {
        let w = f * rect.width();
        painter.rect_filled(
            egui::Rect::from_min_size(egui::pos2(x, rect.top()), egui::vec2(w, rect.height())),
            0.0,
            colors[i],
        );
        x += w;
    }
    ui.horizontal_wrapped(|ui| {
        for (i, (n, v)) in names.iter().zip(values).enumerate() {
            super::swatch(ui, colors[i], n);
            ui.label(format!("{} {n}", human::bytes(v)));
        }
    });
}

/// "Use as backup disk…": a name and an optional quota.
pub fn init_dialog(app: &mut CofferApp, ctx: &egui::Context) {
    let Some(form) = &mut app.init_form else {
        return;
    };
    let mut action = None;
    egui::Window::new("Use as backup disk")
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
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
            ui.horizontal(|ui| {
                if ui.button("Use this disk").clicked() {
                    action = Some(Action::Init {
                        root: form.root.clone(),
                        label: form.label.clone(),
                        quota: form.quota.clone(),
                    });
                }
                if ui.button("Close").clicked() {
                    action = Some(Action::CloseInit);
                }
            });
        });
    app.actions.extend(action);
}
