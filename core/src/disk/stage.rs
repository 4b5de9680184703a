//! Copies staged in a disk's `tmp/`: new and changed files copied by the
//! scan on the same read that hashes them (so a first sync reads each file
//! once), and copies an interrupted sync left behind, adopted after their
//! bytes were read back and hashed.
//!
//! A staged copy is committed under its name only if the sync wants it on
//! this disk: all at once after the plan, or, while the scan still runs,
//! in small batches when the disk has room for everything new ("eager"):
//! then nothing the plan could choose is displaced, and a sync killed
//! half-way keeps what it copied. The rest are dropped when the stage is.
//!
//! Invariant: a staged copy is named by the hash of exactly the bytes it
//! holds; the stage never takes more room than it was given.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustc_hash::FxHashMap;

use super::{Disk, Pending};
use crate::object::ObjectId;

/// A staged copy and the first file it was read from.
struct Held {
    pending: Pending,
    path: Option<PathBuf>,
}

/// New content copied into a disk's `tmp/`, waiting to be committed.
pub struct Stage<'d> {
    disk: &'d Disk,
    /// Bytes it may still take.
    room: AtomicU64,
    /// Bytes it holds now.
    held: AtomicU64,
    /// Everything new fits (set once the walk is done).
    eager: AtomicBool,
    /// Bytes of other content with no copy anywhere.
    more: AtomicU64,
    stopped: AtomicBool,
    staged: Mutex<FxHashMap<ObjectId, Held>>,
    /// Signalled when copies are taken out to be committed.
    drained: std::sync::Condvar,
    /// What the committer left after its last pass (copies it will not
    /// commit early): staging may run `AHEAD` past it.
    floor: AtomicU64,
}

/// How far staging may run ahead of early commits: what a kill may leave
/// to read back, and what the next run's first flush must write out.
const AHEAD: u64 = 128 << 20;

impl<'d> Stage<'d> {
    /// A stage on `disk` that takes at most `room` bytes.
    pub fn new(disk: &'d Disk, room: u64) -> Self {
        Stage {
            disk,
            room: AtomicU64::new(room),
            held: AtomicU64::new(0),
            eager: AtomicBool::new(false),
            more: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            staged: Mutex::default(),
            drained: std::sync::Condvar::new(),
            floor: AtomicU64::new(0),
        }
    }

    pub fn disk(&self) -> &'d Disk {
        self.disk
    }

    /// What a file of `size` bytes really takes on the disk: whole blocks.
    fn allocated(&self, size: u64) -> u64 {
        let block = self.disk.block_size();
        size.div_ceil(block).max(1).saturating_mul(block)
    }

    /// Takes room for a file of `size` bytes; false when there is none (or
    /// staging stopped), and the file is then only hashed.
    pub fn reserve(&self, size: u64) -> bool {
        let need = self.allocated(size);
        !self.stopped.load(Ordering::Relaxed)
            && self
                .room
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                    r.checked_sub(need)
                })
                .is_ok()
    }

    /// Gives back room taken for a copy that was not kept.
    pub fn unreserve(&self, size: u64) {
        self.room.fetch_add(self.allocated(size), Ordering::Relaxed);
    }

    /// Other content, of `bytes` in all, has no copy anywhere: the plan
    /// ranks it with what the scan stages.
    pub fn also_needed(&self, bytes: u64) {
        self.more.store(bytes, Ordering::Relaxed);
    }

    /// The scan is about to read files of these sizes (all it may stage):
    /// when they fit in the room the stage has, with what else is needed,
    /// the stage turns eager.
    pub fn expect(&self, sizes: impl Iterator<Item = u64>) {
        let need = sizes
            .map(|s| self.allocated(s))
            .fold(self.more.load(Ordering::Relaxed), u64::saturating_add);
        let fits = self.room.load(Ordering::Relaxed) >= need;
        self.eager.store(fits, Ordering::Relaxed);
    }

    /// True when everything new fits: committing staged copies before the
    /// plan then displaces nothing the plan would rather copy.
    pub fn eager(&self) -> bool {
        self.eager.load(Ordering::Relaxed) && !self.stopped.load(Ordering::Relaxed)
    }

    /// A write to the disk failed: nothing more is staged in this run.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.drained.notify_all();
    }

    /// Keeps a copy whose source (`path`) proved steady while it was read.
    /// The same content staged twice is kept once.
    pub fn keep(&self, p: Pending, path: Option<&Path>) {
        let mut staged = self.lock();
        match staged.entry(p.hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                drop(staged);
                self.unreserve(p.size);
                self.disk.discard_pending(p);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                self.held.fetch_add(p.size, Ordering::Relaxed);
                v.insert(Held {
                    pending: p,
                    path: path.map(Path::to_path_buf),
                });
            }
        }
    }

    /// Keeps a copy an interrupted sync left in `tmp/` (its bytes already
    /// take room on the disk, outside what the stage was given).
    pub fn adopt(&self, p: Pending, path: Option<&Path>) {
        let mut staged = self.lock();
        if staged.contains_key(&p.hash) {
            drop(staged);
            self.disk.discard_pending(p);
            return;
        }
        self.held.fetch_add(p.size, Ordering::Relaxed);
        staged.insert(
            p.hash,
            Held {
                pending: p,
                path: path.map(Path::to_path_buf),
            },
        );
    }

    /// The scan found `path` holds content `hash` without reading it (its
    /// hash was known): a staged copy of that content now has a file.
    pub fn note_path(&self, hash: &ObjectId, path: &Path) {
        if let Some(h) = self.lock().get_mut(hash)
            && h.path.is_none()
        {
            h.path = Some(path.to_path_buf());
        }
    }

    /// When the stage is eager, waits while it holds more than it may ahead
    /// of the commits (a scan must not outrun the disk's flushes by much).
    pub fn wait_for_room(&self) {
        let mut staged = self.lock();
        while self.eager() && self.held() > self.floor.load(Ordering::Relaxed) + AHEAD {
            staged = match self
                .drained
                .wait_timeout(staged, std::time::Duration::from_millis(50))
            {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// The committer went through the stage: what it left there stays
    /// until the plan, and does not hold staging back.
    pub fn passed(&self) {
        self.floor.store(self.held(), Ordering::Relaxed);
        self.drained.notify_all();
    }

    /// Bytes held in `tmp/` now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether `hash` is staged.
    pub fn contains(&self, hash: &ObjectId) -> bool {
        self.lock().contains_key(hash)
    }

    /// The staged copy of `hash`, taken out to be committed.
    pub fn take(&self, hash: &ObjectId) -> Option<Pending> {
        let h = self.lock().remove(hash)?;
        self.held.fetch_sub(h.pending.size, Ordering::Relaxed);
        Some(h.pending)
    }

    /// Takes out every staged copy `pick` accepts (given its content and
    /// the file it came from), up to `max` of them.
    pub fn take_where(
        &self,
        max: usize,
        pick: impl Fn(&ObjectId, Option<&Path>) -> bool,
    ) -> Vec<Pending> {
        let mut staged = self.lock();
        let chosen: Vec<ObjectId> = staged
            .iter()
            .filter(|(h, held)| pick(h, held.path.as_deref()))
            .map(|(h, _)| *h)
            .take(max)
            .collect();
        let out: Vec<Pending> = chosen
            .iter()
            .filter_map(|h| staged.remove(h))
            .map(|h| h.pending)
            .collect();
        drop(staged);
        let bytes: u64 = out.iter().map(|p| p.size).sum();
        self.held.fetch_sub(bytes, Ordering::Relaxed);
        self.drained.notify_all();
        out
    }

    /// Drops every staged copy `wanted` rejects.
    pub fn retain(&self, wanted: impl Fn(&ObjectId) -> bool) {
        let dropped: Vec<Pending> = {
            let mut staged = self.lock();
            let gone: Vec<ObjectId> = staged.keys().filter(|h| !wanted(h)).copied().collect();
            gone.iter()
                .filter_map(|h| staged.remove(h))
                .map(|h| h.pending)
                .collect()
        };
        for p in dropped {
            self.held.fetch_sub(p.size, Ordering::Relaxed);
            self.disk.discard_pending(p);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<ObjectId, Held>> {
        // The map stays consistent whatever a panicking holder was doing.
        self.staged.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Stage<'_> {
    fn drop(&mut self) {
        self.retain(|_| false);
    }
}
