//! Which file system a folder is on, as far as its limits go: FAT32 (no
//! file of 4 GiB or more) and exFAT (names compared without case), also when
//! the kernel has no module for them and a desktop mounted them through
//! FUSE (`fuse.fusefat`, `fuseblk` for exfat-fuse, `fuse.exfat`).
//!
//! The kernel's magic number settles most cases. Under FUSE it says only
//! "FUSE", so the mount table's type is read, and for a `fuseblk` mount the
//! boot sector of its device, when it can be read. What stays unknown is
//! taken to be FAT32: parts are always safe, a 4 GiB object is not.
//!
//! Invariant: nothing here writes; an unknown FUSE file system is never
//! taken to hold files of 4 GiB or more.

use std::io::Read;
use std::path::{Path, PathBuf};

const MSDOS_SUPER_MAGIC: i64 = 0x4d44;
const EXFAT_SUPER_MAGIC: i64 = 0x2011_BAB0;
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
const NTFS3_SUPER_MAGIC: i64 = 0x7366_746e;

/// What matters of a file system for backups on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fat32,
    Exfat,
    /// Anything else, with its magic number.
    Other(i64),
}

impl Kind {
    /// The largest file it can hold.
    pub fn max_file(self) -> u64 {
        match self {
            Kind::Fat32 => super::FAT32_MAX_FILE,
            Kind::Exfat | Kind::Other(_) => u64::MAX,
        }
    }

    /// Whether names that differ only in case are the same name there.
    pub fn case_insensitive(self) -> bool {
        matches!(self, Kind::Fat32 | Kind::Exfat)
    }

    /// Whether it holds what a Unix file is beyond its bytes: hard links,
    /// extended attributes and ACLs, holes, FIFOs and device nodes, owners.
    /// FAT32 and exFAT hold none of them.
    pub fn unix(self) -> bool {
        !matches!(self, Kind::Fat32 | Kind::Exfat)
    }

    /// Its name in messages, and in the catalog's record of a disk.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fat32 => "FAT32",
            Kind::Exfat => "exFAT",
            Kind::Other(_) => "other",
        }
    }
}

/// The file system of `path` (which must exist), from its magic number, or
/// under FUSE from the mount table and the device's boot sector.
pub fn kind_of(path: &Path, magic: i64) -> Kind {
    match magic {
        MSDOS_SUPER_MAGIC => Kind::Fat32,
        EXFAT_SUPER_MAGIC => Kind::Exfat,
        FUSE_SUPER_MAGIC => {
            let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let here = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            match mount_of(&table, &here) {
                Some((fstype, source)) => fuse_kind(&fstype, &source, boot_sector),
                None => Kind::Fat32,
            }
        }
        m => Kind::Other(m),
    }
}

/// The type and source of the mount that holds `path`: the entry of
/// `mountinfo` with the longest mount point above it.
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    let mut best: Option<(usize, String, String)> = None;
    for line in mountinfo.lines() {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let point = PathBuf::from(unescape(point));
        if !path.starts_with(&point) {
            continue;
        }
        let mut r = right.split(' ');
        let (Some(fstype), Some(source)) = (r.next(), r.next()) else {
            continue;
        };
        let depth = point.components().count();
        if best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
            best = Some((depth, fstype.to_string(), unescape(source)));
        }
    }
    best.map(|(_, t, s)| (t, s))
}

/// Mount table fields escape space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A FUSE mount's file system, from its type (`fuse.NAME` or `fuseblk`)
/// and, for `fuseblk`, the boot sector `read` returns for its source.
pub fn fuse_kind(fstype: &str, source: &str, read: impl Fn(&Path) -> Option<Vec<u8>>) -> Kind {
    let t = fstype.to_ascii_lowercase();
    if t.contains("exfat") {
        return Kind::Exfat;
    }
    if t.contains("fat") {
        return Kind::Fat32;
    }
    if t.contains("ntfs") {
        return Kind::Other(NTFS3_SUPER_MAGIC);
    }
    if t == "fuseblk" {
        return match read(Path::new(source)).as_deref().map(classify_boot_sector) {
            Some(Some(k)) => k,
            _ => Kind::Fat32,
        };
    }
    // sshfs, rclone and their kind hold big files.
    Kind::Other(FUSE_SUPER_MAGIC)
}

/// What a boot sector says the volume is: exFAT and NTFS name themselves at
/// byte 3, FAT32 at byte 82.
pub fn classify_boot_sector(b: &[u8]) -> Option<Kind> {
    let at = |i: usize, s: &[u8]| b.get(i..i + s.len()) == Some(s);
    if at(3, b"EXFAT   ") {
        Some(Kind::Exfat)
    } else if at(3, b"NTFS    ") {
        Some(Kind::Other(NTFS3_SUPER_MAGIC))
    } else if at(82, b"FAT32   ") || at(54, b"FAT16   ") || at(54, b"FAT12   ") {
        Some(Kind::Fat32)
    } else {
        None
    }
}

/// The first 512 bytes of a block device, if this user may read it (it is
/// only read, and only when it is a block device).
fn boot_sector(dev: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(dev).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let mut f = std::fs::File::open(dev).ok()?;
    let mut buf = vec![0u8; 512];
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
42 22 0:39 / /media/me/STICK rw,nosuid,nodev - fuse.fusefat fusefat rw,user_id=0
43 22 8:33 / /media/me/My\\040Disk rw,nosuid - fuseblk /dev/sdc1 rw,user_id=1000
";

    #[test]
    fn the_mount_holding_a_path_is_the_deepest_one() {
        let m = |p: &str| mount_of(TABLE, Path::new(p)).map(|(t, s)| format!("{t} {s}"));
        assert_eq!(
            m("/media/me/STICK/coffer").as_deref(),
            Some("fuse.fusefat fusefat")
        );
        assert_eq!(m("/media/me/My Disk").as_deref(), Some("fuseblk /dev/sdc1"));
        assert_eq!(m("/home/me").as_deref(), Some("ext4 /dev/sda1"));
    }

    #[test]
    fn fuse_mounts_are_told_apart_and_unknown_ones_are_fat32() {
        let none = |_: &Path| None;
        assert_eq!(fuse_kind("fuse.fusefat", "fusefat", none), Kind::Fat32);
        assert_eq!(fuse_kind("fuse.exfat", "/dev/sdb1", none), Kind::Exfat);
        assert_eq!(fuse_kind("fuseblk", "/dev/sdb1", none), Kind::Fat32);
        assert!(matches!(
            fuse_kind("fuse.sshfs", "me@host:", none),
            Kind::Other(_)
        ));
        let mut exfat = vec![0u8; 512];
        exfat[3..11].copy_from_slice(b"EXFAT   ");
        assert_eq!(
            fuse_kind("fuseblk", "/dev/sdb1", |_| Some(exfat.clone())),
            Kind::Exfat
        );
        let mut ntfs = vec![0u8; 512];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(Kind::Other(NTFS3_SUPER_MAGIC).max_file(), u64::MAX);
        assert!(matches!(
            fuse_kind("fuseblk", "/dev/sdb1", |_| Some(ntfs.clone())),
            Kind::Other(_)
        ));
        let mut fat = vec![0u8; 512];
        fat[82..90].copy_from_slice(b"FAT32   ");
        assert_eq!(classify_boot_sector(&fat), Some(Kind::Fat32));
        assert_eq!(Kind::Fat32.max_file(), super::super::FAT32_MAX_FILE);
    }
}
