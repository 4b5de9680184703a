//! `coffer agent --install` and `--uninstall`: the agent started at login
//! through the XDG autostart entry (`desktop::autostart`), and a systemd
//! user unit beside it for sessions that start user services
//! (`~/.config/systemd/user/coffer-agent.service`). Both run this very
//! binary, so a Coffer built from source works as well as the `.deb`'s;
//! if both start, the second agent sees the first and leaves.
//!
//! Invariant: only the user's own files are written or removed; systemd
//! itself is never driven from here (the user enables the unit).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::desktop::autostart::{self, Dirs};

/// The unit's file name.
pub const UNIT: &str = "coffer-agent.service";

/// The unit the `.deb` installs (with `/usr/bin/coffer`).
pub const UNIT_TEXT: &str = include_str!("../../../packaging/coffer-agent.service");

/// Where the user's systemd units live.
pub fn unit_dir() -> PathBuf {
    config_home().join("systemd/user")
}

fn config_home() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"))
}

/// What was written or removed, for the user.
pub struct Installed {
    pub entry: PathBuf,
    pub unit: PathBuf,
}

/// Writes the autostart entry and the user unit, both running `exe`.
pub fn install(dirs: &Dirs, units: &Path, exe: &Path) -> anyhow::Result<Installed> {
    let exec = exec_of(exe);
    dirs.set_exec(true, &exec)?;
    let unit = units.join(UNIT);
    let text = UNIT_TEXT.replace("/usr/bin/coffer agent", &format!("{exec} agent"));
    autostart::write(&unit, &text)?;
    Ok(Installed {
        entry: dirs.user_file(),
        unit,
    })
}

/// Switches the autostart entry off and removes the user unit.
pub fn uninstall(dirs: &Dirs, units: &Path) -> anyhow::Result<Installed> {
    dirs.set(false)?;
    let unit = units.join(UNIT);
    match std::fs::remove_file(&unit) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", unit.display()));
        }
        _ => {}
    }
    Ok(Installed {
        entry: dirs.user_file(),
        unit,
    })
}

/// A program path as a desktop entry's `Exec` and a unit's `ExecStart`
/// both read it: quoted when it holds a space or a quote.
fn exec_of(exe: &Path) -> String {
    let s = exe.to_string_lossy();
    if s.contains([' ', '"', '\\', '\'']) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_writes_both_files_running_this_binary_and_uninstall_removes_them() {
        let t = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            user: t.path().join("autostart"),
            system: vec![t.path().join("etc/xdg/autostart")],
        };
        let units = t.path().join("systemd/user");
        let exe = Path::new("/opt/my apps/coffer");
        let done = install(&dirs, &units, exe).unwrap();
        let entry = std::fs::read_to_string(&done.entry).unwrap();
        assert!(
            entry.contains("Exec=\"/opt/my apps/coffer\" agent\n"),
            "{entry}"
        );
        let unit = std::fs::read_to_string(&done.unit).unwrap();
        assert!(
            unit.contains("ExecStart=\"/opt/my apps/coffer\" agent\n"),
            "{unit}"
        );
        assert!(unit.contains("WantedBy=default.target"), "{unit}");
        assert!(dirs.is_on());
        uninstall(&dirs, &units).unwrap();
        assert!(!dirs.is_on() && !done.unit.exists() && !done.entry.exists());
    }
}
