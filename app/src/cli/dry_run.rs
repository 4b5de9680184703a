//! `coffer restore --dry-run` and `coffer archive restore --dry-run`: a
//! restore's plan in plain words, nothing written. The exit code is a
//! restore's: 0 when the plan would restore everything asked for, 3 when
//! disks are missing for part of it (an archive plan that fails, for a
//! missing volume or a conflict, fails as the restore would).

use std::fmt::Write as _;

use coffer_core::archive::ArchivePlan;
use coffer_core::human;
use coffer_core::restore::{self, RestorePlan, Then};
use coffer_core::task::Warning;
use serde_json::json;

use super::Exit;
use super::ctx::Done;

/// Most paths listed per kind; the rest are counted.
const LISTED: usize = 20;

pub(super) fn done(plan: &RestorePlan, warnings: Vec<Warning>) -> Done {
    shown(plan, text(plan), plan.complete(), warnings)
}

/// A plan as the command's result: its JSON, its words, and exit 0 only
/// when it is `complete` and nothing was warned of.
fn shown(
    plan: &impl serde::Serialize,
    text: String,
    complete: bool,
    warnings: Vec<Warning>,
) -> Done {
    let exit = if complete && warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    Done {
        value: json!({ "dry_run": true, "plan": plan }),
        text,
        warnings,
        exit,
    }
}

/// The plan: its summary line, then what it rests on, one line each.
fn text(plan: &RestorePlan) -> String {
    let mut t = format!("{}\n", plan.summary());
    let _ = writeln!(
        t,
        "  from snapshot {} ({})",
        plan.snapshot,
        human::time(plan.snapshot_time)
    );
    if !plan.dest_exists {
        let _ = writeln!(
            t,
            "  {} does not exist yet: it would be made",
            human::path(&plan.dest)
        );
    }
    for d in &plan.read_from {
        let _ = writeln!(
            t,
            "  read from disk \"{}\": {}, {}",
            human::escape(&d.label),
            human::count(d.files, "file"),
            human::bytes(d.bytes)
        );
    }
    if plan.links > 0 {
        let _ = writeln!(
            t,
            "  {} made as hard links of another",
            human::count(plan.links, "file")
        );
    }
    for (i, a) in plan.at_dest.iter().enumerate() {
        if i == LISTED {
            let _ = writeln!(
                t,
                "  and {} more existing paths",
                plan.at_dest.len() - LISTED
            );
            break;
        }
        let path = human::path(&a.path);
        let _ = match &a.then {
            Then::Kept => writeln!(t, "  {path} exists and would be left as it is"),
            Then::Replaced => writeln!(t, "  {path} exists and would be replaced"),
            Then::Beside(to) => writeln!(
                t,
                "  {path} exists; the restored file would go beside it, to {}",
                human::path(to)
            ),
        };
    }
    let beside: Vec<_> = plan
        .at_dest
        .iter()
        .filter_map(|a| match &a.then {
            Then::Beside(to) => Some(to),
            _ => None,
        })
        .collect();
    for (from, to) in plan.renamed.iter().filter(|(_, to)| !beside.contains(&to)) {
        let _ = writeln!(
            t,
            "  {} would be renamed to {}",
            human::path(from),
            human::path(to)
        );
    }
    for n in &plan.plug_next {
        // The advice names the disk by its label.
        let _ = writeln!(t, "  {}", human::escape(&restore::plug_in_next(n)));
    }
    if !plan.unavailable.is_empty() {
        let _ = writeln!(
            t,
            "  {} on no known disk: {}",
            human::count(plan.unavailable.len() as u64, "file"),
            plan.unavailable
                .iter()
                .take(LISTED)
                .map(|p| human::path(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for line in plan.not_held.lines(&plan.file_system) {
        let _ = writeln!(t, "  {line}");
    }
    t.push_str("Nothing was written (--dry-run)\n");
    t
}

/// An archive restore's plan (every path of it is there, or planning failed).
pub(super) fn archive_done(plan: &ArchivePlan, warnings: Vec<Warning>) -> Done {
    shown(plan, archive_text(plan), true, warnings)
}

fn archive_text(plan: &ArchivePlan) -> String {
    let mut t = format!(
        "Would restore archive {}: {} ({}), {}, {} into {}\n",
        plan.sequence,
        human::count(plan.files, "file"),
        human::bytes(plan.bytes),
        human::count(plan.dirs, "folder"),
        human::count(plan.symlinks, "symlink"),
        human::path(&plan.dest)
    );
    if plan.dumps > 0 {
        let _ = writeln!(t, "  and {}", human::count(plan.dumps, "dump"));
    }
    if !plan.dest_exists {
        let _ = writeln!(
            t,
            "  {} does not exist yet: it would be made",
            human::path(&plan.dest)
        );
    }
    let room = match plan.free {
        Some(free) => format!("{} of {} free", human::bytes(plan.room), human::bytes(free)),
        None => human::bytes(plan.room),
    };
    let _ = writeln!(t, "  the files take {room}");
    for p in &plan.read {
        let _ = writeln!(t, "  read {}", human::path(p));
    }
    for (i, p) in plan.replaced.iter().enumerate() {
        if i == LISTED {
            let _ = writeln!(t, "  and {} more replaced", plan.replaced.len() - LISTED);
            break;
        }
        let _ = writeln!(t, "  {} exists and would be replaced", human::path(p));
    }
    if plan.kept > 0 {
        let _ = writeln!(
            t,
            "  {} already there as the archive holds them (folders, same symlinks)",
            human::count(plan.kept, "path")
        );
    }
    t.push_str("Nothing was written (--dry-run)\n");
    t
}
