//! The restore bench: the shared lab with a destination folder, a
//! field-by-field picture of a tree, and a backup split over two disks.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use coffer_core::restore::{self, Options};
use coffer_core::{Disk, ObjectId, Progress, disk::io};

use crate::Lab;

/// The shared lab, with a destination folder `out/`.
pub struct Bench(pub Lab);

impl std::ops::Deref for Bench {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.0
    }
}

impl std::ops::DerefMut for Bench {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.0
    }
}

impl Bench {
    pub fn new(copies: u32) -> Bench {
        Bench(Lab::new(copies))
    }

    /// The snapshot a scan leaves.
    pub fn scan(&mut self) -> i64 {
        self.0.scan().snapshot
    }

    pub fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    pub fn restore(
        &mut self,
        disks: &[&Path],
        opts: &Options,
    ) -> coffer_core::Result<restore::Report> {
        let disks: Vec<Disk> = disks
            .iter()
            .map(|p| Disk::open(p, io::real()).expect("open the disk"))
            .collect();
        let set = Some(self.profile.set_id);
        restore::restore(&mut self.catalog, set, &disks, opts, &Progress::silent())
    }

    pub fn to_out(&self) -> Options {
        Options {
            dest: Some(self.out()),
            ..Options::default()
        }
    }
}

/// Everything about a tree that restore must bring back, per relative path.
#[derive(Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: &'static str,
    pub mode: u32,
    pub mtime_ns: i64,
    /// SHA-256 of a file, target of a link.
    pub content: String,
}

pub fn tree(root: &Path) -> BTreeMap<PathBuf, Meta> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e.expect("read the tree");
        let m = fs::symlink_metadata(e.path()).expect("read the tree");
        let ft = m.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(e.path())
                    .expect("read the tree")
                    .display()
                    .to_string(),
            )
        } else if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_fifo() {
            // Read, it would wait for a writer.
            ("fifo", String::new())
        } else {
            (
                "file",
                ObjectId::of(&fs::read(e.path()).expect("read the tree")).to_hex(),
            )
        };
        out.insert(
            e.path()
                .strip_prefix(root)
                .expect("read the tree")
                .to_path_buf(),
            Meta {
                kind,
                // Symlink modes are not kept by Linux; compare the rest.
                mode: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                content,
            },
        );
    }
    out
}

pub fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    File::open(p)
        .expect("open the file")
        .set_times(FileTimes::new().set_modified(t))
        .expect("set its mtime");
}

/// Two disks that each hold about half the files, A's catalog copy written
/// last (so it knows what B holds).
pub fn split_over_two_disks() -> (Bench, PathBuf, PathBuf) {
    let mut b = Bench::new(1);
    b.files(12, 4000);
    b.scan();
    let total: u64 = fs::read_dir(b.src.join("d0"))
        .expect("split over two disks")
        .chain(fs::read_dir(b.src.join("d1")).expect("split over two disks"))
        .chain(fs::read_dir(b.src.join("d2")).expect("split over two disks"))
        .map(|e| {
            e.expect("split over two disks")
                .metadata()
                .expect("split over two disks")
                .len()
        })
        .sum();
    let a = b.disk("A", Some(total / 2));
    let bb = b.disk("B", None);
    b.sync(&a);
    b.sync(&bb);
    b.sync(&a);
    let on_a = Disk::open(&a, io::real())
        .expect("split over two disks")
        .objects()
        .expect("split over two disks")
        .len();
    let on_b = Disk::open(&bb, io::real())
        .expect("split over two disks")
        .objects()
        .expect("split over two disks")
        .len();
    assert!(on_a > 0 && on_b > 0 && on_a + on_b == 12, "{on_a} + {on_b}");
    (b, a, bb)
}
