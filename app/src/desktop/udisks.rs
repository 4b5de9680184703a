//! Ejecting a disk: its file system unmounted, then its drive powered off
//! (or ejected), through udisks2 on the system bus, as a file manager does;
//! without udisks2, what to type instead.
//!
//! Invariant: a disk is ejected only after this process took its lock (no
//! Coffer job writes it) and let go of it again; nothing is unmounted
//! that is not a mount point of its own.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedObjectPath, Value};

use super::Bus;

const UDISKS: &str = "org.freedesktop.UDisks2";

/// What became of the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ejected {
    /// Unmounted and its drive powered off: it can be unplugged.
    PoweredOff,
    /// Unmounted; the drive could not be powered off (a card reader, a
    /// drive that does not say it can), but it is safe to unplug.
    Unmounted,
}

fn connect(bus: &Bus) -> zbus::Result<Connection> {
    match bus {
        Bus::Default => Connection::system(),
        Bus::Address(a) => zbus::blocking::connection::Builder::address(a.as_str())?.build(),
    }
}

/// The sentence for a computer without udisks2.
fn not_running(root: &Path) -> anyhow::Error {
    anyhow!(
        "udisks2 is not running: unmount it with `umount {}`, then unplug it",
        coffer_core::human::path(root)
    )
}

/// Unmounts the disk mounted at `root` and powers its drive off.
pub fn eject(bus: &Bus, root: &Path) -> anyhow::Result<Ejected> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read the mount table (/proc/self/mountinfo)")?;
    let Some(device) = coffer_core::volumes::device_of(&mountinfo, root) else {
        bail!(
            "{} is a folder, not a disk mounted there: there is nothing to eject",
            coffer_core::human::path(root)
        );
    };
    eject_device(bus, root, &device)
}

/// [`eject`], once the device is known.
pub fn eject_device(bus: &Bus, root: &Path, device: &str) -> anyhow::Result<Ejected> {
    let conn = connect(bus).map_err(|_| not_running(root))?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(|_| not_running(root))?;
    let name = zbus::names::BusName::try_from(UDISKS)?;
    let running = dbus.name_has_owner(name.clone()).unwrap_or(false)
        || dbus
            .list_activatable_names()
            .is_ok_and(|names| names.iter().any(|n| n.as_str() == UDISKS));
    if !running {
        return Err(not_running(root));
    }
    let no_options: HashMap<&str, Value<'_>> = HashMap::new();
    let manager = Proxy::new(
        &conn,
        UDISKS,
        "/org/freedesktop/UDisks2/Manager",
        "org.freedesktop.UDisks2.Manager",
    )?;
    let spec: HashMap<&str, Value<'_>> = HashMap::from([("path", Value::from(device))]);
    let blocks: Vec<OwnedObjectPath> = manager
        .call("ResolveDevice", &(spec, &no_options))
        .with_context(|| format!("udisks2 does not know {device}"))?;
    let Some(block) = blocks.first() else {
        bail!(
            "udisks2 does not know {device}: unmount it with `umount {}`",
            coffer_core::human::path(root)
        );
    };
    let fs = Proxy::new(
        &conn,
        UDISKS,
        block.as_str(),
        "org.freedesktop.UDisks2.Filesystem",
    )?;
    let () = fs.call("Unmount", &(&no_options,)).map_err(|e| {
        anyhow!(
            "cannot unmount {}: {}",
            coffer_core::human::path(root),
            plain(&e)
        )
    })?;
    let drive: OwnedObjectPath = Proxy::new(
        &conn,
        UDISKS,
        block.as_str(),
        "org.freedesktop.UDisks2.Block",
    )?
    .get_property("Drive")?;
    if drive.as_str() == "/" {
        return Ok(Ejected::Unmounted);
    }
    let drive = Proxy::new(
        &conn,
        UDISKS,
        drive.as_str(),
        "org.freedesktop.UDisks2.Drive",
    )?;
    if drive.get_property::<bool>("CanPowerOff").unwrap_or(false) {
        let () = drive.call("PowerOff", &(&no_options,)).map_err(|e| {
            anyhow!(
                "unmounted, but the drive could not be powered off: {}",
                plain(&e)
            )
        })?;
        return Ok(Ejected::PoweredOff);
    }
    if drive.get_property::<bool>("Ejectable").unwrap_or(false) {
        let () = drive.call("Eject", &(&no_options,)).map_err(|e| {
            anyhow!(
                "unmounted, but the drive could not be ejected: {}",
                plain(&e)
            )
        })?;
        return Ok(Ejected::PoweredOff);
    }
    Ok(Ejected::Unmounted)
}

/// A D-Bus error's own words (udisks2 says "target is busy" and the like).
fn plain(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(text), _) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_udisks2_the_message_says_how_to_unmount() {
        let e = eject_device(
            &Bus::Address("unix:path=/nonexistent/coffer-test-bus".into()),
            Path::new("/media/me/Blue WD"),
            "/dev/sdb1",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "udisks2 is not running: unmount it with `umount /media/me/Blue WD`, then unplug it"
        );
    }
}
