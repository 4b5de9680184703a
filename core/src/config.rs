//! Where Coffer keeps its files, and the profile: sources, exclusions,
//! copies wanted, dump commands and the storage basepath.
//!
//! Invariant: every source of a saved profile lies under the storage basepath
//! (after resolving `..` and symlinks) unless it was added with an explicit
//! `outside_basepath`; the config file is replaced atomically.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{path_} is outside the storage basepath {basepath}; pass --outside-basepath if you really mean it", path_ = crate::human::path(.path))]
    OutsideBasepath { path: PathBuf, basepath: PathBuf },
    #[error("{path_} contains `..`; give the folder's plain path", path_ = crate::human::path(.path))]
    DotDot { path: PathBuf },
    #[error("{path_} is not a folder", path_ = crate::human::path(.path))]
    NotAFolder { path: PathBuf },
    #[error("cannot resolve {path_}: {source}", path_ = crate::human::path(.path))]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path_} is already a source", path_ = crate::human::path(.path))]
    Duplicate { path: PathBuf },
    #[error("{path_} is not a source", path_ = crate::human::path(.path))]
    NoSuchSource { path: PathBuf },
    #[error("{path_} overlaps the source {other}; sources must not contain each other", path_ = crate::human::path(.path))]
    Overlap { path: PathBuf, other: PathBuf },
    #[error("bad exclusion rule `{rule}`: {message}")]
    BadRule { rule: String, message: String },
    #[error("cannot read the config {path_}: {source}", path_ = crate::human::path(.path))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config {path_} is not valid: {source}", path_ = crate::human::path(.path))]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the config {path_}: {source}", path_ = crate::human::path(.path))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no home folder found; set COFFER_CONFIG_DIR and COFFER_DATA_DIR")]
    NoHome,
}

/// The folders Coffer uses on this machine.
#[derive(Clone, Debug)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// The XDG folders, or `COFFER_CONFIG_DIR` / `COFFER_DATA_DIR` when set
    /// (tests set them so a user's real catalog can never leak in).
    pub fn from_env() -> Result<Paths, Error> {
        let dirs = directories::ProjectDirs::from("org", "Coffer", "coffer");
        let config_dir = match std::env::var_os("COFFER_CONFIG_DIR") {
            Some(d) => PathBuf::from(d),
            None => dirs
                .as_ref()
                .ok_or(Error::NoHome)?
                .config_dir()
                .to_path_buf(),
        };
        let data_dir = match std::env::var_os("COFFER_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => dirs.as_ref().ok_or(Error::NoHome)?.data_dir().to_path_buf(),
        };
        Ok(Paths {
            config_dir,
            data_dir,
        })
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("coffer.json")
    }

    pub fn catalog_file(&self) -> PathBuf {
        self.data_dir.join("catalog.sqlite")
    }
}

fn default_copies() -> u32 {
    2
}

/// A folder to back up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub path: PathBuf,
    /// `.gitignore`-syntax rules, relative to `path`.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Copies wanted for this folder; the profile's number when absent.
    /// 0 means "catalogued but not copied to disks" (caches).
    #[serde(default)]
    pub copies: Option<u32>,
    /// Higher goes first when disks are short of room.
    #[serde(default)]
    pub priority: i32,
    /// The user said explicitly that this source may lie outside the basepath.
    #[serde(default)]
    pub outside_basepath: bool,
}

/// A command whose output is archived, with the command that loads it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dump {
    pub name: String,
    pub command: String,
    #[serde(default)]
    pub load_command: Option<String>,
}

/// One backup set: what to back up and how many copies to keep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub set_id: uuid::Uuid,
    #[serde(default = "default_name")]
    pub name: String,
    pub basepath: PathBuf,
    #[serde(default = "default_copies")]
    pub copies: u32,
    #[serde(default)]
    pub sources: Vec<Source>,
    /// Rules applied under every source.
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default)]
    pub dumps: Vec<Dump>,
    /// Run (with `sh -c`) before each sync, before the scan: to quiesce an
    /// application whose files must not change while they are read. A
    /// failure stops the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_sync: Option<String>,
    /// Run after each sync, whatever its outcome (`COFFER_RESULT` says it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_sync: Option<String>,
}

fn default_name() -> String {
    "home".into()
}

/// The whole config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    pub profile: Profile,
}

impl Config {
    pub const VERSION: u32 = 1;

    /// A fresh config with the home folder as basepath.
    pub fn new_default() -> Result<Config, Error> {
        let basepath = match std::env::var_os("COFFER_BASEPATH") {
            Some(p) => PathBuf::from(p),
            None => directories::BaseDirs::new()
                .ok_or(Error::NoHome)?
                .home_dir()
                .to_path_buf(),
        };
        Ok(Config {
            version: Self::VERSION,
            profile: Profile {
                set_id: uuid::Uuid::new_v4(),
                name: default_name(),
                basepath,
                copies: default_copies(),
                sources: Vec::new(),
                excludes: Vec::new(),
                dumps: Vec::new(),
                before_sync: None,
                after_sync: None,
            },
        })
    }

    /// Reads the config, or makes a default one (not yet saved) if none exists.
    pub fn load_or_default(paths: &Paths) -> Result<Config, Error> {
        let path = paths.config_file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::new_default(),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// Writes the config: temp file, fsync, rename.
    pub fn save(&self, paths: &Paths) -> Result<(), Error> {
        let path = paths.config_file();
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::disk::io::write_atomic(&path, &bytes).map_err(|source| Error::Write { path, source })
    }
}

impl Profile {
    /// A digest of everything in the profile: what a sync's decisions
    /// depend on (sources, rules, copies wanted).
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        crate::object::ObjectId::of(json.as_bytes()).to_hex()
    }

    /// Adds a source folder after checking it against the basepath.
    pub fn add_source(&mut self, mut source: Source) -> Result<&Source, Error> {
        let path = check_path(&source.path, &self.basepath, source.outside_basepath)?;
        if !path.is_dir() {
            return Err(Error::NotAFolder { path });
        }
        for rule in &source.excludes {
            check_rule(rule)?;
        }
        for other in &self.sources {
            if other.path == path {
                return Err(Error::Duplicate { path });
            }
            if path.starts_with(&other.path) || other.path.starts_with(&path) {
                return Err(Error::Overlap {
                    path,
                    other: other.path.clone(),
                });
            }
        }
        source.path = path;
        self.sources.push(source);
        self.sources.sort_by(|a, b| a.path.cmp(&b.path));
        let idx = self
            .sources
            .iter()
            .position(|s| s.path == self.sources[self.sources.len() - 1].path)
            .unwrap_or(0);
        Ok(&self.sources[idx])
    }

    /// Removes a source; its files stay in older snapshots.
    pub fn remove_source(&mut self, path: &Path) -> Result<Source, Error> {
        let abs = absolute(path)?;
        let canon = std::fs::canonicalize(&abs).unwrap_or(abs.clone());
        let idx = self
            .sources
            .iter()
            .position(|s| s.path == abs || s.path == canon)
            .ok_or(Error::NoSuchSource { path: abs })?;
        Ok(self.sources.remove(idx))
    }

    /// The source a path belongs to.
    pub fn source_of(&self, path: &Path) -> Option<&Source> {
        self.sources.iter().find(|s| path.starts_with(&s.path))
    }

    /// Copies wanted and priority for a file at `path`.
    pub fn wanted_for(&self, path: &Path) -> (u32, i32) {
        match self.source_of(path) {
            Some(s) => (s.copies.unwrap_or(self.copies), s.priority),
            None => (self.copies, 0),
        }
    }
}

/// Checks one `.gitignore`-syntax rule.
pub fn check_rule(rule: &str) -> Result<(), Error> {
    let mut b = ignore::gitignore::GitignoreBuilder::new("/");
    b.add_line(None, rule).map_err(|e| Error::BadRule {
        rule: rule.into(),
        message: e.to_string(),
    })?;
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::Resolve {
        path: path.to_path_buf(),
        source,
    })
}

/// Resolves `path` and checks that it lies under `basepath`.
///
/// A path with `..` is refused outright (it is almost always a typo or a
/// trick); a path that reaches outside the basepath through a symlink is
/// caught because both sides are canonicalised. `allow_outside` is the user's
/// explicit "yes, I mean it".
pub fn check_path(path: &Path, basepath: &Path, allow_outside: bool) -> Result<PathBuf, Error> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::DotDot {
            path: path.to_path_buf(),
        });
    }
    let abs = absolute(path)?;
    let canon = std::fs::canonicalize(&abs).map_err(|source| Error::Resolve {
        path: abs.clone(),
        source,
    })?;
    if allow_outside {
        return Ok(canon);
    }
    let base = std::fs::canonicalize(basepath).map_err(|source| Error::Resolve {
        path: basepath.to_path_buf(),
        source,
    })?;
    if canon.starts_with(&base) {
        Ok(canon)
    } else {
        Err(Error::OutsideBasepath {
            path: abs,
            basepath: base,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(base: &Path) -> Profile {
        Profile {
            set_id: uuid::Uuid::nil(),
            name: "t".into(),
            basepath: base.to_path_buf(),
            copies: 2,
            sources: vec![],
            excludes: vec![],
            dumps: vec![],
            before_sync: None,
            after_sync: None,
        }
    }

    fn src(path: PathBuf) -> Source {
        Source {
            path,
            excludes: vec![],
            copies: None,
            priority: 0,
            outside_basepath: false,
        }
    }

    #[test]
    fn sources_must_lie_under_the_basepath() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("home");
        let outside = root.path().join("etc");
        std::fs::create_dir_all(base.join("photos")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("sneaky")).unwrap();
        let mut p = profile(&base);

        p.add_source(src(base.join("photos"))).unwrap();
        let err = p.add_source(src(outside.clone())).unwrap_err();
        assert!(matches!(err, Error::OutsideBasepath { .. }), "{err}");
        assert!(err.to_string().contains("etc"), "{err}");
        let err = p
            .add_source(src(base.join("photos/../../etc")))
            .unwrap_err();
        assert!(matches!(err, Error::DotDot { .. }), "{err}");
        let err = p.add_source(src(base.join("sneaky"))).unwrap_err();
        assert!(matches!(err, Error::OutsideBasepath { .. }), "{err}");

        let mut explicit = src(outside.clone());
        explicit.outside_basepath = true;
        p.add_source(explicit).unwrap();
        assert_eq!(p.sources.len(), 2);
    }

    #[test]
    fn overlapping_and_duplicate_sources_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        let mut p = profile(root.path());
        p.add_source(src(root.path().join("a"))).unwrap();
        assert!(matches!(
            p.add_source(src(root.path().join("a"))),
            Err(Error::Duplicate { .. })
        ));
        assert!(matches!(
            p.add_source(src(root.path().join("a/b"))),
            Err(Error::Overlap { .. })
        ));
    }

    #[test]
    fn config_round_trips_through_its_file() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_dir: root.path().join("c"),
            data_dir: root.path().join("d"),
        };
        let mut cfg = Config::load_or_default(&paths).unwrap();
        cfg.profile.basepath = root.path().to_path_buf();
        cfg.save(&paths).unwrap();
        assert_eq!(Config::load_or_default(&paths).unwrap(), cfg);
        std::fs::write(paths.config_file(), b"{ nope").unwrap();
        let err = Config::load_or_default(&paths).unwrap_err();
        assert!(err.to_string().contains("coffer.json"), "{err}");
    }
}
