//! Verifying a bucket disk: every object read back through the network and
//! hashed (opened and authenticated first when encrypted), least recently
//! verified first, each result recorded at once; a bad one is moved to
//! `coffer/bad-objects/` in the bucket and no longer counted, so the next
//! sync uploads it again.
//!
//! Invariant: verify never deletes an object unseen; it copies it aside
//! first.

use std::path::PathBuf;

use crate::bucket::BucketDisk;
use crate::catalog::Catalog;
use crate::task::{Phase, Progress};
use crate::verify::{Bad, Report};

/// Verifies up to `limit` objects (all when `None`) of the bucket disk,
/// which must belong to the backup set `set`.
pub fn verify_bucket(
    catalog: &mut Catalog,
    disk: &BucketDisk,
    set: uuid::Uuid,
    limit: Option<u64>,
    progress: &Progress,
) -> crate::Result<Report> {
    let id = disk.identity.disk_id;
    if !disk.identity.sets.contains(&set) {
        return Err(crate::Error::Failed(format!(
            "{} belongs to another backup set; nothing was checked",
            disk.bucket().location()
        )));
    }
    let on_disk = disk.objects(catalog.known_hashes()?)?;
    crate::sync::register_bucket(
        catalog,
        disk,
        on_disk.values().filter(|s| **s != u64::MAX).sum(),
    )?;
    let mut order: Vec<crate::ObjectId> =
        catalog.copies_on(id)?.into_iter().map(|c| c.hash).collect();
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
    let total: u64 = order
        .iter()
        .filter_map(|h| on_disk.get(h))
        .filter(|s| **s != u64::MAX)
        .sum();
    progress.phase(Phase::Verifying, order.len() as u64, total);
    let mut report = Report::default();
    for hash in order {
        progress.check()?;
        let Some(&size) = on_disk.get(&hash) else {
            report.missing += 1;
            catalog.remove_copies(id, &[hash])?;
            let paths = catalog.paths_of(&hash)?;
            progress.warn(
                paths.first().map(PathBuf::as_path),
                "copy missing from the bucket; it will be uploaded again",
            );
            continue;
        };
        let shown = PathBuf::from(disk.object_url(&hash));
        progress.current(&shown);
        let expected = catalog.object_size(&hash)?;
        let result = match disk.open_object(&hash) {
            Ok(Some(mut r)) => crate::object::hash_reader(&mut r, |n| {
                progress.advance(0, n);
                if progress.is_cancelled() {
                    Err(std::io::Error::other("cancelled"))
                } else {
                    Ok(())
                }
            })
            .map_err(|e| e.to_string()),
            Ok(None) => Err("it is gone".to_string()),
            Err(e) => Err(e.to_string()),
        };
        progress.check()?;
        let bad_reason = match result {
            Ok((h, n)) if h == hash && expected.is_none_or(|s| s == n) => None,
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
                    catalog.set_verified(id, &hash, crate::now())?;
                } else if expected.is_some() {
                    catalog.add_copies(id, &[(hash, Some(crate::now()))])?;
                }
            }
            Some(reason) => {
                disk.quarantine(&hash)?;
                catalog.remove_copies(id, &[hash])?;
                let paths = catalog.paths_of(&hash)?;
                progress.warn(
                    Some(&shown),
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
    if let Some(mut row) = catalog.disk(id)? {
        row.last_verify = Some(crate::now());
        catalog.upsert_disk(&row)?;
    }
    Ok(report)
}
