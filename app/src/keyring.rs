//! The desktop keyring (the Secret Service, through the `keyring` crate
//! over zbus): where an encrypted disk's passphrase is remembered when the
//! user asks, under the service `coffer` and the disk's id as the user.
//!
//! The window and the CLI try it after the passphrase file and
//! `COFFER_PASSPHRASE` and before asking. A keyring that is missing,
//! locked or slow to answer is never an error: the lookup is skipped with
//! one log line. `COFFER_KEYRING=off` turns it off (tests set it, so a test
//! never reads or writes the user's real keyring).
//!
//! Invariant: a passphrase is never logged; what the keyring gives is
//! checked against the disk's key check like any other answer.

use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

/// The keyring's service name.
pub const SERVICE: &str = "coffer";

/// How long a keyring may take to answer. A locked keyring may show its
/// own unlock prompt: the user gets this long to answer it before the
/// lookup is skipped (the answer after that is not waited for).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the desktop keyring is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyring {
    /// The Secret Service on the session bus, when there is one.
    Desktop,
    /// Never touched.
    Off,
}

impl Keyring {
    /// The desktop keyring, unless `COFFER_KEYRING=off`.
    pub fn from_env() -> Keyring {
        match std::env::var("COFFER_KEYRING") {
            Ok(v) if v.eq_ignore_ascii_case("off") => Keyring::Off,
            _ => Keyring::Desktop,
        }
    }

    /// The passphrase remembered for the disk `disk`; `None` when there is
    /// none, or no keyring to ask (said in the log).
    pub fn lookup(self, disk: uuid::Uuid) -> Option<Zeroizing<String>> {
        match self.call(disk, |e| e.get_password().map(Zeroizing::new)) {
            Ok(p) => Some(p),
            Err(Failure::NoEntry) => None,
            Err(Failure::Off) => None,
            Err(Failure::Other(why)) => {
                log::info!("keyring skipped for disk {disk}: {why}");
                None
            }
        }
    }

    /// Remembers `passphrase` for the disk `disk`.
    pub fn store(self, disk: uuid::Uuid, passphrase: &str) -> Result<(), String> {
        let p = Zeroizing::new(passphrase.to_string());
        self.call(disk, move |e| e.set_password(&p))
            .map_err(|f| f.text())
    }

    /// Forgets what is remembered for the disk `disk`; `false` when
    /// nothing was.
    pub fn forget(self, disk: uuid::Uuid) -> Result<bool, String> {
        match self.call(disk, |e| e.delete_credential()) {
            Ok(()) => Ok(true),
            Err(Failure::NoEntry) => Ok(false),
            Err(f) => Err(f.text()),
        }
    }

    /// Runs `op` on the disk's keyring entry on a thread of its own, so a
    /// keyring that never answers costs [`TIMEOUT`], not the caller.
    fn call<T: Send + 'static>(
        self,
        disk: uuid::Uuid,
        op: impl FnOnce(&::keyring::Entry) -> ::keyring::Result<T> + Send + 'static,
    ) -> Result<T, Failure> {
        if self == Keyring::Off {
            return Err(Failure::Off);
        }
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("coffer-keyring".into())
            .spawn(move || {
                let out = ::keyring::Entry::new(SERVICE, &disk.to_string()).and_then(|e| op(&e));
                let _ = tx.send(out);
            });
        if let Err(e) = spawned {
            return Err(Failure::Other(format!("cannot start a thread: {e}")));
        }
        match rx.recv_timeout(TIMEOUT) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(::keyring::Error::NoEntry)) => Err(Failure::NoEntry),
            Ok(Err(e)) => Err(Failure::Other(e.to_string())),
            Err(_) => Err(Failure::Other(format!(
                "no answer within {} s",
                TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Why a keyring call gave nothing.
enum Failure {
    Off,
    NoEntry,
    Other(String),
}

impl Failure {
    fn text(self) -> String {
        match self {
            Failure::Off => "the keyring is turned off (COFFER_KEYRING=off)".into(),
            Failure::NoEntry => "nothing is remembered for this disk".into(),
            Failure::Other(why) => format!("the desktop keyring: {why}"),
        }
    }
}
