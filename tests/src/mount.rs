//! Real mounts for tests, where root can make them: a size-limited tmpfs
//! (a disk that really fills), an ext4 image on a loop device (a block
//! device whose writes the kernel counts), a FAT32 image through FUSE.
//! Each is unmounted when dropped; `None` (with the reason on stderr)
//! where this machine cannot make it, so a test can say it was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted file system, unmounted on drop.
pub struct Mount {
    pub path: PathBuf,
    image: Option<PathBuf>,
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `path` is a mount point (checked before writing into it).
pub fn is_mountpoint(path: &Path) -> bool {
    run(Command::new("mountpoint").arg("-q").arg(path))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Mount {
    fn made(path: &Path, image: Option<PathBuf>, what: &str) -> Option<Mount> {
        if is_mountpoint(path) {
            Some(Mount {
                path: path.to_path_buf(),
                image,
            })
        } else {
            eprintln!("skipped: cannot mount {what} at {} here", path.display());
            None
        }
    }

    /// A tmpfs of `size` (as `mount` takes it, e.g. "64m") at `path`.
    pub fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(path).ok()?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("tmpfs")
            .arg(path));
        Mount::made(path, None, "a tmpfs")
    }

    /// A fresh ext4 file system of `mib` MiB in an image file next to
    /// `path`, loop-mounted at `path`.
    pub fn ext4(path: &Path, mib: u64) -> Option<Mount> {
        if !is_root() {
            eprintln!("skipped: loop-mounting an image needs root");
            return None;
        }
        let image = path.with_extension("ext4.img");
        std::fs::create_dir_all(path).ok()?;
        let f = std::fs::File::create(&image).ok()?;
        f.set_len(mib << 20).ok()?;
        if !run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image)) {
            eprintln!("skipped: mkfs.ext4 failed");
            return None;
        }
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(path));
        Mount::made(path, Some(image), "an ext4 image")
    }

    /// A FAT32 file system of `mib` MiB in a sparse image next to `path`,
    /// mounted at `path`: by the kernel where it has vfat, else through
    /// FUSE (`fusefat`), as desktops do when the module is missing.
    pub fn fat32(path: &Path, mib: u64) -> Option<Mount> {
        if !is_root() {
            eprintln!("skipped: mounting a FAT image needs root");
            return None;
        }
        let image = path.with_extension("fat.img");
        std::fs::create_dir_all(path).ok()?;
        let f = std::fs::File::create(&image).ok()?;
        f.set_len(mib << 20).ok()?;
        if !run(Command::new("mkfs.vfat").args(["-F", "32"]).arg(&image)) {
            eprintln!("skipped: mkfs.vfat (dosfstools) is missing or failed");
            return None;
        }
        if run(Command::new("mount")
            .args(["-t", "vfat", "-o", "loop"])
            .arg(&image)
            .arg(path))
            || run(Command::new("fusefat")
                .args(["-o", "rw+"])
                .arg(&image)
                .arg(path))
        {
            return Mount::made(path, Some(image), "a FAT32 image");
        }
        eprintln!("skipped: neither the kernel's vfat nor fusefat could mount a FAT image");
        None
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !run(Command::new("umount").arg(&self.path)) {
            // A FUSE mount may still be busy for a moment; lazily then.
            run(Command::new("umount").arg("-l").arg(&self.path));
        }
        if let Some(img) = &self.image {
            let _ = std::fs::remove_file(img);
        }
    }
}

/// `len` bytes unique to `seed`, fast to make in a debug build: a shared
/// pseudo-random block, rotated and stamped per file.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    use std::sync::OnceLock;
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    let block = BLOCK.get_or_init(|| crate::bytes(0x5eed, 1 << 20));
    let start = (seed as usize).wrapping_mul(7919) % block.len();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let from = (start + out.len()) % block.len();
        let take = (block.len() - from).min(len - out.len());
        out.extend_from_slice(&block[from..from + take]);
    }
    let stamp = seed.to_le_bytes();
    for (i, b) in stamp.iter().enumerate() {
        if let Some(x) = out.get_mut(i) {
            *x = *b;
        }
        if let Some(x) = out.get_mut(len / 2 + i) {
            *x ^= *b;
        }
    }
    out
}
