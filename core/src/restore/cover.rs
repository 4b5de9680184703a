//! Set cover: which connected disks hold what (their real contents), and
//! for what is left, the fewest other disks to plug in (greedy: most bytes
//! first, then most files).
//!
//! Invariant: computed from the catalog and the disks' listings alone; it
//! writes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::DiskNeed;
use super::Source;
use crate::catalog::Catalog;
use crate::object::ObjectId;

/// Which disks hold which objects: connected ones (their real contents)
/// and the others (per the catalog).
pub(super) struct Holders {
    pub(super) connected: Vec<(usize, HashSet<ObjectId>)>,
    pub(super) others: BTreeMap<uuid::Uuid, HashSet<ObjectId>>,
}

impl std::fmt::Debug for Holders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holders")
            .field("connected", &self.connected.len())
            .field("others", &self.others.len())
            .finish()
    }
}

pub(super) fn holders(catalog: &Catalog, disks: &[&dyn Source]) -> crate::Result<Holders> {
    let mut connected = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        connected.push((i, d.holds(catalog)?));
    }
    let mut others: BTreeMap<uuid::Uuid, HashSet<ObjectId>> = BTreeMap::new();
    for c in catalog.copies()? {
        if disks.iter().any(|d| d.id() == c.disk_id) {
            continue;
        }
        others.entry(c.disk_id).or_default().insert(c.hash);
    }
    Ok(Holders { connected, others })
}

/// Greedy set cover of `needed` (hash → size, files) over disks not connected.
pub(super) fn plan_next(
    catalog: &Catalog,
    others: &BTreeMap<uuid::Uuid, HashSet<ObjectId>>,
    needed: &BTreeMap<ObjectId, (u64, u64)>,
) -> crate::Result<(Vec<DiskNeed>, BTreeSet<ObjectId>)> {
    let labels: HashMap<uuid::Uuid, String> = catalog
        .disks()?
        .into_iter()
        .map(|d| (d.id, d.label))
        .collect();
    let mut left: BTreeSet<ObjectId> = needed.keys().copied().collect();
    let mut out = Vec::new();
    loop {
        let best = others
            .iter()
            .map(|(id, set)| {
                let (mut files, mut bytes) = (0u64, 0u64);
                for h in left.iter().filter(|h| set.contains(h)) {
                    let (size, n) = needed.get(h).copied().unwrap_or_default();
                    files += n;
                    bytes += size * n;
                }
                (bytes, files, *id)
            })
            .filter(|(_, files, _)| *files > 0)
            // Most bytes first, then most files; ties go to the first id.
            .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.cmp(&a.2)));
        let Some((bytes, files, id)) = best else {
            break;
        };
        if let Some(set) = others.get(&id) {
            left.retain(|h| !set.contains(h));
        }
        out.push(DiskNeed {
            disk_id: id,
            label: labels.get(&id).cloned().unwrap_or_else(|| id.to_string()),
            files,
            bytes,
        });
    }
    Ok((out, left))
}
