//! The bottom panel: each running job's progress (bytes and files, current
//! file, speed, time left, Cancel), or the last job's message.

use coffer_core::human;

use super::action::{Action, Actions};
use super::ctx::Status;
use super::jobs::{Jobs, Kind, Live};
use super::{shown, shown_path};

pub fn show(jobs: &Jobs, status: &Status, ui: &mut egui::Ui, out: &mut Actions) {
    ui.add_space(4.0);
    let mut any = false;
    if let Some(a) = jobs.agent() {
        any = true;
        // The label comes from a disk.
        ui.strong(shown(&a.words()));
        ui.add(egui::ProgressBar::new(a.fraction()).text(format!(
            "{} of {}, {} of {}",
            human::bytes(a.bytes_done),
            human::bytes(a.bytes_total),
            a.files_done,
            human::count(a.files_total, "file")
        )));
    }
    for (kind, live) in jobs.live() {
        if any {
            ui.separator();
        }
        any = true;
        job_ui(kind, live, ui, out);
    }
    if any {
        // Speed and time left change with the clock, not only with events.
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(500));
    } else if let Some(m) = &status.message {
        ui.horizontal(|ui| {
            let color = if m.ok {
                ui.visuals().text_color()
            } else {
                ui.visuals().warn_fg_color
            };
            // Messages embed labels, paths and errors from disks and archives.
            ui.colored_label(color, shown(&m.title));
            if ui.button("Dismiss").clicked() {
                out.push(Action::DismissMessage);
            }
        });
        for d in m.details.iter().take(20) {
            ui.label(shown(d));
        }
        if m.details.len() > 20 {
            ui.label(format!("…and {} more", m.details.len() - 20));
        }
    } else {
        ui.label("Ready");
    }
    ui.add_space(4.0);
}

fn job_ui(kind: Kind, live: &Live, ui: &mut egui::Ui, out: &mut Actions) {
    let c = &live.counters;
    ui.horizontal(|ui| {
        // Titles name disks by label and folders by path.
        ui.strong(shown(&live.title));
        if let Some(phase) = c.phase {
            ui.label(format!("— {}", phase.label()));
        }
        // Cancel keeps its place (the right edge) and its id whatever the
        // title and phase before it say. When the plan hands over to the
        // sync both change between two frames; a button that moved or took
        // another id then lost the click aimed at it.
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let cancel = ui
                .scope_builder(
                    egui::UiBuilder::new().scope_id(egui::Id::unique(("coffer-cancel-job", kind))),
                    |ui| ui.button("Cancel"),
                )
                .inner;
            if cancel.clicked() {
                out.push(Action::Cancel(kind));
            }
        });
    });
    let frac = |done: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            (done as f32 / total as f32).clamp(0.0, 1.0)
        }
    };
    let speed = live
        .rate
        .bytes_per_sec()
        .map(|r| format!(", {}/s", human::bytes(r as u64)))
        .unwrap_or_default();
    let eta = live
        .rate
        .eta(c.bytes_total.saturating_sub(c.bytes_done))
        .map(|d| format!(", {} left", human::duration(d)))
        .unwrap_or_default();
    ui.add(
        egui::ProgressBar::new(frac(c.bytes_done, c.bytes_total))
            .text(format!(
                "Bytes: {} of {}{speed}{eta}",
                human::bytes(c.bytes_done),
                human::bytes(c.bytes_total)
            ))
            .animate(true),
    );
    ui.add(
        egui::ProgressBar::new(frac(c.files_done, c.files_total)).text(if c.files_total == 0 {
            // Some jobs (an archive) learn the count only as they go.
            format!("Files: {}", c.files_done)
        } else {
            format!("Files: {} of {}", c.files_done, c.files_total)
        }),
    );
    // Always one line, so the panel keeps its height between files.
    ui.label(match &c.current {
        Some(cur) => format!("Current file: {}", shown_path(cur)),
        None => "Current file: none".into(),
    });
    for n in &live.notices {
        ui.label(shown(n));
    }
    if !live.warnings.is_empty() {
        ui.label(format!("{} warnings so far", live.warnings.len()));
    }
}
