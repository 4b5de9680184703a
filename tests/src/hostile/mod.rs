//! Hostile corpora: helpers for the suites that treat a backup disk and an
//! archive as hostile input (issue 14). Every case runs the real binary
//! under a timeout and an address-space cap ([`run`]), hashes the folders it
//! must not touch before and after ([`tree`]), and is judged by a table
//! ([`cases`]) that lists every failing case at the end.
//!
//! - [`disk`]: a synced disk to tamper with, and the tampering tools.
//! - [`tarball`]: archives crafted byte by byte.
//! - [`archive`]: real archives to start from, a scene per case, the play.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod archive;
pub mod cases;
pub mod disk;
pub mod run;
pub mod tarball;
pub mod tree;

pub use cases::{Expect, Findings, fails, judge, names, ok_or_fails};
pub use run::{AFTER_HANG, MEM_CAP_KIB, Run, Runner, THREADS, TIMEOUT, visible};
pub use tree::{Tree, Watched};

/// The binary the suites run: the one cargo built (`built`), unless
/// `COFFER_HOSTILE_EXE` names another (a release build, another branch's
/// build) to run the same corpora against.
pub fn binary(built: &'static str) -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        std::env::var_os("COFFER_HOSTILE_EXE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(built))
    })
}
