//! The window's view models: plain structs computed in one place from the
//! catalog, the config and the connected volumes, so the views only draw and
//! these rules are tested without egui.
//!
//! [`Model::load`] reads the catalog and runs on a background thread; the
//! functions it calls ([`disk_cards`], [`map_rows`], [`advice`]) are pure.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use coffer_core::catalog::{CopyRow, DiskRow, HistoryEntry};
use coffer_core::redundancy::{self, FileCopies, FolderStatus, Tally};
use coffer_core::{Catalog, ObjectId, Paths, human, jobs};

/// Jobs the History tab shows at most.
const HISTORY: usize = 300;

/// How a disk's space is split, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceBar {
    /// Objects of files in the latest snapshot.
    pub current: u64,
    /// Objects kept only for older snapshots.
    pub old: u64,
    /// Whatever else fills the disk (other people's files, file system).
    pub other: u64,
    /// Room Coffer may still use.
    pub free: u64,
}

impl SpaceBar {
    pub fn total(&self) -> u64 {
        self.current + self.old + self.other + self.free
    }

    /// The four parts as fractions of the whole (all zero when unknown).
    pub fn fractions(&self) -> [f32; 4] {
        let t = self.total();
        if t == 0 {
            return [0.0; 4];
        }
        [self.current, self.old, self.other, self.free].map(|v| v as f32 / t as f32)
    }
}

/// One card of the Disks view.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskCard {
    pub id: uuid::Uuid,
    pub label: String,
    /// The most Coffer may use on it, when it has a quota.
    pub quota: Option<u64>,
    /// It was synced at least once.
    pub ever_synced: bool,
    /// Where it is mounted now, when connected (never for a bucket disk).
    pub root: Option<PathBuf>,
    /// A bucket disk's URL (`s3://BUCKET/PREFIX`); whether it answers is
    /// the Disks tab's to find out, off the catalog.
    pub url: Option<PathBuf>,
    /// "Connected at /media/…" or "Last seen 3 days ago".
    pub presence: String,
    pub bar: SpaceBar,
    /// Current objects this disk does not hold.
    pub missing: u64,
    pub last_sync: String,
    pub last_verify: String,
    /// Files whose only copy is on this disk.
    pub only_copy: Tally,
    pub auto_sync: bool,
    /// What its file system cannot hold of each source (a FAT32 or exFAT
    /// disk): the source and the sentence `coffer status` prints.
    pub cannot_hold: Vec<(PathBuf, String)>,
}

/// How well a folder is protected, which sets its colour in the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shade {
    /// Some file has no copy at all.
    None,
    /// Some file has fewer copies than wanted (but at least one).
    Short,
    /// Every file has its wanted copies.
    Enough,
    /// The folder holds no files.
    Empty,
}

/// One row of the redundancy map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapRow {
    pub path: PathBuf,
    /// The folder's name as shown (escaped).
    pub name: String,
    pub wanted: u32,
    pub total: Tally,
    /// Files and bytes with 0, 1, 2, 3+ copies.
    pub by_copies: [Tally; 4],
    pub shade: Shade,
    /// The fewest copies any file below has.
    pub min_copies: u32,
    /// A folder (something lies under it), not a file: it opens.
    pub has_children: bool,
    /// The disks that hold a copy of something in it, most files first,
    /// with how many of its files each holds.
    pub disks: Vec<(uuid::Uuid, u64)>,
}

/// "If this disk were lost".
#[derive(Clone, Debug, PartialEq)]
pub struct LossRow {
    pub label: String,
    pub lost: Tally,
    pub examples: Vec<PathBuf>,
}

/// Everything the window shows that comes from the catalog.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub headline: String,
    pub cards: Vec<DiskCard>,
    pub sources: Vec<MapRow>,
    pub losses: Vec<LossRow>,
    pub advice: Option<String>,
    /// Every current file with its copies, for drilling down the map.
    pub files: Vec<FileCopies>,
    /// The newest jobs, newest first (the History tab).
    pub history: Vec<HistoryEntry>,
}

impl Model {
    /// Reads the catalog (never the disks). `present` are the connected
    /// disks by id and mount point.
    pub fn load(
        paths: &Paths,
        profile: &coffer_core::Profile,
        present: &[(uuid::Uuid, PathBuf)],
    ) -> anyhow::Result<Model> {
        let catalog = Catalog::open(&paths.catalog_file())?;
        let status = redundancy::status(&catalog, profile)?;
        let files = redundancy::current_files(&catalog, profile)?;
        let rows = catalog.disks()?;
        let copies = catalog.copies()?;
        let sizes: HashMap<ObjectId, u64> = catalog
            .object_uses()?
            .into_iter()
            .map(|u| (u.hash, u.size))
            .collect();
        let now = coffer_core::now();
        let only: HashMap<uuid::Uuid, Tally> =
            status.disks.iter().map(|d| (d.disk.id, d.lost)).collect();
        let mut cards = disk_cards(&rows, &copies, &files, &sizes, &only, present, now);
        for c in &mut cards {
            c.cannot_hold = status
                .limits
                .iter()
                .filter(|l| l.disk_id == c.id)
                .map(|l| (l.source.clone(), l.message.clone()))
                .collect();
        }
        let losses = status
            .disks
            .iter()
            .map(|d| LossRow {
                label: d.disk.label.clone(),
                lost: d.lost,
                examples: d.examples.clone(),
            })
            .collect();
        let sources = status.sources.iter().map(|f| map_row(f, &files)).collect();
        let history = catalog.history(HISTORY)?;
        Ok(Model {
            history,
            headline: status.headline,
            advice: advice(&rows, &files, present),
            cards,
            sources,
            losses,
            files,
        })
    }
}

/// The disk cards, known disks first by label.
pub fn disk_cards(
    rows: &[DiskRow],
    copies: &[CopyRow],
    files: &[FileCopies],
    sizes: &HashMap<ObjectId, u64>,
    only: &HashMap<uuid::Uuid, Tally>,
    present: &[(uuid::Uuid, PathBuf)],
    now: i64,
) -> Vec<DiskCard> {
    let current: HashSet<ObjectId> = files.iter().map(|f| f.hash).collect();
    let mut cards: Vec<DiskCard> = rows
        .iter()
        .map(|d| {
            let held: HashSet<ObjectId> = copies
                .iter()
                .filter(|c| c.disk_id == d.id)
                .map(|c| c.hash)
                .collect();
            let (mut cur, mut old) = (0u64, 0u64);
            for h in &held {
                let size = sizes.get(h).copied().unwrap_or(0);
                if current.contains(h) {
                    cur += size;
                } else {
                    old += size;
                }
            }
            let free = d.free.unwrap_or(0);
            let capacity = d.capacity.unwrap_or(cur + old + free);
            let root = present.iter().find(|p| p.0 == d.id).map(|p| p.1.clone());
            let presence = match (&root, d.last_seen) {
                (Some(r), _) => format!("Connected at {}", human::path(r)),
                (None, Some(t)) => format!("Last seen {}", human::ago(t, now)),
                (None, None) => "Never seen".into(),
            };
            let never = |t: Option<i64>| t.map_or_else(|| "never".into(), |t| human::ago(t, now));
            DiskCard {
                id: d.id,
                label: d.label.clone(),
                quota: d.quota,
                ever_synced: d.last_sync.is_some(),
                root,
                url: d.last_mount.clone().filter(|p| jobs::bucket::is_bucket(p)),
                presence,
                bar: SpaceBar {
                    current: cur,
                    old,
                    other: capacity.saturating_sub(cur + old + free),
                    free,
                },
                missing: current.iter().filter(|h| !held.contains(h)).count() as u64,
                last_sync: never(d.last_sync),
                last_verify: never(d.last_verify),
                only_copy: only.get(&d.id).copied().unwrap_or_default(),
                auto_sync: d.auto_sync,
                cannot_hold: Vec::new(),
            }
        })
        .collect();
    cards.sort_by(|a, b| {
        b.root
            .is_some()
            .cmp(&a.root.is_some())
            .then(a.label.cmp(&b.label))
    });
    cards
}

/// A map row for a folder, given every current file (to know if it has children).
pub fn map_row(f: &FolderStatus, files: &[FileCopies]) -> MapRow {
    let min_copies = f.by_copies.iter().position(|t| t.files > 0).unwrap_or(0) as u32;
    let shade = if f.total.files == 0 {
        Shade::Empty
    } else if f.by_copies[0].files > 0 {
        Shade::None
    } else if f.at_risk.files > 0 {
        Shade::Short
    } else {
        Shade::Enough
    };
    // A folder that holds only files opens too: anything strictly under
    // the row's path makes it a folder.
    let mut has_children = false;
    let mut held: HashMap<uuid::Uuid, u64> = HashMap::new();
    for x in files.iter().filter(|x| x.path.starts_with(&f.path)) {
        has_children |= x.path != f.path;
        for d in &x.holders {
            *held.entry(*d).or_default() += 1;
        }
    }
    let mut disks: Vec<(uuid::Uuid, u64)> = held.into_iter().collect();
    disks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    MapRow {
        name: f.path.file_name().map_or_else(
            || human::path(&f.path).into_owned(),
            |n| human::os_str(n).into_owned(),
        ),
        path: f.path.clone(),
        wanted: f.wanted,
        total: f.total,
        by_copies: f.by_copies,
        shade,
        min_copies,
        has_children,
        disks,
    }
}

/// The rows below `dir`, for drilling down.
pub fn children_rows(files: &[FileCopies], dir: &Path) -> Vec<MapRow> {
    redundancy::children(files, dir)
        .iter()
        .map(|f| map_row(f, files))
        .collect()
}

/// "Plug in X next": the disconnected disk holding the most files that are
/// below their wanted copies, else the one synced longest ago. `None` when
/// nothing needs another disk.
pub fn advice(
    rows: &[DiskRow],
    files: &[FileCopies],
    present: &[(uuid::Uuid, PathBuf)],
) -> Option<String> {
    let short: Vec<&FileCopies> = files.iter().filter(|f| f.copies() < f.wanted).collect();
    if short.is_empty() {
        return None;
    }
    // A bucket disk is not plugged in: "Sync all" reaches it.
    let away: Vec<&DiskRow> = rows
        .iter()
        .filter(|d| !present.iter().any(|p| p.0 == d.id))
        .filter(|d| !d.last_mount.as_deref().is_some_and(jobs::bucket::is_bucket))
        .collect();
    // A disk that lacks a short file can take a copy of it; prefer the one
    // that can help the most files, then the one synced longest ago.
    let best = away
        .iter()
        .map(|d| {
            let helps = short.iter().filter(|f| !f.holders.contains(&d.id)).count();
            (helps, d)
        })
        .filter(|(helps, _)| *helps > 0)
        .max_by_key(|(helps, d)| (*helps, std::cmp::Reverse(d.last_sync.unwrap_or(0))));
    let Some((_, best)) = best else {
        // No disk in the drawer can help: only a new one can.
        let all_held = short.iter().all(|f| !f.holders.is_empty());
        return all_held.then(|| {
            format!(
                "Add another backup disk: {} fewer copies than wanted",
                have(short.len())
            )
        });
    };
    Some(format!(
        "Plug in {} next: {} fewer copies than wanted",
        best.label,
        have(short.len())
    ))
}

/// "1 file has", "3 files have".
fn have(n: usize) -> String {
    if n == 1 {
        "1 file has".into()
    } else {
        format!("{n} files have")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, last_sync: Option<i64>) -> DiskRow {
        DiskRow {
            capacity: Some(1000),
            free: Some(600),
            last_seen: Some(0),
            last_sync,
            ..DiskRow::new(uuid::Uuid::new_v4(), label, 0)
        }
    }

    fn file(path: &str, byte: u8, size: u64, wanted: u32, holders: &[uuid::Uuid]) -> FileCopies {
        FileCopies {
            path: path.into(),
            size,
            hash: ObjectId([byte; 32]),
            wanted,
            holders: holders.to_vec(),
            verified: 0,
        }
    }

    #[test]
    fn card_splits_space_and_counts_missing() {
        let d = row("Blue", Some(0));
        let files = [
            file("/s/a", 1, 100, 2, &[d.id]),
            file("/s/b", 2, 50, 2, &[]),
        ];
        let old = ObjectId([9; 32]);
        let copies = [
            CopyRow {
                hash: ObjectId([1; 32]),
                disk_id: d.id,
                stored_at: 0,
                verified_at: None,
            },
            CopyRow {
                hash: old,
                disk_id: d.id,
                stored_at: 0,
                verified_at: None,
            },
        ];
        let sizes = HashMap::from([(ObjectId([1; 32]), 100), (old, 30), (ObjectId([2; 32]), 50)]);
        let cards = disk_cards(
            std::slice::from_ref(&d),
            &copies,
            &files,
            &sizes,
            &HashMap::new(),
            &[(d.id, "/m/blue".into())],
            86_400 * 3,
        );
        let c = &cards[0];
        assert_eq!(
            c.bar,
            SpaceBar {
                current: 100,
                old: 30,
                other: 270,
                free: 600
            }
        );
        assert_eq!(c.missing, 1);
        assert_eq!(c.presence, "Connected at /m/blue");
        assert_eq!(c.last_sync, "3 days ago");
        assert_eq!(c.last_verify, "never");
        let away = disk_cards(&[d], &copies, &files, &sizes, &HashMap::new(), &[], 86_400);
        assert_eq!(away[0].presence, "Last seen 1 day ago");
    }

    #[test]
    fn map_rows_are_shaded_by_copies() {
        let id = uuid::Uuid::new_v4();
        let files = [
            file("/s/docs/a", 1, 10, 2, &[id]),
            file("/s/pics/x/b", 2, 20, 2, &[]),
            file("/s/music/c", 3, 5, 1, &[id]),
        ];
        let rows = children_rows(&files, Path::new("/s"));
        let by_name: HashMap<&str, &MapRow> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
        assert_eq!(by_name["docs"].shade, Shade::Short);
        assert_eq!(by_name["docs"].min_copies, 1);
        assert_eq!(by_name["pics"].shade, Shade::None);
        assert!(by_name["pics"].has_children);
        assert!(by_name["docs"].has_children, "a folder of files opens too");
        assert_eq!(by_name["docs"].disks, vec![(id, 1)]);
        assert!(by_name["pics"].disks.is_empty());
        let inside = children_rows(&files, Path::new("/s/docs"));
        assert_eq!(inside.len(), 1);
        assert!(!inside[0].has_children, "a file does not open");
        assert_eq!(by_name["music"].shade, Shade::Enough);
        assert_eq!(by_name["music"].total.bytes, 5);
    }

    #[test]
    fn advice_names_the_disk_that_helps_most() {
        let blue = row("Blue", Some(100));
        let red = row("Red", Some(50));
        let files = [
            file("/s/a", 1, 10, 2, &[blue.id]),
            file("/s/b", 2, 10, 2, &[blue.id]),
        ];
        // Blue already holds both; Red can take both.
        let a = advice(&[blue.clone(), red.clone()], &files, &[]);
        assert_eq!(
            a.as_deref(),
            Some("Plug in Red next: 2 files have fewer copies than wanted")
        );
        // Nothing below wanted: no advice.
        let ok = [file("/s/a", 1, 10, 1, &[blue.id])];
        assert_eq!(advice(&[blue.clone(), red.clone()], &ok, &[]), None);
        // Connected disks are not advised; with none left, a new disk is.
        assert_eq!(
            advice(std::slice::from_ref(&red), &files, &[(red.id, "/m".into())]).as_deref(),
            Some("Add another backup disk: 2 files have fewer copies than wanted")
        );
        // Files with no copy at all: syncing a connected disk comes first.
        let none = [file("/s/a", 1, 10, 2, &[])];
        assert_eq!(advice(&[], &none, &[]), None);
    }

    #[test]
    fn space_fractions_add_up() {
        let b = SpaceBar {
            current: 1,
            old: 1,
            other: 1,
            free: 1,
        };
        assert_eq!(b.fractions(), [0.25; 4]);
        assert_eq!(SpaceBar::default().fractions(), [0.0; 4]);
    }
}
