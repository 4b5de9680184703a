//! `coffer archive …` and `coffer dump …`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use coffer_core::archive::{self, Mode, Options, RestoreOptions};
use coffer_core::config::Dump;
use coffer_core::human;
use coffer_core::jobs::{self, FrontEnd, JobKind};
use serde_json::json;

use super::Exit;
use super::ctx::{Ctx, Done, settle};
use super::progress;

#[derive(Subcommand, Debug)]
pub enum ArchiveCmd {
    /// Write a full archive of the sources: PREFIX-N.tar.gz.
    Full(WriteArgs),
    /// Write an incremental against the newest archive: PREFIX-B-to-N.tar.gz.
    Inc(IncArgs),
    /// List the archives in a folder: the chain and what each holds.
    Ls(LsArgs),
    /// Read archive files to the end and check every member.
    Verify { files: Vec<PathBuf> },
    /// Restore archive N (with its chain) or some of its paths into a folder.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
pub struct WriteArgs {
    /// The folder to write the archive into.
    #[arg(long)]
    pub to: PathBuf,
    /// File name prefix (default: the profile's name, "home").
    #[arg(long)]
    pub prefix: Option<String>,
    /// Split into volumes of about this size, e.g. 4G.
    #[arg(long)]
    pub volume_size: Option<String>,
}

#[derive(Args, Debug)]
pub struct IncArgs {
    #[command(flatten)]
    pub write: WriteArgs,
    /// Against the newest archive older than this window, e.g. "36 hours",
    /// so losing one incremental does not break later ones.
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    pub dir: PathBuf,
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The folder holding the archives.
    pub dir: PathBuf,
    /// Paths as listed in the archive (e.g. docs/a.txt); everything when none.
    pub paths: Vec<String>,
    /// The archive number to restore.
    #[arg(long)]
    pub at: u64,
    /// The destination folder.
    #[arg(long)]
    pub to: PathBuf,
    #[arg(long)]
    pub prefix: Option<String>,
    /// Replace existing files in the destination.
    #[arg(long)]
    pub overwrite: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default for archives and catalogs read from a disk).
    #[arg(long)]
    pub keep_special_bits: bool,
    /// Say what the restore would do (files, archive files read, existing
    /// files replaced) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum DumpCmd {
    /// Add a command whose stdout is backed up: run before each disk sync
    /// (kept as a versioned file) and stored under dumps/NAME in archives.
    Add {
        name: String,
        #[arg(long)]
        command: String,
        /// The command that loads the dump back (shown at restore).
        #[arg(long)]
        load: Option<String>,
    },
    /// List the dump commands.
    List,
    /// Remove a dump command.
    Remove { name: String },
}

fn exit_for(warnings: &[coffer_core::Warning]) -> Exit {
    if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    }
}

pub(super) fn archive(ctx: &Ctx, cmd: ArchiveCmd) -> anyhow::Result<Done> {
    match cmd {
        ArchiveCmd::Full(a) => write(ctx, a, Mode::Full),
        ArchiveCmd::Inc(a) => {
            let since = a
                .since
                .as_deref()
                .map(|s| human::parse_when(s, coffer_core::now()))
                .transpose()?;
            write(ctx, a.write, Mode::Incremental { since })
        }
        ArchiveCmd::Ls(a) => ls(a),
        ArchiveCmd::Verify { files } => verify(ctx, files),
        ArchiveCmd::Restore(a) => restore(ctx, a),
    }
}

fn write(ctx: &Ctx, a: WriteArgs, mode: Mode) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let volume_size = a
        .volume_size
        .as_deref()
        .map(human::parse_size)
        .transpose()?;
    if volume_size == Some(0) {
        bail!("--volume-size must be more than 0");
    }
    let opts = Options {
        prefix: a.prefix,
        volume_size,
    };
    let dir = a.to;
    let paths = ctx.paths.clone();
    let outcome = progress::run("archive", ctx.json, move |p| {
        jobs::record(&paths, FrontEnd::Cli, JobKind::Archive, &[], p, |p| {
            archive::create(&cfg.profile, &dir, mode, &opts, p)
        })
    });
    let (r, warnings) = settle(outcome)?;
    let mut text = String::new();
    for f in &r.files {
        let _ = writeln!(text, "Wrote {}", human::path(f));
    }
    let _ = writeln!(
        text,
        "{} entries ({} of files): {} new, {} changed ({} as deltas), {} deleted, {} dumps; stored {}, compressed to {}",
        r.entries,
        human::bytes(r.tree_bytes),
        r.new_files,
        r.changed_files,
        r.delta_files,
        r.deleted,
        r.dumps,
        human::bytes(r.stored_bytes),
        human::bytes(r.compressed_bytes)
    );
    Ok(Done {
        value: json!(r),
        text,
        exit: exit_for(&warnings),
        warnings,
    })
}

fn ls(a: LsArgs) -> anyhow::Result<Done> {
    let found = archive::find(&a.dir, a.prefix.as_deref())?;
    let mut text = String::new();
    let mut rows = Vec::new();
    if found.is_empty() {
        let _ = writeln!(text, "No archives in {}", human::path(&a.dir));
    }
    let mut exit = Exit::Ok;
    let mut warnings = Vec::new();
    for f in &found {
        let size = f.size_on_disk();
        match archive::read_manifest(f.first()) {
            Ok(m) => {
                let stored = m.entries.iter().filter(|e| e.volume.is_some()).count();
                let _ = writeln!(
                    text,
                    "{}-{}  {}{}  {}  {} ({}), {} stored here, {} deleted, {}; {}{}",
                    human::escape(&f.prefix),
                    m.sequence,
                    match m.base_sequence {
                        Some(b) => format!("incremental against {b}"),
                        None => "full".into(),
                    },
                    if m.volumes > 1 {
                        format!(", {} volumes ({} present)", m.volumes, f.files.len())
                    } else {
                        String::new()
                    },
                    human::time(m.created_at),
                    human::count(m.file_count(), "file"),
                    human::bytes(m.total_bytes()),
                    stored,
                    m.deleted.len(),
                    human::count(m.dumps.len() as u64, "dump"),
                    human::bytes(size),
                    if m.volumes as usize > f.files.len() {
                        "  (volumes missing)"
                    } else {
                        ""
                    }
                );
                rows.push(json!({
                    "prefix": f.prefix, "sequence": m.sequence, "kind": m.kind,
                    "base_sequence": m.base_sequence, "created_at": m.created_at,
                    "files": f.files, "volumes": m.volumes, "entries": m.entries.len(),
                    "stored": stored, "deleted": m.deleted.len(), "size": size,
                    "dumps": m.dumps.iter().map(|d| json!({"name": d.name, "load_command": d.load_command})).collect::<Vec<_>>(),
                }));
            }
            Err(e) => {
                exit = Exit::Failed;
                let _ = writeln!(
                    text,
                    "{}: {}",
                    human::path(f.first()),
                    human::escape(&e.to_string())
                );
                warnings.push(coffer_core::Warning {
                    path: Some(f.first().to_path_buf()),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(Done {
        value: json!({"archives": rows}),
        text,
        warnings,
        exit,
    })
}

fn verify(ctx: &Ctx, files: Vec<PathBuf>) -> anyhow::Result<Done> {
    if files.is_empty() {
        bail!("give the archive files to verify");
    }
    let paths = ctx.paths.clone();
    let outcome = progress::run("verify", ctx.json, move |p| {
        jobs::record(&paths, FrontEnd::Cli, JobKind::ArchiveVerify, &[], p, |p| {
            files
                .iter()
                .map(|f| archive::verify(f, p))
                .collect::<coffer_core::Result<Vec<_>>>()
        })
    });
    let (reports, warnings) = settle(outcome)?;
    let mut text = String::new();
    for r in &reports {
        let _ = writeln!(
            text,
            "{}: good ({} members, {} of content)",
            human::path(&r.path),
            r.members,
            human::bytes(r.bytes)
        );
    }
    Ok(Done {
        value: json!(reports),
        text,
        exit: exit_for(&warnings),
        warnings,
    })
}

fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<Done> {
    let opts = RestoreOptions {
        at: a.at,
        prefix: a.prefix,
        paths: a.paths,
        overwrite: a.overwrite,
        keep_special_bits: a.keep_special_bits,
    };
    let (dir, dest) = (a.dir, a.to);
    if a.dry_run {
        // A dry run plans and stops: nothing is written, not even to history.
        let outcome = progress::run("restore", ctx.json, move |p| {
            archive::plan_restore(&dir, &dest, &opts, p)
        });
        let (plan, warnings) = settle(outcome)?;
        return Ok(super::dry_run::archive_done(&plan, warnings));
    }
    let paths = ctx.paths.clone();
    let outcome = progress::run("restore", ctx.json, move |p| {
        jobs::record(
            &paths,
            FrontEnd::Cli,
            JobKind::ArchiveRestore,
            &[],
            p,
            |p| archive::restore(&dir, &dest, &opts, p),
        )
    });
    let (r, warnings) = settle(outcome)?;
    let mut text = format!(
        "Restored archive {}: {} ({}), {}, {}, from {}\n",
        r.sequence,
        human::count(r.files, "file"),
        human::bytes(r.bytes),
        human::count(r.dirs, "folder"),
        human::count(r.symlinks, "symlink"),
        human::count(r.read.len() as u64, "archive file")
    );
    // A dump's name and load command come from the archive's manifest.
    for d in &r.dumps {
        let _ = writeln!(
            text,
            "Dump \"{}\" is at {}",
            human::escape(&d.name),
            human::path(&d.path)
        );
        if let Some(l) = &d.load_command {
            let _ = writeln!(
                text,
                "  load it back with: {} < {}",
                human::escape(l),
                human::path(&d.path)
            );
        }
    }
    Ok(Done {
        value: json!(r),
        text,
        exit: exit_for(&warnings),
        warnings,
    })
}

pub(super) fn dump(ctx: &Ctx, cmd: DumpCmd) -> anyhow::Result<Done> {
    let mut cfg = ctx.config()?;
    match cmd {
        DumpCmd::Add {
            name,
            command,
            load,
        } => {
            let ok = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
            if !ok {
                bail!("bad dump name \"{name}\": use letters, digits, `.`, `_` or `-`");
            }
            if cfg.profile.dumps.iter().any(|d| d.name == name) {
                bail!("a dump named \"{name}\" already exists; remove it first");
            }
            let d = Dump {
                name,
                command,
                load_command: load,
            };
            cfg.profile.dumps.push(d.clone());
            cfg.save(&ctx.paths).context("saving the config")?;
            Ok(Done::ok(
                json!({"dump": d}),
                format!(
                    "Added dump \"{}\": its output goes under dumps/{} in every archive\n",
                    d.name, d.name
                ),
            ))
        }
        DumpCmd::List => {
            let mut text = String::new();
            if cfg.profile.dumps.is_empty() {
                text.push_str("No dump commands: coffer dump add NAME --command CMD\n");
            }
            for d in &cfg.profile.dumps {
                let _ = writeln!(
                    text,
                    "{}: {}{}",
                    d.name,
                    d.command,
                    d.load_command
                        .as_deref()
                        .map(|l| format!("  (load: {l})"))
                        .unwrap_or_default()
                );
            }
            Ok(Done::ok(json!({"dumps": cfg.profile.dumps}), text))
        }
        DumpCmd::Remove { name } => {
            let Some(i) = cfg.profile.dumps.iter().position(|d| d.name == name) else {
                bail!("no dump named \"{name}\"");
            };
            let d = cfg.profile.dumps.remove(i);
            cfg.save(&ctx.paths).context("saving the config")?;
            Ok(Done::ok(
                json!({"removed": d}),
                format!("Removed dump \"{name}\"\n"),
            ))
        }
    }
}
