//! The history of jobs: one row per job, written when it starts and
//! completed when it ends (see `SCHEMA_V6`).
//!
//! Invariant: a row is only ever inserted "running" and ended once; the
//! table keeps the newest [`KEEP`] rows.

use rusqlite::{OptionalExtension, params};

use super::{Catalog, Error};

/// Rows kept: older ones are dropped as new ones come.
pub const KEEP: i64 = 2000;

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobEnd {
    /// Still running, as far as the row says.
    Running,
    /// Did everything it should.
    Completed,
    /// Ran to its end but left something out (disk full, files skipped,
    /// more disks needed).
    Incomplete,
    Cancelled,
    Failed,
    /// Its process went away without ending it (killed, or the computer
    /// was switched off).
    Interrupted,
}

impl JobEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            JobEnd::Running => "running",
            JobEnd::Completed => "completed",
            JobEnd::Incomplete => "incomplete",
            JobEnd::Cancelled => "cancelled",
            JobEnd::Failed => "failed",
            JobEnd::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<JobEnd> {
        Some(match s {
            "running" => JobEnd::Running,
            "completed" => JobEnd::Completed,
            "incomplete" => JobEnd::Incomplete,
            "cancelled" => JobEnd::Cancelled,
            "failed" => JobEnd::Failed,
            "interrupted" => JobEnd::Interrupted,
            _ => return None,
        })
    }
}

/// A disk a job worked on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryDisk {
    pub id: uuid::Uuid,
    pub label: String,
}

/// One job as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    /// "sync", "verify", "scan", "restore", "archive".
    pub kind: String,
    /// "window", "cli" or "agent".
    pub front_end: String,
    pub pid: u32,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: JobEnd,
    pub disks: Vec<HistoryDisk>,
    /// What the job did: files copied, checked, restored or archived.
    pub files: u64,
    pub bytes: u64,
    pub warnings: u64,
    /// One line: what happened, or why it failed.
    pub summary: String,
}

/// How a job ended, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    pub outcome: JobEnd,
    pub files: u64,
    pub bytes: u64,
    pub warnings: u64,
    pub summary: String,
}

impl Catalog {
    /// Records a job that starts now; returns its row's id.
    pub fn history_begin(
        &self,
        kind: &str,
        front_end: &str,
        disks: &[HistoryDisk],
        started_at: i64,
    ) -> Result<i64, Error> {
        let disks = serde_json::to_string(disks).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT INTO history(kind, front_end, pid, started_at, disks) VALUES(?1, ?2, ?3, ?4, ?5)",
                params![kind, front_end, std::process::id(), started_at, disks],
            )
            .map_err(self.err())?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute(
                "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?1",
                [KEEP],
            )
            .map_err(self.err())?;
        Ok(id)
    }

    /// Ends the job of row `id`, once: a row already ended stays as it is.
    pub fn history_end(&self, id: i64, end: &Ended, finished_at: i64) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE history SET finished_at = ?2, outcome = ?3, files = ?4, bytes = ?5,
                        warnings = ?6, summary = ?7
                 WHERE id = ?1 AND finished_at IS NULL",
                params![
                    id,
                    finished_at,
                    end.outcome.as_str(),
                    end.files as i64,
                    end.bytes as i64,
                    end.warnings as i64,
                    end.summary
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The newest `limit` jobs, newest first. A row still "running" whose
    /// process is gone reads as interrupted.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, front_end, pid, started_at, finished_at, outcome, disks, files,
                        bytes, warnings, summary
                 FROM history ORDER BY id DESC LIMIT ?1",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([limit as i64], |r| {
                Ok((
                    HistoryEntry {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        front_end: r.get(2)?,
                        pid: r.get(3)?,
                        started_at: r.get(4)?,
                        finished_at: r.get(5)?,
                        outcome: JobEnd::Running,
                        disks: Vec::new(),
                        files: r.get::<_, i64>(8)? as u64,
                        bytes: r.get::<_, i64>(9)? as u64,
                        warnings: r.get::<_, i64>(10)? as u64,
                        summary: r.get(11)?,
                    },
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (mut e, outcome, disks) = row.map_err(self.err())?;
            e.outcome = JobEnd::parse(&outcome).ok_or_else(|| Error::BadValue {
                path: self.path.clone(),
                what: "history.outcome",
                value: outcome,
            })?;
            if e.outcome == JobEnd::Running && !alive(e.pid) {
                e.outcome = JobEnd::Interrupted;
            }
            // A disk list that does not read is shown as no disk rather
            // than hiding the whole history.
            e.disks = serde_json::from_str(&disks).unwrap_or_default();
            out.push(e);
        }
        Ok(out)
    }

    /// The newest job's row of this kind on this disk that ended, if any.
    pub fn last_job_on(&self, kind: &str, disk: uuid::Uuid) -> Result<Option<HistoryEntry>, Error> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT h.id FROM history h, json_each(h.disks) d
                 WHERE h.kind = ?1 AND json_extract(d.value, '$.id') = ?2 AND h.finished_at IS NOT NULL
                 ORDER BY h.id DESC LIMIT 1",
                params![kind, disk.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        let Some(id) = id else { return Ok(None) };
        Ok(self
            .history(KEEP as usize)?
            .into_iter()
            .find(|e| e.id == id))
    }

    /// Bytes per second of the finished jobs of `kind` that moved at least
    /// `min_bytes`, over their summed durations: how fast such jobs ran
    /// here, for estimates. `None` before any was measured.
    pub fn measured_rate(&self, kind: &str, min_bytes: u64) -> Result<Option<f64>, Error> {
        let (bytes, secs): (i64, i64) = self
            .conn
            .query_row(
                "SELECT coalesce(sum(bytes), 0), coalesce(sum(finished_at - started_at), 0)
                 FROM (SELECT bytes, finished_at, started_at FROM history
                       WHERE kind = ?1 AND outcome IN ('completed', 'incomplete')
                         AND bytes >= ?2 AND finished_at > started_at
                       ORDER BY id DESC LIMIT 20)",
                params![kind, min_bytes as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(self.err())?;
        Ok((bytes > 0 && secs > 0).then(|| bytes as f64 / secs as f64))
    }
}

/// Whether process `pid` still runs (this computer's catalog is only ever
/// written by this computer's processes).
fn alive(pid: u32) -> bool {
    pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_begun_ended_once_and_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let blue = HistoryDisk {
            id: uuid::Uuid::new_v4(),
            label: "Blue".into(),
        };
        let a = cat
            .history_begin("sync", "cli", std::slice::from_ref(&blue), 100)
            .unwrap();
        let b = cat.history_begin("verify", "agent", &[], 200).unwrap();
        let end = Ended {
            outcome: JobEnd::Completed,
            files: 3,
            bytes: 3_000_000,
            warnings: 0,
            summary: "copied 3 files".into(),
        };
        cat.history_end(a, &end, 110).unwrap();
        // A second end changes nothing.
        cat.history_end(
            a,
            &Ended {
                outcome: JobEnd::Failed,
                ..end.clone()
            },
            120,
        )
        .unwrap();
        let h = cat.history(10).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].id, b);
        assert_eq!(h[0].outcome, JobEnd::Running, "this process still runs");
        assert_eq!(h[1].outcome, JobEnd::Completed);
        assert_eq!(h[1].finished_at, Some(110));
        assert_eq!(h[1].disks, vec![blue.clone()]);
        assert_eq!(h[1].front_end, "cli");
        assert_eq!(
            cat.last_job_on("sync", blue.id).unwrap().map(|e| e.id),
            Some(a)
        );
        assert_eq!(cat.last_job_on("verify", blue.id).unwrap(), None);
        assert_eq!(cat.measured_rate("sync", 1).unwrap(), Some(300_000.0));
        assert_eq!(cat.measured_rate("sync", 10_000_000).unwrap(), None);
    }

    #[test]
    fn a_row_left_running_by_a_gone_process_reads_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        cat.history_begin("sync", "window", &[], 1).unwrap();
        // No process has this id (pid_max is at most 2^22).
        cat.conn
            .execute("UPDATE history SET pid = 99999999", [])
            .unwrap();
        assert_eq!(cat.history(1).unwrap()[0].outcome, JobEnd::Interrupted);
    }

    #[test]
    fn only_the_newest_rows_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        for i in 0..(KEEP + 5) {
            cat.history_begin("scan", "cli", &[], i).unwrap();
        }
        let n: i64 = cat
            .conn
            .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, KEEP);
    }
}
