//! Re-reading a disk's objects against their names.
//!
//! Least recently verified first, so an interrupted verify resumes where it
//! stopped: each result is recorded as soon as it is known. A bad object is
//! moved to `coffer/bad-objects/` and its copy is no longer counted, so the
//! next sync copies it again from the source or another disk.
//!
//! Invariant: verify never deletes bytes; it only moves bad ones aside.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::disk::Disk;
use crate::object;
use crate::task::{Phase, Progress};

/// One object that failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bad {
    pub hash: crate::ObjectId,
    /// Files whose content this was.
    pub paths: Vec<PathBuf>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub checked: u64,
    pub bytes: u64,
    pub bad: Vec<Bad>,
    /// Objects the catalog expected on the disk that were not there.
    pub missing: u64,
    /// Things under objects' names that were no files (symlinks, FIFOs,
    /// devices), moved to `bad-objects/` unread.
    pub strays: Vec<PathBuf>,
    /// Copies left for the next verify when the time budget ran out.
    pub left: u64,
}

/// What a verify found, in words: "checked 120 copies (1.2 GB): all
/// good", or how many were damaged or missing.
pub fn summary(r: &Report) -> String {
    let checked = format!(
        "checked {} ({})",
        crate::human::count(r.checked, "copy"),
        crate::human::bytes(r.bytes)
    );
    let later = if r.left > 0 {
        format!(
            "; {} left for the next verify",
            crate::human::count(r.left, "copy")
        )
    } else {
        String::new()
    };
    if r.bad.is_empty() && r.missing == 0 && r.strays.is_empty() {
        return format!("{checked}: all good{later}");
    }
    let mut problems = Vec::new();
    if !r.bad.is_empty() {
        problems.push(format!("{} damaged", r.bad.len()));
    }
    if r.missing > 0 {
        problems.push(format!("{} missing", r.missing));
    }
    if !r.strays.is_empty() {
        problems.push(format!(
            "{} out of place",
            crate::human::count(r.strays.len() as u64, "item")
        ));
    }
    format!(
        "{checked}: {}; the next sync copies them again{later}",
        problems.join(", ")
    )
}

/// Verifies up to `limit` objects (all when `None`) on `disk`, which must
/// belong to the backup set `set` (it is claimed: bad objects are moved).
/// With a `budget`, no object is started once that much time has passed
/// (the rest wait for the next verify, which starts with them).
pub fn verify(
    catalog: &mut Catalog,
    disk: &mut Disk,
    set: uuid::Uuid,
    limit: Option<u64>,
    budget: Option<std::time::Duration>,
    progress: &Progress,
) -> crate::Result<Report> {
    let started = std::time::Instant::now();
    disk.claim(set)?;
    let mut strays = Vec::new();
    for (path, what) in disk.move_strays_aside()? {
        progress.warn(
            Some(&path),
            format!("is {what} where an object belongs; moved to bad-objects unread"),
        );
        strays.push(path);
    }
    catalog.teach(disk)?;
    let on_disk = disk.objects()?;
    catalog.register(
        disk,
        Some(on_disk.values().filter(|s| **s != u64::MAX).sum()),
    )?;
    // Objects on the disk the catalog does not list yet are checked too.
    let mut order: Vec<crate::ObjectId> = catalog
        .copies_on(disk.id())?
        .into_iter()
        .map(|c| c.hash)
        .collect();
    let listed: std::collections::HashSet<_> = order.iter().copied().collect();
    let unknown: Vec<_> = on_disk
        .keys()
        .filter(|h| !listed.contains(h))
        .copied()
        .collect();
    order.splice(0..0, unknown);
    if let Some(l) = limit {
        order.truncate(l as usize);
    }
    let total_bytes: u64 = order
        .iter()
        .filter_map(|h| on_disk.get(h))
        .filter(|s| **s != u64::MAX)
        .sum();
    progress.phase(Phase::Verifying, order.len() as u64, total_bytes);
    let mut report = Report {
        strays,
        ..Report::default()
    };
    let total = order.len() as u64;
    for hash in order {
        progress.check()?;
        if budget.is_some_and(|b| started.elapsed() >= b) {
            report.left = total - report.checked - report.missing;
            break;
        }
        let Some(&size) = on_disk.get(&hash) else {
            report.missing += 1;
            catalog.remove_copies(disk.id(), &[hash])?;
            let paths = catalog.paths_of(&hash)?;
            progress.warn(
                paths.first().map(PathBuf::as_path),
                "copy missing from the disk; it will be copied again",
            );
            continue;
        };
        progress.current(&disk.object_path(&hash));
        let expected = catalog.object_size(&hash)?;
        let result = disk
            .open_object(&hash)
            .map_err(|e| e.to_string())
            .and_then(|mut r| {
                object::hash_reader(&mut r, |n| {
                    progress.advance(0, n);
                    if progress.is_cancelled() {
                        Err(std::io::Error::other("cancelled"))
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| e.to_string())
            });
        progress.check()?;
        let bad_reason = match result {
            Ok((h, n)) if disk.holds_as(&hash, &h) && expected.is_none_or(|s| s == n) => None,
            Ok((h, _)) if h != hash => Some(format!("content does not match its name (read {h})")),
            Ok((_, n)) => Some(format!("size {n} does not match the catalog")),
            Err(e) => Some(format!("cannot be read ({e})")),
        };
        report.checked += 1;
        report.bytes += if size == u64::MAX { 0 } else { size };
        progress.advance(1, 0);
        match bad_reason {
            None => {
                if listed.contains(&hash) {
                    catalog.set_verified(disk.id(), &hash, crate::now())?;
                } else if expected.is_some() {
                    catalog.add_copies(disk.id(), &[(hash, Some(crate::now()))])?;
                }
            }
            Some(reason) => {
                disk.quarantine(&hash)?;
                catalog.remove_copies(disk.id(), &[hash])?;
                let paths = catalog.paths_of(&hash)?;
                progress.warn(
                    Some(&disk.object_path(&hash)),
                    format!(
                        "{reason}; moved to bad-objects; affects {}",
                        paths
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                report.bad.push(Bad {
                    hash,
                    paths,
                    reason,
                });
            }
        }
    }
    if let Some(mut row) = catalog.disk(disk.id())? {
        row.last_verify = Some(crate::now());
        catalog.upsert_disk(&row)?;
    }
    Ok(report)
}
