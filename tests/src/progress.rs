//! How far interrupted syncs got: what the next run will not have to do
//! again, read from the catalog, its journal and the disk as the next run
//! reads them. The kill test and `bench/soak.sh` (through the
//! `soak_state` example) measure progress with it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What the next run will not have to do again: bytes the disk holds that
/// it will use (objects, and whole copies in `tmp/` it will adopt), objects
/// committed, and files whose hash is kept (versions recorded, and hashes
/// the journal of a killed scan holds). And whether all that is left is the
/// catalog copy (every current object is on the disk, nothing to read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub held: u64,
    pub objects: usize,
    pub hashed: i64,
    pub only_catalog_left: bool,
}

/// [`Done`] for the workstation catalog at `catalog` and the disk at `disk`.
pub fn progress(catalog: &Path, disk: &Path) -> Done {
    let objects = files_under(&disk.join("coffer/objects"));
    let conn = rusqlite::Connection::open(catalog).expect("the catalog opens");
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
    // The journal's logs, read as the next run reads them.
    let cat = coffer_core::Catalog::open(catalog).expect("the catalog opens");
    let cache = cat.scan_cache().expect("the scan journal reads");
    let cached = cache.len() as i64;
    let disk_id = coffer_core::Disk::open(disk, coffer_core::disk::io::real())
        .expect("the disk opens")
        .id();
    let staging = cat.staging_on(disk_id).expect("the staging journal reads");
    // A file and its hash, recorded in a version or kept by the journal (a
    // kill just after a snapshot was recorded may leave both).
    let mut known: HashSet<(Vec<u8>, String)> = cache
        .iter()
        .map(|(p, c)| (p.clone(), c.hash.to_hex()))
        .collect();
    let mut st = conn
        .prepare("SELECT path, lower(hex(hash)) FROM versions WHERE kind = 0")
        .expect("versions query");
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })
        .expect("versions query");
    known.extend(rows.map_while(Result::ok));
    drop(st);
    let hashed = known.len() as i64;
    let needed = count(
        "SELECT count(DISTINCT hash) FROM versions WHERE kind = 0 AND last_snapshot >= (SELECT max(id) FROM snapshots)",
    );
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut held: u64 = objects.iter().map(|p| size(p)).sum();
    for t in files_under(&disk.join("coffer/tmp")) {
        let name = t
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (head, tag) = name.split_once('.').unwrap_or(("", ""));
        let tag = tag.split('.').next().unwrap_or("");
        // Whole when it is as long as what it was made of.
        let want = if head == "staged" {
            staging.get(tag).map_or(0, |s| s.size as i64)
        } else if head.len() == 64 && head.bytes().all(|b| b.is_ascii_hexdigit()) {
            count(&format!(
                "SELECT size FROM objects WHERE hash = unhex('{head}')"
            ))
        } else {
            0
        };
        if want > 0 && size(&t) == want as u64 {
            held += want as u64;
        }
    }
    Done {
        held,
        objects: objects.len(),
        hashed,
        only_catalog_left: cached == 0 && needed > 0 && objects.len() as i64 >= needed,
    }
}

/// Every file under `dir` (none when it is missing).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
