#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! A restore plan against the run that executes it: the figures a plan
//! gives before anything is written (files, bytes, folders, symlinks,
//! links, FIFOs, the disks read and the disks to plug in next, what
//! exists at the destination and what the policy does with it) are the
//! figures the run then reports, and making a plan writes nothing.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use coffer_core::restore::{self, Existing, Options, RestorePlan, Then};
use coffer_core::{Disk, Progress, disk::io};
use coffer_tests::bench::{Bench, tree};

/// The figures a plan and a report share.
#[derive(Debug, PartialEq, Eq)]
struct Figures {
    dest: PathBuf,
    files: u64,
    bytes: u64,
    dirs: u64,
    symlinks: u64,
    special: u64,
    links: u64,
    already_done: u64,
    skipped_existing: Vec<PathBuf>,
    renamed: Vec<(PathBuf, PathBuf)>,
    plug_next: Vec<(String, u64, u64)>,
    unavailable: Vec<PathBuf>,
    missing: (u64, u64),
}

fn of_plan(p: &RestorePlan) -> Figures {
    Figures {
        dest: p.dest.clone(),
        files: p.files,
        bytes: p.bytes,
        dirs: p.dirs,
        symlinks: p.symlinks,
        special: p.special,
        links: p.links,
        already_done: p.already_done,
        skipped_existing: p
            .at_dest
            .iter()
            .filter(|a| a.then == Then::Kept)
            .map(|a| a.path.clone())
            .collect(),
        renamed: p.renamed.clone(),
        plug_next: p
            .plug_next
            .iter()
            .map(|n| (n.label.clone(), n.files, n.bytes))
            .collect(),
        unavailable: p.unavailable.clone(),
        missing: (p.missing_files, p.missing_bytes),
    }
}

fn of_report(r: &restore::Report) -> Figures {
    Figures {
        dest: r.dest.clone(),
        files: r.files,
        bytes: r.bytes,
        dirs: r.dirs,
        symlinks: r.symlinks,
        special: r.special,
        links: r.links,
        already_done: r.already_done,
        skipped_existing: r.skipped_existing.clone(),
        renamed: r.renamed.clone(),
        plug_next: r
            .plug_next
            .iter()
            .map(|n| (n.label.clone(), n.files, n.bytes))
            .collect(),
        unavailable: r.unavailable.clone(),
        missing: (r.missing_files, r.missing_bytes),
    }
}

/// Everything under `root`, with sizes: what "nothing was written" compares.
fn listing(root: &Path) -> Vec<(PathBuf, u64)> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (e.path().to_path_buf(), e.metadata().unwrap().len())
        })
        .collect()
}

/// Plans with the disks at `roots`, checks the plan wrote nothing, runs it
/// and returns what both said.
fn plan_then_run(b: &mut Bench, roots: &[&Path], opts: &Options) -> (Figures, Figures, String) {
    let disks: Vec<Disk> = roots
        .iter()
        .map(|p| Disk::open(p, io::real()).unwrap())
        .collect();
    let sources: Vec<&dyn restore::Source> =
        disks.iter().map(|d| d as &dyn restore::Source).collect();
    let set = Some(b.profile.set_id);
    let before = listing(&b.root);
    let plan = restore::plan(&b.catalog, set, &sources, opts, &Progress::silent()).unwrap();
    assert_eq!(before, listing(&b.root), "making a plan wrote nothing");
    let planned = of_plan(&plan);
    let summary = plan.summary();
    let report = plan
        .execute(&mut b.0.catalog, &sources, &Progress::silent())
        .unwrap();
    (planned, of_report(&report), summary)
}

#[test]
fn a_plan_gives_the_figures_its_run_then_reports() {
    let mut b = Bench::new(1);
    b.files(12, 4000);
    let s = b.src.clone();
    symlink("d0/f0.bin", s.join("link")).unwrap();
    fs::hard_link(s.join("d1/f1.bin"), s.join("d1/also-f1.bin")).unwrap();
    fs::create_dir_all(s.join("empty-folder")).unwrap();
    fs::write(s.join("empty.txt"), "").unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(s.join("pipe"))
        .status()
        .unwrap();
    assert!(fifo.success());
    b.scan();
    // A holds about half the content, B the rest; A's catalog copy knows B.
    let total: u64 = (0..12).map(|i| 4000 + i * 37).sum();
    let a = b.disk("A", Some(total / 2));
    let bb = b.disk("B", None);
    b.sync(&a);
    b.sync(&bb);
    b.sync(&a);

    // Into a folder that does not exist yet, with A alone: part of it, and
    // B named for the rest.
    let o = b.to_out();
    let (planned, ran, summary) = plan_then_run(&mut b, &[&a], &o);
    assert_eq!(planned, ran);
    assert!(planned.files > 0 && planned.missing.0 > 0, "{planned:?}");
    assert_eq!(planned.plug_next.len(), 1);
    assert_eq!(planned.plug_next[0].0, "B");
    assert_eq!(planned.symlinks, 1);
    assert_eq!(planned.special, 1);
    assert_eq!(planned.dirs, 5, "docs, d0, d1, d2, empty-folder");
    assert!(summary.starts_with("Restores "), "{summary}");
    assert!(summary.contains("from disk \"A\""), "{summary}");
    assert!(summary.contains("need disk \"B\""), "{summary}");
    let links_first = planned.links;

    // Then A and B, with one restored file changed and both kept: what A
    // gave is already there, the changed file is kept beside.
    let changed = b.out().join("docs/d0/f0.bin");
    let changed = if changed.exists() {
        changed
    } else {
        b.out().join("docs/d0/f3.bin")
    };
    assert!(changed.exists(), "A gave one of d0's first files");
    fs::write(&changed, "mine now").unwrap();
    let mut o = b.to_out();
    o.existing = Existing::KeepBoth;
    let (planned, ran, summary) = plan_then_run(&mut b, &[&a, &bb], &o);
    assert_eq!(planned, ran);
    assert_eq!(planned.missing, (0, 0));
    assert_eq!(planned.renamed.len(), 1, "{planned:?}");
    assert!(planned.already_done > 0);
    assert_eq!(
        links_first + planned.links,
        1,
        "the one hard link, made once"
    );
    assert!(
        summary.contains("1 exists and will be kept as both"),
        "{summary}"
    );
    assert_eq!(fs::read(&changed).unwrap(), b"mine now");
    let mut want = tree(&b.src);
    let mut got = tree(&b.out().join("docs"));
    let kept = planned.renamed[0].1.clone();
    let rel = |p: &Path| p.strip_prefix(b.out().join("docs")).unwrap().to_path_buf();
    got.remove(&rel(&changed));
    let beside = got.remove(&rel(&kept)).unwrap();
    assert_eq!(want.remove(&rel(&changed)), Some(beside));
    assert_eq!(want, got);

    // Once everything is there, the plan says so and the run writes nothing.
    let (planned, ran, _) = plan_then_run(&mut b, &[&a, &bb], &o);
    assert_eq!(planned, ran);
    assert_eq!((planned.files, planned.dirs), (0, 0), "{planned:?}");
}

#[test]
fn a_plan_with_conflicts_is_refused_like_the_run() {
    let mut b = Bench::new(1);
    b.files(3, 1000);
    b.scan();
    let a = b.disk("A", None);
    b.sync(&a);
    let clash = b.out().join("docs/d1/f1.bin");
    fs::create_dir_all(clash.parent().unwrap()).unwrap();
    fs::write(&clash, "mine").unwrap();
    let disk = Disk::open(&a, io::real()).unwrap();
    let sources: Vec<&dyn restore::Source> = vec![&disk];
    let err = restore::plan(
        &b.catalog,
        Some(b.profile.set_id),
        &sources,
        &b.to_out(),
        &Progress::silent(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("already exist at the destination"), "{err}");
    let ran = b.restore(&[&a], &b.to_out()).unwrap_err().to_string();
    assert_eq!(err, ran);

    // Overwrite: the plan names the one file it replaces.
    let mut o = b.to_out();
    o.existing = Existing::Overwrite;
    let plan = restore::plan(
        &b.catalog,
        Some(b.profile.set_id),
        &sources,
        &o,
        &Progress::silent(),
    )
    .unwrap();
    assert_eq!(plan.at_dest.len(), 1);
    assert_eq!(plan.at_dest[0].then, Then::Replaced);
    assert!(plan.summary().contains("1 exists and will be replaced"));
    assert_eq!(fs::read(&clash).unwrap(), b"mine");
}
