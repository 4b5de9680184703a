//! The window's History tab and log window: jobs run in the window and on
//! the command line are listed with where they came from; "Show log" shows
//! Coffer's own lines, the toolkit's only with "Show all lines".
#![allow(clippy::unwrap_used)]

mod common;

use coffer_tests::World;
use common::gui::{
    click, config, harness, has_label, has_label_containing, plugged_disk, step_until,
    wait_for_message,
};

#[test]
fn the_history_lists_window_and_command_line_jobs_and_the_log_leaves_toolkit_noise_out() {
    let w = World::new();
    let cfg = config(&w, &["docs"]);
    w.write("docs/a.txt", "hello");
    plugged_disk(&w, &cfg, "blue", "Blue", None);
    // Toolkit noise already in the log, as a desktop session leaves it.
    let log = common::gui::log_file(&w);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(
        &log,
        "2026-01-01T00:00:00Z WARN  [7] winit::platform_impl::linux::x11::util::randr: XRandR reported that the display's 0mm in size\n",
    )
    .unwrap();
    // The window's own lines go to the same file (one logger per process:
    // this file's only test installs it).
    coffer::log::init_to(log.clone(), false);
    let mut h = harness(&w);
    step_until(&mut h, "the disk card", |h| has_label(h, "Sync Blue"));
    click(&mut h, "Sync Blue");
    let m = wait_for_message(&mut h, "the sync");
    assert!(m.ok, "{m:?}");
    // A verify from the command line, while the window is open.
    common::ok(&w, &["verify", "Blue"]);
    click(&mut h, "History");
    step_until(&mut h, "both jobs in the history", |h| {
        has_label(h, "the command line") && has_label(h, "the window")
    });
    assert!(has_label(&h, "Sync") && has_label(&h, "Verify"));
    assert!(has_label_containing(&h, "Blue: copied 1 file (5 B)"));
    assert!(has_label_containing(
        &h,
        "Blue: checked 1 copy (5 B): all good"
    ));

    click(&mut h, "Show log");
    step_until(&mut h, "the log window", |h| has_label(h, "Show all lines"));
    assert!(
        has_label_containing(&h, "Planning the sync of Blue"),
        "the window's own jobs are in the log"
    );
    assert!(
        !has_label_containing(&h, "XRandR"),
        "toolkit noise is left out"
    );
    click(&mut h, "Show all lines");
    assert!(has_label_containing(&h, "XRandR"), "all lines on request");
}
