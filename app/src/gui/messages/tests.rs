use std::path::{Path, PathBuf};

use coffer_core::archive::{self, RestoreReport};
use coffer_core::jobs::SyncReport;
use coffer_core::task::Outcome;
use coffer_core::{restore, sync};

use super::*;

/// An error that keeps its cause out of its message, as most do.
#[derive(Debug)]
struct Plain {
    source: std::io::Error,
}

impl std::fmt::Display for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot open the catalog at /data/catalog.sqlite")
    }
}

impl std::error::Error for Plain {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn boom() -> std::io::Error {
    std::io::Error::other("disk on fire")
}

#[test]
fn an_error_that_embeds_its_cause_shows_it_once() {
    let e = coffer_core::Error::Disk(coffer_core::disk::Error::Io {
        op: "cannot read",
        path: PathBuf::from("/media/blue/coffer/lock"),
        source: boom(),
    });
    // Its source is the same I/O error its message already ends with.
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(
        error_text(&e),
        "cannot read /media/blue/coffer/lock: disk on fire"
    );
    let m = failed_message("Sync failed", &e);
    assert_eq!(
        m.details,
        ["cannot read /media/blue/coffer/lock: disk on fire"]
    );
}

#[test]
fn an_error_that_keeps_its_cause_apart_shows_it_after_the_message() {
    let e = Plain { source: boom() };
    assert_eq!(
        error_text(&e),
        "cannot open the catalog at /data/catalog.sqlite: disk on fire"
    );
    // Through anyhow's contexts too, each line of the chain once.
    let a = anyhow::Error::new(e).context("cannot read the catalog");
    assert_eq!(
        anyhow_text(&a),
        "cannot read the catalog: cannot open the catalog at /data/catalog.sqlite: disk on fire"
    );
    let a = anyhow::Error::new(coffer_core::Error::Disk(coffer_core::disk::Error::Io {
        op: "cannot write",
        path: PathBuf::from("/m/x"),
        source: boom(),
    }))
    .context("cannot save the setting");
    assert_eq!(
        anyhow_text(&a),
        "cannot save the setting: cannot write /m/x: disk on fire"
    );
}

fn disk_report(label: &str, copied: u64) -> sync::Report {
    sync::Report {
        label: label.into(),
        root: PathBuf::from(format!("/media/{label}")),
        copied_files: copied,
        copied_bytes: copied * 1000,
        room_after: 5_000_000,
        ..sync::Report::default()
    }
}

fn synced(disks: Vec<sync::Report>) -> Outcome<SyncReport> {
    Outcome::Completed {
        value: SyncReport {
            disks,
            ..SyncReport::default()
        },
        warnings: Vec::new(),
    }
}

#[test]
fn a_sync_of_one_disk_says_what_it_did_in_its_title() {
    let m = sync_message(synced(vec![disk_report("Blue", 2)]));
    assert!(m.ok, "{m:?}");
    assert_eq!(
        m.title,
        "Sync of Blue done: copied 2 files (2.0 kB), deleted 0 (0 B); 5.0 MB free for Coffer"
    );
    assert!(m.details.is_empty(), "{m:?}");
}

#[test]
fn a_sync_of_every_disk_says_what_each_did() {
    let mut red = disk_report("Red", 0);
    red.up_to_date = true;
    let mut green = disk_report("Green", 1);
    green.plan.short_files = 3;
    green.plan.short_bytes = 3000;
    let m = sync_message(synced(vec![disk_report("Blue", 2), red, green]));
    assert!(!m.ok, "a disk that was too small: {m:?}");
    assert_eq!(m.title, "Sync of 3 disks done");
    assert!(m.details[0].starts_with("Blue: copied 2 files"), "{m:?}");
    assert!(m.details[1].starts_with("Red is up to date"), "{m:?}");
    assert!(m.details[2].starts_with("Green: copied 1 file "), "{m:?}");
    assert!(
        m.details[3].starts_with("disk \"Green\" at /media/Green is full: 3 files left out"),
        "{m:?}"
    );
    assert_eq!(m.details.len(), 4, "{m:?}");
    let m = sync_message(synced(Vec::new()));
    assert_eq!(m.title, "Scanned; no disk was synced");
}

#[test]
fn the_question_before_a_sync_names_each_disk_that_would_lose_data() {
    use coffer_core::plan::{DeleteReason, Step};
    let mut blue = disk_report("Blue", 0);
    blue.plan.steps = vec![
        Step::Delete {
            hash: coffer_core::ObjectId::of(b"old"),
            size: 60_000,
            reason: DeleteReason::OldVersion,
        },
        Step::Delete {
            hash: coffer_core::ObjectId::of(b"spare"),
            size: 40_000,
            reason: DeleteReason::Redundant,
        },
    ];
    blue.plan.copy_files = 1;
    blue.plan.copy_bytes = 60_000;
    let q = plan_question(&[disk_report("Red", 0), blue]);
    assert_eq!(q.len(), 1, "only the disk that deletes: {q:?}");
    assert_eq!(
        q[0],
        "Blue: this sync will copy 1 file (60 kB) and delete 2 copies (100 kB) from it: \
         1 old version (60 kB) to make room (older snapshots will no longer be restorable from this disk); \
         1 copy (40 kB) to make room, whose files keep enough verified copies on other disks."
    );
    // Copies no kept snapshot needs are asked about too: a sync may delete
    // gigabytes of them.
    let mut red = disk_report("Red", 0);
    red.plan.steps = vec![Step::Delete {
        hash: coffer_core::ObjectId::of(b"pruned"),
        size: 1_600_000_000,
        reason: DeleteReason::Unreferenced,
    }];
    let q = plan_question(&[red]);
    assert_eq!(
        q[0],
        "Red: this sync will copy 0 files (0 B) and delete 1 copy (1.6 GB) from it: \
         1 copy (1.6 GB) that no kept snapshot needs any more."
    );
}

#[test]
fn a_refused_restore_names_the_window_choice_that_goes_on() {
    let m = restore_failed_message(&coffer_core::Error::Restore(restore::Error::Collisions {
        names: vec![(PathBuf::from("/out/A.txt"), "same name as a.txt".into())],
    }));
    assert!(!m.ok);
    assert!(m.details[0].contains("1 name would clash"), "{m:?}");
    assert!(m.details[0].contains("\"Rename clashing names\""), "{m:?}");
    assert_eq!(m.details[1], "/out/A.txt: same name as a.txt");
    let m = restore_failed_message(&coffer_core::Error::Restore(restore::Error::Conflicts {
        paths: vec![PathBuf::from("/out/a"), PathBuf::from("/out/b")],
    }));
    assert!(
        m.details[0].contains("2 paths to restore already exist"),
        "{m:?}"
    );
    assert!(!m.details[0].contains("--"), "no command-line flags: {m:?}");
}

#[test]
fn an_incomplete_restore_says_which_disk_to_plug_in_next() {
    let report = restore::Report {
        dest: PathBuf::from("/tmp/out"),
        files: 2,
        missing_files: 3,
        missing_bytes: 3000,
        plug_next: vec![restore::DiskNeed {
            disk_id: uuid::Uuid::nil(),
            label: "Red".into(),
            files: 3,
            bytes: 3000,
        }],
        skipped_existing: vec![PathBuf::from("/tmp/out/a.txt")],
        ..restore::Report::default()
    };
    let m = restore_message(Outcome::Completed {
        value: report,
        warnings: Vec::new(),
    });
    assert!(!m.ok);
    assert!(m.title.starts_with("Restored 2 files"), "{m:?}");
    assert!(
        m.details
            .iter()
            .any(|d| d.starts_with("Plug in \"Red\" next: 3 files")),
        "{m:?}"
    );
    assert!(
        m.details
            .iter()
            .any(|d| d.starts_with("Left 1 existing path untouched")),
        "{m:?}"
    );
}

#[test]
fn a_refused_archive_restore_names_the_existing_paths_and_the_way_out() {
    let e = coffer_core::Error::Archive(archive::Error::Exists {
        paths: vec![PathBuf::from("/out/docs/a.txt")],
    });
    let m = archive_failed_message("Restore from home-1 failed", &e);
    assert!(!m.ok);
    assert_eq!(m.title, "Restore from home-1 failed");
    assert!(m.details[0].starts_with("Nothing was restored"), "{m:?}");
    assert!(m.details[0].contains("Replace existing files"), "{m:?}");
    assert!(!m.details[0].contains("--overwrite"), "{m:?}");
    assert_eq!(m.details[1], "Exists: /out/docs/a.txt");
}

#[test]
fn other_archive_errors_keep_the_path_and_cause() {
    let e = coffer_core::Error::Archive(archive::Error::Unsafe {
        path: PathBuf::from("/nas/home-1.tar.gz"),
        member: "../evil".into(),
        reason: "it leaves the destination".into(),
    });
    let m = archive_failed_message("Restore from home-1 failed", &e);
    assert_eq!(
        m.details,
        vec![
            "/nas/home-1.tar.gz holds an unsafe member `../evil`: it leaves the destination; nothing was extracted"
        ]
    );
}

#[test]
fn an_archive_restore_message_counts_and_says_how_to_load_dumps() {
    let r = RestoreReport {
        sequence: 2,
        files: 3,
        bytes: 2000,
        dirs: 1,
        read: vec![PathBuf::from("/nas/home-1.tar.gz")],
        dumps: vec![archive::RestoredDump {
            name: "db".into(),
            path: PathBuf::from("/out/dumps/db"),
            load_command: Some("psql".into()),
        }],
        ..RestoreReport::default()
    };
    let m = archive_restored_message("home-2", Path::new("/out"), &r);
    assert!(m.ok);
    assert_eq!(
        m.title,
        "Restored home-2 into /out: 3 files (2.0 kB), 1 folder, 0 symlinks"
    );
    assert_eq!(
        m.details,
        vec![
            "Read /nas/home-1.tar.gz",
            "Dump \"db\" is at /out/dumps/db; load it back with: psql < /out/dumps/db"
        ]
    );
}

#[test]
fn an_archive_job_with_warnings_is_not_all_good() {
    let w = coffer_core::Warning {
        path: Some(PathBuf::from("/home/me/locked.txt")),
        message: "cannot read it".into(),
    };
    let m = archive_message(
        "Archive job",
        Outcome::Completed {
            value: (),
            warnings: vec![w],
        },
        |()| Message::done("Archive 1 written".into()),
    );
    assert!(!m.ok);
    assert_eq!(m.details.len(), 1, "{m:?}");
    let m = archive_message("Restore from home-1", Outcome::<()>::Cancelled, |()| {
        Message::done(String::new())
    });
    assert_eq!(m.title, "Restore from home-1 cancelled");
}

#[test]
fn the_estimate_says_what_a_sync_will_copy_and_delete() {
    use coffer_core::plan::{DeleteReason, Step};
    let mut blue = disk_report("Blue", 0);
    blue.plan.copy_files = 111;
    blue.plan.copy_bytes = 344_000_000;
    assert_eq!(
        estimate(&[blue.clone()], None),
        "111 files (344 MB) to copy"
    );
    // Past syncs ran at 10 MB/s: 344 MB takes about 35 s.
    assert_eq!(
        estimate(&[blue.clone()], Some(10_000_000.0)),
        "111 files (344 MB) to copy, about 35 s"
    );
    blue.plan.steps = vec![Step::Delete {
        hash: coffer_core::ObjectId::of(b"old"),
        size: 1_200_000_000,
        reason: DeleteReason::OldVersion,
    }];
    assert_eq!(
        estimate(&[blue, disk_report("Red", 0)], None),
        "111 files (344 MB) to copy, 1 copy (1.2 GB) to delete"
    );
    assert_eq!(
        estimate(&[disk_report("Red", 0)], None),
        "nothing new to copy"
    );
}

#[test]
fn the_sync_rate_comes_from_past_syncs_that_copied_enough() {
    use coffer_core::catalog::{HistoryEntry, JobEnd};
    let job = |kind: &str, bytes: u64, secs: i64, outcome: JobEnd| HistoryEntry {
        id: 1,
        kind: kind.into(),
        front_end: "window".into(),
        pid: 1,
        started_at: 1000,
        finished_at: Some(1000 + secs),
        outcome,
        disks: Vec::new(),
        files: 1,
        bytes,
        warnings: 0,
        summary: String::new(),
    };
    assert_eq!(sync_rate(&[]), None);
    let history = [
        job("sync", 40_000_000, 4, JobEnd::Completed),
        job("sync", 500, 10, JobEnd::Completed),
        job("verify", 90_000_000, 1, JobEnd::Completed),
        job("sync", 60_000_000, 6, JobEnd::Completed),
        job("sync", 60_000_000, 1, JobEnd::Failed),
    ];
    assert_eq!(sync_rate(&history), Some(10_000_000.0));
}

#[test]
fn fewer_copies_than_new_files_are_explained_and_equal_counts_are_not() {
    let with_scan = |copied: u64, added: u64| {
        let mut out = synced(vec![disk_report("Blue", copied)]);
        if let Outcome::Completed { value, .. } = &mut out {
            value.scan = Some(coffer_core::scan::Report {
                files: 4280,
                added,
                ..Default::default()
            });
        }
        sync_message(out)
    };
    let m = with_scan(3602, 4280);
    assert_eq!(
        m.details,
        [
            "The scan found 4280 new or changed files; files with the same content are copied once, so fewer copies were needed"
        ]
    );
    assert!(m.ok, "an explanation, not a problem: {m:?}");
    assert!(with_scan(5, 5).details.is_empty());
    assert!(with_scan(1, 0).details.is_empty(), "a copy for an old file");
}
