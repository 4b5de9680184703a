//! Restoring: `coffer restore` (with `--wait` and `--dry-run`), and the
//! helpers the browsing commands share with it (catalog paths, `--at`, the
//! workstation catalog).

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use coffer_core::jobs::disks::Readers;
use coffer_core::restore::{self, At, Existing, Options};
use coffer_core::volumes::{self, MountSource};
use coffer_core::{Catalog, human, jobs};
use serde_json::json;

use super::ctx::{Ctx, Done, settle};
use super::{Exit, RestoreArgs, dry_run, progress};

/// A path as the catalog names it: absolute, with `.` and `..` resolved
/// lexically (the catalog holds what was, not what is on disk now).
pub(super) fn catalog_path(p: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(p).with_context(|| format!("cannot read {}", p.display()))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// `--at`: a snapshot id, or a time.
pub(super) fn parse_at(s: Option<&str>) -> anyhow::Result<At> {
    Ok(match s {
        None => At::Latest,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(id) => At::Snapshot(id),
            Err(_) => At::Time(human::parse_when(s, coffer_core::now())?),
        },
    })
}

/// The workstation catalog, without creating one where there is none.
pub(super) fn existing_catalog(ctx: &Ctx) -> anyhow::Result<Catalog> {
    if !ctx.paths.catalog_file().exists() {
        bail!(
            "no catalog at {}: nothing was backed up from this computer yet; to restore from a disk alone use `coffer restore --from-disk DISK --to FOLDER`",
            ctx.paths.catalog_file().display()
        );
    }
    ctx.catalog()
}

// ----------------------------------------------------------------- restore

/// With `--dumps`, the paths of the dumps the catalog recorded.
fn with_dumps(cat: &Catalog, dumps_only: bool, opts: &Options) -> coffer_core::Result<Options> {
    let mut o = opts.clone();
    if dumps_only {
        o.paths = jobs::dumps::recorded(cat)
            .into_iter()
            .map(|d| d.path)
            .collect();
        if o.paths.is_empty() {
            return Err(coffer_core::Error::Failed(
                "this catalog records no dump commands; add one with `coffer dump add`".into(),
            ));
        }
    }
    Ok(o)
}

/// What one run gave: a restore's report, or with `--dry-run` its plan.
enum Ran {
    Report(Box<restore::Report>),
    Plan(Box<restore::RestorePlan>),
}

/// One run over the disks connected now: what to print, and the disks to
/// plug in next (from the typed report, for `--wait`).
fn run_once(
    ctx: &Ctx,
    a: &RestoreArgs,
    opts: &Options,
) -> anyhow::Result<(Done, Vec<(uuid::Uuid, String)>)> {
    let opts = opts.clone();
    let from_disk = a.from_disk.clone();
    let dumps_only = a.dumps;
    let catalog_path = ctx.paths.catalog_file();
    if from_disk.is_none() && !catalog_path.exists() {
        existing_catalog(ctx)?;
    }
    // The workstation catalog's own backup set, for moving bad copies aside.
    let set = match &from_disk {
        Some(_) => None,
        None => Some(ctx.config()?.profile.set_id),
    };
    // The disks a restore may read from, asked for before the job starts.
    let mut asked: Vec<std::path::PathBuf> = from_disk.iter().cloned().collect();
    if from_disk.is_none() && catalog_path.exists() {
        let cat = Catalog::open(&catalog_path)?;
        let known = cat.disks()?;
        asked.extend(
            coffer_core::volumes::present(&MountSource::from_env(), &known)
                .into_iter()
                .filter(|v| v.identity.is_ok())
                .map(|v| v.root),
        );
        asked.extend(jobs::bucket::known_urls(&cat)?);
    }
    let pass = ctx.passphrases(&asked)?;
    let paths = ctx.paths.clone();
    // Recorded in this computer's history (when it has a catalog).
    let recorded = move |disks: &[coffer_core::Disk],
                         p: &coffer_core::Progress,
                         job: &mut dyn FnMut(
        &coffer_core::Progress,
    ) -> coffer_core::Result<restore::Report>| {
        let held = jobs::history::held(disks);
        jobs::record(
            &paths,
            jobs::FrontEnd::Cli,
            jobs::JobKind::Restore,
            &held,
            p,
            job,
        )
    };
    let dry_run = a.dry_run;
    // A dry run plans and stops: nothing is written, not even to history.
    let job = move |cat: &mut Catalog,
                    set: Option<uuid::Uuid>,
                    sources: &[&dyn restore::Source],
                    disks: &[coffer_core::Disk],
                    opts: &Options,
                    p: &coffer_core::Progress|
          -> coffer_core::Result<Ran> {
        if dry_run {
            return Ok(Ran::Plan(Box::new(restore::plan(
                cat, set, sources, opts, p,
            )?)));
        }
        recorded(disks, p, &mut |p| {
            restore::restore_from(cat, set, sources, opts, p)
        })
        .map(|r| Ran::Report(Box::new(r)))
    };
    let outcome = progress::run("restore", ctx.json, move |p| match &from_disk {
        Some(root) if jobs::bucket::is_bucket(root) => {
            let bucket = jobs::bucket::open_bucket(&root.to_string_lossy(), &pass, None)?;
            let (mut cat, _tmp, problems) = restore::open_bucket_catalog(&bucket)?;
            let opts = with_dumps(&cat, dumps_only, &opts)?;
            for problem in problems {
                p.notice(format!(
                    "{problem}; the bucket's other catalog copy was used"
                ));
            }
            let disks = jobs::disks::open_known(&cat, &MountSource::from_env(), None, &pass)?;
            let mut sources: Vec<&dyn restore::Source> = vec![&bucket];
            sources.extend(disks.iter().map(|d| d as &dyn restore::Source));
            let r = job(&mut cat, None, &sources, &disks, &opts, p)?;
            Ok((r, jobs::dumps::recorded(&cat)))
        }
        Some(root) => {
            let disk = jobs::disks::open(root, &pass)?;
            let (mut cat, _tmp, problems) = restore::open_disk_catalog(&disk)?;
            drop(disk);
            let opts = with_dumps(&cat, dumps_only, &opts)?;
            for problem in problems {
                p.notice(format!("{problem}; the disk's other catalog copy was used"));
            }
            let readers = Readers::open(&cat, &MountSource::from_env(), Some(root), &pass)?;
            let r = job(&mut cat, None, &readers.sources(), &readers.disks, &opts, p)?;
            Ok((r, jobs::dumps::recorded(&cat)))
        }
        None => {
            let mut cat = Catalog::open(&catalog_path)?;
            let readers = Readers::open(&cat, &MountSource::from_env(), None, &pass)?;
            let opts = with_dumps(&cat, dumps_only, &opts)?;
            let r = job(&mut cat, set, &readers.sources(), &readers.disks, &opts, p)?;
            Ok((r, jobs::dumps::recorded(&cat)))
        }
    });
    let ((ran, dumps), warnings) = settle(outcome)?;
    let r = match ran {
        Ran::Report(r) => *r,
        Ran::Plan(plan) => return Ok((dry_run::done(&plan, warnings), Vec::new())),
    };
    let mut text = format!(
        "Restored {} ({}), {}, {} to {} from snapshot {} ({})\n",
        human::count(r.files, "file"),
        human::bytes(r.bytes),
        human::count(r.dirs, "folder"),
        human::count(r.symlinks, "symlink"),
        human::path(&r.dest),
        r.snapshot,
        human::time(r.snapshot_time)
    );
    if r.links > 0 {
        let _ = writeln!(
            text,
            "{} of them made as hard links of another",
            human::count(r.links, "file")
        );
    }
    if r.special > 0 {
        let _ = writeln!(
            text,
            "Made {}",
            human::count(r.special, "FIFO or device node")
        );
    }
    if r.already_done > 0 {
        let _ = writeln!(
            text,
            "{} already there",
            human::count(r.already_done, "file")
        );
    }
    if !r.skipped_existing.is_empty() {
        let _ = writeln!(
            text,
            "Left {} alone",
            human::count(r.skipped_existing.len() as u64, "existing path")
        );
    }
    for (from, to) in &r.renamed {
        let _ = writeln!(text, "Renamed {} to {}", human::path(from), human::path(to));
    }
    for b in &r.bad_copies {
        let _ = writeln!(
            text,
            "Damaged copy of {} on disk \"{}\"{}",
            human::path(&b.path),
            human::escape(&b.disk),
            if b.quarantined {
                " (moved aside and removed from the catalog)"
            } else {
                ""
            }
        );
    }
    if dumps_only {
        for d in &dumps {
            let Some(name) = d.path.file_name() else {
                continue;
            };
            let back = r.dest.join(name);
            let _ = writeln!(
                text,
                "Dump \"{}\" restored to {}",
                human::escape(&d.name),
                human::path(&back)
            );
            match &d.load_command {
                Some(load) => {
                    let _ = writeln!(
                        text,
                        "  load it back with: {} < {}",
                        human::escape(load),
                        human::path(&back)
                    );
                }
                None => {
                    let _ = writeln!(text, "  (no load command was recorded for it)");
                }
            }
        }
    }
    let mut exit = if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    if !r.complete() {
        exit = Exit::Incomplete;
        let _ = writeln!(
            text,
            "Incomplete: {} ({}) still missing",
            human::count(r.missing_files, "file"),
            human::bytes(r.missing_bytes)
        );
        for n in &r.plug_next {
            // The advice names the disk by its label.
            let _ = writeln!(text, "  {}", human::escape(&restore::plug_in_next(n)));
        }
        if !r.unavailable.is_empty() {
            let _ = writeln!(
                text,
                "  {} on no known disk: {}",
                human::count(r.unavailable.len() as u64, "file"),
                r.unavailable
                    .iter()
                    .take(10)
                    .map(|p| human::path(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let next = r
        .plug_next
        .iter()
        .map(|n| (n.disk_id, n.label.clone()))
        .collect();
    Ok((
        Done {
            value: json!(r),
            text,
            warnings,
            exit,
        },
        next,
    ))
}

pub(super) fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<Done> {
    if a.from_disk.is_some() && a.to.is_none() {
        bail!(
            "--from-disk needs --to FOLDER: a catalog read from a disk does not choose where files are written"
        );
    }
    let within = if a.to.is_none() {
        Some(
            coffer_core::Config::load_or_default(&ctx.paths)?
                .profile
                .basepath,
        )
    } else {
        None
    };
    let mut paths = Vec::new();
    for p in &a.paths {
        paths.push(catalog_path(p)?);
    }
    let opts = Options {
        at: Some(parse_at(a.at.as_deref())?),
        paths,
        dest: a
            .to
            .as_deref()
            .map(|p| std::path::absolute(p).with_context(|| format!("cannot read {}", p.display())))
            .transpose()?,
        existing: if a.overwrite {
            Existing::Overwrite
        } else if a.skip_existing {
            Existing::Skip
        } else if a.keep_both {
            Existing::KeepBoth
        } else {
            Existing::Refuse
        },
        within,
        case_insensitive: a.case_insensitive,
        rename_collisions: a.rename_collisions,
        keep_special_bits: a.keep_special_bits,
    };
    let mut text = String::new();
    loop {
        let (mut done, next) = run_once(ctx, &a, &opts)?;
        text.push_str(&done.text);
        if !a.wait || done.exit != Exit::Incomplete || next.is_empty() {
            done.text = text;
            return Ok(done);
        }
        if !ctx.json {
            eprintln!(
                "coffer: waiting for {} to be plugged in (Ctrl-C to stop)…",
                next.iter()
                    .map(|(_, l)| format!("\"{}\"", human::escape(l)))
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
        }
        wait_for_any(&next);
    }
}

/// Polls the mounted disks until one of `wanted` is present.
fn wait_for_any(wanted: &[(uuid::Uuid, String)]) {
    let source = MountSource::from_env();
    loop {
        let present = volumes::present(&source, &[]);
        if present.iter().any(|v| {
            v.identity
                .as_ref()
                .is_ok_and(|i| wanted.iter().any(|(id, _)| *id == i.disk_id))
        }) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
