//! A real synced disk to tamper with, a sentinel folder beside it, and the
//! tools to tamper: symlinks, FIFOs, sockets, devices, sidecars, slots.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cases::{Expect, Findings};
use super::run::{AFTER_HANG, Run, Runner, TIMEOUT};
use super::tree::Watched;
use crate::{World, both, bytes, code};

/// A command a hostile-disk case runs against its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `coffer disks`
    Disks,
    /// `coffer sync` (every connected disk of the set)
    SyncAll,
    /// `coffer sync DISK`
    Sync,
    /// `coffer verify DISK`
    Verify,
    /// `coffer restore --from-disk DISK --to DEST` in the same world
    Restore,
    /// `coffer status`
    Status,
}

/// Runs a setup step with the plain binary (no cap) and panics if it fails.
pub fn setup_ok(w: &World, exe: &Path, args: &[&str]) -> std::process::Output {
    let o = w.run(exe, args);
    assert_eq!(
        code(&o),
        0,
        "setup step coffer {args:?} failed\n{}",
        both(&o)
    );
    o
}

/// True when the tests run as root (device nodes can be made).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

pub fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

/// A character device like `/dev/zero` (1, 5). Needs root.
pub fn mknod_zero(path: &Path) {
    let st = std::process::Command::new("mknod")
        .arg(path)
        .args(["c", "1", "5"])
        .status()
        .expect("run mknod");
    assert!(st.success(), "mknod {}", path.display());
}

/// A Unix socket bound at `path`; the socket file stays after the listener
/// is dropped.
pub fn socket(path: &Path) {
    std::os::unix::net::UnixListener::bind(path).expect("bind a Unix socket");
}

/// Removes whatever is at `path` (file, link, folder, FIFO).
pub fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).expect("remove folder"),
        Ok(_) => std::fs::remove_file(path).expect("remove file"),
        Err(_) => {}
    }
}

pub fn symlink(target: &Path, link: &Path) {
    remove(link);
    std::os::unix::fs::symlink(target, link).expect("make symlink");
}

/// SHA-256 of a file as lowercase hex.
pub fn sha_hex(path: &Path) -> String {
    coffer_core::ObjectId::of(&std::fs::read(path).expect("read for hashing")).to_hex()
}

/// Checks the workstation (or any) catalog: `pragma integrity_check` is
/// `ok` and it still carries Coffer's application id.
pub fn catalog_intact(path: &Path) -> Result<(), String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("catalog {} does not open: {e}", path.display()))?;
    let check: String = conn
        .query_row("pragma integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("catalog {}: integrity_check failed: {e}", path.display()))?;
    if check != "ok" {
        return Err(format!(
            "catalog {}: integrity_check says {check}",
            path.display()
        ));
    }
    let app: i64 = conn
        .query_row("pragma application_id", [], |r| r.get(0))
        .map_err(|e| format!("catalog {}: {e}", path.display()))?;
    if app != coffer_core::catalog::APPLICATION_ID {
        return Err(format!(
            "catalog {} lost its application id (now {app:#x})",
            path.display()
        ));
    }
    Ok(())
}

/// A sentinel folder: files, a subfolder, a symlink; hashed by the cases.
pub fn make_sentinel(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).expect("create sentinel");
    std::fs::write(dir.join("precious.txt"), "do not touch\n").expect("write sentinel");
    std::fs::write(dir.join("sub/deep.bin"), bytes(99, 5000)).expect("write sentinel");
    std::os::unix::fs::symlink("precious.txt", dir.join("link")).expect("sentinel link");
}

static DESTS: AtomicUsize = AtomicUsize::new(0);

/// A file every restore destination holds before the restore: it must come
/// out unchanged.
pub const KEEP: &str = "before-restore.txt";
const KEEP_CONTENT: &str = "mine, there before the restore\n";

/// What happened to [`KEEP`] in `dest`, if anything.
pub fn kept(dest: &Path) -> Vec<String> {
    match std::fs::read(dest.join(KEEP)) {
        Ok(b) if b == KEEP_CONTENT.as_bytes() => Vec::new(),
        Ok(_) => vec![format!(
            "the pre-existing {KEEP} in {} was changed",
            dest.display()
        )],
        Err(e) => vec![format!(
            "the pre-existing {KEEP} in {} is gone ({e})",
            dest.display()
        )],
    }
}

/// A world whose source was synced to one disk: what every disk case starts
/// from.
pub struct DiskWorld {
    pub w: World,
    pub exe: PathBuf,
    /// The disk's root, `mounts/d1`.
    pub disk: PathBuf,
    /// A folder outside the disk and every destination, with a sentinel
    /// tree; cases put their symlink targets here.
    pub outside: PathBuf,
    /// Source files, relative to the basepath, with their content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl DiskWorld {
    /// Three files in `home/docs`, a disk labelled `Hostile`, one sync.
    pub fn new(exe: &Path) -> DiskWorld {
        Self::with_files(
            exe,
            &[
                ("docs/a.txt", b"alpha\n".to_vec()),
                ("docs/b.bin", bytes(1, 3000)),
                ("docs/sub/c.bin", bytes(2, 20_000)),
            ],
        )
    }

    pub fn with_files(exe: &Path, files: &[(&str, Vec<u8>)]) -> DiskWorld {
        let w = World::new();
        let mut map = BTreeMap::new();
        for (rel, content) in files {
            w.write(rel, content);
            map.insert(rel.to_string(), content.clone());
        }
        let docs = w.home().join("docs");
        setup_ok(&w, exe, &["source", "add", docs.to_str().expect("utf-8")]);
        let disk = w.plug("d1");
        setup_ok(
            &w,
            exe,
            &[
                "disk",
                "init",
                disk.to_str().expect("utf-8"),
                "--label",
                "Hostile",
            ],
        );
        setup_ok(&w, exe, &["sync"]);
        let outside = w.dir.path().join("outside");
        make_sentinel(&outside);
        DiskWorld {
            w,
            exe: exe.to_path_buf(),
            disk,
            outside,
            files: map,
        }
    }

    pub fn coffer(&self) -> PathBuf {
        self.disk.join("coffer")
    }

    pub fn identity(&self) -> PathBuf {
        self.disk.join(coffer_core::disk::IDENTITY_FILE)
    }

    /// `coffer/catalog-X.sqlite`.
    pub fn slot(&self, x: char) -> PathBuf {
        self.coffer().join(format!("catalog-{x}.sqlite"))
    }

    /// `coffer/catalog-X.json`.
    pub fn sidecar(&self, x: char) -> PathBuf {
        self.coffer().join(format!("catalog-{x}.json"))
    }

    pub fn catalog(&self) -> PathBuf {
        self.w.data_dir().join("catalog.sqlite")
    }

    /// Every object file on the disk, sorted.
    pub fn object_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = walkdir::WalkDir::new(self.coffer().join("objects"))
            .min_depth(2)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        out.sort();
        out
    }

    /// The object file holding `content` (whole, not in parts).
    pub fn object_of(&self, content: &[u8]) -> PathBuf {
        let hex = coffer_core::ObjectId::of(content).to_hex();
        self.coffer().join("objects").join(&hex[..2]).join(hex)
    }

    /// Rewrites `coffer-disk.json` after `f` changed its JSON.
    pub fn edit_identity(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let raw = std::fs::read(self.identity()).expect("read identity");
        let mut v: serde_json::Value = serde_json::from_slice(&raw).expect("identity is JSON");
        f(&mut v);
        let out = serde_json::to_vec_pretty(&v).expect("encode identity");
        std::fs::write(self.identity(), out).expect("write identity");
    }

    /// Makes both catalog slots valid: the sync wrote slot A, a verify
    /// writes slot B (same snapshot, newer generation).
    pub fn both_slots(&self) {
        setup_ok(
            &self.w,
            &self.exe,
            &["verify", self.disk.to_str().expect("utf-8")],
        );
        assert!(
            sidecar_generation(&self.sidecar('a')).is_some()
                && sidecar_generation(&self.sidecar('b')).is_some(),
            "sync and verify did not leave two valid slots"
        );
    }

    /// Writes a new source file, so the next sync has work to do. `files`
    /// keeps listing what the disk holds: a restore is judged against that.
    pub fn add_file(&self, rel: &str, content: &[u8]) {
        self.w.write(rel, content);
    }

    /// A fresh destination folder under the world, holding [`KEEP`].
    pub fn new_dest(&self) -> PathBuf {
        let n = DESTS.fetch_add(1, Ordering::SeqCst);
        let d = self.w.dir.path().join(format!("dest-{n}"));
        std::fs::create_dir_all(&d).expect("create destination");
        std::fs::write(d.join(KEEP), KEEP_CONTENT).expect("write the pre-existing file");
        d
    }

    /// The arguments of `cmd` against this disk.
    pub fn args(&self, cmd: Cmd, dest: &Path) -> Vec<OsString> {
        let d = self.disk.clone().into_os_string();
        let v: Vec<OsString> = match cmd {
            Cmd::Disks => vec!["disks".into()],
            Cmd::SyncAll => vec!["sync".into()],
            Cmd::Sync => vec!["sync".into(), d],
            Cmd::Verify => vec!["verify".into(), d],
            Cmd::Restore => vec![
                "restore".into(),
                "--from-disk".into(),
                d,
                "--to".into(),
                dest.as_os_str().to_os_string(),
            ],
            Cmd::Status => vec!["status".into()],
        };
        v
    }

    /// Runs `cmd` in this world under the cap and timeout.
    pub fn run(&self, cmd: Cmd) -> Run {
        let dest = self.new_dest();
        Runner::new(&self.w, &self.exe).run(&self.args(cmd, &dest))
    }

    /// `coffer restore --from-disk DISK --to DEST` on a new machine (empty
    /// config and data folders, no disk under its mount root). Returns the
    /// run and the destination.
    pub fn restore_elsewhere(&self) -> (Run, PathBuf) {
        let fresh = World::new();
        let dest = self.new_dest();
        let run = Runner::new(&fresh, &self.exe).run(&[
            OsString::from("restore"),
            "--from-disk".into(),
            self.disk.clone().into_os_string(),
            "--to".into(),
            dest.clone().into_os_string(),
        ]);
        (run, dest)
    }

    /// Runs `steps` in order, judging each command, what changed under
    /// `watch` (each command alone), the workstation catalog, and for a
    /// restore that exits 0 what it wrote.
    pub fn play(
        &self,
        f: &Findings,
        case: &str,
        steps: Vec<(Cmd, Expect)>,
        watch: &[&Path],
    ) -> Vec<Run> {
        self.play_after(f, case, steps, watch, false)
    }

    /// [`DiskWorld::play`] for a case whose earlier command hung: every
    /// step gets the shorter timeout.
    pub fn play_after(
        &self,
        f: &Findings,
        case: &str,
        steps: Vec<(Cmd, Expect)>,
        watch: &[&Path],
        hung_before: bool,
    ) -> Vec<Run> {
        let mut watched = Watched::of(watch);
        let mut runs: Vec<Run> = Vec::new();
        for (cmd, expect) in steps {
            let dest = self.new_dest();
            let timeout = if hung_before || runs.iter().any(|r| r.hung) {
                AFTER_HANG
            } else {
                TIMEOUT
            };
            let run = Runner::new(&self.w, &self.exe)
                .timeout(timeout)
                .run(&self.args(cmd, &dest));
            f.check(case, &run, &expect);
            f.fail_all(
                case,
                &format!("`{}` changed what it must not touch", run.line),
                watched.changes(),
            );
            if self.catalog().exists()
                && let Err(e) = catalog_intact(&self.catalog())
            {
                f.fail(case, format!("after `{}`: {e}", run.line));
            }
            if cmd == Cmd::Restore && !run.ok() {
                f.fail_all(case, &run.line, kept(&dest));
            }
            if cmd == Cmd::Restore && run.ok() {
                f.fail_all(
                    case,
                    &format!("`{}` exited 0 but", run.line),
                    self.restored_wrong(&dest),
                );
            }
            runs.push(run);
        }
        runs
    }

    /// What is wrong with `dest` as a restore of the source files.
    pub fn restored_wrong(&self, dest: &Path) -> Vec<String> {
        restored_wrong(&self.files, dest)
    }
}

/// What is wrong with `dest` as a restore of `files` (relative path →
/// content): missing files, other content, files nobody asked for, and a
/// changed [`KEEP`].
pub fn restored_wrong(files: &BTreeMap<String, Vec<u8>>, dest: &Path) -> Vec<String> {
    let mut out = kept(dest);
    for (rel, want) in files {
        match std::fs::read(dest.join(rel)) {
            Ok(got) if got == *want => {}
            Ok(got) => out.push(format!(
                "{rel} restored with other content ({} bytes, expected {})",
                got.len(),
                want.len()
            )),
            Err(e) => out.push(format!("{rel} not restored ({e})")),
        }
    }
    for e in walkdir::WalkDir::new(dest).into_iter().flatten() {
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(dest).unwrap_or(e.path());
        let rel_s = rel.to_string_lossy();
        if !files.contains_key(rel_s.as_ref()) && rel != Path::new(KEEP) {
            out.push(format!("{} appeared in the destination", rel.display()));
        }
    }
    out
}

/// Rewrites a slot's sidecar so its size and SHA-256 match the slot file
/// as it is now, with `generation` (any JSON value).
pub fn rewrite_sidecar(slot: &Path, sidecar: &Path, generation: serde_json::Value) {
    let data = std::fs::read(slot).expect("read slot");
    let v = serde_json::json!({
        "generation": generation,
        "size": data.len(),
        "sha256": coffer_core::ObjectId::of(&data).to_hex(),
        "written_at": 1_800_000_000,
    });
    std::fs::write(
        sidecar,
        serde_json::to_vec_pretty(&v).expect("encode sidecar"),
    )
    .expect("write sidecar");
}

/// The generation a sidecar names.
pub fn sidecar_generation(sidecar: &Path) -> Option<u64> {
    let raw = std::fs::read(sidecar).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v["generation"].as_u64()
}

/// Runs SQL on a copy of a slot and puts the copy back (rollback journal,
/// so no `-wal` is left), then makes its sidecar match again, same
/// generation.
pub fn edit_slot(slot: &Path, sidecar: &Path, sql: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("slot.sqlite");
    std::fs::copy(slot, &copy).expect("copy slot");
    {
        let conn = rusqlite::Connection::open(&copy).expect("open slot copy");
        conn.execute_batch(sql).expect("edit slot copy");
    }
    std::fs::copy(&copy, slot).expect("put slot back");
    let generation = sidecar_generation(sidecar).unwrap_or(1);
    rewrite_sidecar(slot, sidecar, generation.into());
}

/// An SQL blob literal (`X'…'`) holding `b`.
pub fn blob(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("X'{hex}'")
}

/// A new SQLite database at `path`, made by `sql`.
pub fn new_sqlite(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).expect("create database");
    conn.execute_batch(sql).expect("fill database");
}

/// Writes to `to` a real write-ahead log of a copy of `db` in which `sql`
/// ran: what SQLite would replay if it opened `db` with that log beside it.
pub fn hostile_wal(db: &Path, sql: &str, to: &Path) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("db.sqlite");
    std::fs::copy(db, &copy).expect("copy database");
    let conn = rusqlite::Connection::open(&copy).expect("open copy");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .expect("WAL mode");
    conn.execute_batch(sql).expect("change copy");
    // Copied while the connection is open: closing would checkpoint it.
    std::fs::copy(tmp.path().join("db.sqlite-wal"), to).expect("copy the WAL");
    drop(conn);
}
