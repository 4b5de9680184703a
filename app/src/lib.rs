//! Coffer's app: the command line and the window over `coffer-core`.
//!
//! Invariant: this crate draws and prints; every piece of backup logic lives
//! in `coffer-core`, and long work runs on `core::task` threads.

pub mod agent;
pub mod cli;
pub mod desktop;
pub mod gui;
pub mod icon;
pub mod keyring;
pub mod log;

use std::process::ExitCode;

/// Entry point shared by `main.rs` and tests.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() <= 1 {
        return gui::run();
    }
    cli::run(args)
}
