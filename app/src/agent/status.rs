//! What the agent is doing, for the window: one small JSON file in the
//! data folder (`agent.json`), rewritten by the agent at each change and
//! at least every few seconds while it runs, and one lock file
//! (`agent.lock`) that the running agent holds so there is one per user.
//!
//! Invariant: the status file is only ever replaced whole (temp file and
//! rename), so a reader sees the old status or the new one, never half;
//! a status whose agent is gone or silent is not trusted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use coffer_core::config::Paths;
use serde::{Deserialize, Serialize};

/// How often a running agent rewrites its status, busy or not.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A status older than this is an agent that died without saying so.
const STALE: i64 = 30;

/// The job the agent runs now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentJob {
    /// "sync" or "verify".
    pub kind: String,
    pub disk_id: uuid::Uuid,
    pub label: String,
    /// Where the disk is mounted.
    pub root: PathBuf,
    /// The phase in words ("Copying").
    pub phase: String,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

impl AgentJob {
    /// Done so far, 0 to 1, by bytes when there are any.
    pub fn fraction(&self) -> f32 {
        let (done, total) = if self.bytes_total > 0 {
            (self.bytes_done, self.bytes_total)
        } else {
            (self.files_done, self.files_total)
        };
        if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0) as f32
        }
    }

    /// "Syncing Blue WD in the background: Copying, 45%".
    pub fn words(&self) -> String {
        let what = if self.kind == "verify" {
            "Checking"
        } else {
            "Syncing"
        };
        format!(
            "{what} {} in the background: {}, {:.0}%",
            self.label,
            self.phase,
            self.fraction() * 100.0
        )
    }
}

/// The status file's content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub pid: u32,
    /// When it was written (Unix seconds).
    pub updated_at: i64,
    pub job: Option<AgentJob>,
}

pub fn file(paths: &Paths) -> PathBuf {
    paths.data_dir.join("agent.json")
}

pub fn lock_file(paths: &Paths) -> PathBuf {
    paths.data_dir.join("agent.lock")
}

/// Writes the status through a temp file and a rename.
pub fn write(paths: &Paths, status: &AgentStatus) -> anyhow::Result<()> {
    let path = file(paths);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    std::fs::write(tmp.path(), serde_json::to_vec(status)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Removes the status (the agent is stopping).
pub fn clear(paths: &Paths) {
    let _ = std::fs::remove_file(file(paths));
}

/// The running agent's status: `None` when no agent runs (no file, or one
/// its agent left behind: that process is gone, or it has not written for
/// a while).
pub fn read(paths: &Paths) -> Option<AgentStatus> {
    let text = std::fs::read(file(paths)).ok()?;
    let status: AgentStatus = serde_json::from_slice(&text).ok()?;
    let alive = Path::new(&format!("/proc/{}", status.pid)).exists();
    let fresh = coffer_core::now() - status.updated_at <= STALE;
    (alive && fresh).then_some(status)
}

/// The instance lock: held for as long as the returned file is open.
/// `None` when another agent holds it.
pub fn lock(paths: &Paths) -> anyhow::Result<Option<std::fs::File>> {
    use rustix::fs::{FlockOperation, flock};
    let path = lock_file(paths);
    std::fs::create_dir_all(&paths.data_dir)
        .with_context(|| format!("cannot create {}", paths.data_dir.display()))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => {
            Err(std::io::Error::from(e)).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(t: &Path) -> Paths {
        Paths {
            config_dir: t.join("config"),
            data_dir: t.join("data"),
        }
    }

    #[test]
    fn a_status_is_read_back_while_its_process_lives_and_writes() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        assert_eq!(read(&p), None);
        let job = AgentJob {
            kind: "sync".into(),
            label: "Blue WD".into(),
            phase: "Copying".into(),
            bytes_done: 45,
            bytes_total: 100,
            ..AgentJob::default()
        };
        let mut s = AgentStatus {
            pid: std::process::id(),
            updated_at: coffer_core::now(),
            job: Some(job),
        };
        write(&p, &s).unwrap();
        assert_eq!(read(&p).as_ref(), Some(&s));
        assert_eq!(
            s.job.as_ref().unwrap().words(),
            "Syncing Blue WD in the background: Copying, 45%"
        );
        // Silent for too long: the agent is taken for gone.
        s.updated_at -= 60;
        write(&p, &s).unwrap();
        assert_eq!(read(&p), None);
        // A process that no longer runs.
        s.updated_at = coffer_core::now();
        s.pid = u32::MAX;
        write(&p, &s).unwrap();
        assert_eq!(read(&p), None);
    }

    #[test]
    fn one_agent_holds_the_lock() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let first = lock(&p).unwrap();
        assert!(first.is_some());
        assert!(lock(&p).unwrap().is_none(), "a second agent is refused");
        drop(first);
        assert!(lock(&p).unwrap().is_some());
    }
}
