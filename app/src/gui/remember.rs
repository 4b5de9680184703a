//! What the window remembers across restarts (`window.json` in the config
//! folder): the light or dark choice, and the folders typed or chosen in
//! the Restore and Archives tabs.
//!
//! Invariant: the file is written whole (temp file, rename) and only when
//! something changed; a file that does not read is ignored, never fatal.

use std::path::{Path, PathBuf};

use coffer_core::config::Paths;
use serde::{Deserialize, Serialize};

/// Light, dark, or as the desktop says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn words(self) -> &'static str {
        match self {
            Theme::System => "Follow the system",
            Theme::Light => "Light",
            Theme::Dark => "Dark",
        }
    }

    pub fn preference(self) -> egui::ThemePreference {
        match self {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Remembered {
    pub theme: Theme,
    pub restore_dest: String,
    pub archive_dir: String,
    pub archive_prefix: String,
    pub archive_restore_dest: String,
}

fn file(paths: &Paths) -> PathBuf {
    paths.config_dir.join("window.json")
}

/// What was remembered (the defaults when nothing was, or it does not read).
pub fn load(paths: &Paths) -> Remembered {
    std::fs::read(file(paths))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes it through a temp file and a rename.
pub fn save(paths: &Paths, r: &Remembered) -> std::io::Result<()> {
    let path = file(paths);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), serde_json::to_vec_pretty(r)?)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_saved_reads_back_and_a_bad_file_gives_the_defaults() {
        let t = tempfile::tempdir().unwrap();
        let p = Paths {
            config_dir: t.path().join("config"),
            data_dir: t.path().join("data"),
        };
        assert_eq!(load(&p), Remembered::default());
        let r = Remembered {
            theme: Theme::Dark,
            restore_dest: "/home/me/restored".into(),
            ..Remembered::default()
        };
        save(&p, &r).unwrap();
        assert_eq!(load(&p), r);
        std::fs::write(file(&p), "{not json").unwrap();
        assert_eq!(load(&p), Remembered::default());
    }
}
