//! Ejecting through udisks2, against a stand-in of its D-Bus interface on a
//! private bus of the test's own: the file system is unmounted, then its
//! drive powered off, in that order; a drive that cannot power off is left
//! unmounted; an unmount refused ("target is busy") is said in udisks2's
//! own words.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use coffer::desktop::Bus;
use coffer::desktop::udisks::{Ejected, eject_device};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

struct Daemon {
    child: Child,
    address: String,
}

impl Daemon {
    fn start() -> Daemon {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (package dbus) must be installed");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Daemon {
            child,
            address: line.trim().to_string(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Calls = Arc<Mutex<Vec<String>>>;

const BLOCK: &str = "/org/freedesktop/UDisks2/block_devices/sdb1";
const DRIVE: &str = "/org/freedesktop/UDisks2/drives/WD_Blue";

struct Manager;

#[zbus::interface(name = "org.freedesktop.UDisks2.Manager")]
impl Manager {
    fn resolve_device(
        &self,
        spec: HashMap<String, OwnedValue>,
        _options: HashMap<String, OwnedValue>,
    ) -> Vec<OwnedObjectPath> {
        let path = spec
            .get("path")
            .and_then(|v| String::try_from(v.try_clone().unwrap()).ok());
        if path.as_deref() == Some("/dev/sdb1") {
            vec![OwnedObjectPath::try_from(BLOCK).unwrap()]
        } else {
            Vec::new()
        }
    }
}

struct Filesystem {
    calls: Calls,
    busy: bool,
}

#[zbus::interface(name = "org.freedesktop.UDisks2.Filesystem")]
impl Filesystem {
    fn unmount(&self, _options: HashMap<String, OwnedValue>) -> zbus::fdo::Result<()> {
        if self.busy {
            return Err(zbus::fdo::Error::Failed("target is busy".into()));
        }
        self.calls.lock().unwrap().push("Unmount".into());
        Ok(())
    }
}

struct Block;

#[zbus::interface(name = "org.freedesktop.UDisks2.Block")]
impl Block {
    #[zbus(property)]
    fn drive(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(DRIVE).unwrap()
    }
}

struct Drive {
    calls: Calls,
    can_power_off: bool,
}

#[zbus::interface(name = "org.freedesktop.UDisks2.Drive")]
impl Drive {
    #[zbus(property)]
    fn can_power_off(&self) -> bool {
        self.can_power_off
    }

    #[zbus(property)]
    fn ejectable(&self) -> bool {
        false
    }

    fn power_off(&self, _options: HashMap<String, OwnedValue>) {
        self.calls.lock().unwrap().push("PowerOff".into());
    }
}

fn udisks(d: &Daemon, can_power_off: bool, busy: bool) -> (zbus::blocking::Connection, Calls) {
    let calls: Calls = Arc::default();
    let conn = zbus::blocking::connection::Builder::address(d.address.as_str())
        .unwrap()
        .name("org.freedesktop.UDisks2")
        .unwrap()
        .serve_at("/org/freedesktop/UDisks2/Manager", Manager)
        .unwrap()
        .serve_at(
            BLOCK,
            Filesystem {
                calls: calls.clone(),
                busy,
            },
        )
        .unwrap()
        .serve_at(BLOCK, Block)
        .unwrap()
        .serve_at(
            DRIVE,
            Drive {
                calls: calls.clone(),
                can_power_off,
            },
        )
        .unwrap()
        .build()
        .unwrap();
    (conn, calls)
}

#[test]
fn a_disk_is_unmounted_then_powered_off() {
    let d = Daemon::start();
    let (_conn, calls) = udisks(&d, true, false);
    let bus = Bus::Address(d.address.clone());
    let root = Path::new("/media/me/Blue WD");
    assert_eq!(
        eject_device(&bus, root, "/dev/sdb1").unwrap(),
        Ejected::PoweredOff
    );
    assert_eq!(*calls.lock().unwrap(), ["Unmount", "PowerOff"]);
    // A device udisks2 does not know is said so, and nothing is called.
    let e = eject_device(&bus, root, "/dev/sdz9").unwrap_err();
    assert!(
        e.to_string().contains("udisks2 does not know /dev/sdz9"),
        "{e}"
    );
    assert_eq!(calls.lock().unwrap().len(), 2);
}

#[test]
fn a_drive_that_cannot_power_off_is_left_unmounted_and_a_busy_one_says_why() {
    let d = Daemon::start();
    let (conn, calls) = udisks(&d, false, false);
    let bus = Bus::Address(d.address.clone());
    let root = Path::new("/media/me/Card");
    assert_eq!(
        eject_device(&bus, root, "/dev/sdb1").unwrap(),
        Ejected::Unmounted
    );
    assert_eq!(*calls.lock().unwrap(), ["Unmount"]);
    drop(conn);
    let (_conn, calls) = udisks(&d, true, true);
    let e = eject_device(&bus, root, "/dev/sdb1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot unmount /media/me/Card: target is busy"
    );
    assert!(calls.lock().unwrap().is_empty(), "not powered off");
}
