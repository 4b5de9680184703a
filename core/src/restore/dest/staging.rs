//! The destination writer's staging: a private folder in the destination
//! root for files read before they may take their names (an archive
//! restore's chain), and moving a staged file into its place, also across
//! a mount inside the destination.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, Timespec, Timestamps};
use rustix::io::Errno;

use super::{DIR_FLAGS, Dest, Dir, dir_error, put_in_place, tmp_name};
use crate::restore::{Error, errno_err};

impl Dest {
    /// Makes a private folder (0700) in the root for files that must not
    /// take their names before everything was read and checked. It is
    /// emptied and removed when dropped.
    pub(crate) fn staging(&self) -> Result<Staging<'_>, Error> {
        let name = tmp_name("staging");
        let path = self.root.join(&name);
        rustix::fs::mkdirat(&self.fd, &name, Mode::from_raw_mode(0o700))
            .map_err(errno_err("cannot create folder", &path))?;
        match rustix::fs::openat(&self.fd, &name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Staging {
                dest: self,
                name,
                dir: Dir { fd, path },
            }),
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.fd, &name, AtFlags::REMOVEDIR);
                Err(dir_error(&path, e))
            }
        }
    }
}

/// Moves a file this restore made from `from` to `to_name` in `to`, like
/// [`put_in_place`]. Where `to` lies on another file system than `from`
/// (a mount inside the destination), the file is copied under a temp name
/// in `to` (mode and mtime kept), flushed, and put in place from there.
pub(crate) fn move_in(
    from: &Dir,
    from_name: &OsStr,
    to: &Dir,
    to_name: &OsStr,
    replace: bool,
    shown: &Path,
) -> Result<(), Error> {
    match put_in_place(from, from_name, to, to_name, replace, shown) {
        Err(Error::Io { source, .. })
            if source.raw_os_error() == Some(Errno::XDEV.raw_os_error()) => {}
        other => return other,
    }
    let mut src = from.open_tmp(from_name, shown)?;
    let st = rustix::fs::fstat(&src).map_err(errno_err("cannot read", shown))?;
    let (tmp, mut out) = to.create_tmp(shown)?;
    let copied = (|| -> Result<(), Error> {
        std::io::copy(&mut src, &mut out).map_err(|source| Error::Io {
            op: "cannot write",
            path: shown.to_path_buf(),
            source,
        })?;
        rustix::fs::fchmod(&out, Mode::from_raw_mode(st.st_mode & 0o7777))
            .map_err(errno_err("cannot set the mode of", shown))?;
        let t = Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        };
        let ts = Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::futimens(&out, &ts).map_err(errno_err("cannot set the time of", shown))?;
        out.sync_all().map_err(|source| Error::Io {
            op: "cannot flush",
            path: shown.to_path_buf(),
            source,
        })
    })();
    drop(out);
    if let Err(e) = copied.and_then(|()| put_in_place(to, &tmp, to, to_name, replace, shown)) {
        to.remove(&tmp);
        return Err(e);
    }
    from.remove(from_name);
    Ok(())
}

/// A private folder in the destination root for files read before they
/// may take their names; emptied and removed when dropped.
pub(crate) struct Staging<'d> {
    dest: &'d Dest,
    name: OsString,
    dir: Dir,
}

impl Staging<'_> {
    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        // Only this restore writes here (0700, a fresh name), and only files.
        if let Ok(mut list) = rustix::fs::Dir::read_from(&self.dir.fd) {
            let mut names = Vec::new();
            while let Some(Ok(e)) = list.read() {
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(OsStr::from_bytes(n).to_os_string());
                }
            }
            for n in names {
                self.dir.remove(&n);
            }
        }
        let _ = rustix::fs::unlinkat(&self.dest.fd, &self.name, AtFlags::REMOVEDIR);
    }
}
