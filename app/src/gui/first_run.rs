//! The first-run assistant, at the top of the Disks tab while there is no
//! folder to back up or no backup disk: choose folders → plug in or
//! choose a disk → copies wanted → first sync, each step ticked off as it
//! is done, in plain words; it goes once a first sync ran.
//!
//! Invariant: the assistant only records actions the tabs already have;
//! it holds no state of its own.

use super::action::{Action as AppAction, Actions};
use super::ctx::Ctx;
use super::picker::Purpose;
use super::{disks, shown, shown_path, sources};

/// Whether the assistant shows: until there is a folder, a backup disk,
/// and a first sync.
pub fn wanted(cx: &Ctx) -> bool {
    cx.config.profile.sources.is_empty() || !cx.model.cards.iter().any(|c| c.ever_synced)
}

pub fn show(cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
    let profile = &cx.config.profile;
    egui::Frame::group(ui.style())
        .fill(ui.visuals().faint_bg_color)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.heading("Getting started");
            ui.label("Coffer keeps copies of your folders on ordinary USB disks. Four steps:");
            ui.add_space(4.0);
            let folders = !profile.sources.is_empty();
            step(ui, 1, folders, "Choose the folders to back up", |ui| {
                if folders {
                    let names: Vec<String> = profile
                        .sources
                        .iter()
                        .map(|s| shown_path(&s.path).into_owned())
                        .collect();
                    ui.label(format!("Backing up {}", names.join(", ")));
                }
                if ui.button("Add folder…").clicked() {
                    out.push(AppAction::Pick(Purpose::Source));
                }
            });
            let disk = !cx.model.cards.is_empty();
            step(
                ui,
                2,
                disk,
                "Plug in a USB disk to keep the copies on",
                |ui| {
                    if disk {
                        let names: Vec<String> = cx
                            .model
                            .cards
                            .iter()
                            .map(|c| shown(&c.label).into_owned())
                            .collect();
                        ui.label(format!("Backup disks: {}", names.join(", ")));
                    } else if let Some(root) = cx.mounts.unknown.first() {
                        if ui
                            .button(format!("Use {} as backup disk…", shown_path(root)))
                            .clicked()
                        {
                            out.push(disks::Action::OfferInit(root.clone()));
                        }
                    } else {
                        ui.weak("Waiting for a disk to be plugged in…");
                    }
                },
            );
            step(ui, 3, true, "How many disks each file should be on", |ui| {
                for n in 1..=3u32 {
                    let text = match n {
                        1 => "1 disk".to_string(),
                        n => format!("{n} disks"),
                    };
                    if ui.selectable_label(profile.copies == n, text).clicked() {
                        out.push(sources::Action::Copies(n));
                    }
                }
                ui.weak("2 or more: losing one disk loses nothing");
            });
            let connected = !cx.of_set().is_empty();
            step(ui, 4, false, "The first sync", |ui| {
                let ready = folders && connected;
                if ui
                    .add_enabled(ready, egui::Button::new("Sync now"))
                    .on_disabled_hover_text("Choose a folder and plug in a backup disk first")
                    .clicked()
                {
                    out.push(disks::Action::SyncAll);
                }
            });
        });
    ui.add_space(8.0);
}

/// One numbered step, ticked when done.
fn step(ui: &mut egui::Ui, n: u32, done: bool, title: &str, body: impl FnOnce(&mut egui::Ui)) {
    ui.horizontal(|ui| {
        // Words, not a tick mark: the window's font has no such glyph.
        ui.strong(if done {
            format!("{n}. {title} (done)")
        } else {
            format!("{n}. {title}")
        });
        body(ui);
    });
}
