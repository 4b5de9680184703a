//! Drawing the Disks tab: "Sync all connected disks", a card per known
//! disk (bucket disks' cards are `bucket`'s), the disks of other sets or
//! unreadable, and the folders that could become disks.

use std::path::PathBuf;

use coffer_core::human;

use super::{Action, DisksTab, Target, sync_disks};
use crate::gui::action::Actions;
use crate::gui::ctx::Ctx;
use crate::gui::jobs::Kind;
use crate::gui::model::DiskCard;
use crate::gui::{shown, shown_path, swatch};

impl DisksTab {
    pub fn show(&self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        if crate::gui::first_run::wanted(cx) {
            crate::gui::first_run::show(cx, ui, out);
        }
        self.manage.at_login_ui(cx, ui, out);
        // "Plug in Red next": what would help the backups most, where the
        // disks are.
        if let Some(a) = &cx.model.advice {
            egui::Frame::group(ui.style())
                .fill(ui.visuals().faint_bg_color)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.strong(shown(a));
                });
            ui.add_space(6.0);
        }
        if !cx.model.cards.is_empty() {
            sync_all(cx, &self.buckets.reachable(), ui, out);
        }
        for card in cx.model.cards.iter().filter(|c| c.url.is_none()) {
            self.card_ui(cx, ui, card, out);
            ui.add_space(6.0);
        }
        self.bucket_cards_ui(cx, ui, out);
        let set_id = cx.config.profile.set_id;
        for v in &cx.mounts.disks {
            match &v.identity {
                Err(e) => {
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        format!(
                            "Unreadable disk at {}: {}",
                            shown_path(&v.root),
                            shown(&crate::gui::messages::error_text(e))
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
        if !cx.mounts.unknown.is_empty() {
            ui.separator();
            ui.heading("Folders that could be backup disks");
        }
        for root in &cx.mounts.unknown {
            ui.horizontal(|ui| {
                ui.label(shown_path(root));
                if ui.button("Use as backup disk…").clicked() {
                    out.push(Action::OfferInit(root.clone()));
                }
            });
        }
    }
}

/// "Sync all connected disks": every connected disk of this backup set
/// (never another set's), the bucket disks that answer among them, after
/// one scan. `buckets` answered at the last check; the job finds out again.
fn sync_all(cx: &Ctx, buckets: &[PathBuf], ui: &mut egui::Ui, out: &mut Actions) {
    let mut of_set = cx.of_set();
    of_set.extend_from_slice(buckets);
    let refusal = if of_set.is_empty() {
        Some("No disk of this backup set is connected".to_string())
    } else {
        cx.refusal(Kind::Sync, &sync_disks(cx, &Target::AllOfSet))
    };
    let button = ui
        .add_enabled(
            refusal.is_none(),
            egui::Button::new("Sync all connected disks"),
        )
        .on_hover_text(format!(
            "Scans once, then syncs {}",
            match of_set.len() {
                1 => "the one connected disk of this backup set".to_string(),
                n => format!("the {n} connected disks of this backup set"),
            }
        ))
        .on_disabled_hover_text(refusal.unwrap_or_default());
    if button.clicked() {
        out.push(Action::SyncAll);
    }
    ui.add_space(6.0);
}

impl DisksTab {
    fn card_ui(&self, cx: &Ctx, ui: &mut egui::Ui, card: &DiskCard, out: &mut Actions) {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                let (dot, state) = if card.root.is_some() {
                    (egui::Color32::from_rgb(60, 170, 90), "connected")
                } else {
                    (egui::Color32::GRAY, "not connected")
                };
                swatch(ui, dot, state);
                ui.heading(shown(&card.label));
                // "Connected at" a mount path, which any disk's name can be.
                ui.label(shown(&card.presence));
            });
            space_bar(ui, card);
            ui.label(holds_line(card));
            if card.only_copy.files > 0 {
                ui.label(format!(
                    "If this disk were lost: {} in {} would have no copy left",
                    human::bytes(card.only_copy.bytes),
                    human::count(card.only_copy.files, "file")
                ));
            } else {
                ui.label("If this disk were lost: nothing would be left without a copy");
            }
            for (source, what) in &card.cannot_hold {
                // The sentence names the disk; the source says whose.
                ui.label(format!("{}: {}", shown_path(source), shown(what)));
            }
            ui.horizontal(|ui| {
                let label = shown(&card.label);
                // Why each button cannot start now: not connected, or busy.
                let why = |kind: Kind| match &card.root {
                    None => Some(format!("Plug in {label} first")),
                    Some(root) => {
                        let disks = match kind {
                            Kind::Sync => sync_disks(cx, &Target::Disk(root.clone())),
                            _ => vec![root.clone()],
                        };
                        cx.refusal(kind, &disks)
                    }
                };
                for (kind, verb) in [(Kind::Sync, "Sync"), (Kind::Verify, "Verify")] {
                    let refusal = why(kind);
                    let button = ui
                        .add_enabled(
                            refusal.is_none(),
                            egui::Button::new(format!("{verb} {label}")),
                        )
                        .on_disabled_hover_text(refusal.unwrap_or_default());
                    if button.clicked()
                        && let Some(r) = &card.root
                    {
                        out.push(match kind {
                            Kind::Sync => Action::Sync(r.clone()),
                            _ => Action::Verify(r.clone()),
                        });
                    }
                }
                let mut auto = card.auto_sync;
                if ui
                    .checkbox(&mut auto, format!("Sync {label} when plugged in"))
                    .changed()
                {
                    out.push(Action::AutoSync(card.id, auto));
                }
                self.manage.menu(cx, ui, card, out);
            });
        });
    }
}

/// Current data, old versions, other files and free room, as one bar.
/// What a disk holds of the current files, and when it was last synced
/// and verified: one line of every card, USB disk or bucket.
pub(super) fn holds_line(card: &DiskCard) -> String {
    let holds = if !card.ever_synced {
        "Not synced yet".to_string()
    } else if card.missing == 0 {
        "Holds every current file".to_string()
    } else {
        format!(
            "{} not on it yet",
            human::count(card.missing, "current file")
        )
    };
    format!(
        "{holds} · last sync {} · last verify {}",
        card.last_sync, card.last_verify
    )
}

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
            swatch(ui, colors[i], n);
            ui.label(format!("{} {n}", human::bytes(v)));
        }
    });
}
