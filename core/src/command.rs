//! Running the user's shell commands: dump commands (their output is the
//! backup) and the commands run before and after a sync.
//!
//! Invariant: a command's failure is reported with its exit status and the
//! end of what it wrote to stderr; a cancelled job stops the command.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::task::Progress;

/// How a command ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Ran {
    pub command: String,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The end of what it wrote to stderr (at most 2000 characters).
    pub stderr: String,
    pub seconds: f64,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// "exit 3" or "killed by a signal", and the end of its stderr.
    pub fn why(&self) -> String {
        let status = match self.code {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        };
        if self.stderr.is_empty() {
            status
        } else {
            format!("{status}: {}", self.stderr)
        }
    }
}

/// Runs `command` with `sh -c`, its stdout going to `stdout` (a file for a
/// dump; nothing otherwise), with `env` set. Stops it when the job is
/// cancelled. `Err`: it could not be started, or the job was cancelled.
pub fn run(
    command: &str,
    stdout: Stdio,
    env: &[(&str, &str)],
    progress: &Progress,
) -> Result<Ran, crate::Error> {
    let t0 = Instant::now();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| crate::Error::Command(format!("cannot start `{command}`: {e}")))?;
    // Read stderr on a thread: a chatty command must not fill its pipe.
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut buf);
        }
        buf
    });
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .map_err(|e| crate::Error::Command(format!("`{command}`: {e}")))?
        {
            break st;
        }
        if progress.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(crate::Error::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap_or_default();
    let text = String::from_utf8_lossy(&stderr);
    let tail: String = {
        let t = text.trim();
        let n = t.chars().count();
        t.chars().skip(n.saturating_sub(2000)).collect()
    };
    Ok(Ran {
        command: command.to_string(),
        code: status.code(),
        stderr: tail,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_stderr_are_reported() {
        let p = Progress::silent();
        let r = run("echo oops >&2; exit 3", Stdio::null(), &[], &p).unwrap();
        assert_eq!(
            (r.code, r.stderr.as_str(), r.ok()),
            (Some(3), "oops", false)
        );
        assert_eq!(r.why(), "exit 3: oops");
        let r = run("test \"$WHO\" = me", Stdio::null(), &[("WHO", "me")], &p).unwrap();
        assert!(r.ok());
    }

    #[test]
    fn a_cancelled_job_stops_its_command() {
        let p = Progress::silent();
        let t = std::thread::spawn({
            let p = p.clone();
            move || {
                std::thread::sleep(Duration::from_millis(100));
                p.cancel();
            }
        });
        let t0 = Instant::now();
        assert!(matches!(
            run("sleep 30", Stdio::null(), &[], &p),
            Err(crate::Error::Cancelled)
        ));
        assert!(t0.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }
}
