//! `coffer source …` (the folders backed up) and `coffer hook …` (the
//! commands run before and after each sync).

use std::fmt::Write as _;
use std::path::Path;

use coffer_core::config::Source;
use coffer_core::human;
use serde_json::json;

use super::ctx::{Ctx, Done};

pub(super) fn source_add(ctx: &Ctx, a: super::SourceAdd) -> anyhow::Result<Done> {
    let mut cfg = ctx.config()?;
    let src = cfg
        .profile
        .add_source(Source {
            path: a.path,
            excludes: a.excludes,
            copies: a.copies,
            priority: a.priority,
            outside_basepath: a.outside_basepath,
        })?
        .clone();
    cfg.save(&ctx.paths)?;
    let copies = src.copies.unwrap_or(cfg.profile.copies);
    let text = format!(
        "Added {} ({copies} copies, priority {})\n",
        human::path(&src.path),
        src.priority
    );
    Ok(Done::ok(json!({"source": src}), text))
}

pub(super) fn source_remove(ctx: &Ctx, path: &Path) -> anyhow::Result<Done> {
    let mut cfg = ctx.config()?;
    let src = cfg.profile.remove_source(path)?;
    cfg.save(&ctx.paths)?;
    Ok(Done::ok(
        json!({"removed": src}),
        format!(
            "Removed {}; its files stay restorable from older snapshots\n",
            human::path(&src.path)
        ),
    ))
}

pub(super) fn source_list(ctx: &Ctx) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let mut text = format!("Storage basepath: {}\n", human::path(&cfg.profile.basepath));
    if cfg.profile.sources.is_empty() {
        text.push_str("No sources yet: coffer source add PATH\n");
    }
    for s in &cfg.profile.sources {
        let _ = write!(
            text,
            "{}  copies {}  priority {}",
            human::path(&s.path),
            s.copies.unwrap_or(cfg.profile.copies),
            s.priority
        );
        if !s.excludes.is_empty() {
            let _ = write!(text, "  excludes {}", human::escape(&s.excludes.join(" ")));
        }
        text.push('\n');
    }
    Ok(Done::ok(
        json!({"basepath": cfg.profile.basepath, "copies": cfg.profile.copies, "sources": cfg.profile.sources}),
        text,
    ))
}

/// `coffer hook before|after CMD`, `coffer hook clear`, `coffer hook`.
pub(super) fn hook(ctx: &Ctx, a: super::HookCmd) -> anyhow::Result<Done> {
    let mut cfg = ctx.config()?;
    let p = &mut cfg.profile;
    let changed = match a {
        super::HookCmd::Before { command } => {
            p.before_sync = Some(command);
            true
        }
        super::HookCmd::After { command } => {
            p.after_sync = Some(command);
            true
        }
        super::HookCmd::Clear => {
            p.before_sync = None;
            p.after_sync = None;
            true
        }
        super::HookCmd::Show => false,
    };
    if changed {
        cfg.save(&ctx.paths)?;
    }
    let p = &cfg.profile;
    let show = |c: &Option<String>| {
        c.as_deref()
            .map_or("(none)".into(), |c| human::escape(c).into_owned())
    };
    let text = format!(
        "Before each sync: {}\nAfter each sync:  {}\n",
        show(&p.before_sync),
        show(&p.after_sync)
    );
    Ok(Done::ok(
        json!({"before_sync": p.before_sync, "after_sync": p.after_sync}),
        text,
    ))
}
