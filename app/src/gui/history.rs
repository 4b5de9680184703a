//! The History tab: every job that ran on this computer, from the window,
//! the command line or the background agent, newest first, as the
//! catalog's history records them (read with the view model).

use coffer_core::catalog::{HistoryEntry, JobEnd};
use coffer_core::human;
use coffer_core::jobs::history::{FrontEnd, JobKind, disk_names, outcome_words};

use super::ctx::Ctx;
use super::shown;

/// One row of the History tab, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub when: String,
    pub what: String,
    pub outcome: String,
    pub ok: bool,
    pub disks: String,
    pub from: String,
    pub took: String,
    pub summary: String,
}

/// A history entry as the tab shows it.
pub fn row(e: &HistoryEntry, now: i64) -> HistoryRow {
    let took = match e.finished_at {
        Some(f) => human::duration(std::time::Duration::from_secs(
            f.saturating_sub(e.started_at) as u64,
        )),
        None if e.outcome == JobEnd::Running => format!(
            "{} so far",
            human::duration(std::time::Duration::from_secs(
                now.saturating_sub(e.started_at) as u64
            ))
        ),
        None => String::new(),
    };
    HistoryRow {
        when: human::time(e.started_at),
        what: JobKind::words(&e.kind).to_string(),
        outcome: outcome_words(e.outcome).to_string(),
        ok: matches!(e.outcome, JobEnd::Completed | JobEnd::Running),
        disks: disk_names(e),
        from: FrontEnd::words(&e.front_end).to_string(),
        took,
        summary: e.summary.clone(),
    }
}

pub fn show(cx: &Ctx, ui: &mut egui::Ui) {
    let jobs = &cx.model.history;
    if jobs.is_empty() {
        ui.label("Nothing has run yet. Every sync, verify, restore and archive is listed here, whether it ran in this window, on the command line or in the background.");
        return;
    }
    let now = coffer_core::now();
    egui::Grid::new("history")
        .striped(true)
        .num_columns(7)
        .show(ui, |ui| {
            for h in [
                "When",
                "What",
                "Result",
                "Disks",
                "Started from",
                "Took",
                "Details",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for e in jobs {
                let r = row(e, now);
                ui.label(&r.when);
                ui.label(&r.what);
                if r.ok {
                    ui.label(&r.outcome);
                } else {
                    ui.colored_label(ui.visuals().warn_fg_color, &r.outcome);
                }
                // Labels come from disks; the summary may quote an error.
                ui.label(shown(&r.disks));
                ui.label(&r.from);
                ui.label(&r.took);
                ui.label(shown(&r.summary));
                ui.end_row();
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::catalog::HistoryDisk;

    #[test]
    fn a_row_says_what_ran_where_from_and_how_it_ended() {
        let e = HistoryEntry {
            id: 1,
            kind: "sync".into(),
            front_end: "agent".into(),
            pid: 1,
            started_at: 1000,
            finished_at: Some(1090),
            outcome: JobEnd::Incomplete,
            disks: vec![HistoryDisk {
                id: uuid::Uuid::nil(),
                label: "Blue WD".into(),
            }],
            files: 3,
            bytes: 30,
            warnings: 1,
            summary: "Blue WD: copied 3 files".into(),
        };
        let r = row(&e, 2000);
        assert_eq!(r.what, "Sync");
        assert_eq!(r.outcome, "done, with problems");
        assert!(!r.ok);
        assert_eq!(r.disks, "Blue WD");
        assert_eq!(r.from, "in the background");
        assert_eq!(r.took, human::duration(std::time::Duration::from_secs(90)));
    }
}
