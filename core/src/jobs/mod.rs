//! The job service: how Coffer's jobs are run, written once, for every
//! front end (the command line, the window, the background agent), which
//! only present the typed reports.
//!
//! The pieces: `disks` (which connected disks a job works on: by path, by
//! label, or every disk of this backup set with the bucket disks that
//! answer, `every_connected`; the known connected disks a restore may read), `sync` (sync every chosen disk of this set: the
//! command before, dumps, one scan, each disk, the command after; a dry run
//! on a scratch copy of the catalog), `verify` (verify a disk, then refresh
//! its catalog copy), `manage` (rename, quota, auto-sync, forgetting a lost
//! disk and what it costs), `dumps` (dump commands into the snapshot), `history`
//! (every job recorded in the catalog with the front end that ran it), `bucket`
//! (a bucket disk named by its URL: `probe` whether it answers within
//! seconds, `why` in plain words when it does not, open it unlocked),
//! `unlock` (a USB or bucket disk opened only to check a passphrase).
//!
//! Invariant: a rule of how a job runs lives here and nowhere else; only
//! disks of this backup set are ever written; a dry run changes nothing;
//! every job that changes something is recorded in the history.

pub mod bucket;
pub mod disks;
pub mod dumps;
pub mod history;
pub mod manage;
mod sync;
pub mod unlock;
mod verify;

use std::path::PathBuf;

pub use history::{FrontEnd, JobKind, record};
pub use sync::{SyncJob, SyncReport, sync};
pub use verify::{Slice, VerifyReport, verify};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no backup disk of this set is connected; plug one in or give its path")]
    NoDisk,
    #[error(
        "no connected disk is named or mounted at \"{}\"{}",
        crate::human::escape(name),
        connected_list(connected)
    )]
    NoSuchDisk {
        name: String,
        connected: Vec<String>,
    },
    #[error(
        "the command before the sync (`{}`) failed ({}); nothing was synced",
        crate::human::escape(&ran.command),
        crate::human::escape(&ran.why())
    )]
    Before { ran: crate::command::Ran },
    #[error(
        "dump \"{}\" (`{}`) failed ({}); nothing was synced",
        crate::human::escape(name),
        crate::human::escape(&ran.command),
        crate::human::escape(&ran.why())
    )]
    Dump {
        name: String,
        ran: crate::command::Ran,
    },
    #[error(
        "no known disk is named \"{}\"{}",
        crate::human::escape(name),
        known_list(known)
    )]
    UnknownDisk { name: String, known: Vec<String> },
    #[error(
        "disk \"{}\" is not connected: plug it in to have it {what} (its name and quota are written on the disk itself)",
        crate::human::escape(label)
    )]
    NotConnected { label: String, what: &'static str },
    #[error(
        "disk \"{}\" is connected: only a disk that is lost can be forgotten (unplug it first; a connected disk is counted again at once)",
        crate::human::escape(label)
    )]
    Connected { label: String },
    #[error("a disk's name must be 1 to {max} bytes of printable text")]
    BadLabel { max: usize },
    #[error("cannot write the dump {path_}: {source}", path_ = crate::human::path(.path))]
    DumpFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn known_list(labels: &[String]) -> String {
    if labels.is_empty() {
        " (no disk is known yet)".into()
    } else {
        let shown: Vec<String> = labels
            .iter()
            .map(|l| crate::human::escape(l).into_owned())
            .collect();
        format!(" (known: {})", shown.join(", "))
    }
}

fn connected_list(labels: &[String]) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = labels
            .iter()
            .map(|l| crate::human::escape(l).into_owned())
            .collect();
        format!(" (connected: {})", shown.join(", "))
    }
}
