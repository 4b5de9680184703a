//! Names: refusing paths that would lead outside the destination, and
//! names that are invalid or collide on a case-insensitive (FAT/exFAT)
//! destination, renamed `name (2).ext` when the user asks.
//!
//! Invariant: a restored path is made of plain names only; on a
//! case-insensitive destination no two restored paths fold to the same
//! name, unless the restore was refused.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use super::Error;
use super::select::Entry;

/// Checks that a relative path is made of plain names only.
pub(super) fn check_rel(orig: &Path, rel: &Path) -> Result<(), Error> {
    for c in rel.components() {
        match c {
            Component::Normal(n) if !n.is_empty() && !n.as_bytes().contains(&0) => {}
            other => {
                return Err(Error::Unsafe {
                    path: orig.to_path_buf(),
                    reason: format!(
                        "its name holds `{}`, which would lead outside the destination",
                        other.as_os_str().to_string_lossy()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Why a name is invalid on FAT/exFAT, if it is.
pub fn fat_invalid(name: &OsStr) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.iter()
        .any(|c| matches!(c, b':' | b'*' | b'?' | b'"' | b'<' | b'>' | b'|' | b'\\') || *c < 0x20)
    {
        return Some("character not allowed on FAT/exFAT");
    }
    if b.ends_with(b".") || b.ends_with(b" ") {
        return Some("trailing dot or space");
    }
    let s = String::from_utf8_lossy(b).to_ascii_uppercase();
    let stem = s.split('.').next().unwrap_or("");
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    if RESERVED.contains(&stem) {
        return Some("reserved name");
    }
    None
}

fn fat_fix(name: &OsStr) -> OsString {
    let mut b: Vec<u8> = name
        .as_bytes()
        .iter()
        .map(|c| match c {
            b':' | b'*' | b'?' | b'"' | b'<' | b'>' | b'|' | b'\\' => b'_',
            c if *c < 0x20 => b'_',
            c => *c,
        })
        .collect();
    while b.last().is_some_and(|c| *c == b'.' || *c == b' ') {
        b.pop();
    }
    if b.is_empty() || fat_invalid(OsStr::from_bytes(&b)).is_some() {
        b.push(b'_');
    }
    OsString::from_vec(b)
}

/// `name (n).ext`
fn numbered(name: &OsStr, n: u32) -> OsString {
    let b = name.as_bytes();
    let dot = b.iter().rposition(|c| *c == b'.').filter(|i| *i > 0);
    let (stem, ext) = match dot {
        Some(i) => (&b[..i], &b[i..]),
        None => (b, &b[..0]),
    };
    let mut out = stem.to_vec();
    out.extend_from_slice(format!(" ({n})").as_bytes());
    out.extend_from_slice(ext);
    OsString::from_vec(out)
}

fn fold(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).to_lowercase()
}

/// Whether the destination (or its nearest existing ancestor) is FAT/exFAT.
pub fn is_case_insensitive_fs(dest: &Path) -> bool {
    fs_kind_of(dest).case_insensitive()
}

/// The file system `dest` (or its nearest existing parent) is on: FAT and
/// exFAT also through FUSE.
pub fn fs_kind_of(dest: &Path) -> crate::disk::fs::Kind {
    let mut p = dest;
    loop {
        if let Ok(s) = rustix::fs::statfs(p) {
            #[allow(clippy::unnecessary_cast)]
            let magic = s.f_type as i64;
            return crate::disk::fs::kind_of(p, magic);
        }
        match p.parent() {
            Some(q) => p = q,
            None => return crate::disk::fs::Kind::Other(0),
        }
    }
}

/// The `n`th name (from 1) for a restored file kept beside an existing
/// one of the same name: "report (restored).pdf", then "report (restored
/// 2).pdf", …; the extension stays last so the file still opens.
pub(super) fn kept_name(name: &OsStr, n: u32) -> OsString {
    let p = Path::new(name);
    let tag = if n <= 1 {
        " (restored)".to_string()
    } else {
        format!(" (restored {n})")
    };
    let (stem, ext) = match (p.file_stem(), p.extension()) {
        (Some(s), Some(e)) if !s.is_empty() => (s, Some(e)),
        _ => (name, None),
    };
    let mut out = stem.to_os_string();
    out.push(tag);
    if let Some(e) = ext {
        out.push(".");
        out.push(e);
    }
    out
}

/// Finds collisions and invalid names on a case-insensitive destination;
/// renames them when asked. Entries are sorted, so parents come first.
pub(super) fn handle_collisions(
    entries: &mut [Entry],
    rename: bool,
) -> Result<Vec<(PathBuf, PathBuf)>, Error> {
    let mut problems = Vec::new();
    let mut renamed = Vec::new();
    let mut moved: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    for e in entries.iter_mut() {
        let parent = e.rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = moved.get(&parent).cloned().unwrap_or(parent);
        let Some(name) = e.rel.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        let mut why = fat_invalid(&name).map(str::to_string);
        let mut new_name = if why.is_some() {
            fat_fix(&name)
        } else {
            name.clone()
        };
        if used.contains(&fold(&parent.join(&new_name))) {
            why.get_or_insert_with(|| "differs only in case from another name".into());
            let base = new_name.clone();
            let mut n = 2;
            while used.contains(&fold(&parent.join(numbered(&base, n)))) {
                n += 1;
            }
            new_name = numbered(&base, n);
        }
        let new_rel = parent.join(&new_name);
        used.insert(fold(&new_rel));
        if let Some(w) = why {
            problems.push((e.version.path.clone(), w));
            renamed.push((e.version.path.clone(), new_rel.clone()));
        }
        if new_rel != e.rel {
            moved.insert(e.rel.clone(), new_rel.clone());
            e.rel = new_rel;
        }
    }
    if !problems.is_empty() && !rename {
        return Err(Error::Collisions { names: problems });
    }
    Ok(renamed)
}

#[cfg(test)]
mod tests {
    use super::super::select::State;
    use super::*;
    use crate::catalog::{Kind, Version};

    #[test]
    fn a_kept_name_keeps_the_extension_last() {
        assert_eq!(
            kept_name(OsStr::new("report.pdf"), 1),
            "report (restored).pdf"
        );
        assert_eq!(
            kept_name(OsStr::new("report.pdf"), 3),
            "report (restored 3).pdf"
        );
        assert_eq!(kept_name(OsStr::new("Makefile"), 1), "Makefile (restored)");
        assert_eq!(kept_name(OsStr::new(".bashrc"), 2), ".bashrc (restored 2)");
    }

    #[test]
    fn names_invalid_on_fat_are_found_and_fixed() {
        assert!(fat_invalid(OsStr::new("a:b")).is_some());
        assert!(fat_invalid(OsStr::new("end.")).is_some());
        assert!(fat_invalid(OsStr::new("CON.txt")).is_some());
        assert!(fat_invalid(OsStr::new("photo.jpg")).is_none());
        assert_eq!(fat_fix(OsStr::new("a:b?. ")), OsString::from("a_b_"));
        assert_eq!(
            numbered(OsStr::new("photo.jpg"), 2),
            OsString::from("photo (2).jpg")
        );
        assert_eq!(
            numbered(OsStr::new(".bashrc"), 3),
            OsString::from(".bashrc (3)")
        );
    }

    #[test]
    fn dot_dot_and_absolute_names_are_refused() {
        assert!(check_rel(Path::new("/x"), Path::new("a/../../etc")).is_err());
        assert!(check_rel(Path::new("/x"), Path::new("/etc")).is_err());
        assert!(check_rel(Path::new("/x"), Path::new("a/b")).is_ok());
    }

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            version: Version {
                id: 0,
                path: PathBuf::from("/src").join(path),
                kind,
                size: 0,
                mtime_ns: 0,
                inode: 0,
                mode: 0o644,
                target: None,
                hash: None,
                first_snapshot: 1,
                last_snapshot: 1,
                attrs: Default::default(),
            },
            rel: PathBuf::from(path),
            state: State::ToDo,
        }
    }

    #[test]
    fn case_collisions_are_refused_or_renamed() {
        let mk = || {
            vec![
                entry("Photo.JPG", Kind::File),
                entry("dir", Kind::Dir),
                entry("dir/x", Kind::File),
                entry("photo.jpg", Kind::File),
            ]
        };
        let mut e = mk();
        let err = handle_collisions(&mut e, false).unwrap_err();
        assert!(err.to_string().contains("/src/photo.jpg"), "{err}");
        let mut e = mk();
        let renamed = handle_collisions(&mut e, true).unwrap();
        assert_eq!(renamed.len(), 1);
        assert_eq!(e[3].rel, PathBuf::from("photo (2).jpg"));
        let mut e = vec![entry("a:b", Kind::Dir), entry("a:b/c", Kind::File)];
        handle_collisions(&mut e, true).unwrap();
        assert_eq!(e[1].rel, PathBuf::from("a_b/c"));
    }
}
