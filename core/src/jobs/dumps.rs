//! Dump commands (`pg_dump mydb`, …) run before a disk sync: each one's
//! output is written to `DATA/dumps/NAME` (temp name, flushed, renamed), a
//! folder the scan takes as one more source, so every dump is a versioned
//! file of the snapshot; the commands that load them back are recorded in
//! the catalog (`dumps` in its meta), which every disk's copy carries.
//!
//! Invariant: a dump's file is replaced only by a complete output of a
//! command that succeeded.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::Error;
use crate::catalog::Catalog;
use crate::config::{Dump, Paths, Profile, Source};
use crate::task::Progress;

/// Where the dumps are kept on this computer.
pub fn folder(paths: &Paths) -> PathBuf {
    paths.data_dir.join("dumps")
}

/// A dump that ran: its name, where its output is, and how to load it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dumped {
    pub name: String,
    pub path: PathBuf,
    pub command: String,
    pub load_command: Option<String>,
}

/// Runs every dump command of `profile`; a failure stops (and names the
/// dump). The load commands go into the catalog's meta.
pub fn run(
    paths: &Paths,
    profile: &Profile,
    catalog: &Catalog,
    progress: &Progress,
) -> crate::Result<Vec<Dumped>> {
    let dir = folder(paths);
    let mut out = Vec::new();
    for d in &profile.dumps {
        progress.check()?;
        progress.notice(format!("Running dump \"{}\": {}", d.name, d.command));
        out.push(run_one(&dir, d, progress)?);
    }
    if !out.is_empty() {
        let json = serde_json::to_string(&out).unwrap_or_default();
        catalog.set_meta("dumps", &json)?;
    }
    Ok(out)
}

fn run_one(dir: &Path, d: &Dump, progress: &Progress) -> crate::Result<Dumped> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::DumpFile { path, source }
    };
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let path = dir.join(&d.name);
    let tmp = tempfile::Builder::new()
        .prefix(".dump-")
        .tempfile_in(dir)
        .map_err(file_err(&path))?;
    let out = tmp.as_file().try_clone().map_err(file_err(&path))?;
    let ran = crate::command::run(
        &d.command,
        Stdio::from(out),
        &[("COFFER_DUMP", d.name.as_str())],
        progress,
    )?;
    if !ran.ok() {
        return Err(Error::Dump {
            name: d.name.clone(),
            ran,
        }
        .into());
    }
    tmp.as_file().sync_all().map_err(file_err(&path))?;
    tmp.persist(&path).map_err(|e| Error::DumpFile {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(Dumped {
        name: d.name.clone(),
        path,
        command: d.command.clone(),
        load_command: d.load_command.clone(),
    })
}

/// The profile a scan uses: the user's, and the dumps folder as one more
/// source when there are dumps.
pub fn scan_profile(paths: &Paths, profile: &Profile) -> Profile {
    let mut p = profile.clone();
    if !profile.dumps.is_empty() {
        p.sources.push(Source {
            path: folder(paths),
            excludes: vec![".dump-*".into()],
            copies: None,
            priority: 0,
            outside_basepath: true,
        });
    }
    p
}

/// The dumps a catalog knows (with their load commands), from its meta.
pub fn recorded(catalog: &Catalog) -> Vec<Dumped> {
    catalog
        .meta("dumps")
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}
