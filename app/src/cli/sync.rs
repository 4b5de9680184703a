//! `coffer scan`, `coffer sync`, `coffer status` and `coffer verify`: thin
//! over the job service (`coffer_core::jobs`), which holds how they run.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use coffer_core::jobs::{FrontEnd, JobKind};
use coffer_core::volumes::MountSource;
use coffer_core::{Catalog, human, jobs, redundancy, scan, sync};
use serde_json::json;

use super::ctx::{Ctx, Done, settle};
use super::{Exit, progress, shown};

fn scan_text(r: &scan::Report) -> String {
    if r.new_snapshot {
        format!(
            "Snapshot {}: {}, {}; {} added, {} changed, {} removed, {} moved; read {} ({})\n",
            r.snapshot,
            human::count(r.files, "file"),
            human::bytes(r.bytes),
            r.added,
            r.changed,
            r.removed,
            r.moved,
            human::count(r.hashed_files, "file"),
            human::bytes(r.hashed_bytes)
        )
    } else {
        format!(
            "No changes since snapshot {} ({}, {})\n",
            r.snapshot,
            human::count(r.files, "file"),
            human::bytes(r.bytes)
        )
    }
}

pub(super) fn scan_cmd(ctx: &Ctx) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let paths = ctx.paths.clone();
    let outcome = progress::run("scan", ctx.json, move |p| {
        jobs::record(&paths, FrontEnd::Cli, JobKind::Scan, &[], p, |p| {
            let mut cat = Catalog::open(&paths.catalog_file())?;
            scan::scan(&mut cat, &cfg.profile, p)
        })
    });
    let (report, warnings) = settle(outcome)?;
    let exit = if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    Ok(Done {
        value: json!(report),
        text: scan_text(&report),
        warnings,
        exit,
    })
}

pub(super) fn sync_cmd(ctx: &Ctx, a: super::SyncArgs) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let mounts = MountSource::from_env();
    // Without a name: every connected disk of the set, the bucket disks
    // that answer among them; one that does not is said, not an error.
    let mut away = Vec::new();
    let roots = match a.disk.as_deref() {
        Some(url) if url.starts_with("s3://") => vec![std::path::PathBuf::from(url)],
        None => {
            let (roots, gone) =
                jobs::disks::every_connected(&ctx.catalog()?, &mounts, cfg.profile.set_id)?;
            away = gone;
            roots
        }
        name => jobs::disks::choose(&ctx.catalog()?, &mounts, name, cfg.profile.set_id)?,
    };
    // The other connected disks of the set may serve as sources.
    let mut asked = roots.clone();
    asked.extend(
        jobs::disks::of_set(&mounts, &ctx.catalog()?, cfg.profile.set_id)?
            .into_iter()
            .map(|(_, r)| r),
    );
    let passphrases = ctx.passphrases(&asked)?;
    let job = jobs::SyncJob {
        roots,
        scan: !a.no_scan,
        opts: sync::Options {
            dry_run: a.dry_run,
            ..sync::Options::default()
        },
        mounts,
        front: FrontEnd::Cli,
        passphrases,
    };
    let paths = ctx.paths.clone();
    let outcome = progress::run("sync", ctx.json, move |p| {
        jobs::sync(&paths, &cfg.profile, &job, p)
    });
    let (report, warnings) = settle(outcome)?;
    let scanned = report.scan.as_ref();
    let reports = &report.disks;
    let mut text = String::new();
    for (url, why) in &away {
        let _ = writeln!(
            text,
            "{} did not answer ({}); not synced this time",
            human::path(url),
            human::escape(why)
        );
    }
    if let Some(b) = &report.before {
        let _ = writeln!(text, "Ran the command before the sync ({:.1} s)", b.seconds);
    }
    for d in &report.dumps {
        let _ = writeln!(
            text,
            "Dump \"{}\" written to {}",
            human::escape(&d.name),
            human::path(&d.path)
        );
    }
    text.push_str(&scanned.map(scan_text).unwrap_or_default());
    let mut exit = if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    for r in reports {
        if r.dry_run {
            let _ = writeln!(
                text,
                "Plan for \"{}\": copy {} ({}), delete {} ({}){}",
                human::escape(&r.label),
                human::count(r.plan.copy_files, "file"),
                human::bytes(r.plan.copy_bytes),
                human::count(r.plan.delete_files, "file"),
                human::bytes(r.plan.delete_bytes),
                if r.plan.short_files > 0 {
                    format!(
                        "; {} ({}) will not fit",
                        human::count(r.plan.short_files, "file"),
                        human::bytes(r.plan.short_bytes)
                    )
                } else {
                    String::new()
                }
            );
            for s in r.plan.evictions() {
                if let coffer_core::plan::Step::Delete { hash, size, reason } = s {
                    let _ = writeln!(
                        text,
                        "  will delete {hash} ({}, {reason:?})",
                        human::bytes(*size)
                    );
                }
            }
        } else if r.up_to_date {
            let _ = writeln!(text, "\"{}\" {}", human::escape(&r.label), r.summary());
        } else {
            let _ = writeln!(
                text,
                "Synced \"{}\": {}",
                human::escape(&r.label),
                r.summary()
            );
        }
        if let Some(m) = r.shortfall_message() {
            // The sentence embeds the disk's label and mount path.
            let m = human::escape(&m);
            let _ = writeln!(text, "{m}");
            // Said again on stderr for a script that reads stdout away;
            // a person at the terminal reads it once.
            if !ctx.json && !std::io::stdout().is_terminal() {
                eprintln!("coffer: {m}");
            }
        }
        if !r.complete() {
            exit = Exit::Incomplete;
        }
    }
    if let Some(a) = &report.after {
        let _ = writeln!(
            text,
            "Ran the command after the sync{}",
            if a.ok() {
                String::new()
            } else {
                format!(": it failed ({})", human::escape(&a.why()))
            }
        );
    }
    if !report.complete() {
        exit = Exit::Incomplete;
    }
    Ok(Done {
        value: json!(report),
        text,
        warnings,
        exit,
    })
}

pub(super) fn status(ctx: &Ctx) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let cat = ctx.catalog()?;
    let st = redundancy::status(&cat, &cfg.profile)?;
    let now = coffer_core::now();
    // The headline may name a disk by its label.
    let mut text = format!("{}\n", human::escape(&st.headline));
    if let Some(s) = &st.snapshot {
        let _ = writeln!(
            text,
            "Latest snapshot {} taken {}",
            s.id,
            human::ago(s.started_at, now)
        );
    }
    if let Some(h) = &st.history_from {
        let _ = writeln!(
            text,
            "History on the disks reaches back to snapshot {} ({})",
            h.id,
            human::time(h.started_at)
        );
    }
    text.push_str("\nFolders (files by copies: 0 / 1 / 2 / 3+):\n");
    for f in &st.sources {
        let _ = writeln!(
            text,
            "  {}  {}, {}; {} / {} / {} / {}; {} at risk (below {})",
            human::path(&f.path),
            human::count(f.total.files, "file"),
            human::bytes(f.total.bytes),
            f.by_copies[0].files,
            f.by_copies[1].files,
            f.by_copies[2].files,
            f.by_copies[3].files,
            human::bytes(f.at_risk.bytes),
            human::count(f.wanted.into(), "copy")
        );
    }
    for (f, h) in st.sources.iter().zip(&st.holdings) {
        if let Some(what) = h.described() {
            let _ = writeln!(text, "  {} also holds {what}", human::path(&f.path));
        }
    }
    if !st.limits.is_empty() {
        text.push_str("\nWhat a disk cannot hold:\n");
        for l in &st.limits {
            // The message names the disk by its label.
            let _ = writeln!(
                text,
                "  {}: {}",
                human::path(&l.source),
                human::escape(&l.message)
            );
        }
    }
    text.push_str("\nIf a disk were lost:\n");
    for d in &st.disks {
        if d.lost.files == 0 {
            let _ = writeln!(text, "  {}: nothing lost", human::escape(&d.disk.label));
        } else {
            let _ = writeln!(
                text,
                "  {}: {} ({}) would have no copy left",
                human::escape(&d.disk.label),
                human::count(d.lost.files, "file"),
                human::bytes(d.lost.bytes)
            );
        }
    }
    Ok(Done::ok(
        shown::value(ctx.json, || serde_json::to_value(&st))?,
        text,
    ))
}

pub(super) fn verify_cmd(ctx: &Ctx, a: super::VerifyArgs) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let roots = match a.disk.as_deref() {
        Some(url) if url.starts_with("s3://") => vec![std::path::PathBuf::from(url)],
        name => jobs::disks::choose(
            &ctx.catalog()?,
            &MountSource::from_env(),
            name,
            cfg.profile.set_id,
        )?,
    };
    let slice = jobs::Slice {
        limit: a.limit,
        budget: a.budget.map(Into::into),
    };
    let paths = ctx.paths.clone();
    let pass = ctx.passphrases(&roots)?;
    let outcome = progress::run("verify", ctx.json, move |p| {
        roots
            .iter()
            .map(|r| jobs::verify(&paths, &cfg.profile, r, slice, FrontEnd::Cli, &pass, p))
            .collect::<coffer_core::Result<Vec<_>>>()
    });
    let (reports, warnings) = settle(outcome)?;
    let mut text = String::new();
    let mut exit = Exit::Ok;
    for v in &reports {
        let r = &v.report;
        let _ = writeln!(
            text,
            "Verified \"{}\": {} objects ({}), {} bad, {} missing",
            human::escape(&v.label),
            r.checked,
            human::bytes(r.bytes),
            r.bad.len(),
            r.missing
        );
        if !r.bad.is_empty() || r.missing > 0 || !r.strays.is_empty() {
            exit = Exit::Failed;
            let _ = writeln!(
                text,
                "Bad copies were moved aside; the next sync copies them again from the source or another disk"
            );
        }
    }
    let value = json!(
        reports
            .iter()
            .map(|v| json!({"label": v.label, "report": v.report}))
            .collect::<Vec<_>>()
    );
    if exit == Exit::Ok && !warnings.is_empty() {
        exit = Exit::Incomplete;
    }
    Ok(Done {
        value,
        text,
        warnings,
        exit,
    })
}
