#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! Owners and accounts, through the real binary: files owned by
//! `nobody:nogroup` and by ids with no name here, synced and restored as
//! root, come back with their numeric ids, a name recorded beside an id
//! mapping it to that name's id here (as tar does without
//! `--numeric-owner`) and a name unknown here leaving the id as recorded;
//! and the whole path run as an unprivileged user, in a world-writable
//! temp folder, gives back what such a user can.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use coffer_tests::{World, both, code};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn must(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", both(&o));
}

fn ok(o: Output, what: &str) -> String {
    assert_eq!(code(&o), 0, "{what}\n{}", both(&o));
    both(&o)
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

const NOBODY: u32 = 65534;

#[test]
fn owners_come_back_by_id_and_a_recorded_name_maps_to_its_id_here() {
    if !is_root() {
        eprintln!("skipped: giving files to other owners needs root");
        return;
    }
    let nogroup = coffer_core::meta::owner::gid_named("nogroup").unwrap_or(NOBODY);
    let w = World::new();
    let tree = w.home().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    // Owned by an account with a name here, by ids with no name, by ids
    // that will be given names below, and by ids given names unknown here.
    let files = [
        ("nobody.txt", (NOBODY, nogroup)),
        ("noname.txt", (4242, 4343)),
        ("mapped.txt", (4250, 4251)),
        ("unknown.txt", (4260, 4261)),
    ];
    for (name, (u, g)) in files {
        let p = w.write(&format!("tree/{name}"), name);
        lchown(&p, u, g);
    }
    lchown(&tree.join("sub"), NOBODY, nogroup);
    std::os::unix::fs::symlink("noname.txt", tree.join("link")).unwrap();
    lchown(&tree.join("link"), 4242, 4343);
    must(Command::new("mkfifo").arg(tree.join("pipe")));
    lchown(&tree.join("pipe"), NOBODY, nogroup);

    let run = |args: &[&str]| ok(w.run(exe(), args), &format!("coffer {args:?}"));
    run(&["source", "add", tree.to_str().unwrap(), "--copies", "1"]);
    let a = w.plug("A");
    run(&["disk", "init", a.to_str().unwrap(), "--label", "A"]);
    let said = run(&["sync", "A"]);
    assert!(!said.contains("warning"), "{said}");

    // The scan recorded the names this computer has, and none for the
    // rest. Names beside 4250/4251 and 4260/4261 now say the catalog came
    // from where those ids had names: `nobody`/`nogroup`, which this
    // computer knows, and names it does not know.
    let catalog = w.data_dir().join("catalog.sqlite");
    let db = rusqlite::Connection::open(&catalog).unwrap();
    let named = |kind: i64, id: u32| -> Option<String> {
        db.query_row(
            "SELECT name FROM owner_names WHERE kind = ?1 AND id = ?2",
            (kind, id),
            |r| r.get(0),
        )
        .ok()
    };
    assert_eq!(named(0, NOBODY).as_deref(), Some("nobody"));
    assert_eq!(named(1, nogroup).as_deref(), Some("nogroup"));
    assert_eq!(named(0, 4242), None);
    for (kind, id, name) in [
        (0, 4250, "nobody"),
        (1, 4251, "nogroup"),
        (0, 4260, "no-such-user-here"),
        (1, 4261, "no-such-group-here"),
    ] {
        db.execute(
            "INSERT INTO owner_names(kind, id, name) VALUES(?1, ?2, ?3)",
            (kind, id, name),
        )
        .unwrap();
    }
    drop(db);

    let r = w.dir.path().join("r");
    let said = run(&[
        "restore",
        tree.to_str().unwrap(),
        "--to",
        r.to_str().unwrap(),
    ]);
    assert!(!said.contains("owner"), "{said}");
    let back = r.join("tree");
    for (name, want) in [
        ("nobody.txt", (NOBODY, nogroup)),
        ("noname.txt", (4242, 4343)),
        // The recorded names are this computer's nobody and nogroup.
        ("mapped.txt", (NOBODY, nogroup)),
        // Names this computer does not know: the ids as recorded.
        ("unknown.txt", (4260, 4261)),
        ("sub", (NOBODY, nogroup)),
        ("link", (4242, 4343)),
        ("pipe", (NOBODY, nogroup)),
    ] {
        assert_eq!(owner(&back.join(name)), want, "{name}");
    }

    // The disk's own catalog copy was written before those names were
    // added: there 4250 has no name, and keeps its id.
    let r2 = w.dir.path().join("r2");
    run(&[
        "restore",
        tree.to_str().unwrap(),
        "--from-disk",
        a.to_str().unwrap(),
        "--to",
        r2.to_str().unwrap(),
    ]);
    let back = r2.join("tree");
    assert_eq!(owner(&back.join("mapped.txt")), (4250, 4251));
    assert_eq!(owner(&back.join("nobody.txt")), (NOBODY, nogroup));
    assert_eq!(owner(&back.join("noname.txt")), (4242, 4343));
}

/// A file of `size` bytes, all holes but three 4 KiB blocks of data.
fn sparse(p: &Path, size: u64) {
    let mut f = std::fs::File::create(p).unwrap();
    f.set_len(size).unwrap();
    for at in [0, size / 2, size - 4096] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&coffer_tests::bytes(at, 4096)).unwrap();
    }
}

fn getfattr(p: &Path) -> String {
    let o = Command::new("getfattr")
        .args(["-d", "-m", "user\\."])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("# file:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_unprivileged_user_syncs_and_restores_what_such_a_user_can() {
    if !is_root() {
        eprintln!("skipped: switching to an unprivileged user needs root");
        return;
    }
    let have = ["setpriv", "setfattr", "getfattr", "mknod"]
        .iter()
        .all(|t| {
            Command::new("which")
                .arg(t)
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !have {
        eprintln!("skipped: setpriv, setfattr/getfattr or mknod is missing");
        return;
    }
    let w = World::new();
    let tree = w.home().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    for (rel, mode) in [
        ("plain.txt", 0o644),
        ("private.txt", 0o600),
        ("group.txt", 0o640),
        ("run.sh", 0o755),
    ] {
        let p = w.write(&format!("tree/{rel}"), rel);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(tree.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::hard_link(tree.join("plain.txt"), tree.join("sub/plain-link.txt")).unwrap();
    std::os::unix::fs::symlink("plain.txt", tree.join("link")).unwrap();
    sparse(&tree.join("disk.img"), 256 << 20);
    must(Command::new("mkfifo").arg(tree.join("pipe")));
    must(
        Command::new("setfattr")
            .args(["-n", "user.tag", "-v", "important"])
            .arg(tree.join("plain.txt")),
    );
    must(
        Command::new("setfattr")
            .args(["-n", "user.colour", "-v", "blue"])
            .arg(tree.join("sub")),
    );
    // The whole world belongs to the unprivileged user, in /tmp; a device
    // node made by root is in the tree too.
    let world = w.dir.path();
    std::fs::set_permissions(world, std::fs::Permissions::from_mode(0o777)).unwrap();
    must(
        Command::new("chown")
            .arg("-R")
            .arg("65534:65534")
            .arg(world),
    );
    must(
        Command::new("mknod")
            .arg(tree.join("null"))
            .args(["c", "1", "3"]),
    );
    // Made by root and left root's: readable, but not the user's to give.
    let roots = w.write("tree/roots.txt", "root's");
    std::fs::set_permissions(&roots, std::fs::Permissions::from_mode(0o644)).unwrap();

    let as_nobody = |args: &[&str]| -> Output {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(exe())
            .args(args);
        w.env(&mut c);
        c.output().unwrap()
    };
    let run = |args: &[&str]| ok(as_nobody(args), &format!("coffer {args:?} as nobody"));
    run(&["source", "add", tree.to_str().unwrap(), "--copies", "1"]);
    let a = w.plug("A");
    must(Command::new("chown").arg("65534:65534").arg(&a));
    run(&["disk", "init", a.to_str().unwrap(), "--label", "A"]);
    let said = run(&["sync", "A"]);
    assert!(!said.contains("warning"), "{said}");

    let r = world.join("r");
    let said = run(&[
        "restore",
        tree.to_str().unwrap(),
        "--to",
        r.to_str().unwrap(),
    ]);
    let back = r.join("tree");
    // What it could not do, once: the device node.
    let told: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("cannot hold") || l.contains("only root") || l.contains("not made"))
        .collect();
    assert_eq!(
        told,
        vec!["1 device node not made: only root can make them"],
        "{said}"
    );
    assert!(std::fs::symlink_metadata(back.join("null")).is_err());
    // Modes, content, xattrs, links, the FIFO, the holes.
    for rel in [
        "plain.txt",
        "private.txt",
        "group.txt",
        "run.sh",
        "sub",
        "roots.txt",
        "disk.img",
    ] {
        let (s, d) = (
            std::fs::metadata(tree.join(rel)).unwrap(),
            std::fs::metadata(back.join(rel)).unwrap(),
        );
        assert_eq!(s.mode() & 0o7777, d.mode() & 0o7777, "{rel}: mode");
        assert_eq!(s.mtime(), d.mtime(), "{rel}: mtime");
        if s.is_file() {
            assert!(
                std::fs::read(tree.join(rel)).unwrap() == std::fs::read(back.join(rel)).unwrap(),
                "{rel}: content"
            );
        }
        // Everything restored is the user's: an owner it cannot give is
        // not changed, and not tried.
        assert_eq!(owner(&back.join(rel)), (NOBODY, NOBODY), "{rel}: owner");
    }
    assert_eq!(
        getfattr(&back.join("plain.txt")),
        getfattr(&tree.join("plain.txt"))
    );
    assert!(getfattr(&back.join("sub")).contains("user.colour=\"blue\""));
    assert_eq!(
        std::fs::metadata(back.join("plain.txt")).unwrap().ino(),
        std::fs::metadata(back.join("sub/plain-link.txt"))
            .unwrap()
            .ino(),
        "the hard link group"
    );
    assert_eq!(
        std::fs::read_link(back.join("link")).unwrap(),
        Path::new("plain.txt")
    );
    assert!(
        std::fs::symlink_metadata(back.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let used = std::fs::metadata(back.join("disk.img")).unwrap().blocks() * 512;
    assert!(used <= 256 << 10, "the sparse file took {used} bytes");
}
