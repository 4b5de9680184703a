//! Drawing the Archives tab: the folder and prefix, the write buttons, the
//! folder's archives, and restoring from the chosen one.

use coffer_core::human;

use super::{Action, ArchivesTab};
use crate::gui::action::{Action as AppAction, Actions};
use crate::gui::ctx::Ctx;
use crate::gui::jobs::Kind;
use crate::gui::picker::Purpose;
use crate::gui::shown;

/// Most rows of the archive's tree drawn at once; the filter finds the rest.
const SHOWN: usize = 500;

impl ArchivesTab {
    pub fn show(&mut self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        // One archive job at a time; none of them uses a backup disk.
        let busy = cx.refusal(Kind::Archive, &[]);
        ui.label("Archives are tar.gz files of the sources, readable without Coffer.");
        ui.horizontal(|ui| {
            let l = ui.label("Archive folder");
            if ui
                .add(egui::TextEdit::singleline(&mut self.dir).desired_width(400.0))
                .labelled_by(l.id)
                .lost_focus()
            {
                out.push(Action::Refresh);
            }
            if ui.button("Choose folder…").clicked() {
                out.push(AppAction::Pick(Purpose::ArchiveDir));
            }
        });
        ui.horizontal(|ui| {
            let l = ui.label("Name prefix");
            ui.add(egui::TextEdit::singleline(&mut self.prefix).desired_width(120.0))
                .labelled_by(l.id)
                .on_hover_text("Empty: the profile's name");
            if ui.button("Refresh list").clicked() {
                out.push(Action::Refresh);
            }
        });
        ui.horizontal(|ui| {
            let ok = self.dir().is_some() && busy.is_none();
            let why = busy
                .clone()
                .unwrap_or_else(|| "Choose the archive folder first".into());
            for (full, text) in [(true, "Full archive"), (false, "Incremental")] {
                if ui
                    .add_enabled(ok, egui::Button::new(text))
                    .on_disabled_hover_text(&why)
                    .clicked()
                {
                    out.push(Action::Write { full });
                }
            }
            if self.listing.is_some() {
                ui.spinner();
            }
        });
        if let Some(e) = &self.list_error {
            ui.colored_label(ui.visuals().error_fg_color, shown(e));
        }
        ui.separator();
        if self.dir.trim().is_empty() {
            ui.label("Choose the folder archives go in (a NAS share, a second disk).");
        } else if self.rows.is_empty() {
            ui.label("No archives in this folder.");
        }
        for r in &self.rows {
            ui.horizontal(|ui| {
                let on = self.selected.as_deref() == Some(r.name.as_str());
                // Names come from file names, the text from the manifest.
                if ui.selectable_label(on, shown(&r.name)).clicked() {
                    out.push(Action::Select(r.name.clone()));
                }
                ui.label(shown(&r.text));
            });
        }
        if let Some(name) = self.selected.clone()
            && self.rows.iter().any(|r| r.name == name)
        {
            if ui
                .add_enabled(
                    busy.is_none(),
                    egui::Button::new(format!("Verify {}", shown(&name))),
                )
                .on_disabled_hover_text(busy.clone().unwrap_or_default())
                .clicked()
            {
                out.push(Action::Verify(name.clone()));
            }
            ui.separator();
            self.restore_section(ui, &name, busy.as_deref(), out);
        }
    }

    /// Restoring from the chosen archive: tick paths, choose the destination.
    fn restore_section(
        &mut self,
        ui: &mut egui::Ui,
        name: &str,
        busy: Option<&str>,
        out: &mut Actions,
    ) {
        ui.strong(format!("Restore as of {}", shown(name)));
        ui.label(
            "The files as they were when this archive was written; for an \
             incremental, Coffer also reads the archives it builds on. Tick \
             files or folders, or none for everything.",
        );
        if self.reading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading the archive's list of files…");
            });
        }
        if let Some(e) = &self.read_error {
            ui.colored_label(ui.visuals().error_fg_color, shown(e));
        }
        if !self.items.is_empty() {
            self.items_list(ui);
        }
        ui.horizontal(|ui| {
            match self.ticked.len() {
                0 => ui.label("Nothing ticked: everything is restored"),
                n => ui.label(format!("{} ticked", human::count(n as u64, "item"))),
            };
            if !self.ticked.is_empty() && ui.button("Untick all").clicked() {
                self.ticked.clear();
            }
        });
        ui.horizontal(|ui| {
            let l = ui.label("Restore into");
            ui.add(egui::TextEdit::singleline(&mut self.restore_dest).desired_width(400.0))
                .labelled_by(l.id);
            if ui.button("Choose destination…").clicked() {
                out.push(AppAction::Pick(Purpose::ArchiveRestoreDest));
            }
        });
        ui.checkbox(&mut self.replace, "Replace existing files");
        let ready = !self.restore_dest.trim().is_empty() && self.reading.is_none();
        if ui
            .add_enabled(
                ready && busy.is_none(),
                egui::Button::new(format!("Restore from {}", shown(name))),
            )
            .on_disabled_hover_text(busy.unwrap_or_default())
            .clicked()
        {
            out.push(Action::Restore);
        }
    }

    /// A folder (it opens) or a file of the archive's tree, with its tick.
    fn tree_row(&self, ui: &mut egui::Ui, i: usize, toggles: &mut Vec<(String, bool)>) {
        let item = &self.items[i];
        let name = item
            .path
            .trim_end_matches('/')
            .rsplit_once('/')
            .map_or(item.path.as_str(), |(_, n)| n);
        // Member paths are the manifest's, any text at all.
        let label = shown(name).into_owned();
        let tick = |ui: &mut egui::Ui, toggles: &mut Vec<(String, bool)>| {
            let mut on = self.is_ticked(&item.path);
            if ui.checkbox(&mut on, label.clone()).changed() {
                toggles.push((item.path.clone(), on));
            }
        };
        match self.tree.children.get(&i) {
            Some(kids) => {
                let id = ui.make_persistent_id(("archive-tree", &item.path));
                let root = self.tree.roots.contains(&i);
                egui::collapsing_header::CollapsingState::load_with_default_open(
                    ui.ctx(),
                    id,
                    root,
                )
                .show_header(ui, |ui| tick(ui, toggles))
                .body(|ui| {
                    for &k in kids {
                        self.tree_row(ui, k, toggles);
                    }
                });
            }
            None => {
                ui.horizontal(|ui| {
                    tick(ui, toggles);
                    if !item.dir {
                        ui.weak(human::bytes(item.size));
                    }
                });
            }
        }
    }

    /// The manifest's paths, filtered, each with its tick.
    fn items_list(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let l = ui.label("Filter");
            ui.text_edit_singleline(&mut self.filter).labelled_by(l.id);
        });
        let query = self.filter.trim().to_lowercase();
        let mut drawn = 0;
        let mut toggles = Vec::new();
        egui::ScrollArea::vertical()
            .id_salt("archive-items")
            .max_height(300.0)
            .show(ui, |ui| {
                if query.is_empty() {
                    // Folders open and close, as in the Restore tab.
                    for &i in &self.tree.roots {
                        self.tree_row(ui, i, &mut toggles);
                    }
                    return;
                }
                for item in &self.items {
                    if !query.is_empty() && !item.path.to_lowercase().contains(&query) {
                        continue;
                    }
                    drawn += 1;
                    if drawn > SHOWN {
                        ui.label("…more; narrow the filter");
                        break;
                    }
                    ui.horizontal(|ui| {
                        let mut on = self.is_ticked(&item.path);
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
            self.tick(&path, on);
        }
    }
}
