//! The command-line tool: `coffer sync`, `coffer status`, …
//!
//! Each command prints a human summary, or with `--json` one JSON object on
//! stdout. The exit code is 0 if and only if the job fully succeeded.

mod archive;
mod assets;
mod browse;
mod ctx;
mod disks;
mod dry_run;
mod history;
mod pass;
mod progress;
mod restore;
mod shown;
mod sources;
mod sync;
mod whereis;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes, as scripts see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    Usage = 2,
    /// The job ran but did not do all it should (disk full, files skipped,
    /// more disks needed).
    Incomplete = 3,
    /// The disk is being written by another Coffer process.
    DiskInUse = 4,
    Cancelled = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Parser, Debug)]
#[command(name = "coffer", version, about = "Back up your folders onto a drawer of USB disks", long_about = None)]
#[command(after_help = "Run `coffer` with no arguments to open the window.\n\
Exit codes: 0 success, 1 failure, 2 usage error, 3 incomplete (disk full, files skipped, more disks needed), 4 disk in use, 130 cancelled.")]
pub struct Cli {
    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Say more about what is happening.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Read an encrypted disk's passphrase from the first line of FILE
    /// (else COFFER_PASSPHRASE, else the terminal asks).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Folders to back up.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Commands run before and after each sync (to quiesce an application).
    #[command(subcommand)]
    Hook(HookCmd),
    /// Set up or change a backup disk.
    #[command(subcommand)]
    Disk(DiskCmd),
    /// Known disks: connected?, used and free, objects, last sync.
    Disks,
    /// Take a new snapshot of the sources.
    Scan,
    /// Copy what a connected disk is missing (scans first).
    Sync(SyncArgs),
    /// Copies per source folder, and what losing each disk would cost.
    Status,
    /// Re-read a disk's objects against their hashes.
    Verify(VerifyArgs),
    /// Portable tar.gz archives: full, incremental, list, verify, restore.
    #[command(subcommand)]
    Archive(archive::ArchiveCmd),
    /// Commands whose output is stored in archives (e.g. pg_dump).
    #[command(subcommand)]
    Dump(archive::DumpCmd),
    /// What ran: every sync, verify, scan, restore and archive job, from
    /// the window, the command line or the background agent, newest first.
    History {
        /// Show at most this many jobs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Every snapshot: id, time, files, bytes.
    Snapshots,
    /// Browse a snapshot like a folder listing.
    Ls(LsArgs),
    /// Search every version by a glob on its path, deleted files included.
    Find(FindArgs),
    /// Every version of a file: time, size, hash, disks that hold it.
    Versions { path: PathBuf },
    /// Which disks hold a file or folder, how many copies, verified when.
    Whereis { path: PathBuf },
    /// Bring files back from the disks (any snapshot, any folder).
    Restore(RestoreArgs),
    /// Run in the background: sync each disk whose auto-sync is on when it
    /// is plugged in (or already is), verify a slice of it, and tell the
    /// desktop. One agent runs per user.
    Agent(AgentArgs),
    /// Print a shell completion script (for packagers).
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (for packagers).
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// A snapshot id or a time (2026-11-20, "3 days ago"). Default: the latest.
    #[arg(long)]
    pub at: Option<String>,
    /// The folder to list. Default: the backed-up folders.
    pub path: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// A glob on the whole path or on the name, e.g. '*.jpg' or '*/2019/*'.
    pub pattern: String,
    /// Only files that are no longer in the latest snapshot.
    #[arg(long)]
    pub deleted: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Files or folders to restore, as they were backed up. Default: everything.
    pub paths: Vec<PathBuf>,
    /// A snapshot id or a time (2026-11-20, "3 days ago"). Default: the latest.
    #[arg(long)]
    pub at: Option<String>,
    /// Restore under this folder. Default: the original place.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Work from this disk alone, with its own catalog copy (no local catalog needed).
    #[arg(long, value_name = "DISK")]
    pub from_disk: Option<PathBuf>,
    /// Replace existing files at the destination.
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,
    /// Leave existing files at the destination alone and restore the rest.
    #[arg(long)]
    pub skip_existing: bool,
    /// Keep existing files and restore the others beside them, as
    /// "name (restored).ext".
    #[arg(long, conflicts_with_all = ["overwrite", "skip_existing"])]
    pub keep_both: bool,
    /// Wait for the next needed disk to be plugged in.
    #[arg(long)]
    pub wait: bool,
    /// Say what the restore would do (files, bytes, disks, paths that
    /// exist at the destination) and write nothing.
    #[arg(long, conflicts_with = "wait")]
    pub dry_run: bool,
    /// Check names as on FAT/exFAT even if the destination is not.
    #[arg(long)]
    pub case_insensitive: bool,
    /// Rename colliding or invalid names ("name (2).ext") instead of refusing.
    #[arg(long)]
    pub rename_collisions: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default for archives and catalogs read from a disk).
    #[arg(long)]
    pub keep_special_bits: bool,
    /// Restore the outputs of the dump commands (with --to), and print the
    /// command that loads each back.
    #[arg(long, requires = "to", conflicts_with = "paths")]
    pub dumps: bool,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Start the agent at login: write an autostart entry and a systemd
    /// user unit running this program, then exit.
    #[arg(long, conflicts_with = "uninstall")]
    pub install: bool,
    /// Stop starting the agent at login (the autostart entry switched off,
    /// the user unit removed), then exit.
    #[arg(long)]
    pub uninstall: bool,
    /// How long the verify after each sync may read ("0s": none).
    #[arg(long, default_value = "2min")]
    pub verify_budget: humantime::Duration,
    /// Remind of a disk that was not synced for this long.
    #[arg(long, default_value = "30days")]
    pub remind_after: humantime::Duration,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write coffer.1 and a page per subcommand into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum SourceCmd {
    /// Add a folder (it must lie under the storage basepath).
    Add(SourceAdd),
    /// Stop backing up a folder (its files stay in older snapshots).
    Remove { path: PathBuf },
    /// List the folders.
    List,
}

#[derive(Subcommand, Debug)]
pub enum HookCmd {
    /// Run COMMAND (with sh -c) before each sync, before the scan; if it
    /// fails, nothing is synced.
    Before { command: String },
    /// Run COMMAND after each sync, whatever its outcome (COFFER_RESULT
    /// says: ok, failed or cancelled).
    After { command: String },
    /// Remove both commands.
    Clear,
    /// Show both commands.
    Show,
}

#[derive(Args, Debug)]
pub struct SourceAdd {
    pub path: PathBuf,
    /// Copies wanted for this folder (default: the profile's, 2).
    #[arg(long)]
    pub copies: Option<u32>,
    /// Higher goes first when disks are short of room.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    /// A .gitignore-style rule; repeat for more.
    #[arg(long = "exclude", value_name = "RULE")]
    pub excludes: Vec<String>,
    /// Accept a folder outside the storage basepath.
    #[arg(long)]
    pub outside_basepath: bool,
}

#[derive(Subcommand, Debug)]
pub enum DiskCmd {
    /// Make a mounted folder a backup disk.
    Init(DiskInit),
    /// Give a disk a new name (it must be plugged in: the name is written
    /// on the disk).
    Rename {
        /// The disk: its name, its mount path or its id.
        disk: String,
        /// The new name.
        label: String,
    },
    /// Change the most space Coffer may use on a disk (it must be plugged in).
    Quota {
        /// The disk: its name, its mount path or its id.
        disk: String,
        /// A size such as 500G, or "none" for no limit.
        size: String,
    },
    /// Forget a lost disk: its copies no longer count, so the next syncs of
    /// the other disks make up for them. Says first what that costs.
    Forget {
        /// The disk: its name or its id.
        disk: String,
        /// Forget it even though some files would lose copies.
        #[arg(long)]
        yes: bool,
    },
    /// Unmount a disk and power it off, so it can be unplugged.
    Eject {
        /// The disk: its name, its mount path or its id.
        disk: String,
    },
    /// Keep an encrypted disk's passphrase in the desktop keyring, so it is
    /// not asked again on this computer (the disk must be plugged in: the
    /// passphrase is checked first).
    RememberPassphrase {
        /// The disk: its name, its mount path or its id.
        disk: String,
    },
    /// Remove an encrypted disk's passphrase from the desktop keyring.
    ForgetPassphrase {
        /// The disk: its name or its id.
        disk: String,
    },
    /// Sync a disk as soon as it is plugged in (by the window, or by the
    /// background agent when the window is closed).
    AutoSync {
        /// The disk: its name, its mount path or its id.
        disk: String,
        #[arg(value_enum)]
        switch: OnOff,
    },
}

/// A switch on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
pub struct DiskInit {
    /// A mounted folder, or s3://BUCKET/PREFIX for a bucket (endpoint, region
    /// and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY or ~/.aws/credentials).
    pub path: PathBuf,
    /// A name you will recognise on the label of the disk.
    #[arg(long)]
    pub label: String,
    /// Most space Coffer may use, e.g. 500G.
    #[arg(long)]
    pub quota: Option<String>,
    /// Store objects above this size in parts (FAT32 is detected by itself).
    #[arg(long, hide = true)]
    pub max_file_size: Option<String>,
    /// Replace an identity file that cannot be read (torn or damaged). The
    /// backups already on the disk are kept and counted again by the next
    /// sync; a readable identity is never replaced.
    #[arg(long)]
    pub force: bool,
    /// Encrypt everything stored on the disk with a passphrase (asked on
    /// the terminal, or --passphrase-file, or COFFER_PASSPHRASE).
    #[arg(long)]
    pub encrypt: bool,
    /// Argon2id memory for the key, in MiB (default 64; tests use less).
    #[arg(long, hide = true, requires = "encrypt")]
    pub kdf_memory_mib: Option<u32>,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The disk: its mount path or label, or a bucket disk's s3://BUCKET/PREFIX.
    /// Default: every connected disk.
    pub disk: Option<String>,
    /// Show the plan (copies, deletions, bytes) without doing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not scan first; use the latest snapshot.
    #[arg(long)]
    pub no_scan: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The disk: its mount path or label, or a bucket disk's s3://BUCKET/PREFIX.
    /// Default: every connected disk.
    pub disk: Option<String>,
    /// Verify at most this many copies (the least recently verified).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Stop after this long (e.g. "10 min"); the next verify goes on with
    /// the copies left, least recently verified first.
    #[arg(long)]
    pub budget: Option<humantime::Duration>,
}

/// Runs the command line; returns the exit code.
pub fn run(args: Vec<std::ffi::OsString>) -> ExitCode {
    let argv: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Ok.into()
                }
                _ => Exit::Usage.into(),
            };
        }
    };
    // The asset generators run at build time: they leave no log behind.
    let logged = !matches!(cli.command, Command::Completions { .. } | Command::Man(_));
    if logged {
        crate::log::init(cli.verbose);
        log::info!("started: coffer {}", argv.join(" "));
    }
    let exit = dispatch(cli);
    if logged {
        log::info!("finished: exit {} ({exit:?})", exit as u8);
    }
    exit.into()
}

/// Runs one command and prints its result.
fn dispatch(cli: Cli) -> Exit {
    let json = cli.json;
    let passphrase_file = cli.passphrase_file.clone();
    let result = coffer_core::config::Paths::from_env()
        .map_err(anyhow::Error::from)
        .and_then(|paths| {
            let ctx = ctx::Ctx {
                json,
                paths,
                passphrase_file,
            };
            match cli.command {
                Command::Source(SourceCmd::Add(a)) => sources::source_add(&ctx, a),
                Command::Source(SourceCmd::Remove { path }) => sources::source_remove(&ctx, &path),
                Command::Source(SourceCmd::List) => sources::source_list(&ctx),
                Command::Hook(a) => sources::hook(&ctx, a),
                Command::Disk(DiskCmd::Init(a)) => disks::disk_init(&ctx, a),
                Command::Disk(c) => disks::manage(&ctx, c),
                Command::Disks => disks::disks(&ctx),
                Command::Scan => sync::scan_cmd(&ctx),
                Command::Sync(a) => sync::sync_cmd(&ctx, a),
                Command::Status => sync::status(&ctx),
                Command::Verify(a) => sync::verify_cmd(&ctx, a),
                Command::Archive(a) => archive::archive(&ctx, a),
                Command::Dump(a) => archive::dump(&ctx, a),
                Command::History { limit } => history::history(&ctx, limit),
                Command::Snapshots => browse::snapshots(&ctx),
                Command::Ls(a) => browse::ls(&ctx, a),
                Command::Find(a) => browse::find(&ctx, a),
                Command::Versions { path } => browse::versions(&ctx, &path),
                Command::Whereis { path } => whereis::whereis(&ctx, &path),
                Command::Restore(a) => restore::restore(&ctx, a),
                Command::Agent(a) => agent_cmd(&ctx, a),
                Command::Completions { shell } => {
                    assets::completions_cmd(shell).map(|(value, text)| ctx::Done::ok(value, text))
                }
                Command::Man(a) => {
                    assets::man_cmd(a).map(|(value, text)| ctx::Done::ok(value, text))
                }
            }
        });
    ctx::finish(json, result)
}

/// `coffer agent`: installs, uninstalls, or runs until stopped.
fn agent_cmd(ctx: &ctx::Ctx, a: AgentArgs) -> anyhow::Result<ctx::Done> {
    use crate::agent::{self, install};
    use crate::desktop::autostart::Dirs;
    let dirs = Dirs::from_env();
    if a.install || a.uninstall {
        let done = if a.install {
            let exe = std::env::current_exe()
                .map_err(|e| anyhow::anyhow!("cannot tell where this program is: {e}"))?;
            install::install(&dirs, &install::unit_dir(), &exe)?
        } else {
            install::uninstall(&dirs, &install::unit_dir())?
        };
        let text = if a.install {
            format!(
                "The agent starts at your next login ({}).\nTo run it under systemd instead: systemctl --user enable --now {}\n",
                coffer_core::human::path(&done.entry),
                install::UNIT
            )
        } else {
            "The agent no longer starts at login.\n".to_string()
        };
        return Ok(ctx::Done::ok(
            serde_json::json!({"entry": done.entry, "unit": done.unit, "on": a.install}),
            text,
        ));
    }
    let opts = agent::Options {
        verify_budget: a.verify_budget.into(),
        remind_after: a.remind_after.into(),
        bus: crate::desktop::Bus::Default,
    };
    match agent::run(&ctx.paths, &opts)? {
        agent::Ended::AlreadyRunning => Ok(ctx::Done::ok(
            serde_json::json!({"already_running": true}),
            "Another Coffer agent runs already: this one leaves it to it.\n".into(),
        )),
    }
}
