//! `coffer history`: every job the window, the command line and the agent
//! ran, newest first, as the catalog's history records them.

use std::fmt::Write as _;

use coffer_core::human;
use coffer_core::jobs::history::{FrontEnd, JobKind, disk_names, outcome_words};
use serde_json::json;

use super::ctx::{Ctx, Done};
use super::shown;

pub(super) fn history(ctx: &Ctx, limit: usize) -> anyhow::Result<Done> {
    if !ctx.paths.catalog_file().exists() {
        return Ok(Done::ok(
            json!({"jobs": []}),
            "Nothing has run on this computer yet.\n".into(),
        ));
    }
    let jobs = ctx.catalog()?.history(limit)?;
    let mut text = String::new();
    if jobs.is_empty() {
        text.push_str("Nothing has run on this computer yet.\n");
    }
    for e in &jobs {
        let took = e
            .finished_at
            .map(|f| {
                format!(
                    " in {}",
                    human::duration(std::time::Duration::from_secs(
                        f.saturating_sub(e.started_at) as u64
                    ))
                )
            })
            .unwrap_or_default();
        let disks = disk_names(e);
        let _ = writeln!(
            text,
            "{}  {} {}{}, from {}{took}{}",
            human::time(e.started_at),
            JobKind::words(&e.kind),
            outcome_words(e.outcome),
            if disks.is_empty() {
                String::new()
            } else {
                format!(" on {}", human::escape(&disks))
            },
            FrontEnd::words(&e.front_end),
            if e.summary.is_empty() {
                String::new()
            } else {
                format!("\n    {}", human::escape(&e.summary))
            }
        );
    }
    Ok(Done::ok(
        shown::value(ctx.json, || Ok(json!({"jobs": jobs})))?,
        text,
    ))
}
