//! The redundancy map: the headline, "plug in X next", the source tree
//! coloured by copies with sizes (click a folder to look inside), and what
//! losing each disk would cost.

use std::path::PathBuf;

use coffer_core::human;

use super::action::Actions;
use super::ctx::Ctx;
use super::model::{self, MapRow, Shade};
use super::{shown, shown_path};

#[derive(Clone, Debug)]
pub enum Action {
    /// Look inside this folder (`None`: back to the sources).
    Into(Option<PathBuf>),
}

/// The map tab's state: the folder looked into.
#[derive(Default)]
pub struct MapTab {
    pub dir: Option<PathBuf>,
}

impl MapTab {
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Into(dir) => self.dir = dir,
        }
    }

    /// Draws the map from the view model.
    pub fn show(&self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        map_ui(self, cx, ui, out);
    }
}

fn map_ui(tab: &MapTab, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
    let m = &cx.model;
    // The headline and the advice name disks by label.
    ui.heading(shown(&m.headline));
    if let Some(a) = &m.advice {
        ui.label(shown(a));
    }
    ui.horizontal(|ui| {
        legend(ui, Shade::None);
        legend(ui, Shade::Short);
        legend(ui, Shade::Enough);
    });
    ui.separator();
    let rows: Vec<MapRow> = match &tab.dir {
        None => m.sources.clone(),
        Some(dir) => {
            ui.horizontal(|ui| {
                if ui.button("Back to all sources").clicked() {
                    out.push(Action::Into(None));
                }
                if let Some(parent) = dir.parent()
                    && m.sources.iter().any(|s| parent.starts_with(&s.path))
                    && ui.button("Up one folder").clicked()
                {
                    out.push(Action::Into(Some(parent.to_path_buf())));
                }
                ui.label(shown_path(dir));
            });
            model::children_rows(&m.files, dir)
        }
    };
    if rows.is_empty() {
        ui.label("Nothing here yet: add a source and sync a disk.");
    }
    let label_of = |id: &uuid::Uuid| {
        m.cards
            .iter()
            .find(|c| c.id == *id)
            .map_or_else(|| "a forgotten disk".to_string(), |c| c.label.clone())
    };
    egui::Grid::new("map").striped(true).show(ui, |ui| {
        for h in ["", "Folder or file", "Size", "Copies", "On disks"] {
            ui.strong(h);
        }
        ui.end_row();
        for r in &rows {
            let c = shade_color(ui, r.shade);
            super::swatch(ui, c, shade_name(r.shade));
            let text = if tab.dir.is_none() {
                shown_path(&r.path)
            } else {
                shown(&r.name)
            };
            if r.has_children || tab.dir.is_none() {
                if ui.link(text).on_hover_text("Look inside").clicked() {
                    out.push(Action::Into(Some(r.path.clone())));
                }
            } else {
                ui.label(text);
            }
            ui.label(human::bytes(r.total.bytes));
            ui.label(copies_text(r));
            // Labels come from disks.
            ui.label(shown(&disks_text(r, label_of)));
            ui.end_row();
        }
    });
    ui.separator();
    ui.heading("If this disk were lost");
    for l in &m.losses {
        if l.lost.files == 0 {
            ui.label(format!(
                "{}: every file would still have a copy",
                shown(&l.label)
            ));
        } else {
            ui.label(format!(
                "{}: {} in {} would have no copy left",
                shown(&l.label),
                human::bytes(l.lost.bytes),
                human::count(l.lost.files, "file")
            ));
            for p in &l.examples {
                ui.label(format!("    {}", shown_path(p)));
            }
        }
    }
}

/// "Blue (12 files), Red (3 files)", or "none".
pub fn disks_text(r: &MapRow, label_of: impl Fn(&uuid::Uuid) -> String) -> String {
    if r.disks.is_empty() {
        return "none".into();
    }
    let one = r.total.files == 1;
    r.disks
        .iter()
        .map(|(id, n)| {
            if one {
                label_of(id)
            } else {
                format!("{} ({})", label_of(id), human::count(*n, "file"))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "12 files: 3 with 0 copies, 9 with 1 copy (2 wanted)".
pub fn copies_text(r: &MapRow) -> String {
    let parts: Vec<String> = r
        .by_copies
        .iter()
        .enumerate()
        .filter(|(_, t)| t.files > 0)
        .map(|(n, t)| {
            let n = if n == 3 {
                "3+".to_string()
            } else {
                n.to_string()
            };
            let s = if n == "1" { "copy" } else { "copies" };
            format!("{} with {n} {s}", t.files)
        })
        .collect();
    if parts.is_empty() {
        return "no files".into();
    }
    format!(
        "{}: {} ({} wanted)",
        human::count(r.total.files, "file"),
        parts.join(", "),
        r.wanted
    )
}

fn shade_color(ui: &egui::Ui, s: Shade) -> egui::Color32 {
    match s {
        Shade::None => egui::Color32::from_rgb(210, 60, 50),
        Shade::Short => egui::Color32::from_rgb(230, 160, 30),
        Shade::Enough => egui::Color32::from_rgb(60, 170, 90),
        Shade::Empty => ui.visuals().weak_text_color(),
    }
}

fn shade_name(s: Shade) -> &'static str {
    match s {
        Shade::None => "no copy",
        Shade::Short => "fewer copies than wanted",
        Shade::Enough => "all copies wanted",
        Shade::Empty => "no files",
    }
}

fn legend(ui: &mut egui::Ui, s: Shade) {
    let c = shade_color(ui, s);
    super::swatch(ui, c, shade_name(s));
    ui.label(shade_name(s));
}
