//! What every command shares: its context (paths, JSON or text), what a
//! finished command prints and how it exits, and turning a job's outcome
//! into a result.

use coffer_core::config::{Config, Paths};
use coffer_core::task::{Outcome, Warning};
use coffer_core::{Catalog, disk};
use serde_json::{Value, json};

use super::{Exit, shown};

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
    pub(super) passphrase_file: Option<std::path::PathBuf>,
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

    /// What unlocks the encrypted disks among `roots` (see `pass`).
    pub(super) fn passphrases(
        &self,
        roots: &[std::path::PathBuf],
    ) -> anyhow::Result<disk::Passphrases> {
        super::pass::for_disks(self.passphrase_file.as_deref(), roots)
    }

    pub(super) fn catalog(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::open(&self.paths.catalog_file())?)
    }
}

/// Prints a command's result (or its error) and says how to exit.
pub(super) fn finish(json: bool, result: anyhow::Result<Done>) -> Exit {
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
            log::error!("{}", crate::gui::messages::anyhow_text(&e));
            let exit = exit_for(&e);
            if json {
                let out = json!({"ok": false, "exit": exit as u8, "error": crate::gui::messages::anyhow_text(&e)});
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
