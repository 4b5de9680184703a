//! `coffer whereis`: which disks hold the files at or under a path, how
//! many copies each file has, and how far each disk's copies were
//! verified (a disk never verified says so).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::bail;
use coffer_core::catalog::{Kind, Version};
use coffer_core::human;
use coffer_core::restore::{self, At};
use serde_json::json;

use super::ctx::{Ctx, Done};
use super::restore::{catalog_path, existing_catalog};

pub(super) fn whereis(ctx: &Ctx, path: &Path) -> anyhow::Result<Done> {
    let cat = existing_catalog(ctx)?;
    let path = catalog_path(path)?;
    let snap = restore::resolve_snapshot(&cat, At::Latest)?;
    let files: Vec<Version> = restore::select(&cat, snap.id, std::slice::from_ref(&path))?
        .into_iter()
        .filter(|v| v.kind == Kind::File && v.hash.is_some())
        .collect();
    if files.is_empty() {
        bail!(
            "no file at or under {} in the latest snapshot",
            human::path(&path)
        );
    }
    let disks = cat.disks()?;
    let mut by_hash: HashMap<coffer_core::ObjectId, Vec<(uuid::Uuid, Option<i64>)>> =
        HashMap::new();
    for c in cat.copies()? {
        by_hash
            .entry(c.hash)
            .or_default()
            .push((c.disk_id, c.verified_at));
    }
    // Per disk: files, bytes, oldest verification among them.
    let mut per_disk: BTreeMap<uuid::Uuid, (u64, u64, Option<i64>, bool)> = BTreeMap::new();
    let mut by_copies = [0u64; 4];
    for f in &files {
        let Some(h) = f.hash else { continue };
        let held = by_hash.get(&h).cloned().unwrap_or_default();
        by_copies[held.len().min(3)] += 1;
        for (d, verified) in held {
            let e = per_disk.entry(d).or_insert((0, 0, None, true));
            e.0 += 1;
            e.1 += f.size;
            match verified {
                None => e.3 = false,
                Some(t) => e.2 = Some(e.2.map_or(t, |o: i64| o.min(t))),
            }
        }
    }
    let now = coffer_core::now();
    let mut text = format!(
        "{}: {}; by copies 0 / 1 / 2 / 3+: {} / {} / {} / {}\n",
        human::path(&path),
        human::count(files.len() as u64, "file"),
        by_copies[0],
        by_copies[1],
        by_copies[2],
        by_copies[3]
    );
    let mut rows = Vec::new();
    for d in &disks {
        let Some((n, bytes, oldest, all_verified)) = per_disk.get(&d.id) else {
            continue;
        };
        let _ = writeln!(
            text,
            "  {}: {} ({}), {}",
            human::escape(&d.label),
            human::count(*n, "file"),
            human::bytes(*bytes),
            verified_words(d.last_verify.is_some(), *all_verified, *oldest, now)
        );
        rows.push(
            json!({"disk": d.label, "disk_id": d.id, "files": n, "bytes": bytes,
            "ever_verified": d.last_verify.is_some(),
            "all_verified": all_verified, "oldest_verified_at": oldest}),
        );
    }
    Ok(Done::ok(
        json!({"path": path, "files": files.len(), "by_copies": by_copies, "disks": rows}),
        text,
    ))
}

/// How far a disk's copies were checked. A copy is hashed as it is
/// written, but only `coffer verify` reads it back from the disk: a disk
/// never verified says so, whatever its copies' write-time checks say.
fn verified_words(ever: bool, all: bool, oldest: Option<i64>, now: i64) -> String {
    match (ever, all, oldest) {
        (false, _, _) => "never verified".to_string(),
        (true, true, Some(t)) => format!("all verified, oldest {}", human::ago(t, now)),
        _ => "not all verified yet".to_string(),
    }
}
