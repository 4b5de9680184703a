//! What each subcommand does, and how its result is printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use coffer_core::config::{Config, Paths, Source};
use coffer_core::task::{Outcome, Warning};
use coffer_core::volumes::{self, MountSource};
use coffer_core::{Catalog, Disk, disk, human, io, redundancy, scan, sync, verify};
use serde_json::{Value, json};

use super::{Cli, Command, DiskCmd, Exit, SourceCmd, progress, shown};

/// A finished command: what to print and how to exit.
pub(super) struct Done {
    pub(super) value: Value,
    pub(super) text: String,
    pub(super) warnings: Vec<Warning>,
    pub(super) exit: Exit,
}

impl Done {
    pub(super) fn ok(value: Value, text: String) -> Done {
        Done {
            value,
            text,
            warnings: Vec::new(),
            exit: Exit::Ok,
        }
    }
}

pub(super) struct Ctx {
    pub(super) json: bool,
    pub(super) paths: Paths,
}

impl Ctx {
    pub(super) fn config(&self) -> anyhow::Result<Config> {
        let cfg = Config::load_or_default(&self.paths)?;
        if !self.paths.config_file().exists() {
            // The backup set's id must not change between runs.
            cfg.save(&self.paths)?;
        }
        Ok(cfg)
    }

    pub(super) fn catalog(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::open(&self.paths.catalog_file())?)
    }
}

pub fn dispatch(cli: Cli) -> Exit {
    let json = cli.json;
    let result = Paths::from_env()
        .map_err(anyhow::Error::from)
        .and_then(|paths| {
            let ctx = Ctx { json, paths };
            match cli.command {
                Command::Source(SourceCmd::Add(a)) => source_add(&ctx, a),
                Command::Source(SourceCmd::Remove { path }) => source_remove(&ctx, &path),
                Command::Source(SourceCmd::List) => source_list(&ctx),
                Command::Disk(DiskCmd::Init(a)) => disk_init(&ctx, a),
                Command::Disks => disks(&ctx),
                Command::Scan => scan_cmd(&ctx),
                Command::Sync(a) => sync_cmd(&ctx, a),
                Command::Status => status(&ctx),
                Command::Verify(a) => verify_cmd(&ctx, a),
                Command::Archive(a) => super::archive::archive(&ctx, a),
                Command::Dump(a) => super::archive::dump(&ctx, a),
                Command::Snapshots => super::restore::snapshots(&ctx),
                Command::Ls(a) => super::restore::ls(&ctx, a),
                Command::Find(a) => super::restore::find(&ctx, a),
                Command::Versions { path } => super::restore::versions(&ctx, &path),
                Command::Whereis { path } => super::restore::whereis(&ctx, &path),
                Command::Restore(a) => super::restore::restore(&ctx, a),
                Command::Completions { shell } => {
                    super::assets::completions_cmd(shell).map(|(value, text)| Done::ok(value, text))
                }
                Command::Man(a) => {
                    super::assets::man_cmd(a).map(|(value, text)| Done::ok(value, text))
                }
            }
        });
    match result {
        Ok(done) => {
            for w in &done.warnings {
                log::warn!("{w}");
            }
            if json {
                let out = json!({
                    "ok": done.exit == Exit::Ok,
                    "exit": done.exit as u8,
                    "result": done.value,
                    "warnings": done.warnings.iter().map(|w| json!({"path": w.path.as_deref().map(shown::json_path), "message": w.message})).collect::<Vec<_>>(),
                });
                println!("{}", shown::json(&out));
            } else if !done.text.is_empty() {
                shown::print_text(&done.text);
            }
            done.exit
        }
        Err(e) => {
            // The log escapes its lines itself.
            log::error!("{e:#}");
            let exit = exit_for(&e);
            if json {
                let out = json!({"ok": false, "exit": exit as u8, "error": format!("{e:#}")});
                println!("{}", shown::json(&out));
            } else {
                eprintln!("coffer: {}", shown::error(&e));
            }
            exit
        }
    }
}

fn exit_for(e: &anyhow::Error) -> Exit {
    match e.downcast_ref::<coffer_core::Error>() {
        Some(coffer_core::Error::Cancelled) => Exit::Cancelled,
        Some(ce) if ce.is_disk_in_use() => Exit::DiskInUse,
        Some(coffer_core::Error::Disk(d)) if d.is_full() => Exit::Incomplete,
        _ => match e.downcast_ref::<disk::Error>() {
            Some(disk::Error::InUse { .. }) => Exit::DiskInUse,
            _ => Exit::Failed,
        },
    }
}

/// Turns a job's outcome into a result, keeping its warnings.
pub(super) fn settle<T>(outcome: Outcome<T>) -> anyhow::Result<(T, Vec<Warning>)> {
    match outcome {
        Outcome::Completed { value, warnings } => Ok((value, warnings)),
        Outcome::Cancelled => Err(coffer_core::Error::Cancelled.into()),
        Outcome::Failed(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------------ sources

fn source_add(ctx: &Ctx, a: super::SourceAdd) -> anyhow::Result<Done> {
    let mut cfg = ctx.config()?;
    let src = cfg
        .profile
        .add_source(Source {
            path: a.path,
            excludes: a.excludes,
            copies: a.copies,
            priority: a.priority,
            outside_basepath: a.outside_basepath,
        })?
        .clone();
    cfg.save(&ctx.paths)?;
    let copies = src.copies.unwrap_or(cfg.profile.copies);
    let text = format!(
        "Added {} ({copies} copies, priority {})\n",
        human::path(&src.path),
        src.priority
    );
    Ok(Done::ok(json!({"source": src}), text))
}

fn source_remove(ctx: &Ctx, path: &Path) -> anyhow::Result<Done> {
    let mut cfg = ctx.config()?;
    let src = cfg.profile.remove_source(path)?;
    cfg.save(&ctx.paths)?;
    Ok(Done::ok(
        json!({"removed": src}),
        format!(
            "Removed {}; its files stay restorable from older snapshots\n",
            human::path(&src.path)
        ),
    ))
}

fn source_list(ctx: &Ctx) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let mut text = format!("Storage basepath: {}\n", human::path(&cfg.profile.basepath));
    if cfg.profile.sources.is_empty() {
        text.push_str("No sources yet: coffer source add PATH\n");
    }
    for s in &cfg.profile.sources {
        let _ = write!(
            text,
            "{}  copies {}  priority {}",
            human::path(&s.path),
            s.copies.unwrap_or(cfg.profile.copies),
            s.priority
        );
        if !s.excludes.is_empty() {
            let _ = write!(text, "  excludes {}", human::escape(&s.excludes.join(" ")));
        }
        text.push('\n');
    }
    Ok(Done::ok(
        json!({"basepath": cfg.profile.basepath, "copies": cfg.profile.copies, "sources": cfg.profile.sources}),
        text,
    ))
}

// -------------------------------------------------------------------- disks

fn disk_init(ctx: &Ctx, a: super::DiskInit) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let quota = a.quota.as_deref().map(human::parse_size).transpose()?;
    let mut d = Disk::init_with(
        &a.path,
        &a.label,
        cfg.profile.set_id,
        quota,
        io::real(),
        a.force,
    )?;
    if let Some(m) = a.max_file_size.as_deref() {
        d.identity.max_file_size = Some(human::parse_size(m)?);
        d.claim(cfg.profile.set_id)?;
        d.write_identity()?;
        d.release();
    }
    let cat = ctx.catalog()?;
    cat.register(&d, Some(0))?;
    let text = format!(
        "Disk \"{}\" is ready at {}{}\nSync it with: coffer sync {}\n",
        human::escape(d.label()),
        human::path(d.root()),
        quota
            .map(|q| format!(" (quota {})", human::bytes(q)))
            .unwrap_or_default(),
        human::path(d.root())
    );
    Ok(Done::ok(
        json!({"identity": d.identity, "root": d.root()}),
        text,
    ))
}

fn disks(ctx: &Ctx) -> anyhow::Result<Done> {
    let cat = ctx.catalog()?;
    let known = cat.disks()?;
    let present = volumes::present(&MountSource::from_env(), &known);
    let now = coffer_core::now();
    let mut rows = Vec::new();
    let mut text = String::new();
    if known.is_empty() {
        text.push_str("No disks yet: coffer disk init PATH --label NAME\n");
    }
    for d in &known {
        let root = present
            .iter()
            .find(|v| v.identity.as_ref().is_ok_and(|i| i.disk_id == d.id))
            .map(|v| v.root.clone());
        let objects = cat.copies_on(d.id)?.len();
        let where_ = match &root {
            Some(r) => format!("connected at {}", human::path(r)),
            None => d
                .last_seen
                .map(|t| format!("last seen {}", human::ago(t, now)))
                .unwrap_or_else(|| "never seen".into()),
        };
        let _ = writeln!(
            text,
            "{}  {}\n    {} objects, {} used, {} free{}; last sync {}; last verify {}",
            human::escape(&d.label),
            where_,
            objects,
            human::bytes(d.used.unwrap_or(0)),
            d.free.map(human::bytes).unwrap_or_else(|| "?".into()),
            d.quota
                .map(|q| format!(" (quota {})", human::bytes(q)))
                .unwrap_or_default(),
            d.last_sync
                .map(|t| human::ago(t, now))
                .unwrap_or_else(|| "never".into()),
            d.last_verify
                .map(|t| human::ago(t, now))
                .unwrap_or_else(|| "never".into()),
        );
        rows.push(
            json!({"disk": d, "connected": root.is_some(), "root": root, "objects": objects}),
        );
    }
    let mut warnings = Vec::new();
    for v in &present {
        if let Err(e) = &v.identity {
            warnings.push(Warning {
                path: Some(v.root.clone()),
                message: e.to_string(),
            });
            let _ = writeln!(
                text,
                "Unreadable disk at {}: {}",
                human::path(&v.root),
                human::escape(&e.to_string())
            );
        }
    }
    let exit = if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    Ok(Done {
        value: json!({"disks": rows}),
        text,
        warnings,
        exit,
    })
}

/// Finds the disks a command should work on: a path, a label, or every
/// connected disk of this backup set.
fn resolve_disks(ctx: &Ctx, arg: Option<&str>, set_id: uuid::Uuid) -> anyhow::Result<Vec<PathBuf>> {
    if let Some(a) = arg {
        let p = Path::new(a);
        if p.is_dir() {
            return Ok(vec![p.to_path_buf()]);
        }
    }
    let cat = ctx.catalog()?;
    let present = volumes::present(&MountSource::from_env(), &cat.disks()?);
    let mut found = Vec::new();
    let mut labels = Vec::new();
    for v in &present {
        let Ok(id) = &v.identity else { continue };
        labels.push(id.label.clone());
        let wanted = match arg {
            Some(a) => id.label.eq_ignore_ascii_case(a),
            None => id.sets.contains(&set_id),
        };
        if wanted {
            found.push(v.root.clone());
        }
    }
    if found.is_empty() {
        match arg {
            Some(a) => bail!(
                "no connected disk is named or mounted at \"{a}\"{}",
                if labels.is_empty() {
                    String::new()
                } else {
                    format!(" (connected: {})", labels.join(", "))
                }
            ),
            None => bail!("no backup disk of this set is connected; plug one in or give its path"),
        }
    }
    Ok(found)
}

// ------------------------------------------------------------ scan and sync

fn scan_text(r: &scan::Report) -> String {
    if r.new_snapshot {
        format!(
            "Snapshot {}: {} files, {}; {} added, {} changed, {} removed, {} moved; read {} files ({})\n",
            r.snapshot,
            r.files,
            human::bytes(r.bytes),
            r.added,
            r.changed,
            r.removed,
            r.moved,
            r.hashed_files,
            human::bytes(r.hashed_bytes)
        )
    } else {
        format!(
            "No changes since snapshot {} ({} files, {})\n",
            r.snapshot,
            r.files,
            human::bytes(r.bytes)
        )
    }
}

fn scan_cmd(ctx: &Ctx) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let catalog_path = ctx.paths.catalog_file();
    let outcome = progress::run("scan", ctx.json, move |p| {
        let mut cat = Catalog::open(&catalog_path)?;
        scan::scan(&mut cat, &cfg.profile, p)
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

fn sync_cmd(ctx: &Ctx, a: super::SyncArgs) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let roots = resolve_disks(ctx, a.disk.as_deref(), cfg.profile.set_id)?;
    let catalog_path = ctx.paths.catalog_file();
    let opts = sync::Options {
        dry_run: a.dry_run,
        ..sync::Options::default()
    };
    let no_scan = a.no_scan;
    let outcome = progress::run("sync", ctx.json, move |p| {
        let mut cat = Catalog::open(&catalog_path)?;
        let mut disks = Vec::new();
        for r in &roots {
            disks.push(Disk::open(r, io::real())?);
        }
        let mut scanned = None;
        let mut reports = Vec::new();
        for i in 0..disks.len() {
            let (before, rest) = disks.split_at_mut(i);
            let (this, after) = rest
                .split_first_mut()
                .ok_or(coffer_core::Error::Panic("no disk".into()))?;
            let others: Vec<&Disk> = before.iter().chain(after.iter()).collect();
            // The scan goes with the first disk's sync: what it reads new is
            // copied to that disk on the same read.
            if i == 0 && !no_scan {
                let (s, r) = sync::scan_and_sync(&mut cat, &cfg.profile, this, &others, &opts, p)?;
                scanned = Some(s);
                reports.push(r);
            } else {
                reports.push(sync::sync(&mut cat, &cfg.profile, this, &others, &opts, p)?);
            }
        }
        if scanned.is_none() && !no_scan {
            scanned = Some(scan::scan(&mut cat, &cfg.profile, p)?);
        }
        Ok((scanned, reports))
    });
    let ((scanned, reports), warnings) = settle(outcome)?;
    let mut text = scanned.as_ref().map(scan_text).unwrap_or_default();
    let mut exit = if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    for r in &reports {
        if r.dry_run {
            let _ = writeln!(
                text,
                "Plan for \"{}\": copy {} files ({}), delete {} files ({}){}",
                human::escape(&r.label),
                r.plan.copy_files,
                human::bytes(r.plan.copy_bytes),
                r.plan.delete_files,
                human::bytes(r.plan.delete_bytes),
                if r.plan.short_files > 0 {
                    format!(
                        "; {} files ({}) will not fit",
                        r.plan.short_files,
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
            if !ctx.json {
                eprintln!("coffer: {m}");
            }
        }
        if !r.complete() {
            exit = Exit::Incomplete;
        }
    }
    Ok(Done {
        value: json!({"scan": scanned, "disks": reports}),
        text,
        warnings,
        exit,
    })
}

// ------------------------------------------------------------ status, verify

fn status(ctx: &Ctx) -> anyhow::Result<Done> {
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
            "  {}  {} files, {}; {} / {} / {} / {}; {} at risk (below {} copies)",
            human::path(&f.path),
            f.total.files,
            human::bytes(f.total.bytes),
            f.by_copies[0].files,
            f.by_copies[1].files,
            f.by_copies[2].files,
            f.by_copies[3].files,
            human::bytes(f.at_risk.bytes),
            f.wanted
        );
    }
    text.push_str("\nIf a disk were lost:\n");
    for d in &st.disks {
        if d.lost.files == 0 {
            let _ = writeln!(text, "  {}: nothing lost", human::escape(&d.disk.label));
        } else {
            let _ = writeln!(
                text,
                "  {}: {} files ({}) would have no copy left",
                human::escape(&d.disk.label),
                d.lost.files,
                human::bytes(d.lost.bytes)
            );
        }
    }
    Ok(Done::ok(
        shown::value(ctx.json, || serde_json::to_value(&st))?,
        text,
    ))
}

fn verify_cmd(ctx: &Ctx, a: super::VerifyArgs) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let roots = resolve_disks(ctx, a.disk.as_deref(), cfg.profile.set_id)?;
    let catalog_path = ctx.paths.catalog_file();
    let limit = a.limit;
    let profile = cfg.profile.clone();
    let set = cfg.profile.set_id;
    let outcome = progress::run("verify", ctx.json, move |p| {
        let mut cat = Catalog::open(&catalog_path)?;
        let mut out = Vec::new();
        for r in &roots {
            let mut d = Disk::open(r, Arc::clone(&io::real()))?;
            let rep = verify::verify(&mut cat, &mut d, set, limit, p)?;
            // Keep the disk's own catalog copy in step with what was found.
            sync::write_catalog_copy(&cat, &profile, &d)?;
            out.push((d.label().to_string(), rep));
        }
        Ok(out)
    });
    let (reports, warnings) = settle(outcome)?;
    let mut text = String::new();
    let mut exit = Exit::Ok;
    for (label, r) in &reports {
        let _ = writeln!(
            text,
            "Verified \"{}\": {} objects ({}), {} bad, {} missing",
            human::escape(label),
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
            .map(|(l, r)| json!({"label": l, "report": r}))
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
