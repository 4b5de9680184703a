//! Bucket disks in the window, driven by label, against a real S3 server
//! (moto on 127.0.0.1) or a port that does not answer: a card per bucket
//! disk, reachable or not and why, its Sync, and "Sync all connected disks"
//! taking the buckets that answer and saying which did not.
//!
//! The window reaches buckets with the standard AWS variables of its own
//! process, as the command line does. A test cannot set them on itself (the
//! environment is shared by every test thread, and changing it is unsafe),
//! so each test starts what it needs, then runs its own body again in a
//! child process of this test binary with the variables set.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use coffer::gui::Purpose;
use coffer_core::bucket::{Bucket, BucketDisk, Location, Settings};
use coffer_core::catalog::DiskRow;
use coffer_core::{Catalog, crypto};
use coffer_tests::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY, free_port};
use coffer_tests::{World, both, bytes};
use common::gui::{
    answer, click, config, enabled, harness, has_label, has_label_containing, paths, pick,
    plugged_disk, step_until, wait_for_dialog, wait_for_message,
};
use egui_kittest::kittest::{NodeT as _, Queryable as _};

/// Set in the child process that runs a test's body.
const CHILD: &str = "COFFER_GUI_BUCKET_CHILD";

/// Runs the test `name` of this binary again in a child process whose AWS
/// variables point at `endpoint` (and whose passphrase is "pw"); fails
/// with the child's output when the child fails.
fn in_child(name: &str, endpoint: &str) {
    in_child_with(name, endpoint, Some("pw"));
}

/// [`in_child`], with `COFFER_PASSPHRASE` set to `pass`, or unset.
fn in_child_with(name: &str, endpoint: &str, pass: Option<&str>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env_remove("COFFER_PASSPHRASE");
    if let Some(p) = pass {
        cmd.env("COFFER_PASSPHRASE", p);
    }
    let o = cmd.output().unwrap();
    let out = both(&o);
    assert!(o.status.success(), "{out}");
    // The filter matched the test: its body ran (and was not skipped).
    assert!(out.contains("1 passed"), "{out}");
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// A bucket disk made at `url` (encrypted with "pw" when asked), known to
/// the world's catalog as `coffer disk init s3://…` leaves it.
fn bucket_disk(w: &World, url: &str, label: &str, set: uuid::Uuid, encrypt: bool) -> BucketDisk {
    let bucket = Bucket::connect(&Location::parse(url).unwrap(), &Settings::from_env()).unwrap();
    let encryption =
        encrypt.then(|| crypto::Encryption::create(b"pw", Some(8 * 1024), None).unwrap());
    let d = BucketDisk::init(bucket, label, set, Some(50_000_000), encryption).unwrap();
    let catalog = Catalog::open(&paths(w).catalog_file()).unwrap();
    coffer_core::sync::register_bucket(&catalog, &d, 0).unwrap();
    d
}

/// The labels that hold `part` (for a failure's message).
fn labels(h: &egui_kittest::Harness<'_, coffer::gui::CofferApp>, part: &str) -> Vec<String> {
    h.query_all_by_label_contains(part)
        .map(|n| {
            format!(
                "{:?} {:?}",
                n.accesskit_node().label(),
                n.accesskit_node().value()
            )
        })
        .collect()
}

/// Keys stored under `under` in the bucket disk's prefix.
fn keys(d: &BucketDisk, under: &str) -> Vec<String> {
    d.bucket().list(under).unwrap().into_keys().collect()
}

/// How many files of a local disk's object store.
fn local_objects(root: &Path) -> usize {
    walk(&root.join("coffer/objects"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { walk(&p) } else { 1 })
            .sum()
    })
}

#[test]
fn a_reachable_bucket_has_a_card_syncs_from_it_and_sync_all_leaves_another_sets_alone() {
    if !is_child() {
        let s3 = S3Server::start();
        s3.create_bucket("win-bucket");
        return in_child(
            "a_reachable_bucket_has_a_card_syncs_from_it_and_sync_all_leaves_another_sets_alone",
            &s3.endpoint(),
        );
    }
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    for i in 0..3u64 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 20_000));
    }
    let cloud = bucket_disk(
        &w,
        "s3://win-bucket/home",
        "Cloud",
        cfg.profile.set_id,
        true,
    );
    // A bucket disk of another backup set that this catalog knows.
    let theirs = bucket_disk(
        &w,
        "s3://win-bucket/theirs",
        "Theirs",
        uuid::Uuid::new_v4(),
        false,
    );
    let before = keys(&theirs, "");
    let blue = plugged_disk(&w, &cfg, "blue", "Blue", None);

    let mut h = harness(&w);
    step_until(&mut h, "both bucket cards to answer", |h| {
        h.query_all_by_label("reachable").count() == 2
    });
    assert!(has_label(&h, "Bucket disks"));
    assert!(has_label(&h, "s3://win-bucket/home"));
    assert!(
        has_label_containing(&h, "reachable, encrypted: 50 MB free of its 50 MB quota"),
        "{:?}",
        labels(&h, "reachable")
    );
    assert!(has_label(&h, "reachable: it belongs to another backup set"));
    assert!(enabled(&h, "Sync Cloud"));
    assert!(!enabled(&h, "Sync Theirs"), "another set's bucket");

    // Sync on the bucket's card: the same chain as a disk's.
    click(&mut h, "Sync Cloud");
    let m = wait_for_message(&mut h, "the bucket's sync");
    assert!(m.ok && m.title.starts_with("Sync of Cloud done"), "{m:?}");
    assert_eq!(keys(&cloud, "coffer/objects/").len(), 3);
    assert_eq!(local_objects(&blue), 0, "only the bucket was synced");
    step_until(&mut h, "the card to count the sync", |h| {
        has_label_containing(h, "Holds every current file")
    });

    // Sync all: the plugged disk and the bucket of this set, not the other.
    w.write("docs/new.bin", bytes(9, 20_000));
    click(&mut h, "Sync all connected disks");
    let m = wait_for_message(&mut h, "the sync of every connected disk");
    assert!(m.ok, "{m:?}");
    assert_eq!(m.title, "Sync of 2 disks done", "{m:?}");
    assert!(
        m.details.iter().any(|d| d.starts_with("Cloud: ")) && m.details.len() == 2,
        "{m:?}"
    );
    assert_eq!(keys(&cloud, "coffer/objects/").len(), 4);
    assert_eq!(local_objects(&blue), 4);
    assert_eq!(
        keys(&theirs, ""),
        before,
        "another set's bucket is untouched"
    );
}

#[test]
fn a_bucket_that_does_not_answer_says_why_and_sync_all_goes_on_without_it() {
    let port = free_port();
    if !is_child() {
        return in_child(
            "a_bucket_that_does_not_answer_says_why_and_sync_all_goes_on_without_it",
            &format!("http://127.0.0.1:{port}"),
        );
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    // A server that takes connections and never answers: the card says
    // "checking…" for as long as it hangs.
    let hang = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    let mut row = DiskRow::new(uuid::Uuid::new_v4(), "Away", 0);
    row.last_mount = Some("s3://gone-bucket/home".into());
    let catalog = Catalog::open(&paths(&w).catalog_file()).unwrap();
    catalog.upsert_disk(&row).unwrap();
    drop(catalog);
    let blue = plugged_disk(&w, &cfg, "blue", "Blue", None);

    let mut h = harness(&w);
    step_until(&mut h, "the bucket's card", |h| has_label(h, "Away"));
    assert!(has_label(&h, "checking…"), "while the server hangs");
    assert!(!enabled(&h, "Sync Away"));
    // Nothing listens any more: refused.
    drop(hang);
    step_until(&mut h, "the card to say it did not answer", |h| {
        h.query_all_by_label("unreachable").count() == 1
    });
    click(&mut h, "Check again");
    step_until(&mut h, "the check again", |h| !h.state().busy());
    let why = "unreachable: nothing answers at the server's address (connection refused)";
    assert!(has_label(&h, why), "{:?}", labels(&h, "reachable"));
    assert!(!enabled(&h, "Sync Away"));
    // None of the client's own words (retries, requests) reach the window.
    for raw in ["retr", "Error performing", "http://"] {
        assert!(!has_label_containing(&h, raw), "{raw}");
    }

    // Sync all syncs the plugged disk and says the bucket did not answer:
    // not a failure.
    click(&mut h, "Sync all connected disks");
    let m = wait_for_message(&mut h, "the sync of every connected disk");
    assert!(m.ok, "{m:?}");
    assert!(m.title.starts_with("Sync of Blue done"), "{m:?}");
    assert_eq!(
        m.details,
        [
            "Away (s3://gone-bucket/home) did not answer: nothing answers at the server's address (connection refused); not synced this time"
        ],
        "{m:?}"
    );
    assert_eq!(local_objects(&blue), 1);
}

#[test]
fn an_encrypted_bucket_asks_its_passphrase_in_the_window_before_a_sync() {
    if !is_child() {
        let s3 = S3Server::start();
        s3.create_bucket("lock-bucket");
        // No COFFER_PASSPHRASE: only the dialog can give it.
        return in_child_with(
            "an_encrypted_bucket_asks_its_passphrase_in_the_window_before_a_sync",
            &s3.endpoint(),
            None,
        );
    }
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    for i in 0..2u64 {
        w.write(&format!("docs/f{i}.bin"), bytes(i, 20_000));
    }
    let cloud = bucket_disk(
        &w,
        "s3://lock-bucket/home",
        "Cloud",
        cfg.profile.set_id,
        true,
    );
    let objects = || keys(&cloud, "coffer/objects/").len();

    let mut h = harness(&w);
    step_until(&mut h, "the bucket card to answer", |h| {
        has_label_containing(h, "reachable, encrypted")
    });
    click(&mut h, "Sync Cloud");
    wait_for_dialog(&mut h, "Cloud");

    answer(&mut h, "not it");
    step_until(&mut h, "the refusal", |h| {
        !h.state().busy() && has_label(h, "Wrong passphrase for Cloud. Try again.")
    });
    assert!(h.state().message().is_none(), "no job ran");
    assert_eq!(objects(), 0, "nothing was uploaded");

    answer(&mut h, "pw");
    let m = wait_for_message(&mut h, "the bucket's sync");
    assert!(m.ok && m.title.starts_with("Sync of Cloud done"), "{m:?}");
    assert_eq!(objects(), 2);

    // The window keeps the answer: verifying the bucket does not ask.
    click(&mut h, "Dismiss");
    click(&mut h, "Verify Cloud");
    let m = wait_for_message(&mut h, "the bucket's verify");
    assert!(m.ok, "{m:?}");
    assert!(h.state().asking_passphrase_for().is_none());
}

#[test]
fn the_restore_tab_restores_from_an_encrypted_bucket_after_its_passphrase() {
    if !is_child() {
        let s3 = S3Server::start();
        s3.create_bucket("restore-bucket");
        // No COFFER_PASSPHRASE: the sync and the restore ask in the dialog.
        return in_child_with(
            "the_restore_tab_restores_from_an_encrypted_bucket_after_its_passphrase",
            &s3.endpoint(),
            None,
        );
    }
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    let body = bytes(3, 30_000);
    w.write("docs/a.bin", &body);
    bucket_disk(
        &w,
        "s3://restore-bucket/home",
        "Cloud",
        cfg.profile.set_id,
        true,
    );

    let mut h = harness(&w);
    step_until(&mut h, "the bucket card to answer", |h| {
        has_label_containing(h, "reachable, encrypted")
    });
    click(&mut h, "Sync Cloud");
    wait_for_dialog(&mut h, "Cloud");
    answer(&mut h, "pw");
    let m = wait_for_message(&mut h, "the bucket's sync");
    assert!(m.ok, "{m:?}");
    click(&mut h, "Dismiss");

    // The bucket holds the only copy now.
    std::fs::remove_file(w.home().join("docs/a.bin")).unwrap();
    click(&mut h, "Restore");
    let docs = w.home().join("docs").display().to_string();
    step_until(&mut h, "the snapshot tree", |h| has_label(h, &docs));
    click(&mut h, &docs);
    let dest = w.dir.path().join("restored");
    std::fs::create_dir_all(&dest).unwrap();
    pick(&mut h, Purpose::RestoreDest, &dest);
    click(&mut h, "Restore ticked items");
    let m = wait_for_message(&mut h, "the restore from the bucket");
    assert!(m.ok && m.title.starts_with("Restored"), "{m:?}");
    assert_eq!(std::fs::read(dest.join("docs/a.bin")).unwrap(), body);
}
