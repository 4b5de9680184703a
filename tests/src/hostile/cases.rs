//! Tables of named cases: run them on a few threads, judge every command of
//! every case, and fail once at the end with the whole list of problems, so
//! one run shows every gap.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::run::Run;

/// What a command of a case must do.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Exit non-zero, and name one of these in stdout or stderr (any message
    /// when the list is empty).
    Fails(Vec<String>),
    /// Exit non-zero, naming every one of these.
    FailsAll(Vec<String>),
    /// Exit with exactly this code, naming one of these.
    Exit(i32, Vec<String>),
    /// Exit 0.
    Ok,
    /// Exit 0, or fail naming one of these.
    OkOrFails(Vec<String>),
    /// Any exit code; only the common checks (no crash, no hang, clean output).
    Any,
}

/// Needles from string slices.
pub fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// `Expect::Fails` naming one of `n`.
pub fn fails(n: &[&str]) -> Expect {
    Expect::Fails(names(n))
}

/// `Expect::OkOrFails` naming one of `n`.
pub fn ok_or_fails(n: &[&str]) -> Expect {
    Expect::OkOrFails(names(n))
}

fn named(out: &str, needles: &[String]) -> bool {
    needles.is_empty() || needles.iter().any(|n| out.contains(n.as_str()))
}

fn needle_list(needles: &[String]) -> String {
    needles
        .iter()
        .map(|n| format!("`{}`", super::run::visible(n.as_bytes())))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The problems with one run: crash, hang, raw control characters, and the
/// expectation. Empty when it behaved.
pub fn judge(run: &Run, expect: &Expect) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = run.crash() {
        out.push(format!("{c}; {}", run.describe()));
        return out;
    }
    if let Some(c) = run.control_chars() {
        out.push(format!("{c}; {}", run.describe()));
    }
    // The hostile names and labels carry a newline and then `fake line`:
    // printed raw, that starts a line no real message starts with.
    if let Some(l) = run.line_starting_with("fake line") {
        out.push(format!("output forges the line {l:?}; {}", run.describe()));
    }
    let code = run.code.unwrap_or(-1);
    let text = run.output();
    let bad = match expect {
        Expect::Fails(_) | Expect::FailsAll(_) if code == 0 => {
            Some("exit 0, expected a failure".to_string())
        }
        Expect::FailsAll(n) if !n.iter().all(|x| text.contains(x.as_str())) => Some(format!(
            "failed without naming all of {}",
            needle_list(n).replace(" or ", " and ")
        )),
        Expect::Fails(n) if !named(&text, n) => Some(format!(
            "failed without naming {} in its output",
            needle_list(n)
        )),
        Expect::Exit(want, _) if code != *want => Some(format!("exit {code}, expected {want}")),
        Expect::Exit(_, n) if !named(&text, n) => Some(format!(
            "exit code right but output does not name {}",
            needle_list(n)
        )),
        Expect::Ok if code != 0 => Some(format!("exit {code}, expected 0")),
        Expect::OkOrFails(n) if code != 0 && !named(&text, n) => Some(format!(
            "exit {code} without naming {} (expected 0, or a failure naming it)",
            needle_list(n)
        )),
        _ => None,
    };
    if let Some(b) = bad {
        out.push(format!("{b}; {}", run.describe()));
    }
    out
}

/// Problems found in one group of cases, collected from worker threads.
pub struct Findings {
    group: String,
    problems: Mutex<Vec<(String, String)>>,
    notes: Mutex<Vec<String>>,
    started: Instant,
    cases: AtomicUsize,
    /// The slowest command that finished, to keep an eye on the budget.
    slowest: Mutex<Option<(f64, String)>>,
}

impl Findings {
    pub fn new(group: &str) -> Findings {
        Findings {
            group: group.into(),
            problems: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            started: Instant::now(),
            cases: AtomicUsize::new(0),
            slowest: Mutex::new(None),
        }
    }

    /// Records a problem of `case`.
    pub fn fail(&self, case: &str, problem: impl Into<String>) {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((case.to_string(), problem.into()));
    }

    /// Records problems of `case` coming out of [`judge`] or a tree check,
    /// each prefixed with `what` (the command, usually).
    pub fn fail_all(&self, case: &str, what: &str, problems: Vec<String>) {
        for p in problems {
            self.fail(case, format!("{what}: {p}"));
        }
    }

    /// Runs a command's judgement and records what is wrong with it.
    pub fn check(&self, case: &str, run: &Run, expect: &Expect) {
        if !run.hung {
            let mut s = self.slowest.lock().unwrap_or_else(|e| e.into_inner());
            if s.as_ref()
                .is_none_or(|(t, _)| run.elapsed.as_secs_f64() > *t)
            {
                *s = Some((run.elapsed.as_secs_f64(), format!("{case}: `{}`", run.line)));
            }
        }
        for p in judge(run, expect) {
            self.fail(case, p);
        }
    }

    /// Counts a case run outside [`Findings::run_cases`].
    pub fn case(&self) {
        self.cases.fetch_add(1, Ordering::SeqCst);
    }

    /// A line printed with the summary (a skipped case, a measurement).
    pub fn note(&self, line: impl Into<String>) {
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.into());
    }

    /// Runs `f` on every case from `workers` threads. A panic inside a
    /// case (a failed setup step) is recorded as a problem of that case and
    /// the others go on.
    pub fn run_cases<T: Sync>(
        &self,
        cases: &[T],
        name: impl Fn(&T) -> String + Sync,
        workers: usize,
        f: impl Fn(&T) + Sync,
    ) {
        self.run_cases_with(cases, name, workers, || (), |_, c| f(c));
    }

    /// Like [`Findings::run_cases`], each worker keeping a state made by
    /// `init` (a world it reuses from case to case).
    pub fn run_cases_with<T: Sync, S>(
        &self,
        cases: &[T],
        name: impl Fn(&T) -> String + Sync,
        workers: usize,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, &T) + Sync,
    ) {
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers.max(1) {
                s.spawn(|| {
                    let mut state: Option<S> = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(c) = cases.get(i) else { break };
                        self.cases.fetch_add(1, Ordering::SeqCst);
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            let st = state.get_or_insert_with(&init);
                            f(st, c)
                        }));
                        if let Err(p) = r {
                            // The state may be half-changed: start afresh.
                            state = None;
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "a panic".into());
                            self.fail(&name(c), format!("the case itself panicked: {msg}"));
                        }
                    }
                });
            }
        });
    }

    /// Prints the summary and panics with every problem, grouped by case.
    pub fn finish(self) {
        let problems = self
            .problems
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let notes = self.notes.into_inner().unwrap_or_else(|e| e.into_inner());
        let n = self.cases.load(Ordering::SeqCst);
        let mut failing: Vec<String> = problems.iter().map(|(c, _)| c.clone()).collect();
        failing.sort();
        failing.dedup();
        eprintln!(
            "[{}] {n} cases in {:.1} s, {} failing",
            self.group,
            self.started.elapsed().as_secs_f64(),
            failing.len()
        );
        if let Some((t, what)) = self.slowest.into_inner().unwrap_or_else(|e| e.into_inner()) {
            eprintln!(
                "[{}] slowest command that finished: {t:.1} s, {what}",
                self.group
            );
        }
        for l in &notes {
            eprintln!("[{}] note: {l}", self.group);
        }
        if problems.is_empty() {
            return;
        }
        let mut msg = format!(
            "{}: {} of {n} cases failed: {}\n",
            self.group,
            failing.len(),
            failing.join(", ")
        );
        for case in &failing {
            msg.push_str(&format!("\n== {case}\n"));
            for (c, p) in &problems {
                if c == case {
                    msg.push_str(&format!("  - {p}\n"));
                }
            }
        }
        panic!("{msg}");
    }
}
