//! The destination writer's special things: FIFOs and device nodes, and
//! hard links between files this restore made. Each is made under a temp
//! name in its folder and put in place like a file, never through a
//! symlink and never outside the destination.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode};
use rustix::io::Errno;

use super::{Dir, file_type, mode_bits, put_in_place, timestamps, tmp_name};
use crate::restore::{Error, errno_err};

/// A FIFO or device node to make: what it is and what it is given.
#[derive(Clone, Copy)]
pub(crate) struct Node {
    /// `Fifo`, `CharacterDevice` or `BlockDevice`.
    pub(crate) kind: FileType,
    /// The device number (for a device).
    pub(crate) rdev: u64,
    pub(crate) mode: u32,
    pub(crate) mtime_ns: i64,
    /// Setuid, setgid and sticky bits kept.
    pub(crate) keep_special: bool,
    /// Replace the regular file at its name (the user chose so).
    pub(crate) replace: bool,
}

impl Dir {
    /// Makes the FIFO or device node `name`: under a temp name, 0600, given
    /// its owner by `owner`, its mode and mtime, then put in place.
    /// `Ok(Err(e))`: the kernel or the file system would not make it (no
    /// root, FAT), and nothing was left behind.
    pub(crate) fn make_node(
        &self,
        name: &OsStr,
        node: &Node,
        shown: &Path,
        owner: impl FnOnce(BorrowedFd<'_>, &OsStr),
    ) -> Result<Result<(), Errno>, Error> {
        let Node {
            kind,
            rdev,
            mode,
            mtime_ns,
            keep_special,
            replace,
        } = *node;
        let tmp = tmp_name("tmp");
        if let Err(e) = rustix::fs::mknodat(
            &self.fd,
            &tmp,
            kind,
            Mode::from_raw_mode(0o600),
            rdev as rustix::fs::Dev,
        ) {
            // A FUSE driver may leave a plain file behind a refusal
            // (fusefat does): never under the temp name after it.
            self.remove(&tmp);
            return Ok(Err(e));
        }
        // A FUSE driver may also make a plain file instead: not a FIFO.
        match self.stat(&tmp).map(|st| file_type(&st)) {
            Some(t) if t == kind => {}
            _ => {
                self.remove(&tmp);
                return Ok(Err(Errno::OPNOTSUPP));
            }
        }
        owner(self.fd.as_fd(), &tmp);
        let done = rustix::fs::chmodat(
            &self.fd,
            &tmp,
            mode_bits(mode, keep_special),
            AtFlags::empty(),
        )
        .map_err(errno_err("cannot set the mode of", shown))
        .and_then(|()| {
            rustix::fs::utimensat(
                &self.fd,
                &tmp,
                &timestamps(mtime_ns),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(errno_err("cannot set the time of", shown))
        })
        .and_then(|()| put_in_place(self, &tmp, self, name, replace, shown));
        if let Err(e) = done {
            self.remove(&tmp);
            return Err(e);
        }
        Ok(Ok(()))
    }

    /// Makes `name` here another link to `from_name` in `from`, a file this
    /// restore made or found whole, which must still be the regular file
    /// with device and inode `expect`: linked under a temp name (`linkat`
    /// never follows a symlink), checked, then put in place. `Ok(Err(e))`:
    /// the file system holds no hard links (FAT), or the two folders lie on
    /// different file systems.
    pub(crate) fn link_from(
        &self,
        from: &Dir,
        from_name: &OsStr,
        expect: (u64, u64),
        name: &OsStr,
        replace: bool,
        shown: &Path,
    ) -> Result<Result<(), Errno>, Error> {
        let tmp = tmp_name("tmp");
        if let Err(e) = rustix::fs::linkat(&from.fd, from_name, &self.fd, &tmp, AtFlags::empty()) {
            return Ok(Err(e));
        }
        let same = self.stat(&tmp).is_some_and(|st| {
            file_type(&st) == FileType::RegularFile && (st.st_dev, st.st_ino) == expect
        });
        if !same {
            self.remove(&tmp);
            return Err(Error::Unsafe {
                path: shown.to_path_buf(),
                reason: "the file it is a link of changed during the restore; it was left alone"
                    .into(),
            });
        }
        if let Err(e) = put_in_place(self, &tmp, self, name, replace, shown) {
            self.remove(&tmp);
            return Err(e);
        }
        Ok(Ok(()))
    }
}
