//! Noticing backup disks that are plugged in and out.
//!
//! A disk is any mounted folder with `coffer-disk.json` at its root. The
//! system source reads `/proc/self/mountinfo`; the test source treats every
//! folder under a chosen root as a mounted disk (`COFFER_MOUNT_ROOT`), so
//! tests can "plug in" a disk by creating a folder.
//!
//! Invariant: listing volumes never writes anything.

use std::path::{Path, PathBuf};

use crate::disk::{self, Identity};

/// Where mount points come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    System,
    /// Every folder directly under this one counts as a mounted disk.
    TestRoot(PathBuf),
}

impl MountSource {
    /// `COFFER_MOUNT_ROOT` when set, else the system's mount table.
    pub fn from_env() -> MountSource {
        match std::env::var_os("COFFER_MOUNT_ROOT") {
            Some(r) => MountSource::TestRoot(PathBuf::from(r)),
            None => MountSource::System,
        }
    }

    /// The file whose changes signal a mount or unmount (`poll` with POLLPRI).
    pub fn event_file(&self) -> Option<PathBuf> {
        match self {
            MountSource::System => Some(PathBuf::from("/proc/self/mountinfo")),
            MountSource::TestRoot(_) => None,
        }
    }

    pub fn mount_points(&self) -> Vec<PathBuf> {
        match self {
            MountSource::System => std::fs::read_to_string("/proc/self/mountinfo")
                .map(|s| parse_mountinfo(&s))
                .unwrap_or_default(),
            MountSource::TestRoot(root) => {
                let mut v: Vec<PathBuf> = std::fs::read_dir(root)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.path())
                            .filter(|p| p.is_dir())
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                v
            }
        }
    }
}

/// Mount points listed in a mountinfo text (field 5, with `\040`-style escapes).
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|p| !p.starts_with("/proc") && !p.starts_with("/sys") && !p.starts_with("/dev"))
        .collect()
}

/// The device a mount point is mounted from ("/dev/sdb1"), read from a
/// mountinfo text: the second field after " - ", on the line whose mount
/// point (field 5, unescaped) is `mount_point`; the last such line wins,
/// as the kernel lists mounts in the order they were made.
pub fn device_of(mountinfo: &str, mount_point: &Path) -> Option<String> {
    let mut found = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        if Path::new(&unescape(point)) == mount_point {
            found = right.split(' ').nth(1).map(unescape);
        }
    }
    found
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A folder that looks like a disk: a valid identity, or a broken one that
/// must be reported.
#[derive(Debug)]
pub struct Volume {
    pub root: PathBuf,
    pub identity: Result<Identity, disk::Error>,
}

/// Mounted folders that carry a `coffer-disk.json` (valid or not).
pub fn connected(source: &MountSource) -> Vec<Volume> {
    let mut out = Vec::new();
    for root in source.mount_points() {
        if std::fs::symlink_metadata(root.join(disk::IDENTITY_FILE)).is_err() {
            continue;
        }
        let identity = disk::read_identity(&root);
        out.push(Volume { root, identity });
    }
    out
}

/// Mount points with no identity file (candidates for "Use as backup disk…").
pub fn unknown(source: &MountSource) -> Vec<PathBuf> {
    source
        .mount_points()
        .into_iter()
        .filter(|r| r != Path::new("/") && !r.join(disk::IDENTITY_FILE).exists())
        .collect()
}

/// Finds the connected disk with this id.
pub fn find(source: &MountSource, id: uuid::Uuid) -> Option<PathBuf> {
    connected(source)
        .into_iter()
        .find(|v| v.identity.as_ref().is_ok_and(|i| i.disk_id == id))
        .map(|v| v.root)
}

/// Connected disks: those the mount source shows, plus known disks still
/// found where they were last mounted (a disk may be a plain folder that is
/// not a mount point of its own). Each root appears once.
pub fn present(source: &MountSource, known: &[crate::catalog::DiskRow]) -> Vec<Volume> {
    let mut out = connected(source);
    for d in known {
        let Some(root) = &d.last_mount else { continue };
        if out.iter().any(|v| &v.root == root) {
            continue;
        }
        if let Ok(id) = disk::read_identity(root)
            && id.disk_id == d.id
        {
            out.push(Volume {
                root: root.clone(),
                identity: Ok(id),
            });
        }
    }
    out
}

/// What the watcher reports: the disks and the unknown mounted folders.
#[derive(Debug, Default)]
pub struct Mounts {
    pub disks: Vec<Volume>,
    pub unknown: Vec<PathBuf>,
}

/// Watches mount points and reports disks whenever they change.
///
/// The thread (`coffer-volumes`) sends the current [`Mounts`] once at the
/// start and then after every change, and calls `waker` after each send, so
/// the window never reads a disk itself. For the system source it waits on `/proc/self/mountinfo` with
/// `POLLPRI` (the kernel signals every mount and unmount there), re-checking
/// every 3 s anyway; for a test root it rescans every 500 ms. Dropping the
/// watcher stops the thread at its next wake-up.
pub struct Watcher {
    pub events: std::sync::mpsc::Receiver<Mounts>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Starts watching `source`.
pub fn watch(
    source: MountSource,
    waker: std::sync::Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<Watcher> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("coffer-volumes".into())
        .spawn(move || {
            let mut last: Option<Vec<PathBuf>> = None;
            let mountinfo = source
                .event_file()
                .and_then(|p| std::fs::File::open(p).ok());
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let now = snapshot(&source);
                if last.as_ref() != Some(&now) {
                    let mounts = Mounts {
                        disks: connected(&source),
                        unknown: unknown(&source),
                    };
                    if tx.send(mounts).is_err() {
                        return;
                    }
                    waker();
                    last = Some(now);
                }
                match &mountinfo {
                    Some(f) => wait_for_mount_change(f),
                    None => std::thread::sleep(std::time::Duration::from_millis(500)),
                }
            }
        })?;
    Ok(Watcher { events: rx, stop })
}

/// Mount points, each followed by its identity file when it has one, so that
/// a disk initialised in place (same mount point, new `coffer-disk.json`)
/// counts as a change.
fn snapshot(source: &MountSource) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for root in source.mount_points() {
        let id = root.join(disk::IDENTITY_FILE);
        let has_id = id.exists();
        v.push(root);
        if has_id {
            v.push(id);
        }
    }
    v
}

fn wait_for_mount_change(file: &std::fs::File) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(file, PollFlags::PRI | PollFlags::ERR)];
    let timeout = Timespec {
        tv_sec: 3,
        tv_nsec: 0,
    };
    // Errors (EINTR) just mean "look again".
    let _ = poll(&mut fds, Some(&timeout));
    // The kernel re-arms POLLPRI only after the file is read again.
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut &*file, &mut buf);
    let _ = rustix::fs::seek(file, rustix::fs::SeekFrom::Start(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_is_parsed_with_escapes() {
        let text = "36 35 98:0 / /media/me/Blue\\040WD rw,noatime - vfat /dev/sdb1 rw\n\
                    37 35 0:5 / /proc rw - proc proc rw\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![PathBuf::from("/media/me/Blue WD")]
        );
    }

    #[test]
    fn the_device_of_a_mount_point_is_read_from_mountinfo() {
        let text = "36 35 98:0 / /media/me/Blue\\040WD rw,noatime shared:1 - vfat /dev/sdb1 rw\n\
                    37 35 0:5 / / rw - ext4 /dev/sda2 rw\n";
        assert_eq!(
            device_of(text, Path::new("/media/me/Blue WD")).as_deref(),
            Some("/dev/sdb1")
        );
        assert_eq!(
            device_of(text, Path::new("/")).as_deref(),
            Some("/dev/sda2")
        );
        assert_eq!(device_of(text, Path::new("/media/me")), None);
    }

    #[test]
    fn test_root_lists_disks_and_unknown_folders() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        std::fs::create_dir(root.path().join("b")).unwrap();
        crate::Disk::init(
            &root.path().join("a"),
            "A",
            uuid::Uuid::nil(),
            None,
            crate::disk::io::real(),
        )
        .unwrap();
        let src = MountSource::TestRoot(root.path().to_path_buf());
        let c = connected(&src);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].identity.as_ref().unwrap().label, "A");
        assert_eq!(unknown(&src), vec![root.path().join("b")]);
    }

    #[test]
    fn watcher_reports_a_folder_plugged_in() {
        let root = tempfile::tempdir().unwrap();
        let w = watch(
            MountSource::TestRoot(root.path().to_path_buf()),
            std::sync::Arc::new(|| {}),
        )
        .unwrap();
        let first = w
            .events
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        assert!(first.disks.is_empty() && first.unknown.is_empty());
        std::fs::create_dir(root.path().join("usb")).unwrap();
        let next = w
            .events
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(next.unknown, vec![root.path().join("usb")]);
        crate::Disk::init(
            &root.path().join("usb"),
            "USB",
            uuid::Uuid::nil(),
            None,
            crate::disk::io::real(),
        )
        .unwrap();
        let next = w
            .events
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(next.disks.len(), 1);
        assert!(next.unknown.is_empty());
    }
}
