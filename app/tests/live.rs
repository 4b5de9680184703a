#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! A SQLite database written to for the whole sync (WAL mode, as browsers
//! and mail clients keep theirs) comes back from the disk as a database
//! that opens cleanly and holds one consistent state.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use coffer_tests::{World, both, code};

const EXE: &str = env!("CARGO_BIN_EXE_coffer");

fn ok(w: &World, args: &[&str]) -> String {
    let o = w.run(Path::new(EXE), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_database_written_during_the_sync_is_restored_whole_and_consistent() {
    let w = World::new();
    // Other files, so the sync takes a while around the database.
    for i in 0..300u64 {
        w.write(&format!("Mail/cache/c{i}"), coffer_tests::bytes(i, 20_000));
    }
    let db = w.home().join("Mail/store.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
             INSERT INTO acct VALUES (1, 1000000), (2, 0);
             CREATE TABLE log(x BLOB);",
        )
        .unwrap();
    }
    // Money moves between the two accounts, one transaction at a time: the
    // sum never changes in any state a transaction leaves.
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits, db) = (Arc::clone(&stop), Arc::clone(&commits), db.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            let blob = vec![7u8; 2000];
            while !stop.load(Ordering::Relaxed) {
                c.execute_batch("BEGIN IMMEDIATE").unwrap();
                c.execute("UPDATE acct SET bal = bal - 3 WHERE id = 1", [])
                    .unwrap();
                c.execute("INSERT INTO log VALUES (?1)", [&blob]).unwrap();
                c.execute("UPDATE acct SET bal = bal + 3 WHERE id = 2", [])
                    .unwrap();
                c.execute_batch("COMMIT").unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while commits.load(Ordering::Relaxed) < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    ok(
        &w,
        &["source", "add", w.home().join("Mail").to_str().unwrap()],
    );
    let d = w.plug("disk");
    ok(
        &w,
        &["disk", "init", d.to_str().unwrap(), "--label", "Live"],
    );
    let before = commits.load(Ordering::Relaxed);
    ok(&w, &["sync"]);
    let during = commits.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(during > 0, "the database was not written during the sync");

    let out = w.dir.path().join("restored");
    ok(
        &w,
        &[
            "restore",
            w.home().join("Mail").to_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
        ],
    );
    let back = out.join("Mail/store.sqlite");
    // Its log stayed behind: a stale one restored beside it would be
    // replayed into it.
    assert!(!out.join("Mail/store.sqlite-wal").exists());
    let c = rusqlite::Connection::open(&back).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (sum, moved): (i64, i64) = c
        .query_row(
            "SELECT sum(bal), (SELECT bal FROM acct WHERE id = 2) FROM acct",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        sum, 1_000_000,
        "the restored database holds half a transaction"
    );
    let logged: i64 = c
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(moved, 3 * logged, "accounts and log disagree");
    assert!(logged >= 200, "{logged} transactions in the copy");
    // The journal mode stays the database's own business: the copy is one
    // file that any sqlite3 opens.
    eprintln!("{during} commits during the sync; the copy holds {logged}");
}
