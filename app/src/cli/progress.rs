//! Drawing a job's progress in the terminal, and Ctrl-C as Cancel.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use coffer_core::human;
use coffer_core::task::{self, Event, Outcome, Progress, Rate};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::shown;

/// The job Ctrl-C cancels.
static CURRENT: OnceLock<Arc<Mutex<Option<Progress>>>> = OnceLock::new();

fn current() -> &'static Arc<Mutex<Option<Progress>>> {
    CURRENT.get_or_init(|| {
        let slot: Arc<Mutex<Option<Progress>>> = Arc::default();
        let handler_slot = slot.clone();
        // If a handler cannot be installed, Ctrl-C simply kills the process,
        // which every job survives (the next run repairs and resumes).
        let _ = ctrlc::set_handler(move || {
            if let Some(p) = handler_slot.lock().ok().and_then(|g| g.clone()) {
                eprintln!("\ncoffer: cancelling…");
                p.cancel();
            } else {
                std::process::exit(130);
            }
        });
        slot
    })
}

/// Runs `job` on a task thread and draws its progress on stderr (unless
/// quiet). Warnings are printed as they come unless `quiet`.
pub fn run<T: Send + 'static>(
    name: &str,
    quiet: bool,
    job: impl FnOnce(&Progress) -> coffer_core::Result<T> + Send + 'static,
) -> Outcome<T> {
    let mut task = task::spawn(name, None, job);
    if let Ok(mut g) = current().lock() {
        *g = Some(task.progress().clone());
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>15} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut rate = Rate::default();
    // Each phase change goes to the log with the time it took to get there,
    // so "why was last night's sync slow?" has an answer.
    let started = Instant::now();
    let mut last_phase = None;
    let outcome = loop {
        for ev in task.drain() {
            match ev {
                Event::Progress(c) => {
                    if c.phase != last_phase {
                        last_phase = c.phase;
                        if let Some(p) = c.phase {
                            log::info!(
                                "{name}: {} at {:.2}s",
                                p.label(),
                                started.elapsed().as_secs_f64()
                            );
                        }
                    }
                    let phase = c.phase.map(|p| p.label()).unwrap_or("");
                    bar.set_prefix(phase.to_string());
                    rate.sample(Instant::now(), c.bytes_done);
                    let (pos, len) = if c.bytes_total > 0 {
                        (c.bytes_done, c.bytes_total)
                    } else {
                        (c.files_done, c.files_total.max(c.files_done))
                    };
                    bar.set_length(len.max(1));
                    bar.set_position(pos.min(len));
                    let mut msg = if c.bytes_total > 0 {
                        format!(
                            "{} / {}",
                            human::bytes(c.bytes_done),
                            human::bytes(c.bytes_total)
                        )
                    } else {
                        String::new()
                    };
                    if c.files_total > 0 {
                        msg.push_str(&format!("  {} / {} files", c.files_done, c.files_total));
                    } else if c.files_done > 0 {
                        msg.push_str(&format!("  {} files", c.files_done));
                    }
                    if let Some(bps) = rate.bytes_per_sec() {
                        msg.push_str(&format!("  {}/s", human::bytes(bps as u64)));
                        if let Some(eta) = rate.eta(c.bytes_total.saturating_sub(c.bytes_done)) {
                            msg.push_str(&format!("  ETA {}", human::duration(eta)));
                        }
                    }
                    // Counts and rates only today; escaped all the same,
                    // so a path added to the bar later cannot draw on it.
                    bar.set_message(shown::owned(msg));
                }
                Event::Warning(w) => {
                    if !quiet {
                        bar.suspend(|| eprintln!("warning: {w}"));
                    }
                }
                // A notice may name a disk by its label.
                Event::Notice(n) => {
                    if !quiet {
                        bar.suspend(|| eprintln!("{}", human::escape(&n)));
                    }
                }
            }
        }
        if let Some(o) = task.try_finish() {
            break o;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Late events (the last warnings and notices) are printed before the
    // summary.
    for ev in task.drain() {
        match (ev, quiet) {
            (Event::Warning(w), false) => bar.suspend(|| eprintln!("warning: {w}")),
            (Event::Notice(n), false) => bar.suspend(|| eprintln!("{}", human::escape(&n))),
            _ => {}
        }
    }
    bar.finish_and_clear();
    log::info!("{name}: ended at {:.2}s", started.elapsed().as_secs_f64());
    if let Ok(mut g) = current().lock() {
        *g = None;
    }
    outcome
}
