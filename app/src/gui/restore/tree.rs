//! The snapshot's tree (folders open and close, files and folders tick)
//! and the chosen file's versions with the disks holding each.

use std::path::Path;

use coffer_core::catalog::{Kind as EntryKind, Snapshot, Version};
use coffer_core::human;

use super::{Action, RestoreTab};
use crate::gui::action::Actions;
use crate::gui::{shown, shown_path};

/// A folder (expandable) or a file of the tree.
pub fn tree_row(r: &mut RestoreTab, ui: &mut egui::Ui, i: usize, out: &mut Actions) {
    let v = &r.listing.entries[i];
    if v.kind != EntryKind::Dir {
        let name = name_of(v);
        entry_row(r, ui, i, name, out);
        return;
    }
    let path = v.path.clone();
    let root = r.listing.roots.contains(&i);
    let name = if root {
        shown_path(&path).into_owned()
    } else {
        name_of(v)
    };
    let id = ui.make_persistent_id(("restore-tree", &path));
    egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, root)
        .show_header(ui, |ui| {
            let mut on = r.selected.contains(&path);
            if ui.checkbox(&mut on, name).changed() {
                toggle(r, &path, on);
            }
        })
        .body(|ui| {
            for c in r.listing.children.get(&path).cloned().unwrap_or_default() {
                tree_row(r, ui, c, out);
            }
        });
}

/// A file or folder on one line: its tick, and for a file its size and
/// its "Versions" button.
pub fn entry_row(
    r: &mut RestoreTab,
    ui: &mut egui::Ui,
    i: usize,
    label: String,
    out: &mut Actions,
) {
    let v = &r.listing.entries[i];
    let path = v.path.clone();
    let is_file = v.kind == EntryKind::File;
    let size = v.size;
    ui.horizontal(|ui| {
        let mut on = r.selected.contains(&path) || r.selected.iter().any(|s| path.starts_with(s));
        if ui.checkbox(&mut on, label).changed() {
            toggle(r, &path, on);
        }
        if is_file {
            ui.weak(human::bytes(size));
            if ui
                .small_button("Versions")
                .on_hover_text("Earlier versions and the disks holding each")
                .clicked()
            {
                out.push(Action::Versions(path.clone()));
            }
        }
    });
}

fn toggle(r: &mut RestoreTab, path: &Path, on: bool) {
    if on {
        r.selected.insert(path.to_path_buf());
    } else {
        // Unticking also unticks what lies under it and what holds it.
        r.selected
            .retain(|s| !s.starts_with(path) && !path.starts_with(s));
    }
}

/// The chosen file's versions and where each is held.
pub fn details(r: &RestoreTab, ui: &mut egui::Ui) {
    let Some(path) = &r.details_of else { return };
    ui.strong(format!("Versions of {}", shown_path(path)));
    if r.details.is_some() {
        ui.spinner();
        return;
    }
    for h in &r.held {
        let v = &h.version;
        let on = if h.disks.is_empty() {
            if v.kind == EntryKind::File && v.size > 0 {
                "no disk".to_string()
            } else {
                "nothing to copy".to_string()
            }
        } else {
            shown(&h.disks.join(", ")).into_owned()
        };
        ui.label(format!(
            "From {} (snapshots {}–{}), {}: on {}",
            human::time(h.from),
            v.first_snapshot,
            v.last_snapshot,
            human::bytes(v.size),
            on
        ));
    }
    ui.separator();
}

pub fn snapshot_text(s: &Snapshot) -> String {
    format!(
        "{} ({}, {})",
        human::time(s.started_at),
        human::count(s.files, "file"),
        human::bytes(s.bytes)
    )
}

/// An entry's name as drawn (a catalog holds any byte a file system allows).
fn name_of(v: &Version) -> String {
    v.path.file_name().map_or_else(
        || shown_path(&v.path).into_owned(),
        |n| human::os_str(n).into_owned(),
    )
}
