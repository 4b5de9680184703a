//! The log window ("Show log"): the last lines of the log file, Coffer's
//! own by default (what the window, the command line and the agent did),
//! the toolkit's (winit, eframe, egui, the desktop portal) only when "Show
//! all lines" is ticked. Lines are told apart by their log target.
//!
//! The file is at most 1 MiB (rotation keeps it small), so reading it on
//! the UI thread when the window opens is cheap.

use std::path::{Path, PathBuf};

use super::action::{Action, Actions};
use super::{messages, shown, shown_path};

/// Lines of the file read at most (the newest).
const READ: usize = 4000;
/// Lines shown at most (the newest of those that pass the filter).
const SHOWN: usize = 400;

/// What the log window shows.
pub struct LogView {
    pub path: PathBuf,
    /// The newest lines of the file, escaped, each with whether Coffer
    /// wrote it; or why there are none.
    lines: Result<Vec<(bool, String)>, String>,
    pub show_all: bool,
}

impl LogView {
    /// Reads the log at `path`.
    pub fn read(path: &Path, show_all: bool) -> LogView {
        let lines = match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let all: Vec<&str> = text.lines().collect();
                let from = all.len().saturating_sub(READ);
                // Coffer escapes what it logs; a log written by an older
                // version, or edited, may still hold controls.
                Ok(all[from..]
                    .iter()
                    .map(|l| (crate::log::is_ours_line(l), shown(l).into_owned()))
                    .collect())
            }
            Err(e) => Err(format!(
                "No log to show at {}: {}",
                shown_path(path),
                messages::error_text(&e)
            )),
        };
        LogView {
            path: path.to_path_buf(),
            lines,
            show_all,
        }
    }

    /// The text shown: the file's name, then its newest lines that pass the
    /// filter (or why there are none).
    pub fn text(&self) -> String {
        let lines = match &self.lines {
            Ok(l) => l,
            Err(why) => return why.clone(),
        };
        let kept: Vec<&str> = lines
            .iter()
            .filter(|(ours, _)| self.show_all || *ours)
            .map(|(_, l)| l.as_str())
            .collect();
        let from = kept.len().saturating_sub(SHOWN);
        let body = if kept.is_empty() {
            "Nothing from Coffer yet.".to_string()
        } else {
            kept[from..].join("\n")
        };
        format!("{}\n\n{body}", shown_path(&self.path))
    }

    /// Draws the log window; closing it records `CloseLog`.
    pub fn show(&self, ctx: &egui::Context, out: &mut Actions) {
        let mut open = true;
        egui::Window::new("Log")
            .open(&mut open)
            .default_size([760.0, 420.0])
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let mut all = self.show_all;
                    if ui
                        .checkbox(&mut all, "Show all lines")
                        .on_hover_text(
                            "Also the lines of the window toolkit and the desktop (display, fonts, portals)",
                        )
                        .changed()
                    {
                        out.push(Action::LogShowAll(all));
                    }
                    if ui.button("Read again").clicked() {
                        out.push(Action::ShowLog);
                    }
                });
                egui::ScrollArea::both()
                    .stick_to_bottom(true)
                    .show(ui, |ui| {
                        ui.add(
                            egui::Label::new(egui::RichText::new(self.text()).monospace())
                                .selectable(true),
                        );
                    });
            });
        if !open {
            out.push(Action::CloseLog);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_shows_coffers_lines_and_the_toolkits_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("coffer.log");
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!(
                "T INFO  [1] coffer::gui::jobs: line {i}\nT WARN  [1] winit::platform_impl::x11: XSETTINGS {i}\n"
            ));
        }
        std::fs::write(&p, text).unwrap();
        let v = LogView::read(&p, false);
        let t = v.text();
        assert!(t.starts_with(&p.display().to_string()));
        assert!(t.ends_with("coffer::gui::jobs: line 499"), "{t}");
        assert!(!t.contains("XSETTINGS"), "toolkit noise is left out");
        assert!(
            t.contains("line 100") && !t.contains("line 99\n"),
            "the newest 400"
        );
        let all = LogView::read(&p, true).text();
        assert!(all.ends_with("XSETTINGS 499"), "{all}");
        assert!(
            LogView::read(&dir.path().join("none.log"), false)
                .text()
                .starts_with("No log to show")
        );
    }
}
