//! Hostile archives: real archives written once by the real binary (a
//! full, an incremental with a delta, a split full), a scene per case (an
//! archive folder, a destination holding files of its own, a sentinel
//! folder), and the play that runs `coffer archive ls`, `verify` and
//! `restore` against what a case crafted and judges the result.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::cases::{Expect, Findings};
use super::disk::{make_sentinel, setup_ok};
use super::run::{AFTER_HANG, Run, Runner, TIMEOUT};
use super::tarball::Tarball;
use super::tree::{Tree, Watched};
use crate::{World, bytes};

/// The destination must never grow past this while a restore runs (the
/// biggest honest file in these archives is 40 kB).
pub const DEST_LIMIT: u64 = 64 << 20;

/// Real archives of a small tree, read into memory.
pub struct Template {
    /// `home-1.tar.gz`: `docs/`, `docs/a.txt` ("alpha\n", 6 bytes),
    /// `docs/empty/`, `docs/sub/`, `docs/sub/b.bin` (40 kB).
    pub full: Tarball,
    pub full_gz: Vec<u8>,
    /// `home-1-to-2.tar.gz`: `docs/sub/b.bin` changed, stored as a delta.
    pub inc: Tarball,
    /// `vol-1.vol001.tar.gz` and `vol-1.vol002.tar.gz`: the first tree,
    /// split.
    pub vol1: Tarball,
    pub vol2: Tarball,
    /// The files at archive 1 and at archive 2 (relative path → content).
    pub files1: BTreeMap<String, Vec<u8>>,
    pub files2: BTreeMap<String, Vec<u8>>,
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();

/// The template, written by the binary at `exe` on first use.
pub fn template(exe: &Path) -> &'static Template {
    TEMPLATE.get_or_init(|| make_template(exe))
}

fn make_template(exe: &Path) -> Template {
    let w = World::new();
    let b1 = bytes(3, 40_000);
    w.write("docs/a.txt", "alpha\n");
    w.write("docs/sub/b.bin", &b1);
    std::fs::create_dir_all(w.home().join("docs/empty")).expect("mkdir");
    let docs = w.home().join("docs");
    setup_ok(&w, exe, &["source", "add", docs.to_str().expect("utf-8")]);
    let nas = w.dir.path().join("nas");
    let split = w.dir.path().join("split");
    for d in [&nas, &split] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let nas_s = nas.to_str().expect("utf-8");
    let split_s = split.to_str().expect("utf-8");
    setup_ok(&w, exe, &["archive", "full", "--to", nas_s]);
    setup_ok(
        &w,
        exe,
        &[
            "archive",
            "full",
            "--to",
            split_s,
            "--prefix",
            "vol",
            "--volume-size",
            "20k",
        ],
    );
    let mut b2 = b1.clone();
    b2[20_000..20_100].fill(b'x');
    w.write("docs/sub/b.bin", &b2);
    setup_ok(&w, exe, &["archive", "inc", "--to", nas_s]);
    let full_gz = std::fs::read(nas.join("home-1.tar.gz")).expect("read the full archive");
    let t = Template {
        full: Tarball::parse(&super::tarball::gunzip(&full_gz)),
        full_gz,
        inc: Tarball::read(&nas.join("home-1-to-2.tar.gz")),
        vol1: Tarball::read(&split.join("vol-1.vol001.tar.gz")),
        vol2: Tarball::read(&split.join("vol-1.vol002.tar.gz")),
        files1: BTreeMap::from([
            ("docs/a.txt".to_string(), b"alpha\n".to_vec()),
            ("docs/sub/b.bin".to_string(), b1),
        ]),
        files2: BTreeMap::from([
            ("docs/a.txt".to_string(), b"alpha\n".to_vec()),
            ("docs/sub/b.bin".to_string(), b2),
        ]),
    };
    let how = t.inc.manifest()["entries"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["path"] == "docs/sub/b.bin"))
        .map(|e| e["how"].clone());
    assert_eq!(
        how,
        Some(serde_json::json!("delta")),
        "the template's incremental should store docs/sub/b.bin as a delta"
    );
    t
}

/// One case's folders: `nas/` (the archives), `dest/` (holding
/// `keep.txt` and `keepdir/inner.txt` before the restore), `outside/`
/// (a sentinel).
pub struct Scene {
    pub w: World,
    pub nas: PathBuf,
    pub dest: PathBuf,
    pub outside: PathBuf,
}

impl Default for Scene {
    fn default() -> Self {
        Self::new()
    }
}

impl Scene {
    pub fn new() -> Scene {
        let w = World::new();
        let root = w.dir.path().to_path_buf();
        let nas = root.join("nas");
        let dest = root.join("dest");
        let outside = root.join("outside");
        std::fs::create_dir_all(&nas).expect("mkdir nas");
        std::fs::create_dir_all(dest.join("keepdir")).expect("mkdir dest");
        std::fs::write(dest.join("keep.txt"), "mine, before the restore").expect("write");
        std::fs::write(dest.join("keepdir/inner.txt"), "mine too").expect("write");
        make_sentinel(&outside);
        Scene {
            w,
            nas,
            dest,
            outside,
        }
    }

    /// Writes `t` gzip-compressed as `nas/NAME`.
    pub fn put(&self, name: &str, t: &Tarball) -> PathBuf {
        let p = self.nas.join(name);
        t.write(&p);
        p
    }

    /// Writes raw bytes as `nas/NAME`.
    pub fn put_bytes(&self, name: &str, b: &[u8]) -> PathBuf {
        let p = self.nas.join(name);
        std::fs::write(&p, b).expect("write archive bytes");
        p
    }
}

/// What a case runs and what each command must do.
pub struct Plan {
    /// Archive files to `coffer archive verify`, one run each.
    pub verify: Vec<PathBuf>,
    /// The archive number to restore.
    pub at: u64,
    pub ls: Expect,
    pub verify_expect: Expect,
    pub restore: Expect,
    /// The destination must end exactly as it was (the fault can be seen
    /// before anything is written).
    pub untouched: bool,
    /// Files a restore that exits 0 must have written (relative to dest).
    pub content: BTreeMap<String, Vec<u8>>,
    /// Extra paths that must not change (e.g. `/etc/passwd`).
    pub also_watch: Vec<PathBuf>,
    /// Extra arguments for the restore (`--overwrite`, a path).
    pub restore_args: Vec<OsString>,
}

impl Plan {
    /// Every command must fail naming one of `needles`; the destination
    /// may hold nothing new.
    pub fn refused(file: PathBuf, at: u64, needles: &[&str]) -> Plan {
        let n: Vec<String> = needles.iter().map(|s| s.to_string()).collect();
        Plan {
            verify: vec![file],
            at,
            ls: Expect::Fails(n.clone()),
            verify_expect: Expect::Fails(n.clone()),
            restore: Expect::Fails(n),
            untouched: true,
            content: BTreeMap::new(),
            also_watch: Vec::new(),
            restore_args: Vec::new(),
        }
    }

    /// The manifest is fine (ls works); verify and restore must fail naming
    /// one of `needles`.
    pub fn bad_member(file: PathBuf, at: u64, needles: &[&str]) -> Plan {
        Plan {
            ls: Expect::Ok,
            ..Plan::refused(file, at, needles)
        }
    }

    /// An archive that must list, verify and restore (exit 0 each).
    pub fn good(file: PathBuf, at: u64) -> Plan {
        Plan {
            ls: Expect::Ok,
            verify_expect: Expect::Ok,
            restore: Expect::Ok,
            untouched: false,
            ..Plan::refused(file, at, &[])
        }
    }

    /// The destination must end exactly as it was.
    pub fn untouched(mut self) -> Plan {
        self.untouched = true;
        self
    }

    pub fn ls(mut self, e: Expect) -> Plan {
        self.ls = e;
        self
    }

    pub fn verify(mut self, e: Expect) -> Plan {
        self.verify_expect = e;
        self
    }

    pub fn restore(mut self, e: Expect) -> Plan {
        self.restore = e;
        self
    }

    /// The destination may change (files written before the fault shows).
    pub fn may_write(mut self) -> Plan {
        self.untouched = false;
        self
    }

    pub fn content(mut self, files: &BTreeMap<String, Vec<u8>>) -> Plan {
        self.content = files.clone();
        self
    }

    pub fn watch(mut self, p: &Path) -> Plan {
        self.also_watch.push(p.to_path_buf());
        self
    }
}

/// Runs a plan in its scene and records every problem under `case`.
/// Returns the runs (ls, verifies, restore) for extra checks.
pub fn play(f: &Findings, case: &str, exe: &Path, s: &Scene, plan: &Plan) -> Vec<Run> {
    let root = s.w.dir.path();
    // Everything in the world but the destination, the data folder (the
    // log), the config folder and the commands' temp folder must stay as it
    // is; so must extra paths.
    let mut roots: Vec<&Path> = vec![root];
    roots.extend(plan.also_watch.iter().map(PathBuf::as_path));
    let logs = s.w.data_dir();
    let config = s.w.config_dir();
    let tmp = root.join("tmp");
    let mut watched = Watched::of(&roots).except(&[&s.dest, &logs, &config, &tmp]);
    let dest_before = Tree::of(&s.dest);
    let mut runs: Vec<Run> = Vec::new();
    // Once a command hung, the later ones get a shorter timeout.
    let runner = |runs: &[Run]| {
        let t = if runs.iter().any(|r| r.hung) {
            AFTER_HANG
        } else {
            TIMEOUT
        };
        Runner::new(&s.w, exe).timeout(t)
    };
    let ls = runner(&runs).run(&[OsString::from("archive"), "ls".into(), s.nas.clone().into()]);
    f.check(case, &ls, &plan.ls);
    f.fail_all(case, &format!("`{}` changed", ls.line), watched.changes());
    runs.push(ls);
    for file in &plan.verify {
        let v = runner(&runs).run(&[
            OsString::from("archive"),
            "verify".into(),
            file.clone().into(),
        ]);
        f.check(case, &v, &plan.verify_expect);
        f.fail_all(case, &format!("`{}` changed", v.line), watched.changes());
        runs.push(v);
    }
    let mut args: Vec<OsString> = vec![
        "archive".into(),
        "restore".into(),
        s.nas.clone().into(),
        "--at".into(),
        plan.at.to_string().into(),
        "--to".into(),
        s.dest.clone().into(),
    ];
    args.extend(plan.restore_args.iter().cloned());
    let restore = runner(&runs).watch(&s.dest).run(&args);
    f.check(case, &restore, &plan.restore);
    f.fail_all(
        case,
        &format!("`{}` changed", restore.line),
        watched.changes(),
    );
    f.fail_all(
        case,
        &restore.line,
        dest_problems(s, &dest_before, plan, &restore),
    );
    runs.push(restore);
    runs
}

/// What is wrong with the destination after a restore.
fn dest_problems(s: &Scene, before: &Tree, plan: &Plan, run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    let after = Tree::of(&s.dest);
    if run.peak_watched > DEST_LIMIT {
        out.push(format!(
            "the destination filled up to {} bytes while it ran",
            run.peak_watched
        ));
    }
    for (p, n) in &before.nodes {
        match after.nodes.get(p) {
            Some(a) if a == n => {}
            Some(a) => out.push(format!(
                "the pre-existing {} changed: {n:?} → {a:?}",
                p.display()
            )),
            None => out.push(format!("the pre-existing {} is gone", p.display())),
        }
    }
    if plan.untouched && after != *before {
        for c in after.changes_since(before) {
            out.push(format!("the destination had to stay as it was, yet {c}"));
        }
    }
    for p in after.nodes.keys() {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with(".coffer-restore-") {
            out.push(format!("a temp file was left behind: {}", p.display()));
        }
    }
    for p in after.specials() {
        out.push(format!("a special file was created: {}", p.display()));
    }
    for p in after.hard_linked() {
        out.push(format!("a hard link was created: {}", p.display()));
    }
    for (p, mode) in after.special_bits() {
        out.push(format!(
            "{} was restored with mode {mode:o} (setuid, setgid or sticky kept)",
            p.display()
        ));
    }
    if run.ok() {
        for (rel, want) in &plan.content {
            match std::fs::read(s.dest.join(rel)) {
                Ok(got) if got == *want => {}
                Ok(got) => out.push(format!(
                    "exit 0 but {rel} holds {} bytes, not the {} expected",
                    got.len(),
                    want.len()
                )),
                Err(e) => out.push(format!("exit 0 but {rel} was not restored ({e})")),
            }
        }
    }
    out
}
