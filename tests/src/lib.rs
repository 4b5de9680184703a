//! Helpers shared by the end-to-end tests: a temp world with a home folder,
//! Coffer's config and data folders, and a mount root whose sub-folders act
//! as plugged-in disks; declarative trees; and checks of on-disk invariants.

pub mod bench;
pub mod fault;
pub mod hostile;
pub mod progress;
pub mod s3;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coffer_core::ObjectId;

pub mod mount;

/// A temp world for one test. Nothing in it touches the user's real files.
pub struct World {
    pub dir: tempfile::TempDir,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        for d in ["home", "config", "data", "mounts"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("create world folder");
        }
        World { dir }
    }

    /// The storage basepath and `$HOME` of the world.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// Every folder under here counts as a mounted disk.
    pub fn mounts(&self) -> PathBuf {
        self.dir.path().join("mounts")
    }

    /// "Plugs in" an empty disk: a new folder under the mount root.
    pub fn plug(&self, name: &str) -> PathBuf {
        let p = self.mounts().join(name);
        std::fs::create_dir_all(&p).expect("create disk folder");
        p
    }

    /// "Unplugs" a disk by moving its folder out of the mount root.
    pub fn unplug(&self, name: &str) -> PathBuf {
        let away = self.dir.path().join("drawer");
        std::fs::create_dir_all(&away).expect("create drawer");
        let to = away.join(name);
        std::fs::rename(self.mounts().join(name), &to).expect("unplug");
        to
    }

    /// Plugs a disk back in from the drawer.
    pub fn replug(&self, name: &str) -> PathBuf {
        let to = self.mounts().join(name);
        std::fs::rename(self.dir.path().join("drawer").join(name), &to).expect("replug");
        to
    }

    /// Sets the environment a `coffer` command runs in.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("COFFER_CONFIG_DIR", self.config_dir())
            .env("COFFER_DATA_DIR", self.data_dir())
            .env("COFFER_BASEPATH", self.home())
            .env("COFFER_MOUNT_ROOT", self.mounts())
            .env("HOME", self.home())
            // Never the user's real keyring (a test that wants one runs
            // its own and removes this).
            .env("COFFER_KEYRING", "off")
            .env_remove("COFFER_PASSPHRASE")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    /// A command for the binary at `exe` in this world.
    pub fn command(&self, exe: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(exe);
        c.args(args);
        self.env(&mut c);
        c
    }

    /// Runs the binary and returns its output.
    pub fn run(&self, exe: &Path, args: &[&str]) -> Output {
        self.command(exe, args).output().expect("run coffer")
    }

    /// Writes a file under home (creating folders).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.home().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }
}

/// Exit code of a finished command (signals give -1).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Both streams, for assertion messages.
pub fn both(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Reads every object on a disk and checks that its bytes match its name.
/// Returns the objects with their sizes. Panics naming the first bad one.
pub fn assert_store_consistent(disk_root: &Path) -> BTreeMap<ObjectId, u64> {
    let disk =
        coffer_core::Disk::open(disk_root, coffer_core::disk::io::real()).expect("open disk");
    let objects = disk.objects().expect("list objects");
    for (h, size) in &objects {
        assert_ne!(
            *size,
            u64::MAX,
            "object {h} on {} has a gap in its parts",
            disk_root.display()
        );
        let mut r = disk.open_object(h).expect("open object");
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).expect("read object");
        assert_eq!(
            ObjectId::of(&buf),
            *h,
            "object under the name {h} on {} holds other bytes",
            disk_root.display()
        );
    }
    objects
}

/// Every catalog slot on a disk that is valid opens as a Coffer catalog.
pub fn assert_catalog_opens(disk_root: &Path) {
    let disk =
        coffer_core::Disk::open(disk_root, coffer_core::disk::io::real()).expect("open disk");
    let (path, _) = disk.newest_catalog().expect("a valid catalog slot");
    coffer_core::Catalog::open_copy(&path).expect("catalog copy opens");
}

/// Holds the write lock of the SQLite database at `path` until dropped, so a
/// job that writes to it waits (the catalog's busy timeout is 30 s) at a
/// point the test chooses.
pub fn hold_write_lock(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open the database");
    conn.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    conn
}

/// A library-level bench: a source folder `home/docs` under a temp root, a
/// catalog and a profile over it, and disks as folders under `mounts/`.
pub struct Lab {
    /// Kept for its lifetime: the folder goes when the lab does.
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub src: PathBuf,
    pub catalog: coffer_core::Catalog,
    pub profile: coffer_core::Profile,
    /// The options every sync of this lab uses.
    pub sync_opts: coffer_core::sync::Options,
}

impl Lab {
    /// An empty source folder, `copies` wanted of everything.
    pub fn new(copies: u32) -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let src = root.join("home/docs");
        std::fs::create_dir_all(&src).expect("create the source folder");
        let catalog = coffer_core::Catalog::open(&root.join("data/catalog.sqlite"))
            .expect("open the catalog");
        let profile = profile_over(&src, root.join("home"), copies, vec![]);
        Lab {
            dir,
            root,
            src,
            catalog,
            profile,
            sync_opts: coffer_core::sync::Options::default(),
        }
    }

    /// `n` files `d{i % 3}/f{i}.bin` of `size + 37 i` pseudo-random bytes.
    pub fn files(&self, n: usize, size: usize) {
        for i in 0..n {
            let p = self.src.join(format!("d{}/f{i}.bin", i % 3));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, bytes(i as u64 + 1, size + i * 37)).expect("write");
        }
    }

    /// A new, initialised disk folder under `mounts/`.
    pub fn disk(&self, name: &str, quota: Option<u64>) -> PathBuf {
        let p = self.root.join("mounts").join(name);
        std::fs::create_dir_all(&p).expect("create the disk folder");
        coffer_core::Disk::init(
            &p,
            name,
            self.profile.set_id,
            quota,
            coffer_core::disk::io::real(),
        )
        .expect("init the disk");
        p
    }

    pub fn scan(&mut self) -> coffer_core::scan::Report {
        coffer_core::scan::scan(
            &mut self.catalog,
            &self.profile,
            &coffer_core::Progress::silent(),
        )
        .expect("scan")
    }

    /// Syncs the disk at `root` (through `io`) with no other disk connected.
    pub fn sync_with(
        &mut self,
        root: &Path,
        io: std::sync::Arc<dyn coffer_core::disk::io::DiskIo>,
    ) -> coffer_core::Result<coffer_core::sync::Report> {
        let mut d = coffer_core::Disk::open(root, io)?;
        coffer_core::sync::sync(
            &mut self.catalog,
            &self.profile,
            &mut d,
            &[],
            &self.sync_opts,
            &coffer_core::Progress::silent(),
        )
    }

    /// Scans, then syncs the disk at `root` (through `io`), the scan copying
    /// what it reads to that disk: what `coffer sync` does.
    pub fn scan_and_sync_with(
        &mut self,
        root: &Path,
        io: std::sync::Arc<dyn coffer_core::disk::io::DiskIo>,
    ) -> coffer_core::Result<(coffer_core::scan::Report, coffer_core::sync::Report)> {
        let mut d = coffer_core::Disk::open(root, io)?;
        coffer_core::sync::scan_and_sync(
            &mut self.catalog,
            &self.profile,
            &mut d,
            &[],
            &self.sync_opts,
            &coffer_core::Progress::silent(),
        )
    }

    /// Syncs the disk at `root`, which must succeed.
    pub fn sync(&mut self, root: &Path) -> coffer_core::sync::Report {
        self.sync_with(root, coffer_core::disk::io::real())
            .expect("sync")
    }
}

/// A profile with one source folder.
pub fn profile_over(
    src: &Path,
    basepath: PathBuf,
    copies: u32,
    excludes: Vec<String>,
) -> coffer_core::Profile {
    coffer_core::Profile {
        set_id: uuid::Uuid::new_v4(),
        name: "home".into(),
        basepath,
        copies,
        sources: vec![coffer_core::Source {
            path: src.to_path_buf(),
            excludes,
            copies: None,
            priority: 0,
            outside_basepath: false,
        }],
        excludes: vec![],
        dumps: vec![],
        before_sync: None,
        after_sync: None,
    }
}

/// A [`DiskIo`](coffer_core::disk::io::DiskIo) that counts the bytes written
/// through it, by whether they went into `coffer/tmp/` (objects) or
/// elsewhere (catalog copies, the identity).
#[derive(Debug, Default, Clone)]
pub struct CountingIo {
    pub tmp: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub other: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CountingIo {
    pub fn tmp_bytes(&self) -> u64 {
        self.tmp.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct CountingFile {
    inner: Box<dyn coffer_core::disk::io::IoFile>,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl coffer_core::disk::io::IoFile for CountingFile {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.counter
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.write_all(buf)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.counter
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.write_at(buf, offset)
    }
    fn sync_all(&mut self) -> std::io::Result<()> {
        self.inner.sync_all()
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn size(&mut self) -> std::io::Result<u64> {
        self.inner.size()
    }
    fn start_flush(&mut self) {
        self.inner.start_flush();
    }
}

impl CountingIo {
    fn wrap(
        &self,
        rel: &Path,
        inner: Box<dyn coffer_core::disk::io::IoFile>,
    ) -> Box<dyn coffer_core::disk::io::IoFile> {
        let counter = if rel.starts_with("coffer/tmp") {
            self.tmp.clone()
        } else {
            self.other.clone()
        };
        Box::new(CountingFile { inner, counter })
    }
}

impl coffer_core::disk::io::DiskIo for CountingIo {
    fn create_dir_all(&self, root: &coffer_core::disk::Root, rel: &Path) -> std::io::Result<()> {
        coffer_core::disk::io::RealIo.create_dir_all(root, rel)
    }
    fn create_new(
        &self,
        root: &coffer_core::disk::Root,
        rel: &Path,
    ) -> std::io::Result<Box<dyn coffer_core::disk::io::IoFile>> {
        Ok(self.wrap(rel, coffer_core::disk::io::RealIo.create_new(root, rel)?))
    }
    fn rewrite(
        &self,
        root: &coffer_core::disk::Root,
        rel: &Path,
    ) -> std::io::Result<Box<dyn coffer_core::disk::io::IoFile>> {
        Ok(self.wrap(rel, coffer_core::disk::io::RealIo.rewrite(root, rel)?))
    }
    fn append(
        &self,
        root: &coffer_core::disk::Root,
        rel: &Path,
    ) -> std::io::Result<Box<dyn coffer_core::disk::io::IoFile>> {
        Ok(self.wrap(rel, coffer_core::disk::io::RealIo.append(root, rel)?))
    }
    fn update(
        &self,
        root: &coffer_core::disk::Root,
        rel: &Path,
    ) -> std::io::Result<Box<dyn coffer_core::disk::io::IoFile>> {
        Ok(self.wrap(rel, coffer_core::disk::io::RealIo.update(root, rel)?))
    }
    fn rename(
        &self,
        root: &coffer_core::disk::Root,
        from: &Path,
        to: &Path,
    ) -> std::io::Result<()> {
        coffer_core::disk::io::RealIo.rename(root, from, to)
    }
    fn remove_file(&self, root: &coffer_core::disk::Root, rel: &Path) -> std::io::Result<()> {
        coffer_core::disk::io::RealIo.remove_file(root, rel)
    }
    fn sync_fs(&self, root: &coffer_core::disk::Root) -> std::io::Result<()> {
        coffer_core::disk::io::RealIo.sync_fs(root)
    }
}
