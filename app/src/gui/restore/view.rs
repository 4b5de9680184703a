//! Drawing the Restore tab: which catalog to read, the snapshot, the search
//! box and tree, then where to restore, what to do with existing paths, and
//! the Restore button.

use std::path::PathBuf;

use coffer_core::human;
use coffer_core::restore::Existing;

use super::listing::CatalogFile;
use super::tree::{details, entry_row, snapshot_text, tree_row};
use super::{Action, Origin, RestoreTab, restore_disks};
use crate::gui::action::{Action as AppAction, Actions};
use crate::gui::ctx::Ctx;
use crate::gui::jobs::Kind;
use crate::gui::picker::Purpose;
use crate::gui::{shown, shown_path};

/// Most search hits drawn at once.
const HITS: usize = 500;

impl RestoreTab {
    pub fn show(&mut self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        // The connected disks a restore can read a catalog from.
        let disks: Vec<(PathBuf, String)> = cx
            .identified()
            .map(|(root, i)| (root.clone(), i.label.clone()))
            .collect();
        self.origin_row(&disks, ui, out);
        if self.listing.snapshots.is_empty() {
            self.no_snapshot(&disks, ui, out);
            return;
        }
        self.snapshot_row(ui, out);
        if let Some(e) = &self.load_error {
            ui.colored_label(ui.visuals().error_fg_color, shown(e));
        }
        ui.horizontal(|ui| {
            let l = ui.label("Search");
            ui.text_edit_singleline(&mut self.search).labelled_by(l.id);
        });
        ui.separator();
        let query = self.search.trim().to_lowercase();
        if query.is_empty() {
            for i in self.listing.roots.clone() {
                tree_row(self, ui, i, out);
            }
        } else {
            let hits: Vec<usize> = self.listing.search(&query).take(HITS + 1).collect();
            for (drawn, &i) in hits.iter().enumerate() {
                if drawn == HITS {
                    ui.label("…more matches; narrow the search");
                    break;
                }
                let label = shown_path(&self.listing.entries[i].path).into_owned();
                entry_row(self, ui, i, label, out);
            }
            if hits.is_empty() {
                ui.label("No match in this snapshot.");
            }
        }
        ui.separator();
        details(self, ui);
    }

    /// The bar under the tab that never scrolls away: where to restore,
    /// what to do with existing paths, and the Restore button with the
    /// reason it cannot be pressed.
    pub fn bar(&mut self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        if self.listing.snapshots.is_empty() {
            return;
        }
        ui.add_space(4.0);
        self.destination(cx, ui, out);
        ui.add_space(4.0);
    }

    fn origin_row(&self, disks: &[(PathBuf, String)], ui: &mut egui::Ui, out: &mut Actions) {
        ui.horizontal(|ui| {
            let l = ui.label("Read from");
            let mut origins = vec![Origin::Workstation];
            origins.extend(disks.iter().map(|(root, label)| Origin::Disk {
                root: root.clone(),
                label: label.clone(),
            }));
            if !origins.contains(&self.origin) {
                // The disk read from was unplugged: keep showing what was read.
                origins.push(self.origin.clone());
            }
            egui::ComboBox::from_id_salt("restore-origin")
                .selected_text(origin_text(&self.origin))
                .show_ui(ui, |ui| {
                    for o in origins {
                        let text = origin_text(&o);
                        if ui.selectable_label(o == self.origin, text).clicked() {
                            out.push(Action::Origin(o));
                        }
                    }
                })
                .response
                .on_hover_text(
                    "A disk's own list of backups restores everything that disk holds, with nothing needed from this computer",
                )
                .labelled_by(l.id);
        });
    }

    /// No snapshot to show: still reading, why not, and (for this
    /// computer's catalog) the disks whose own catalog could be read.
    fn no_snapshot(&self, disks: &[(PathBuf, String)], ui: &mut egui::Ui, out: &mut Actions) {
        if self.loading.is_some() {
            ui.label("Reading the list of backups…");
            return;
        }
        if let Some(e) = &self.load_error {
            ui.colored_label(ui.visuals().error_fg_color, shown(e));
        } else if self.origin == Origin::Workstation {
            ui.label("No snapshots on this computer yet: sync a disk first.");
        } else {
            ui.label("That disk holds no backup yet.");
        }
        if self.origin != Origin::Workstation {
            return;
        }
        // A new computer, or a lost catalog: any one disk restores.
        for (root, label) in disks {
            if ui
                .button(format!("Restore from disk \"{}\" alone", shown(label)))
                .on_hover_text("Read the list of backups that disk carries (for a new computer)")
                .clicked()
            {
                out.push(Action::Origin(Origin::Disk {
                    root: root.clone(),
                    label: label.clone(),
                }));
            }
        }
    }

    fn snapshot_row(&self, ui: &mut egui::Ui, out: &mut Actions) {
        ui.horizontal(|ui| {
            let l = ui.label("Snapshot");
            let current = self
                .listing
                .snapshots
                .iter()
                .find(|s| Some(s.id) == self.listing.snapshot)
                .map_or_else(String::new, snapshot_text);
            egui::ComboBox::from_id_salt("snapshot")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for s in &self.listing.snapshots {
                        if ui
                            .selectable_label(Some(s.id) == self.listing.snapshot, snapshot_text(s))
                            .clicked()
                        {
                            out.push(Action::Snapshot(s.id));
                        }
                    }
                })
                .response
                .labelled_by(l.id);
            if self.loading.is_some() {
                ui.spinner();
            }
        });
    }

    /// Where to restore, what to do with paths there, and the button.
    fn destination(&mut self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        let from_disk = matches!(self.listing.catalog, Some(CatalogFile::Copy { .. }));
        ui.add_enabled_ui(!from_disk, |ui| {
            ui.radio_value(
                &mut self.original,
                true,
                format!(
                    "Where they were (under {})",
                    shown_path(&cx.config.profile.basepath)
                ),
            )
            .on_disabled_hover_text(
                "A disk's own list of backups does not say where this computer keeps files: choose a folder",
            );
        });
        ui.horizontal(|ui| {
            let l = ui.radio_value(&mut self.original, false, "Into this folder");
            ui.add_enabled(
                !self.original,
                egui::TextEdit::singleline(&mut self.dest).desired_width(400.0),
            )
            .labelled_by(l.id);
            if ui.button("Choose folder…").clicked() {
                out.push(AppAction::Pick(Purpose::RestoreDest));
            }
        });
        ui.horizontal(|ui| {
            ui.label("Paths that already exist:");
            ui.radio_value(&mut self.existing, Existing::Refuse, "Stop and list them")
                .on_hover_text("Nothing is written while any path to restore exists");
            ui.radio_value(&mut self.existing, Existing::Skip, "Leave them as they are");
            ui.radio_value(&mut self.existing, Existing::KeepBoth, "Keep both")
                .on_hover_text(
                    "The restored file goes beside the existing one, as \"name (restored).ext\"",
                );
            ui.radio_value(&mut self.existing, Existing::Overwrite, "Replace them")
                .on_hover_text("Files only: a folder or symlink in the way is never replaced");
        });
        ui.checkbox(&mut self.rename_collisions, "Rename clashing names")
            .on_hover_text(
                "On FAT/exFAT, names that differ only in case, or hold characters FAT refuses, get a new name such as \"name (2).txt\" instead of stopping the restore",
            );
        // What the button would do, planned as the fields change: always
        // one line, so the button below never moves when a plan comes in.
        let line = self.inputs(cx).ok().and_then(|(inputs, _)| {
            let key = inputs.key(cx);
            match self.planner.line(&key) {
                Some(Ok(line)) => Some((shown(line).into_owned(), None)),
                Some(Err(e)) => Some((shown(e).into_owned(), Some(ui.visuals().error_fg_color))),
                None if self.planner.planning() => Some((
                    "Working out what the restore would do…".to_string(),
                    Some(ui.visuals().weak_text_color()),
                )),
                None => None,
            }
        });
        let (text, color) = line.unwrap_or_default();
        let mut rich = egui::RichText::new(&text);
        if let Some(c) = color {
            rich = rich.color(c);
        }
        let shown_line = ui.add(egui::Label::new(rich).truncate());
        if !text.is_empty() {
            shown_line.on_hover_text(text);
        }
        ui.horizontal(|ui| {
            let n = self.selected.len();
            let why = if n == 0 {
                Some("Tick the files or folders to restore above".to_string())
            } else if !self.original && self.dest.trim().is_empty() {
                Some("Choose the folder to restore into".to_string())
            } else {
                cx.refusal(Kind::Restore, &restore_disks(cx))
            };
            let button = ui
                .add_enabled(why.is_none(), egui::Button::new("Restore ticked items"))
                .on_disabled_hover_text(why.clone().unwrap_or_default());
            if button.clicked() {
                out.push(Action::Restore);
            }
            ui.label(format!("{} ticked", human::count(n as u64, "item")));
            if let Some(why) = why {
                // The reason in plain sight, not only on hover.
                ui.weak(why);
            }
            if let Some(dir) = &self.restored_to
                && ui.button("Open folder").clicked()
            {
                out.push(Action::OpenFolder(dir.clone()));
            }
        });
        if !self.waiting_for.is_empty() {
            ui.label("The restore goes on by itself when the disk it needs is plugged in.");
        }
    }
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Workstation => "This computer's list of backups".to_string(),
        Origin::Disk { label, .. } => {
            format!("The list of backups on disk \"{}\" alone", shown(label))
        }
    }
}
