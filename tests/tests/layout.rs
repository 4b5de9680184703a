#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! The shape of the code, checked: no source file over 700 lines outside
//! its tests, no function with so many arguments that clippy had to be
//! told to allow it, and no two top-level core modules importing each
//! other (the floors of ARCHITECTURE.md point one way).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's root (this crate is `tests/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under `dir`, skipping build output.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file that holds only tests: under a `tests` folder or named so.
fn is_test_file(p: &Path) -> bool {
    p.components().any(|c| c.as_os_str() == "tests")
        || p.file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("tests"))
}

/// The text of a source file before its `#[cfg(test)]` module, if any.
fn non_test_part(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn no_source_file_is_over_700_lines_outside_its_tests() {
    let root = workspace();
    let mut all = Vec::new();
    for d in ["core/src", "app/src", "tests/src"] {
        sources(&root.join(d), &mut all);
    }
    assert!(all.len() > 50, "found only {} source files", all.len());
    let long: Vec<String> = all
        .iter()
        .filter(|p| !is_test_file(p))
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let n = non_test_part(&text).lines().count();
            (n > 700).then(|| format!("{} ({n} lines)", p.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern: {long:?}");
}

#[test]
fn no_clippy_allow_for_long_argument_lists() {
    let root = workspace();
    let mut all = Vec::new();
    for d in ["core", "app", "tests", "fuzz"] {
        if root.join(d).is_dir() {
            sources(&root.join(d), &mut all);
        }
    }
    // Spelled in two halves so this file does not match itself.
    let lint = ["too_many", "_arguments"].concat();
    let found: Vec<_> = all
        .iter()
        .filter(|p| std::fs::read_to_string(p).unwrap().contains(&lint))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(found.is_empty(), "take a struct instead: {found:?}");
}

/// The top-level module a core source file belongs to (`disk` for
/// `core/src/disk/store.rs`, `plan` for `core/src/plan.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// The top-level modules `text` names as `crate::NAME`, or in a group
/// `crate::{NAME::…, NAME, …}`. (A name re-exported at the crate's root,
/// like `crate::Disk`, is not seen.)
fn named_modules(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, m) in text.match_indices("crate::") {
        // `coffer_core::` and the like are other crates' paths.
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + m.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.insert(ident(rest));
            continue;
        };
        // The names at the group's first level, each after `{` or `,`.
        let mut depth = 0;
        let mut start = true;
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if start && depth == 0 && !c.is_whitespace() => {
                    out.insert(ident(&group[j..]));
                    start = false;
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn no_two_core_modules_import_each_other() {
    let src = workspace().join("core/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    assert!(
        modules.contains("disk") && modules.contains("sync"),
        "{modules:?}"
    );
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let m = module_of(&src, f);
        if m == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for n in named_modules(non_test_part(&text)) {
            if n != m && modules.contains(&n) && n != "lib" {
                uses.entry(m.clone()).or_default().insert(n);
            }
        }
    }
    let mut both_ways = Vec::new();
    for (a, used) in &uses {
        for b in used {
            if a < b && uses.get(b).is_some_and(|u| u.contains(a)) {
                both_ways.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        both_ways.is_empty(),
        "these modules import each other: {both_ways:?}"
    );
}

#[test]
fn the_import_reader_finds_what_it_should() {
    let text = "use crate::disk::Disk;\nlet x = coffer_core::sync::run();\ncrate::io::real();\n\
                use crate::{catalog::{Catalog, Kind}, human, task::Progress};";
    let got = named_modules(text);
    let want = ["catalog", "disk", "human", "io", "task"];
    assert_eq!(
        got,
        want.into_iter().map(String::from).collect::<BTreeSet<_>>()
    );
}
