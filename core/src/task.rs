//! Long work off the caller's thread: progress, cancellation and outcomes.
//!
//! A job is a function that takes a [`Progress`] handle. It reports its
//! phase, counts of files and bytes, the current path and warnings; it checks
//! [`Progress::check`] between files and between chunks of big files. Events
//! are throttled to about 20 a second (phase changes and warnings are never
//! dropped), and each one calls the waker so that a window can repaint. A
//! [`Cancel`] flag can be made before a job and shared by jobs run one after
//! another, so that one cancel stops the whole chain.
//!
//! Invariant: a job's outcome is exactly one of `Completed { warnings }`,
//! `Cancelled` or `Failed`, and partial trouble is a warning, never a log line.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;

/// What a job is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Scanning,
    Hashing,
    Planning,
    Deleting,
    Copying,
    WritingCatalog,
    Verifying,
    Restoring,
    Archiving,
    Reading,
    /// Checking what an interrupted sync left on the disk.
    Resuming,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Scanning => "Scanning",
            Phase::Hashing => "Hashing",
            Phase::Planning => "Planning",
            Phase::Deleting => "Deleting",
            Phase::Copying => "Copying",
            Phase::WritingCatalog => "Writing catalog",
            Phase::Verifying => "Verifying",
            Phase::Restoring => "Restoring",
            Phase::Archiving => "Archiving",
            Phase::Reading => "Reading",
            Phase::Resuming => "Resuming",
        }
    }
}

/// A problem with one file or folder that did not stop the job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub path: Option<PathBuf>,
    pub message: String,
}

/// One line to show: the path (bytes that are not UTF-8 as `\xNN`) and the
/// message, with controls and bidirectional overrides escaped, since both
/// may come from a disk, a catalog or an archive.
impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = crate::human::escape(&self.message);
        match &self.path {
            Some(p) => write!(f, "{}: {message}", crate::human::path(p)),
            None => f.write_str(&message),
        }
    }
}

/// Counters of the current phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub phase: Option<Phase>,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub current: Option<PathBuf>,
}

/// What a job tells whoever watches it.
#[derive(Clone, Debug)]
pub enum Event {
    Progress(Counters),
    Warning(Warning),
    /// Something the user should read now, such as "plug in Blue WD next".
    Notice(String),
}

type Sink = Box<dyn Fn(Event) + Send + Sync>;

struct State {
    counters: Counters,
    last_sent: Option<Instant>,
    warnings: Vec<Warning>,
}

struct Inner {
    cancel: Cancel,
    sink: Option<Sink>,
    state: Mutex<State>,
}

/// A cancel flag that can be made before the job that checks it, and shared
/// by several jobs run one after another.
///
/// The window makes one when Sync is pressed and starts both the plan and the
/// scan-and-sync with it, so a cancel pressed between the two, or while the
/// plan waits for the user, stops the chain rather than only the job that
/// happened to be running.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every job started with this flag to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The handle a job reports through. Cheap to clone and share with threads.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

const THROTTLE: Duration = Duration::from_millis(50);

impl Default for Progress {
    fn default() -> Self {
        Self::silent()
    }
}

impl Progress {
    /// A handle that sends every event to `sink`.
    pub fn new(sink: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Self::build(Some(Box::new(sink)), Cancel::new())
    }

    /// A handle nobody watches: warnings are still collected.
    pub fn silent() -> Self {
        Self::build(None, Cancel::new())
    }

    fn build(sink: Option<Sink>, cancel: Cancel) -> Self {
        Progress {
            inner: Arc::new(Inner {
                cancel,
                sink,
                state: Mutex::new(State {
                    counters: Counters::default(),
                    last_sent: None,
                    warnings: Vec::new(),
                }),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A job thread that panicked while holding the lock leaves counters
        // that are still meaningful; keep going with them.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, event: Event) {
        if let Some(sink) = &self.inner.sink {
            sink(event);
        }
    }

    fn emit(&self, state: &mut State, force: bool) {
        let now = Instant::now();
        let due = state
            .last_sent
            .is_none_or(|last| now.duration_since(last) >= THROTTLE);
        if force || due {
            state.last_sent = Some(now);
            self.send(Event::Progress(state.counters.clone()));
        }
    }

    /// Starts a phase with known totals (0 when unknown).
    pub fn phase(&self, phase: Phase, files_total: u64, bytes_total: u64) {
        let mut state = self.state();
        state.counters = Counters {
            phase: Some(phase),
            files_total,
            bytes_total,
            ..Counters::default()
        };
        self.emit(&mut state, true);
    }

    /// Grows the totals of the current phase, for work discovered as it goes.
    pub fn add_totals(&self, files: u64, bytes: u64) {
        let mut state = self.state();
        state.counters.files_total += files;
        state.counters.bytes_total += bytes;
        self.emit(&mut state, false);
    }

    /// Names the file being worked on.
    pub fn current(&self, path: &Path) {
        let mut state = self.state();
        state.counters.current = Some(path.to_path_buf());
        self.emit(&mut state, false);
    }

    /// Counts finished work.
    pub fn advance(&self, files: u64, bytes: u64) {
        let mut state = self.state();
        state.counters.files_done += files;
        state.counters.bytes_done += bytes;
        self.emit(&mut state, false);
    }

    /// Sends the counters now, whatever the throttle says.
    pub fn flush(&self) {
        let mut state = self.state();
        self.emit(&mut state, true);
    }

    pub fn counters(&self) -> Counters {
        self.state().counters.clone()
    }

    /// Records a problem with one path; the job goes on.
    pub fn warn(&self, path: Option<&Path>, message: impl Into<String>) {
        let warning = Warning {
            path: path.map(Path::to_path_buf),
            message: message.into(),
        };
        self.state().warnings.push(warning.clone());
        self.send(Event::Warning(warning));
    }

    /// Tells the user something they should act on.
    pub fn notice(&self, message: impl Into<String>) {
        self.send(Event::Notice(message.into()));
    }

    pub fn warnings(&self) -> Vec<Warning> {
        self.state().warnings.clone()
    }

    pub fn cancel(&self) {
        self.inner.cancel.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// `Err(Cancelled)` once the user asked to stop.
    pub fn check(&self) -> Result<(), Error> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Completed { value: T, warnings: Vec<Warning> },
    Cancelled,
    Failed(Error),
}

impl<T> Outcome<T> {
    fn from_result(result: Result<T, Error>, progress: &Progress) -> Self {
        match result {
            Ok(value) => Outcome::Completed {
                value,
                warnings: progress.warnings(),
            },
            Err(Error::Cancelled) => Outcome::Cancelled,
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// Runs `job` on the caller's thread with `progress`, turning its result into
/// an [`Outcome`]. The CLI uses this; the window uses [`spawn`].
pub fn run<T>(progress: &Progress, job: impl FnOnce(&Progress) -> Result<T, Error>) -> Outcome<T> {
    Outcome::from_result(job(progress), progress)
}

/// A job running on its own named thread.
pub struct Task<T> {
    name: String,
    progress: Progress,
    events: Receiver<Event>,
    handle: Option<JoinHandle<Outcome<T>>>,
    started: Instant,
}

/// Starts `job` on a thread named `coffer-<name>`. `waker` is called after
/// every event (the window passes `ctx.request_repaint`).
pub fn spawn<T, F>(name: &str, waker: Option<Arc<dyn Fn() + Send + Sync>>, job: F) -> Task<T>
where
    T: Send + 'static,
    F: FnOnce(&Progress) -> Result<T, Error> + Send + 'static,
{
    spawn_with(name, waker, Cancel::new(), job)
}

/// [`spawn`], with a cancel flag made beforehand: a job started with a flag
/// already cancelled stops at its first check.
pub fn spawn_with<T, F>(
    name: &str,
    waker: Option<Arc<dyn Fn() + Send + Sync>>,
    cancel: Cancel,
    job: F,
) -> Task<T>
where
    T: Send + 'static,
    F: FnOnce(&Progress) -> Result<T, Error> + Send + 'static,
{
    let (tx, rx): (Sender<Event>, Receiver<Event>) = mpsc::channel();
    let wake = waker.clone();
    let sink: Sink = Box::new(move |event| {
        // The receiver is gone only when the watcher dropped the task; the
        // job then finishes unobserved, which is what dropping means.
        let _ = tx.send(event);
        if let Some(w) = &wake {
            w();
        }
    });
    let progress = Progress::build(Some(sink), cancel);
    let job_progress = progress.clone();
    let end_waker = waker;
    let handle = std::thread::Builder::new()
        .name(format!("coffer-{name}"))
        .spawn(move || {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&job_progress)));
            let outcome = match result {
                Ok(result) => Outcome::from_result(result, &job_progress),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "the job panicked".into());
                    Outcome::Failed(Error::Panic(msg))
                }
            };
            if let Some(w) = &end_waker {
                w();
            }
            outcome
        });
    let handle = match handle {
        Ok(h) => Some(h),
        Err(e) => {
            // Could not start a thread at all: report it as the job's failure.
            let (tx2, _) = mpsc::channel::<Event>();
            drop(tx2);
            let msg = format!("could not start a thread: {e}");
            Some(std::thread::spawn(move || {
                Outcome::Failed(Error::Panic(msg))
            }))
        }
    };
    Task {
        name: name.to_string(),
        progress,
        events: rx,
        handle,
        started: Instant::now(),
    }
}

impl<T> Task<T> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.progress.cancel();
    }

    /// Events sent since the last call, without waiting.
    pub fn drain(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The outcome if the job has ended, without waiting.
    pub fn try_finish(&mut self) -> Option<Outcome<T>> {
        if self.is_finished() {
            self.handle.take().map(join)
        } else {
            None
        }
    }

    /// Waits for the job to end.
    pub fn wait(mut self) -> Outcome<T> {
        match self.handle.take() {
            Some(h) => join(h),
            None => Outcome::Failed(Error::Panic("outcome already taken".into())),
        }
    }
}

fn join<T>(handle: JoinHandle<Outcome<T>>) -> Outcome<T> {
    handle
        .join()
        .unwrap_or_else(|_| Outcome::Failed(Error::Panic("the job thread panicked".into())))
}

/// Speed and time left, from samples of bytes done over time.
///
/// Keeps the last ~10 seconds so the estimate follows the current speed, as
/// restic's progress does, rather than the average since the start.
#[derive(Debug, Default, Clone)]
pub struct Rate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl Rate {
    const WINDOW: Duration = Duration::from_secs(10);

    pub fn sample(&mut self, at: Instant, bytes_done: u64) {
        if let Some(&(_, last)) = self.samples.back()
            && bytes_done < last
        {
            // A new phase started: its speed has nothing to do with the old one.
            self.samples.clear();
        }
        self.samples.push_back((at, bytes_done));
        while let Some(&(t, _)) = self.samples.front() {
            if at.duration_since(t) > Self::WINDOW && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Bytes per second over the window, once there is enough to tell.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        let (t0, b0) = *self.samples.front()?;
        let (t1, b1) = *self.samples.back()?;
        let secs = t1.duration_since(t0).as_secs_f64();
        (secs >= 0.5 && b1 > b0).then(|| (b1 - b0) as f64 / secs)
    }

    pub fn eta(&self, bytes_left: u64) -> Option<Duration> {
        let rate = self.bytes_per_sec()?;
        Some(Duration::from_secs_f64(bytes_left as f64 / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_follows_result_and_keeps_warnings() {
        let progress = Progress::silent();
        let out = run(&progress, |p| {
            p.warn(Some(Path::new("/a")), "unreadable");
            Ok(7)
        });
        match out {
            Outcome::Completed { value, warnings } => {
                assert_eq!(value, 7);
                assert_eq!(warnings.len(), 1);
                assert_eq!(warnings[0].to_string(), "/a: unreadable");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn cancel_is_seen_by_the_job_and_ends_as_cancelled() {
        let task = spawn("test", None, |p: &Progress| -> Result<(), Error> {
            loop {
                p.check()?;
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        task.cancel();
        assert!(matches!(task.wait(), Outcome::Cancelled));
    }

    #[test]
    fn a_shared_flag_cancelled_before_the_start_stops_the_next_job() {
        let cancel = Cancel::new();
        let first = spawn_with("first", None, cancel.clone(), |p: &Progress| {
            p.check()?;
            Ok(1)
        });
        assert!(matches!(first.wait(), Outcome::Completed { value: 1, .. }));
        // Pressed between the two jobs: nobody is running to see it.
        cancel.cancel();
        let second = spawn_with("second", None, cancel, |p: &Progress| {
            p.check()?;
            Ok(2)
        });
        assert!(matches!(second.wait(), Outcome::Cancelled));
    }

    #[test]
    fn panics_become_failures() {
        let task = spawn("panics", None, |_p: &Progress| -> Result<(), Error> {
            panic!("boom")
        });
        match task.wait() {
            Outcome::Failed(Error::Panic(msg)) => assert!(msg.contains("boom")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn events_are_throttled_but_phases_always_arrive() {
        let task = spawn("events", None, |p: &Progress| -> Result<(), Error> {
            p.phase(Phase::Copying, 10_000, 0);
            for _ in 0..10_000 {
                p.advance(1, 0);
            }
            p.phase(Phase::WritingCatalog, 1, 0);
            Ok(())
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut events = Vec::new();
        while !task.is_finished() {
            events.extend(task.drain());
        }
        events.extend(task.drain());
        assert!(
            events.len() < 200,
            "{} events for 10000 advances",
            events.len()
        );
        let phases: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Progress(c) if c.files_done == 0 => c.phase,
                _ => None,
            })
            .collect();
        assert_eq!(phases, vec![Phase::Copying, Phase::WritingCatalog]);
    }

    #[test]
    fn rate_estimates_time_left() {
        let mut rate = Rate::default();
        let t0 = Instant::now();
        rate.sample(t0, 0);
        rate.sample(t0 + Duration::from_secs(2), 200);
        assert_eq!(rate.bytes_per_sec(), Some(100.0));
        assert_eq!(rate.eta(500), Some(Duration::from_secs(5)));
    }
}
