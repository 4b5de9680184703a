//! Drawing one frame: the tab bar and headline, the bottom panel, the shown
//! tab, the dialogs and the log window; then the recorded actions are
//! applied. Each view gets its own tab's state and the read-only context.

use super::action::{Action, Tab};
use super::app::CofferApp;
use super::{disks, shown, status};

impl CofferApp {
    /// Draws the whole window from state, then applies what the user asked.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let out = &mut self.actions;
        let cx = &self.cx;
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("Coffer");
                ui.separator();
                for (tab, name) in [
                    (Tab::Disks, "Disks"),
                    (Tab::Sources, "Sources"),
                    (Tab::Map, "Redundancy map"),
                    (Tab::Restore, "Restore"),
                    (Tab::Archives, "Archives"),
                ] {
                    if ui.selectable_label(self.tab == tab, name).clicked() {
                        out.push(Action::Tab(tab));
                    }
                }
            });
            ui.horizontal(|ui| {
                ui.label(shown(&cx.model.headline));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button("Show log").clicked() {
                        out.push(Action::ShowLog);
                    }
                });
            });
        });
        // Not resizable, so it grows with the progress it shows.
        egui::Panel::bottom("status")
            .resizable(false)
            .show(ui, |ui| status::show(&cx.jobs, &cx.status, ui, out));
        let tabs = &mut self.tabs;
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| match self.tab {
                Tab::Disks => tabs.disks.show(cx, ui, out),
                Tab::Sources => tabs.sources.show(cx, ui, out),
                Tab::Map => tabs.map.show(cx, ui, out),
                Tab::Restore => tabs.restore.show(cx, ui, out),
                Tab::Archives => tabs.archives.show(cx, ui, out),
            });
        });
        disks::plan_dialog(&tabs.disks, ui.ctx(), out);
        disks::init_dialog(&mut tabs.disks, ui.ctx(), out);
        if let Some(text) = &self.log_view {
            let mut open = true;
            egui::Window::new("Log")
                .open(&mut open)
                .default_size([700.0, 400.0])
                .show(ui.ctx(), |ui| {
                    egui::ScrollArea::both()
                        .stick_to_bottom(true)
                        .show(ui, |ui| {
                            ui.add(
                                egui::Label::new(egui::RichText::new(text.as_str()).monospace())
                                    .selectable(true),
                            );
                        });
                });
            if !open {
                out.push(Action::CloseLog);
            }
        }
        self.picker.show(ui.ctx(), out);
        self.apply_actions();
    }
}

/// The last `lines` lines of the log file (at most 1 MiB: rotation keeps it
/// small, so reading it on the UI thread is cheap), or why there are none.
pub(super) fn log_tail(path: &std::path::Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            // Coffer escapes what it logs; a log written by an older
            // version, or edited, may still hold controls.
            let tail: Vec<_> = all[from..].iter().map(|l| super::shown(l)).collect();
            format!("{}\n\n{}", super::shown_path(path), tail.join("\n"))
        }
        Err(e) => format!(
            "No log to show at {}: {}",
            super::shown_path(path),
            super::messages::error_text(&e)
        ),
    }
}

#[cfg(test)]
mod log_tests {
    #[test]
    fn log_tail_keeps_the_last_lines_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("coffer.log");
        let text: String = (0..10).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let tail = super::log_tail(&p, 3);
        assert!(tail.starts_with(&p.display().to_string()));
        assert!(tail.ends_with("line 7\nline 8\nline 9"), "{tail}");
        assert!(!tail.contains("line 6"));
        assert!(super::log_tail(&dir.path().join("none.log"), 3).starts_with("No log to show"));
    }
}
