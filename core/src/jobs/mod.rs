//! The job service: how Coffer's jobs are run, written once, for every
//! front end (the command line, the window, the background agent), which
//! only present the typed reports.
//!
//! The pieces: `disks` (which connected disks a job works on: by path, by
//! label, or every disk of this backup set; the known connected disks a
//! restore may read), `sync` (sync every chosen disk of this set: the
//! command before, dumps, one scan, each disk, the command after; a dry run
//! on a scratch copy of the catalog), `verify` (verify a disk, then refresh
//! its catalog copy), `dumps` (dump commands into the snapshot), `bucket`
//! (scan, then sync a bucket disk named by its URL).
//!
//! Invariant: a rule of how a job runs lives here and nowhere else; only
//! disks of this backup set are ever written; a dry run changes nothing.

pub mod bucket;
pub mod disks;
pub mod dumps;
mod sync;
mod verify;

use std::path::PathBuf;

pub use sync::{SyncJob, SyncReport, sync};
pub use verify::{VerifyReport, verify};

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
    #[error("cannot write the dump {path_}: {source}", path_ = crate::human::path(.path))]
    DumpFile {
        path: PathBuf,
        source: std::io::Error,
    },
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
