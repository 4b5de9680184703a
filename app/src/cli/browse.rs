//! Browsing the catalog: `coffer snapshots`, `ls`, `find` and `versions`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use coffer_core::catalog::{Kind, Version};
use coffer_core::{human, restore};
use serde_json::{json, to_value};

use super::ctx::{Ctx, Done};
use super::restore::{catalog_path, existing_catalog, parse_at};
use super::{FindArgs, LsArgs, shown};

fn kind_mark(k: Kind) -> &'static str {
    match k {
        Kind::File => "",
        Kind::Dir => "/",
        Kind::Symlink => "@",
        // As `ls -F` marks them.
        Kind::Fifo => "|",
        Kind::CharDevice | Kind::BlockDevice => "",
    }
}

pub(super) fn snapshots(ctx: &Ctx) -> anyhow::Result<Done> {
    let cat = existing_catalog(ctx)?;
    let snaps = cat.snapshots()?;
    let mut text = String::new();
    if snaps.is_empty() {
        text.push_str("No snapshots yet: coffer sync\n");
    }
    for s in &snaps {
        let _ = writeln!(
            text,
            "{:>5}  {}  {} files  {}",
            s.id,
            human::time(s.started_at),
            s.files,
            human::bytes(s.bytes)
        );
    }
    Ok(Done::ok(json!({"snapshots": snaps}), text))
}

pub(super) fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<Done> {
    let cat = existing_catalog(ctx)?;
    let snap = restore::resolve_snapshot(&cat, parse_at(a.at.as_deref())?)?;
    let all = cat.versions_in(snap.id)?;
    let dir = a.path.as_deref().map(catalog_path).transpose()?;
    let shown: Vec<&Version> = match &dir {
        Some(d) => {
            let exact: Vec<&Version> = all
                .iter()
                .filter(|v| &v.path == d && v.kind != Kind::Dir)
                .collect();
            if exact.is_empty() {
                all.iter()
                    .filter(|v| v.path.parent() == Some(d.as_path()))
                    .collect()
            } else {
                exact
            }
        }
        // The backed-up folders: entries whose parent is not in the snapshot.
        None => {
            let paths: std::collections::HashSet<&Path> =
                all.iter().map(|v| v.path.as_path()).collect();
            all.iter()
                .filter(|v| v.path.parent().is_none_or(|p| !paths.contains(p)))
                .collect()
        }
    };
    if shown.is_empty()
        && let Some(d) = &dir
    {
        bail!(
            "nothing at {} in snapshot {} ({})",
            human::path(d),
            snap.id,
            human::time(snap.started_at)
        );
    }
    let mut text = format!(
        "Snapshot {} ({}){}\n",
        snap.id,
        human::time(snap.started_at),
        dir.as_ref()
            .map(|d| format!(": {}", human::path(d)))
            .unwrap_or_default()
    );
    for v in &shown {
        // Names come from the catalog: any byte a file system allows.
        let name = if dir.is_some() {
            v.path.file_name().map(human::os_str).unwrap_or_default()
        } else {
            human::path(&v.path)
        };
        let _ = writeln!(
            text,
            "{:>10}  {}  {}{}{}",
            if v.kind == Kind::File {
                human::bytes(v.size)
            } else {
                String::new()
            },
            human::time(v.mtime_ns.div_euclid(1_000_000_000)),
            name,
            kind_mark(v.kind),
            v.target
                .as_ref()
                .map(|t| format!(" -> {}", human::path(t)))
                .unwrap_or_default()
        );
    }
    Ok(Done::ok(
        shown::value(ctx.json, || {
            Ok(json!({"snapshot": snap, "path": to_value(&dir)?, "entries": to_value(&shown)?}))
        })?,
        text,
    ))
}

pub(super) fn find(ctx: &Ctx, a: FindArgs) -> anyhow::Result<Done> {
    let cat = existing_catalog(ctx)?;
    let glob = globset::GlobBuilder::new(&a.pattern)
        .literal_separator(false)
        .build()
        .with_context(|| format!("cannot read the pattern `{}`", a.pattern))?
        .compile_matcher();
    let latest = cat.latest_snapshot()?.map(|s| s.id).unwrap_or(0);
    let times: HashMap<i64, i64> = cat
        .snapshots()?
        .into_iter()
        .map(|s| (s.id, s.started_at))
        .collect();
    let mut rows = Vec::new();
    let mut text = String::new();
    for v in cat.versions_under(Path::new("/"))? {
        // The pattern matches the whole path, or the name alone ('f[12]').
        let hit = glob.is_match(&v.path) || v.path.file_name().is_some_and(|n| glob.is_match(n));
        if v.kind == Kind::Dir || !hit {
            continue;
        }
        let deleted = v.last_snapshot < latest;
        if a.deleted && !deleted {
            continue;
        }
        let _ = writeln!(
            text,
            "{}{}  {}  snapshots {}–{} ({}){}",
            human::path(&v.path),
            kind_mark(v.kind),
            human::bytes(v.size),
            v.first_snapshot,
            v.last_snapshot,
            times
                .get(&v.last_snapshot)
                .map(|t| human::time(*t))
                .unwrap_or_default(),
            if deleted { "  [deleted]" } else { "" }
        );
        rows.push((v, deleted));
    }
    if rows.is_empty() {
        text.push_str("Nothing matches\n");
    }
    let value = shown::value(ctx.json, || {
        let rows = rows
            .iter()
            .map(|(v, deleted)| Ok(json!({"version": to_value(v)?, "deleted": deleted})))
            .collect::<serde_json::Result<Vec<_>>>()?;
        Ok(json!({ "matches": rows }))
    })?;
    Ok(Done::ok(value, text))
}

pub(super) fn versions(ctx: &Ctx, path: &Path) -> anyhow::Result<Done> {
    let cat = existing_catalog(ctx)?;
    let path = catalog_path(path)?;
    let found = restore::versions_held(&cat, &path)?;
    if found.is_empty() {
        bail!("{} is in no snapshot", human::path(&path));
    }
    let mut text = format!("{}\n", human::path(&path));
    for held in &found {
        let (v, disks) = (&held.version, &held.disks);
        let _ = writeln!(
            text,
            "  snapshots {}–{}  from {}  {}  {}  on: {}",
            v.first_snapshot,
            v.last_snapshot,
            human::time(held.from),
            human::bytes(v.size),
            v.hash
                .map(|h| h.to_hex()[..16].to_string())
                .unwrap_or_else(|| format!("{:?}", v.kind).to_lowercase()),
            if disks.is_empty() && v.kind == Kind::File && v.size > 0 {
                "no disk".to_string()
            } else {
                human::escape(&disks.join(", ")).into_owned()
            }
        );
    }
    let value = shown::value(ctx.json, || {
        let rows = found
            .iter()
            .map(|h| Ok(json!({"version": to_value(&h.version)?, "disks": h.disks})))
            .collect::<serde_json::Result<Vec<_>>>()?;
        Ok(json!({"path": to_value(&path)?, "versions": rows}))
    })?;
    Ok(Done::ok(value, text))
}
