//! `coffer disk init` and `coffer disks`.

use std::fmt::Write as _;

use coffer_core::crypto::Encryption;
use coffer_core::task::Warning;
use coffer_core::volumes::{self, MountSource};
use coffer_core::{Disk, disk::io, human};
use serde_json::json;

use super::Exit;
use super::ctx::{Ctx, Done};

pub(super) fn disk_init(ctx: &Ctx, a: super::DiskInit) -> anyhow::Result<Done> {
    let cfg = ctx.config()?;
    let quota = a.quota.as_deref().map(human::parse_size).transpose()?;
    let encryption = if a.encrypt {
        let pw = super::pass::for_new_disk(ctx.passphrase_file.as_deref(), &a.label)?;
        let memory = a.kdf_memory_mib.map(|m| m.saturating_mul(1024));
        Some(Encryption::create(pw.as_bytes(), memory, None)?)
    } else {
        None
    };
    let encrypted = encryption.is_some();
    if coffer_core::jobs::bucket::is_bucket(&a.path) {
        return bucket_init(ctx, &a, cfg.profile.set_id, quota, encryption);
    }
    let mut d = Disk::init_full(
        &a.path,
        &a.label,
        cfg.profile.set_id,
        quota,
        io::real(),
        a.force,
        encryption,
    )?;
    if let Some(m) = a.max_file_size.as_deref() {
        d.identity.max_file_size = Some(human::parse_size(m)?);
        d.claim(cfg.profile.set_id)?;
        d.write_identity()?;
        d.release();
    }
    let cat = ctx.catalog()?;
    cat.register(&d, Some(0))?;
    let text = format!(
        "{} \"{}\" is ready at {}{}\nSync it with: coffer sync {}\n",
        if encrypted { "Encrypted disk" } else { "Disk" },
        human::escape(d.label()),
        human::path(d.root()),
        quota
            .map(|q| format!(" (quota {})", human::bytes(q)))
            .unwrap_or_default(),
        human::path(d.root())
    );
    Ok(Done::ok(
        json!({"identity": d.identity, "root": d.root()}),
        text,
    ))
}

/// `coffer disk init s3://BUCKET/PREFIX`: the identity written into the
/// bucket (only where there is none), the disk registered.
fn bucket_init(
    ctx: &Ctx,
    a: &super::DiskInit,
    set: uuid::Uuid,
    quota: Option<u64>,
    encryption: Option<(Encryption, coffer_core::crypto::Keys)>,
) -> anyhow::Result<Done> {
    use coffer_core::bucket::{Bucket, BucketDisk, Location, Settings};
    let loc = Location::parse(&a.path.to_string_lossy())?;
    let bucket = Bucket::connect(&loc, &Settings::from_env())?;
    bucket.check()?;
    let encrypted = encryption.is_some();
    let d = BucketDisk::init(bucket, &a.label, set, quota, encryption)?;
    coffer_core::sync::register_bucket(&ctx.catalog()?, &d, 0)?;
    let text = format!(
        "{} \"{}\" is ready at {loc}{}\nSync it with: coffer sync {loc}\n",
        if encrypted {
            "Encrypted bucket disk"
        } else {
            "Bucket disk"
        },
        human::escape(&d.identity.label),
        quota
            .map(|q| format!(" (quota {})", human::bytes(q)))
            .unwrap_or_default(),
    );
    Ok(Done::ok(
        json!({"identity": d.identity, "root": loc.to_string()}),
        text,
    ))
}

pub(super) fn disks(ctx: &Ctx) -> anyhow::Result<Done> {
    let cat = ctx.catalog()?;
    let known = cat.disks()?;
    let present = volumes::present(&MountSource::from_env(), &known);
    let now = coffer_core::now();
    let mut rows = Vec::new();
    let mut text = String::new();
    if known.is_empty() {
        text.push_str("No disks yet: coffer disk init PATH --label NAME\n");
    }
    for d in &known {
        let root = present
            .iter()
            .find(|v| v.identity.as_ref().is_ok_and(|i| i.disk_id == d.id))
            .map(|v| v.root.clone());
        let objects = cat.copies_on(d.id)?.len();
        let where_ = match &root {
            Some(r) => format!("connected at {}", human::path(r)),
            None => d
                .last_seen
                .map(|t| format!("last seen {}", human::ago(t, now)))
                .unwrap_or_else(|| "never seen".into()),
        };
        let _ = writeln!(
            text,
            "{}  {}\n    {} objects, {} used, {} free{}; last sync {}; last verify {}",
            human::escape(&d.label),
            where_,
            objects,
            human::bytes(d.used.unwrap_or(0)),
            d.free.map(human::bytes).unwrap_or_else(|| "?".into()),
            d.quota
                .map(|q| format!(" (quota {})", human::bytes(q)))
                .unwrap_or_default(),
            d.last_sync
                .map(|t| human::ago(t, now))
                .unwrap_or_else(|| "never".into()),
            d.last_verify
                .map(|t| human::ago(t, now))
                .unwrap_or_else(|| "never".into()),
        );
        rows.push(
            json!({"disk": d, "connected": root.is_some(), "root": root, "objects": objects}),
        );
    }
    let mut warnings = Vec::new();
    for v in &present {
        if let Err(e) = &v.identity {
            warnings.push(Warning {
                path: Some(v.root.clone()),
                message: e.to_string(),
            });
            let _ = writeln!(
                text,
                "Unreadable disk at {}: {}",
                human::path(&v.root),
                human::escape(&e.to_string())
            );
        }
    }
    let exit = if warnings.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    };
    Ok(Done {
        value: json!({"disks": rows}),
        text,
        warnings,
        exit,
    })
}

/// `coffer disk rename|quota|forget|eject|auto-sync`: the job service's
/// disk management, in words.
pub(super) fn manage(ctx: &Ctx, cmd: super::DiskCmd) -> anyhow::Result<Done> {
    use super::DiskCmd;
    use coffer_core::jobs::manage;
    let cfg = ctx.config()?;
    let cat = ctx.catalog()?;
    let source = MountSource::from_env();
    let label = |l: &str| human::escape(l).into_owned();
    match cmd {
        DiskCmd::Init(a) => disk_init(ctx, a),
        DiskCmd::Rename { disk, label: new } => {
            let old = manage::find(&cat, &source, &disk)?.row.label;
            let row = manage::rename(&cat, &cfg.profile, &source, &disk, &new)?;
            let text = format!(
                "Disk \"{}\" is now \"{}\"\n",
                label(&old),
                label(&row.label)
            );
            Ok(Done::ok(json!({"disk": row}), text))
        }
        DiskCmd::Quota { disk, size } => {
            let quota = match size.trim() {
                s if s.eq_ignore_ascii_case("none") => None,
                s => Some(human::parse_size(s)?),
            };
            let row = manage::set_quota(&cat, &cfg.profile, &source, &disk, quota)?;
            let text = format!(
                "Disk \"{}\": {}; {} free for Coffer\n",
                label(&row.label),
                quota.map_or_else(
                    || "no quota".to_string(),
                    |q| format!("quota {}", human::bytes(q))
                ),
                human::bytes(row.free.unwrap_or(0))
            );
            Ok(Done::ok(json!({"disk": row}), text))
        }
        DiskCmd::Forget { disk, yes } => {
            let (known, cost) = manage::forget_cost(&cat, &cfg.profile, &source, &disk)?;
            // A connected disk is refused by forget itself, before any cost.
            if known.root.is_none() && !cost.is_free() && !yes {
                anyhow::bail!(
                    "forgetting disk \"{}\" would cost this: {}; run again with --yes to forget it",
                    label(&known.row.label),
                    manage::cost_words(&cost)
                );
            }
            let (row, cost) = manage::forget(&cat, &cfg.profile, &source, &disk)?;
            let text = format!(
                "Disk \"{}\" is forgotten: {}\n",
                label(&row.label),
                manage::cost_words(&cost)
            );
            Ok(Done::ok(json!({"disk": row, "cost": cost}), text))
        }
        DiskCmd::Eject { disk } => {
            let known = manage::find(&cat, &source, &disk)?;
            let root = manage::idle_root(&known, &cfg.profile)?;
            let ejected = crate::desktop::udisks::eject(&crate::desktop::Bus::Default, &root)?;
            let how = match ejected {
                crate::desktop::udisks::Ejected::PoweredOff => "powered off",
                crate::desktop::udisks::Ejected::Unmounted => "unmounted",
            };
            let text = format!(
                "Disk \"{}\" is {how}: it can be unplugged\n",
                label(&known.row.label)
            );
            Ok(Done::ok(json!({"disk": known.row, "ejected": how}), text))
        }
        DiskCmd::RememberPassphrase { disk } => {
            let known = manage::find(&cat, &source, &disk)?;
            let Some(root) = &known.root else {
                anyhow::bail!(
                    "disk \"{}\" is not plugged in: its passphrase is checked before it is remembered",
                    label(&known.row.label)
                );
            };
            let p = super::pass::checked(ctx.passphrase_file.as_deref(), root)?;
            crate::keyring::Keyring::from_env()
                .store(known.row.id, &p)
                .map_err(anyhow::Error::msg)?;
            let text = format!(
                "The passphrase of disk \"{}\" is kept in the desktop keyring\n",
                label(&known.row.label)
            );
            Ok(Done::ok(
                json!({"disk": known.row, "remembered": true}),
                text,
            ))
        }
        DiskCmd::ForgetPassphrase { disk } => {
            let known = manage::find(&cat, &source, &disk)?;
            let was = crate::keyring::Keyring::from_env()
                .forget(known.row.id)
                .map_err(anyhow::Error::msg)?;
            let text = if was {
                format!(
                    "The passphrase of disk \"{}\" is no longer kept in the desktop keyring\n",
                    label(&known.row.label)
                )
            } else {
                format!(
                    "The desktop keyring kept no passphrase for disk \"{}\"\n",
                    label(&known.row.label)
                )
            };
            Ok(Done::ok(json!({"disk": known.row, "forgotten": was}), text))
        }
        DiskCmd::AutoSync { disk, switch } => {
            let on = switch == super::OnOff::On;
            let row = manage::set_auto_sync(&cat, &source, &disk, on)?;
            let text = format!(
                "Disk \"{}\" {} synced when it is plugged in\n",
                label(&row.label),
                if on { "will be" } else { "will no longer be" }
            );
            Ok(Done::ok(json!({"disk": row}), text))
        }
    }
}
