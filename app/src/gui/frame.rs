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
                    (Tab::History, "History"),
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
                    let theme = self.theme;
                    egui::ComboBox::from_id_salt("theme")
                        .selected_text(theme.words())
                        .show_ui(ui, |ui| {
                            use super::remember::Theme;
                            for t in [Theme::System, Theme::Light, Theme::Dark] {
                                if ui.selectable_label(t == theme, t.words()).clicked() {
                                    out.push(Action::Theme(t));
                                }
                            }
                        })
                        .response
                        .on_hover_text("Light or dark");
                });
            });
        });
        // Not resizable, so it grows with the progress it shows.
        egui::Panel::bottom("status")
            .resizable(false)
            .show(ui, |ui| status::show(&cx.jobs, &cx.status, ui, out));
        let tabs = &mut self.tabs;
        egui::CentralPanel::default().show(ui, |ui| {
            if self.tab == Tab::Restore {
                // Where to restore and the button stay in sight however
                // long the tree is.
                egui::Panel::bottom("restore-bar")
                    .resizable(false)
                    .show(ui, |ui| tabs.restore.bar(cx, ui, out));
            }
            egui::ScrollArea::vertical().show(ui, |ui| match self.tab {
                Tab::Disks => tabs.disks.show(cx, ui, out),
                Tab::Sources => tabs.sources.show(cx, ui, out),
                Tab::Map => tabs.map.show(cx, ui, out),
                Tab::Restore => tabs.restore.show(cx, ui, out),
                Tab::Archives => tabs.archives.show(cx, ui, out),
                Tab::History => super::history::show(cx, ui),
            });
        });
        disks::plan_dialog(&tabs.disks, ui.ctx(), out);
        disks::init_dialog(&mut tabs.disks, ui.ctx(), out);
        tabs.disks.manage.dialog(ui.ctx(), out);
        self.cx.unlock.dialog(ui.ctx(), out);
        if let Some(log) = &self.log_view {
            log.show(ui.ctx(), out);
        }
        self.picker.show(ui.ctx(), out);
        self.apply_actions();
    }
}
