//! `Jobs`: the one owner of the window's long work (sync, verify, restore,
//! archive jobs), each on a `core::task` thread, with the progress each has
//! sent so far.
//!
//! A job claims the disks it reads or writes when it starts. A chain of
//! steps (a sync's plan, its wait for "Sync anyway", then the sync) keeps
//! its claim and its one cancel flag from step to step: a finished step
//! hands its [`Claim`] back, and the tab that owns the chain resumes it,
//! holds it while the user decides, or drops it.
//!
//! Invariant: one job of each kind at a time; never two jobs on the same
//! disk; a claim lives until its chain ends, also while no thread runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::jobs::bucket::Away;
use coffer_core::jobs::{SyncReport, VerifyReport};
use coffer_core::task::{Cancel, Counters, Event, Outcome, Progress, Rate, Warning};
use coffer_core::{Task, archive, restore};

use crate::agent::status::AgentJob;

/// How a background thread wakes the window (`ctx.request_repaint`).
pub type Waker = Option<Arc<dyn Fn() + Send + Sync>>;

/// The kinds of long work; one of each may run at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Sync,
    Verify,
    Restore,
    Archive,
}

impl Kind {
    /// The job in words, for "wait for the … to end".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Sync => "sync",
            Kind::Verify => "verify",
            Kind::Restore => "restore",
            Kind::Archive => "archive job",
        }
    }
}

/// What a job's thread hands back.
pub enum Done {
    /// A dry run of the chosen disks, before their sync, and the bucket
    /// disks of the set that did not answer.
    Plan(SyncReport, Vec<Away>),
    /// A sync, and the bucket disks of the set that did not answer.
    Sync(SyncReport, Vec<Away>),
    Verify(VerifyReport),
    Restore(restore::Report),
    ArchiveWritten(archive::Report),
    ArchiveVerified(Vec<archive::VerifyReport>),
    ArchiveRestored(archive::RestoreReport),
}

/// A job's outcome with its value taken out of [`Done`] by `take`, which
/// knows what the job hands back.
pub fn outcome_of<T>(outcome: Outcome<Done>, take: fn(Done) -> Option<T>) -> Outcome<T> {
    match outcome {
        Outcome::Completed { value, warnings } => match take(value) {
            Some(value) => Outcome::Completed { value, warnings },
            // Each job's thread is started with its one kind of result.
            None => Outcome::Failed(coffer_core::Error::Panic(
                "a job handed back another kind of result".into(),
            )),
        },
        Outcome::Cancelled => Outcome::Cancelled,
        Outcome::Failed(e) => Outcome::Failed(e),
    }
}

/// What a running job has said so far.
#[derive(Default)]
pub struct Live {
    pub title: String,
    pub counters: Counters,
    pub rate: Rate,
    pub warnings: Vec<Warning>,
    pub notices: Vec<String>,
}

/// Why a job cannot start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Busy {
    /// A job of the same kind runs.
    Kind(Kind),
    /// Another job reads or writes this disk.
    Disk { root: PathBuf, by: Kind },
    /// The background agent works on this disk.
    Agent { root: PathBuf },
}

/// A job's hold on its kind and its disks, with the cancel flag every step
/// of its chain is started with.
pub struct Claim {
    kind: Kind,
    disks: Vec<PathBuf>,
    cancel: Cancel,
}

impl Claim {
    /// True once Cancel was pressed for this chain.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// A job that ended, with its claim (for the chain's next step).
pub struct Finished {
    pub kind: Kind,
    pub outcome: Outcome<Done>,
    pub claim: Claim,
}

/// What Cancel found.
pub enum Cancelled {
    /// Nothing of that kind runs.
    Nothing,
    /// The job's thread stops at its next check and then ends as usual.
    Asked,
    /// The chain was waiting for the user, with no thread to notice the
    /// flag: it ended here (its claim was dropped).
    Held,
}

struct Running {
    claim: Claim,
    live: Live,
    /// `None` while the chain waits for the user.
    task: Option<Task<Done>>,
}

/// The running jobs.
#[derive(Default)]
pub struct Jobs {
    running: Vec<Running>,
    /// What the background agent does now, as its status file last said.
    agent: Option<AgentJob>,
}

impl Jobs {
    /// The agent's job changed (or ended: `None`).
    pub fn set_agent(&mut self, job: Option<AgentJob>) {
        self.agent = job;
    }

    /// The job the background agent runs, if any.
    pub fn agent(&self) -> Option<&AgentJob> {
        self.agent.as_ref()
    }

    /// Whether a job of `kind` on `disks` may start now.
    pub fn check(&self, kind: Kind, disks: &[PathBuf]) -> Result<(), Busy> {
        if let Some(a) = &self.agent
            && disks.contains(&a.root)
        {
            return Err(Busy::Agent {
                root: a.root.clone(),
            });
        }
        for r in &self.running {
            if r.claim.kind == kind {
                return Err(Busy::Kind(kind));
            }
            if let Some(root) = r.claim.disks.iter().find(|d| disks.contains(d)) {
                return Err(Busy::Disk {
                    root: root.clone(),
                    by: r.claim.kind,
                });
            }
        }
        Ok(())
    }

    /// Starts a job of `kind` that reads or writes `disks`, unless the
    /// rules refuse it.
    pub fn start(
        &mut self,
        waker: &Waker,
        kind: Kind,
        disks: Vec<PathBuf>,
        title: String,
        job: impl FnOnce(&Progress) -> coffer_core::Result<Done> + Send + 'static,
    ) -> Result<(), Busy> {
        self.check(kind, &disks)?;
        let claim = Claim {
            kind,
            disks,
            cancel: Cancel::new(),
        };
        self.resume(waker, claim, title, job);
        Ok(())
    }

    /// The next step of a chain, with its claim and its cancel flag (a step
    /// started after Cancel stops at its first check).
    pub fn resume(
        &mut self,
        waker: &Waker,
        claim: Claim,
        title: String,
        job: impl FnOnce(&Progress) -> coffer_core::Result<Done> + Send + 'static,
    ) {
        let name = match claim.kind {
            Kind::Sync => "sync",
            Kind::Verify => "verify",
            Kind::Restore => "restore",
            Kind::Archive => "archive",
        };
        // The log says what the window did, as it does for the command line.
        ::log::info!("{title}");
        let task = coffer_core::task::spawn_with(name, waker.clone(), claim.cancel.clone(), job);
        self.running.push(Running {
            claim,
            live: Live {
                title,
                ..Live::default()
            },
            task: Some(task),
        });
    }

    /// Keeps a chain's claim while it waits for the user; `title` is what
    /// the progress panel says meanwhile.
    pub fn hold(&mut self, claim: Claim, title: String) {
        self.running.push(Running {
            claim,
            live: Live {
                title,
                ..Live::default()
            },
            task: None,
        });
    }

    /// Takes back the claim of a chain waiting for the user (to resume it,
    /// or to drop it and so end the chain).
    pub fn take_held(&mut self, kind: Kind) -> Option<Claim> {
        let i = self
            .running
            .iter()
            .position(|r| r.claim.kind == kind && r.task.is_none())?;
        Some(self.running.remove(i).claim)
    }

    /// Cancel pressed for the job of `kind`.
    pub fn cancel(&mut self, kind: Kind) -> Cancelled {
        let Some(r) = self.running.iter().find(|r| r.claim.kind == kind) else {
            return Cancelled::Nothing;
        };
        r.claim.cancel.cancel();
        if r.task.is_some() {
            return Cancelled::Asked;
        }
        match self.take_held(kind) {
            Some(_) => Cancelled::Held,
            None => Cancelled::Nothing,
        }
    }

    /// True while any job's thread runs.
    pub fn busy(&self) -> bool {
        self.running.iter().any(|r| r.task.is_some())
    }

    /// True when no job's thread is still working (what is left is for
    /// [`Jobs::poll`] to collect).
    pub fn threads_ended(&self) -> bool {
        self.running
            .iter()
            .filter_map(|r| r.task.as_ref())
            .all(Task::is_finished)
    }

    /// The jobs to show, oldest first.
    pub fn live(&self) -> impl Iterator<Item = (Kind, &Live)> {
        self.running.iter().map(|r| (r.claim.kind, &r.live))
    }

    /// Takes the progress events sent since the last frame, for at most
    /// about `budget` from `start`.
    pub fn drain(&mut self, start: Instant, budget: Duration) {
        for r in &mut self.running {
            let Some(task) = &r.task else { continue };
            for e in task.drain() {
                match e {
                    Event::Progress(c) => {
                        r.live.rate.sample(Instant::now(), c.bytes_done);
                        r.live.counters = c;
                    }
                    Event::Warning(w) => r.live.warnings.push(w),
                    Event::Notice(n) => r.live.notices.push(n),
                }
                if start.elapsed() > budget {
                    // The rest were already received; dropping a few
                    // progress samples only costs smoothness, and warnings
                    // also come back with the outcome.
                    break;
                }
            }
        }
    }

    /// The jobs whose threads ended, taken out with their claims.
    pub fn poll(&mut self) -> Vec<Finished> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            let outcome = self.running[i].task.as_mut().and_then(Task::try_finish);
            match outcome {
                Some(outcome) => {
                    let r = self.running.remove(i);
                    log_end(&r.live.title, &outcome);
                    out.push(Finished {
                        kind: r.claim.kind,
                        outcome,
                        claim: r.claim,
                    });
                }
                None => i += 1,
            }
        }
        out
    }
}

/// One line in the log for a job's end.
fn log_end(title: &str, outcome: &Outcome<Done>) {
    match outcome {
        Outcome::Completed { warnings, .. } if warnings.is_empty() => {
            ::log::info!("{title}: done");
        }
        Outcome::Completed { warnings, .. } => {
            ::log::warn!(
                "{title}: done, with {}",
                coffer_core::human::count(warnings.len() as u64, "warning")
            );
            for w in warnings {
                ::log::warn!("{w}");
            }
        }
        Outcome::Cancelled => ::log::info!("{title}: cancelled"),
        Outcome::Failed(e) => ::log::error!("{title}: failed: {}", super::messages::error_text(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(jobs: &mut Jobs) -> Vec<Finished> {
        let start = Instant::now();
        loop {
            let done = jobs.poll();
            if !done.is_empty() {
                return done;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "a job is stuck");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn verify_job(_: &Progress) -> coffer_core::Result<Done> {
        Err(coffer_core::Error::Failed("no disk here".into()))
    }

    #[test]
    fn one_job_of_a_kind_and_one_job_per_disk() {
        let mut jobs = Jobs::default();
        let blue = PathBuf::from("/media/blue");
        let red = PathBuf::from("/media/red");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        jobs.start(
            &None,
            Kind::Sync,
            vec![blue.clone()],
            "Syncing".into(),
            move |_| {
                let _ = rx.recv();
                Err(coffer_core::Error::Cancelled)
            },
        )
        .unwrap();
        assert_eq!(
            jobs.check(Kind::Sync, std::slice::from_ref(&red)),
            Err(Busy::Kind(Kind::Sync))
        );
        assert_eq!(
            jobs.check(Kind::Verify, std::slice::from_ref(&blue)),
            Err(Busy::Disk {
                root: blue.clone(),
                by: Kind::Sync
            })
        );
        assert_eq!(jobs.check(Kind::Archive, &[]), Ok(()));
        jobs.start(
            &None,
            Kind::Verify,
            vec![red.clone()],
            "Verifying".into(),
            verify_job,
        )
        .unwrap();
        assert!(jobs.busy());
        let done = wait(&mut jobs);
        assert_eq!(done[0].kind, Kind::Verify);
        assert!(matches!(done[0].outcome, Outcome::Failed(_)));
        // The verify's claim went with it: red is free again.
        assert_eq!(jobs.check(Kind::Restore, &[red]), Ok(()));
        tx.send(()).unwrap();
        let done = wait(&mut jobs);
        assert!(matches!(done[0].outcome, Outcome::Cancelled));
        assert!(!jobs.busy() && jobs.check(Kind::Sync, &[]).is_ok());
    }

    #[test]
    fn a_held_chain_keeps_its_disks_and_a_cancel_ends_it() {
        let mut jobs = Jobs::default();
        let blue = PathBuf::from("/media/blue");
        jobs.start(
            &None,
            Kind::Sync,
            vec![blue.clone()],
            "Planning".into(),
            verify_job,
        )
        .unwrap();
        let f = wait(&mut jobs).pop().unwrap();
        jobs.hold(f.claim, "Waiting".into());
        assert!(!jobs.busy(), "no thread runs while the user decides");
        assert!(matches!(
            jobs.check(Kind::Verify, std::slice::from_ref(&blue)),
            Err(Busy::Disk { .. })
        ));
        assert!(matches!(jobs.cancel(Kind::Sync), Cancelled::Held));
        assert_eq!(jobs.check(Kind::Sync, &[blue]), Ok(()), "the chain ended");
        assert!(matches!(jobs.cancel(Kind::Sync), Cancelled::Nothing));
    }

    #[test]
    fn a_step_resumed_after_cancel_stops_at_its_first_check() {
        let mut jobs = Jobs::default();
        jobs.start(&None, Kind::Sync, Vec::new(), "Planning".into(), |p| {
            p.cancel();
            Err(coffer_core::Error::Failed("planned".into()))
        })
        .unwrap();
        let f = wait(&mut jobs).pop().unwrap();
        assert!(f.claim.cancelled());
        jobs.resume(&None, f.claim, "Syncing".into(), |p| {
            p.check()?;
            Err(coffer_core::Error::Failed("ran after a cancel".into()))
        });
        assert!(matches!(wait(&mut jobs)[0].outcome, Outcome::Cancelled));
    }
}
