//! What the Archives tab reads from the archive folder: the archives there
//! (as `coffer archive ls` describes them), and the tree the chosen one's
//! manifest lists. Both run on `core::task` threads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use coffer_core::archive::{self, EntryKind};
use coffer_core::human;

/// One archive found in the folder.
#[derive(Clone, Debug)]
pub struct Row {
    /// `PREFIX-N`, as the list shows it.
    pub name: String,
    pub prefix: String,
    pub sequence: u64,
    pub text: String,
    pub files: Vec<PathBuf>,
}

/// A path of the chosen archive's tree (or one of its dumps), as listed in
/// its manifest: `/`-separated and relative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub path: String,
    pub dir: bool,
    pub size: u64,
}

/// The manifest's paths as a tree: the items with no parent among them,
/// and each folder's children, by index, in the manifest's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub roots: Vec<usize>,
    pub children: std::collections::HashMap<usize, Vec<usize>>,
}

pub fn tree(items: &[Item]) -> Tree {
    let by_path: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.dir)
        .map(|(n, i)| (i.path.trim_end_matches('/'), n))
        .collect();
    let mut t = Tree::default();
    for (n, item) in items.iter().enumerate() {
        let parent = item
            .path
            .trim_end_matches('/')
            .rsplit_once('/')
            .and_then(|(p, _)| by_path.get(p).copied());
        match parent {
            Some(p) if p != n => t.children.entry(p).or_default().push(n),
            _ => t.roots.push(n),
        }
    }
    t
}

/// The archives in `dir`, described as `coffer archive ls` does.
pub fn list(dir: &Path, prefix: Option<&str>) -> coffer_core::Result<Vec<Row>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let found = archive::find(dir, prefix)?;
    let mut rows = Vec::new();
    for f in &found {
        let name = format!("{}-{}", f.prefix, f.sequence);
        let size = f.size_on_disk();
        let text = match archive::read_manifest(f.first()) {
            Ok(m) => {
                let mut t = format!(
                    "{}, {}: {} ({}); {}",
                    match m.base_sequence {
                        Some(b) => format!("incremental against {b}"),
                        None => "full".into(),
                    },
                    human::time(m.created_at),
                    human::count(m.file_count(), "file"),
                    human::bytes(m.total_bytes()),
                    human::bytes(size)
                );
                if m.volumes > 1 {
                    let _ = write!(t, ", {} volumes ({} present)", m.volumes, f.files.len());
                }
                t
            }
            Err(e) => format!("unreadable: {}", crate::gui::messages::error_text(&e)),
        };
        rows.push(Row {
            name,
            prefix: f.prefix.clone(),
            sequence: f.sequence,
            text,
            files: f.files.clone(),
        });
    }
    Ok(rows)
}

/// The tree and dumps an archive's manifest lists, sorted by path.
pub fn items(first: &Path) -> coffer_core::Result<Vec<Item>> {
    let m = archive::read_manifest(first)?;
    let mut out: Vec<Item> = m
        .entries
        .iter()
        .map(|e| Item {
            path: e.path.clone(),
            dir: e.kind == EntryKind::Dir,
            size: e.size,
        })
        .chain(m.dumps.iter().map(|d| Item {
            path: d.member_path(),
            dir: false,
            size: d.size,
        }))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    fn item(path: &str, dir: bool) -> Item {
        Item {
            path: path.into(),
            dir,
            size: 1,
        }
    }

    #[test]
    fn folders_hold_what_lies_directly_under_them() {
        let items = [
            item("docs", true),
            item("docs/a.txt", false),
            item("docs/sub", true),
            item("docs/sub/b.txt", false),
            item("music/c.flac", false),
        ];
        let t = tree(&items);
        assert_eq!(
            t.roots,
            vec![0, 4],
            "a file whose folder is not listed is a root"
        );
        assert_eq!(t.children[&0], vec![1, 2]);
        assert_eq!(t.children[&2], vec![3]);
        assert!(!t.children.contains_key(&1));
    }
}
