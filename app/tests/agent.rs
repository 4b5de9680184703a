//! The background agent as a real process: on a private session bus with
//! a notification listener of the test's own (it serves
//! `org.freedesktop.Notifications` and records every `Notify`), a known
//! disk with auto-sync on that appears under the test mount root is
//! synced within 10 s with no window open, a notification says so, and
//! `coffer history --json` lists the job as the agent's. A disk already
//! plugged in when the agent starts is synced too; a second agent leaves
//! at once; the window's status file names the agent's job.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_tests::{World, both, bytes, code};
use common::{exe, json, ok};

/// A private session bus: a `dbus-daemon` of this test, ended with it.
struct Bus {
    daemon: Child,
    address: String,
}

impl Bus {
    fn start() -> Bus {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (package dbus) must be installed to test the agent");
        let mut line = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Bus {
            daemon,
            address: line.trim().to_string(),
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

type Seen = Arc<Mutex<Vec<(String, String, u8)>>>;

/// The arguments of `org.freedesktop.Notifications.Notify`: app name,
/// replaces id, icon, summary, body, actions, hints, timeout.
type NotifyArgs = (
    String,
    u32,
    String,
    String,
    String,
    Vec<String>,
    HashMap<String, zbus::zvariant::OwnedValue>,
    i32,
);

/// The test's notification server, on the bus under the standard name:
/// records summary, body and urgency of each notification.
fn listen(bus: &Bus) -> (zbus::blocking::Connection, Seen) {
    let seen: Seen = Arc::default();
    let conn = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .build()
        .unwrap();
    // Made before the thread starts, so no call is missed.
    let calls = zbus::blocking::MessageIterator::from(&conn);
    let (c, s) = (conn.clone(), seen.clone());
    std::thread::spawn(move || serve(calls, &c, &s));
    (conn, seen)
}

/// Answers the method calls of the notification interface the agent makes,
/// read as raw messages, until the connection closes.
fn serve(calls: zbus::blocking::MessageIterator, conn: &zbus::blocking::Connection, seen: &Seen) {
    let mut next = 0u32;
    for msg in calls {
        let Ok(msg) = msg else { break };
        let h = msg.header();
        if h.message_type() != zbus::message::Type::MethodCall {
            continue;
        }
        let sent = match h.member().map(|m| m.as_str()) {
            Some("Notify") => {
                let Ok((_, replaces_id, _, summary, body, _, hints, _)) =
                    msg.body().deserialize::<NotifyArgs>()
                else {
                    continue;
                };
                let urgency = hints
                    .get("urgency")
                    .and_then(|v| u8::try_from(v).ok())
                    .unwrap_or(255);
                seen.lock().unwrap().push((summary, body, urgency));
                let id = if replaces_id != 0 {
                    replaces_id
                } else {
                    next += 1;
                    next
                };
                conn.reply(&h, &id)
            }
            Some("GetCapabilities") => conn.reply(&h, &vec!["body".to_string()]),
            Some("GetServerInformation") => conn.reply(&h, &("coffer-test", "coffer", "1", "1.2")),
            _ => conn.reply_dbus_error(
                &h,
                zbus::fdo::Error::UnknownMethod("not a notification call".into()),
            ),
        };
        if sent.is_err() {
            break;
        }
    }
}

/// The agent, killed when the test ends.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(w: &World, bus: &Bus) -> Agent {
    let mut c = w.command(exe(), &["agent", "--verify-budget", "5s"]);
    c.env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Agent(c.spawn().unwrap())
}

fn setup() -> World {
    let w = World::new();
    for i in 0..5 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 30_000));
    }
    ok(
        &w,
        &["source", "add", w.home().join("docs").to_str().unwrap()],
    );
    for (dir, label) in [("blue", "Blue WD"), ("red", "Red")] {
        let d = w.plug(dir);
        ok(&w, &["disk", "init", d.to_str().unwrap(), "--label", label]);
        ok(&w, &["disk", "auto-sync", label, "on"]);
    }
    w
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn agent_syncs(w: &World) -> Vec<serde_json::Value> {
    let (_, v) = json(w, &["history"]);
    v["result"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "sync" && j["front_end"] == "agent")
        .cloned()
        .collect()
}

#[test]
fn a_disk_plugged_in_is_synced_by_the_agent_with_a_notification_and_a_history_entry() {
    let w = setup();
    // Red stays plugged in: the agent syncs it as it starts. Blue is in
    // the drawer until the agent runs.
    w.unplug("blue");
    let bus = Bus::start();
    let (_conn, seen) = listen(&bus);
    let _agent = agent(&w, &bus);
    let took = wait_for("the sync of Red at start", Duration::from_secs(10), || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|n| n.0 == "Red is backed up")
    });
    eprintln!("Red synced {took:?} after the agent started");
    // A second agent sees the first and leaves.
    let o = w.run(exe(), &["agent"]);
    assert_eq!(code(&o), 0, "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Another Coffer agent runs already"),
        "{}",
        both(&o)
    );
    // The window's view of the agent: its process, alive and writing.
    let status = w.data_dir().join("agent.json");
    wait_for("the agent's status file", Duration::from_secs(10), || {
        status.exists()
    });
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).unwrap()).unwrap();
    assert_eq!(s["pid"].as_u64(), Some(u64::from(_agent.0.id())), "{s}");

    let plugged = Instant::now();
    w.replug("blue");
    wait_for(
        "the sync of Blue WD once plugged in",
        Duration::from_secs(10),
        || {
            seen.lock()
                .unwrap()
                .iter()
                .any(|n| n.0 == "Blue WD is backed up")
        },
    );
    eprintln!(
        "Blue WD synced {:?} after it was plugged in",
        plugged.elapsed()
    );
    let notes = seen.lock().unwrap().clone();
    let started = notes
        .iter()
        .position(|n| n.0 == "Backing up to Blue WD")
        .unwrap();
    let done = notes
        .iter()
        .position(|n| n.0 == "Blue WD is backed up")
        .unwrap();
    assert!(started < done, "{notes:?}");
    let body = &notes[done].1;
    assert!(body.starts_with("Copied 5 files (150 kB)"), "{notes:?}");
    assert_eq!(notes[done].2, 1, "a normal urgency: {notes:?}");

    let jobs = agent_syncs(&w);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let labels: Vec<&str> = jobs
        .iter()
        .map(|j| j["disks"][0]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Blue WD", "Red"], "newest first");
    assert!(jobs.iter().all(|j| j["outcome"] == "completed"), "{jobs:?}");
    assert_eq!(jobs[0]["files"], 5);
    // Each sync was followed by a slice of verify, the agent's too.
    wait_for("the verify of Blue WD", Duration::from_secs(10), || {
        let (_, v) = json(&w, &["history"]);
        v["result"]["jobs"].as_array().unwrap().iter().any(|j| {
            j["kind"] == "verify"
                && j["front_end"] == "agent"
                && j["disks"][0]["label"] == "Blue WD"
        })
    });
    // The disks now hold everything: the agent wrote them for real.
    for d in ["blue", "red"] {
        assert_eq!(
            coffer_tests::assert_store_consistent(&w.mounts().join(d)).len(),
            5
        );
    }
}

#[test]
fn a_disk_without_auto_sync_is_left_alone_and_a_failure_is_told() {
    let w = setup();
    ok(&w, &["disk", "auto-sync", "Red", "off"]);
    // The command before the sync fails: the sync fails, and says so.
    ok(&w, &["hook", "before", "exit 3"]);
    let bus = Bus::start();
    let (_conn, seen) = listen(&bus);
    let _agent = agent(&w, &bus);
    wait_for("the failure notice", Duration::from_secs(10), || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|n| n.0 == "Backup to Blue WD failed")
    });
    let notes = seen.lock().unwrap().clone();
    let failed = notes
        .iter()
        .find(|n| n.0 == "Backup to Blue WD failed")
        .unwrap();
    assert_eq!(failed.2, 2, "critical: {notes:?}");
    assert!(
        failed.1.contains("the command before the sync"),
        "{notes:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !seen.lock().unwrap().iter().any(|n| n.0.contains("Red")),
        "{:?}",
        seen.lock().unwrap()
    );
    let (_, v) = json(&w, &["history"]);
    let jobs = v["result"]["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{v}");
    assert_eq!(jobs[0]["outcome"], "failed");
    assert_eq!(jobs[0]["front_end"], "agent");
}
