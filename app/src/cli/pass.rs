//! Where the CLI takes the passphrase of an encrypted disk from: the file
//! given with `--passphrase-file`, the `COFFER_PASSPHRASE` variable, the
//! desktop keyring (`crate::keyring`, what `coffer disk
//! remember-passphrase` stored), or the terminal. Never the command line
//! (it would show in `ps` and the shell's history).
//!
//! A file or the variable, when given, is the only source, tried once per
//! disk. Otherwise each encrypted disk the command works on is tried with
//! the keyring, then asked on the terminal, on the main thread before the
//! job starts (the job's progress bar would draw over a prompt), each
//! answer checked against the disk's key check; the job gets the answers.
//!
//! Invariant: a passphrase is never printed, logged or written anywhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use coffer_core::bucket::{Bucket, BucketDisk, Location, Settings};
use coffer_core::crypto::MAX_PASSPHRASE;
use coffer_core::disk::{FixedPassphrase, Identity, Passphrase, Passphrases};
use coffer_core::{Disk, disk::io, human};
use zeroize::Zeroizing;

use crate::keyring::Keyring;

/// Tries a terminal gets per disk.
const TRIES: u32 = 3;

/// The passphrase in `file`: its first line, without the line break.
pub(super) fn read_file(file: &Path) -> anyhow::Result<Zeroizing<String>> {
    let f = std::fs::File::open(file)
        .with_context(|| format!("cannot open the passphrase file {}", human::path(file)))?;
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_PASSPHRASE as u64 + 3)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the passphrase file {}", human::path(file)))?;
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_PASSPHRASE {
        bail!(
            "the passphrase in {} is longer than {MAX_PASSPHRASE} bytes",
            human::path(file)
        );
    }
    if line.is_empty() {
        bail!("the passphrase file {} is empty", human::path(file));
    }
    let text = std::str::from_utf8(line)
        .with_context(|| format!("the passphrase in {} is not UTF-8", human::path(file)))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// A passphrase given without asking: the file, else the variable.
fn given(file: Option<&Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(f) = file {
        return read_file(f).map(Some);
    }
    Ok(std::env::var("COFFER_PASSPHRASE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new))
}

/// Reads one line from the terminal with echo off.
fn ask(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context(
            "no terminal to ask the passphrase on; use --passphrase-file FILE or COFFER_PASSPHRASE",
        )?;
    let before = tcgetattr(&tty).context("cannot set up the terminal")?;
    let mut quiet = before.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    tcsetattr(&tty, OptionalActions::Now, &quiet).context("cannot set up the terminal")?;
    let mut line = Zeroizing::new(String::new());
    let read = BufReader::new(&tty).read_line(&mut line);
    // Echo comes back whatever was read.
    let _ = tcsetattr(&tty, OptionalActions::Now, &before);
    read.context("cannot read the passphrase from the terminal")?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Zeroizing::new(trimmed.to_string()))
}

/// The passphrase for a new encrypted disk: given, or asked twice.
pub(super) fn for_new_disk(file: Option<&Path>, label: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(p) = given(file)? {
        return Ok(p);
    }
    for _ in 0..TRIES {
        let one = ask(&format!(
            "New passphrase for disk \"{}\": ",
            human::escape(label)
        ))?;
        if one.is_empty() {
            eprintln!("coffer: the passphrase is empty; try again");
            continue;
        }
        let two = ask("The same again: ")?;
        if one == two {
            return Ok(one);
        }
        eprintln!("coffer: the two passphrases differ; try again");
    }
    bail!(
        "no passphrase was set for disk \"{}\"",
        human::escape(label)
    )
}

/// Passphrases the terminal gave, by disk; each tried on its disk first,
/// then on the others (several disks often share one).
struct Answered(Vec<(uuid::Uuid, Zeroizing<String>)>);

impl Passphrase for Answered {
    fn passphrase(&self, id: &Identity, _: &Path, attempt: u32) -> Option<Zeroizing<String>> {
        let mut order: Vec<&Zeroizing<String>> = self
            .0
            .iter()
            .filter(|(d, _)| *d == id.disk_id)
            .map(|(_, p)| p)
            .collect();
        order.extend(
            self.0
                .iter()
                .filter(|(d, _)| *d != id.disk_id)
                .map(|(_, p)| p),
        );
        order.get(attempt as usize).map(|p| (*p).clone())
    }
}

/// What unlocks the encrypted disks among `roots`: the file or the
/// variable when given (checked later, per disk); else the terminal, asked
/// now for each encrypted disk among them. A disk with no terminal to ask
/// is left locked, and the job says so when it needs it.
pub(super) fn for_disks(file: Option<&Path>, roots: &[PathBuf]) -> anyhow::Result<Passphrases> {
    if let Some(p) = given(file)? {
        return Ok(Passphrases::new(FixedPassphrase::new(p)));
    }
    let mut answered: Vec<(uuid::Uuid, Zeroizing<String>)> = Vec::new();
    for root in roots {
        let Some(disk) = Target::open(root) else {
            continue;
        };
        if !disk.encrypted() || answered.iter().any(|(d, _)| *d == disk.id()) {
            continue;
        }
        // One the terminal gave for another disk may fit this one too.
        if let Some((_, p)) = answered.iter().find(|(_, p)| disk.unlock(p).is_ok()) {
            answered.push((disk.id(), p.clone()));
            continue;
        }
        if let Some(p) = Keyring::from_env().lookup(disk.id())
            && disk.unlock(&p).is_ok()
        {
            answered.push((disk.id(), p));
            continue;
        }
        for attempt in 0..TRIES {
            let Ok(p) = ask(&format!(
                "Passphrase for the encrypted disk \"{}\" at {}: ",
                human::escape(disk.label()),
                disk.shown()
            )) else {
                // No terminal: the job reports the disk as locked.
                break;
            };
            match disk.unlock(&p) {
                Ok(()) => {
                    answered.push((disk.id(), p));
                    break;
                }
                Err(e) if attempt + 1 == TRIES => return Err(e),
                Err(e) => eprintln!("coffer: {}", human::escape(&e.to_string())),
            }
        }
    }
    Ok(Passphrases::new(Answered(answered)))
}

/// The passphrase of the plugged-in encrypted disk at `root`: given, or
/// asked on the terminal, and checked against its key check (for
/// `coffer disk remember-passphrase`).
pub(super) fn checked(file: Option<&Path>, root: &Path) -> anyhow::Result<Zeroizing<String>> {
    let disk = Target::open(root)
        .with_context(|| format!("cannot open the disk at {}", human::path(root)))?;
    if !disk.encrypted() {
        bail!(
            "disk \"{}\" is not encrypted: it has no passphrase",
            human::escape(disk.label())
        );
    }
    if let Some(p) = given(file)? {
        disk.unlock(&p)?;
        return Ok(p);
    }
    for attempt in 0..TRIES {
        let p = ask(&format!(
            "Passphrase for the encrypted disk \"{}\" at {}: ",
            human::escape(disk.label()),
            disk.shown()
        ))?;
        match disk.unlock(&p) {
            Ok(()) => return Ok(p),
            Err(e) if attempt + 1 == TRIES => return Err(e),
            Err(e) => eprintln!("coffer: {}", human::escape(&e.to_string())),
        }
    }
    unreachable!("the last try returns")
}

/// A disk the terminal may be asked about: a local one or a bucket.
enum Target {
    Local(Box<Disk>),
    Bucket(Box<BucketDisk>),
}

impl Target {
    fn open(root: &Path) -> Option<Target> {
        if coffer_core::jobs::bucket::is_bucket(root) {
            let loc = Location::parse(&root.to_string_lossy()).ok()?;
            let b = Bucket::connect(&loc, &Settings::from_env()).ok()?;
            return BucketDisk::open(b)
                .ok()
                .map(|d| Target::Bucket(Box::new(d)));
        }
        Disk::open(root, io::real())
            .ok()
            .map(|d| Target::Local(Box::new(d)))
    }

    fn encrypted(&self) -> bool {
        match self {
            Target::Local(d) => d.encrypted(),
            Target::Bucket(d) => d.encrypted(),
        }
    }

    fn id(&self) -> uuid::Uuid {
        match self {
            Target::Local(d) => d.id(),
            Target::Bucket(d) => d.identity.disk_id,
        }
    }

    fn label(&self) -> &str {
        match self {
            Target::Local(d) => d.label(),
            Target::Bucket(d) => &d.identity.label,
        }
    }

    fn shown(&self) -> String {
        match self {
            Target::Local(d) => human::path(d.root()).to_string(),
            Target::Bucket(d) => d.bucket().location().to_string(),
        }
    }

    fn unlock(&self, p: &str) -> anyhow::Result<()> {
        match self {
            Target::Local(d) => Ok(d.unlock(p)?),
            Target::Bucket(d) => Ok(d.unlock(p)?),
        }
    }
}
