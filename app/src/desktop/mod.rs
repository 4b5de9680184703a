//! What Coffer asks of the desktop over D-Bus: ejecting a disk through
//! udisks2 (`udisks`), desktop notifications through the freedesktop
//! Notifications interface (`notify`), and starting at login (`autostart`).
//!
//! Invariant: nothing here is needed for a backup: where the desktop does
//! not offer a service, the caller gets a sentence saying what to do
//! instead, and no job fails because of it.

pub mod autostart;
pub mod notify;
pub mod udisks;

/// Which bus to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bus {
    /// The session's (`DBUS_SESSION_BUS_ADDRESS`) or the system's bus.
    Default,
    /// A bus at this address (tests).
    Address(String),
}
