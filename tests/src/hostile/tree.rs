//! A folder tree as a comparable value: every name with its type, mode,
//! size, content hash and link target, so "nothing changed" can be checked
//! and what did change can be said.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Files above this size are compared by size, inode and change times
/// instead of content: hashing a 100 MB sparse identity on every check would
/// cost more than the whole case, and any write moves the times anyway.
const HASH_LIMIT: u64 = 8 << 20;

/// One name in a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    /// `links`: a hard link made to the file elsewhere shows here.
    File {
        mode: u32,
        size: u64,
        links: u64,
        digest: String,
    },
    Symlink {
        target: PathBuf,
    },
    Fifo {
        mode: u32,
    },
    Socket {
        mode: u32,
    },
    CharDevice {
        mode: u32,
        rdev: u64,
    },
    BlockDevice {
        mode: u32,
        rdev: u64,
    },
}

impl Node {
    fn of(path: &Path, m: &std::fs::Metadata) -> Node {
        let ft = m.file_type();
        let mode = m.mode() & 0o7777;
        if ft.is_symlink() {
            Node::Symlink {
                target: std::fs::read_link(path).unwrap_or_default(),
            }
        } else if ft.is_dir() {
            Node::Dir { mode }
        } else if ft.is_fifo() {
            Node::Fifo { mode }
        } else if ft.is_socket() {
            Node::Socket { mode }
        } else if ft.is_char_device() {
            Node::CharDevice {
                mode,
                rdev: m.rdev(),
            }
        } else if ft.is_block_device() {
            Node::BlockDevice {
                mode,
                rdev: m.rdev(),
            }
        } else {
            let digest = if m.len() > HASH_LIMIT {
                format!(
                    "large: inode {} mtime {}.{} ctime {}.{}",
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec()
                )
            } else {
                match std::fs::read(path) {
                    Ok(b) => coffer_core::ObjectId::of(&b).to_hex(),
                    Err(e) => format!("unreadable: {e}"),
                }
            };
            Node::File {
                mode,
                size: m.len(),
                links: m.nlink(),
                digest,
            }
        }
    }

    fn short(&self) -> String {
        match self {
            Node::Dir { mode } => format!("folder {mode:o}"),
            Node::File {
                mode,
                size,
                links,
                digest,
            } => format!(
                "file {mode:o}, {size} bytes, {links} link(s), {}",
                &digest[..digest.len().min(16)]
            ),
            Node::Symlink { target } => format!("symlink → {}", target.display()),
            Node::Fifo { mode } => format!("FIFO {mode:o}"),
            Node::Socket { mode } => format!("socket {mode:o}"),
            Node::CharDevice { mode, rdev } => format!("char device {rdev:x} {mode:o}"),
            Node::BlockDevice { mode, rdev } => format!("block device {rdev:x} {mode:o}"),
        }
    }
}

/// Every name under a root (the root itself is ``), never following a
/// symlink and never opening anything but regular files.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tree {
    pub root: PathBuf,
    pub nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    pub fn of(root: &Path) -> Tree {
        let mut nodes = BTreeMap::new();
        walk(root, Path::new(""), &mut nodes);
        Tree {
            root: root.to_path_buf(),
            nodes,
        }
    }

    /// The same tree without the names under any of `paths` (absolute).
    pub fn without(mut self, paths: &[PathBuf]) -> Tree {
        let root = self.root.clone();
        self.nodes
            .retain(|rel, _| !paths.iter().any(|p| root.join(rel).starts_with(p)));
        self
    }

    /// Names (relative) of files with more than one hard link.
    pub fn hard_linked(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n, Node::File { links, .. } if *links > 1))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Names (relative) whose mode carries setuid, setgid or sticky.
    pub fn special_bits(&self) -> Vec<(PathBuf, u32)> {
        self.nodes
            .iter()
            .filter_map(|(p, n)| match n {
                Node::Dir { mode } | Node::File { mode, .. } if mode & 0o7000 != 0 => {
                    Some((p.clone(), *mode))
                }
                _ => None,
            })
            .collect()
    }

    /// What differs from `before`, one line per name, empty when equal.
    pub fn changes_since(&self, before: &Tree) -> Vec<String> {
        let mut out = Vec::new();
        let show = |p: &Path| {
            let full = before.root.join(p);
            super::run::visible(full.as_os_str().as_encoded_bytes())
        };
        for (p, b) in &before.nodes {
            match self.nodes.get(p) {
                None => out.push(format!("{} was removed (was {})", show(p), b.short())),
                Some(a) if a != b => out.push(format!(
                    "{} changed: {} → {}",
                    show(p),
                    b.short(),
                    a.short()
                )),
                Some(_) => {}
            }
        }
        for (p, a) in &self.nodes {
            if !before.nodes.contains_key(p) {
                out.push(format!("{} appeared ({})", show(p), a.short()));
            }
        }
        out
    }

    /// Names (relative) of a kind other than files, folders and symlinks.
    pub fn specials(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .filter(|(_, n)| {
                !matches!(
                    n,
                    Node::Dir { .. } | Node::File { .. } | Node::Symlink { .. }
                )
            })
            .map(|(p, _)| p.clone())
            .collect()
    }
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let full = root.join(rel);
    let Ok(m) = std::fs::symlink_metadata(&full) else {
        return;
    };
    let node = Node::of(&full, &m);
    let is_dir = matches!(node, Node::Dir { .. });
    out.insert(rel.to_path_buf(), node);
    if !is_dir {
        return;
    }
    let Ok(rd) = std::fs::read_dir(&full) else {
        return;
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for n in names {
        walk(root, &rel.join(n), out);
    }
}

/// The folders to watch in one case, hashed together before and after.
#[derive(Default)]
pub struct Watched {
    trees: Vec<Tree>,
    except: Vec<PathBuf>,
}

impl Watched {
    pub fn of(roots: &[&Path]) -> Watched {
        Watched {
            trees: roots.iter().map(|r| Tree::of(r)).collect(),
            except: Vec::new(),
        }
    }

    /// Leaves out the names under `paths` (absolute): the destination a
    /// command may write, the log folder.
    pub fn except(mut self, paths: &[&Path]) -> Watched {
        self.except = paths.iter().map(|p| p.to_path_buf()).collect();
        let except = self.except.clone();
        self.trees = self.trees.into_iter().map(|t| t.without(&except)).collect();
        self
    }

    /// What changed since the last call (or since `of`), and takes the
    /// current state as the new reference, so each command is judged alone.
    pub fn changes(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &mut self.trees {
            let now = Tree::of(&t.root).without(&self.except);
            out.extend(now.changes_since(t));
            *t = now;
        }
        out
    }
}
