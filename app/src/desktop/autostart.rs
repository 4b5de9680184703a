//! Starting the agent at login: an XDG autostart entry
//! (`coffer-agent.desktop`). The `.deb` installs one for everybody in
//! `/etc/xdg/autostart/`; a user's own entry of the same name in
//! `~/.config/autostart/` overrides it, and says `Hidden=true` to switch
//! it off (the XDG Autostart specification). Without a system entry (a
//! Coffer built from source), switching on writes the user's entry and
//! switching off removes it.
//!
//! Invariant: only the user's own entry is ever written or removed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The entry's file name, the same in every autostart folder.
pub const FILE: &str = "coffer-agent.desktop";

/// The entry that starts the agent (also installed by the `.deb`).
pub const ENTRY: &str = include_str!("../../../packaging/coffer-agent.desktop");

/// Where autostart entries are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirs {
    /// The user's (`$XDG_CONFIG_HOME/autostart`, `~/.config/autostart`).
    pub user: PathBuf,
    /// The system's (`$XDG_CONFIG_DIRS`, each `/autostart`; `/etc/xdg`).
    pub system: Vec<PathBuf>,
}

impl Dirs {
    /// The folders the environment names.
    pub fn from_env() -> Dirs {
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from(".config"));
        let system = std::env::var("XDG_CONFIG_DIRS")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/etc/xdg".into())
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join("autostart"))
            .collect();
        Dirs {
            user: config_home.join("autostart"),
            system,
        }
    }

    /// The user's entry.
    pub fn user_file(&self) -> PathBuf {
        self.user.join(FILE)
    }

    fn system_file(&self) -> Option<PathBuf> {
        self.system
            .iter()
            .map(|d| d.join(FILE))
            .find(|f| f.exists())
    }

    /// Whether the agent starts at login, as a session manager reads it.
    pub fn is_on(&self) -> bool {
        match std::fs::read_to_string(self.user_file()) {
            Ok(text) => !hidden(&text),
            Err(_) => self.system_file().is_some(),
        }
    }

    /// Switches starting the agent at login on or off.
    pub fn set(&self, on: bool) -> anyhow::Result<()> {
        self.set_exec(on, "coffer")
    }

    /// [`Dirs::set`], with the user's own entry (when one is needed)
    /// running the program `exec` (a path, quoted as `Exec` wants it).
    pub fn set_exec(&self, on: bool, exec: &str) -> anyhow::Result<()> {
        let user = self.user_file();
        let system = self.system_file().is_some();
        if on && system {
            remove(&user)
        } else if on {
            write(
                &user,
                &ENTRY.replace("Exec=coffer agent", &format!("Exec={exec} agent")),
            )
        } else if system {
            write(&user, &format!("{}\nHidden=true\n", ENTRY.trim_end()))
        } else {
            remove(&user)
        }
    }
}

/// Whether an entry's `[Desktop Entry]` says `Hidden=true`.
fn hidden(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .any(|l| l.eq_ignore_ascii_case("hidden=true"))
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `text` to `path` through a temp file and a rename.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    std::fs::write(tmp.path(), text).with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> Dirs {
        Dirs {
            user: root.join("home/.config/autostart"),
            system: vec![root.join("etc/xdg/autostart")],
        }
    }

    #[test]
    fn built_from_source_on_writes_the_entry_and_off_removes_it() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        assert!(!d.is_on());
        d.set(true).unwrap();
        assert!(d.is_on());
        let text = std::fs::read_to_string(d.user_file()).unwrap();
        assert!(text.contains("Exec=coffer agent"), "{text}");
        d.set(false).unwrap();
        assert!(!d.user_file().exists() && !d.is_on());
    }

    #[test]
    fn installed_off_hides_the_system_entry_and_on_lifts_that() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        std::fs::create_dir_all(&d.system[0]).unwrap();
        std::fs::write(d.system[0].join(FILE), ENTRY).unwrap();
        assert!(d.is_on(), "the .deb's entry starts the agent");
        d.set(false).unwrap();
        assert!(!d.is_on());
        assert!(hidden(&std::fs::read_to_string(d.user_file()).unwrap()));
        d.set(true).unwrap();
        assert!(d.is_on() && !d.user_file().exists());
    }
}
