//! Desktop notifications through `org.freedesktop.Notifications` on the
//! session bus (what GNOME, KDE, XFCE and notification daemons such as
//! dunst serve), with zbus.
//!
//! Invariant: a notification that cannot be shown is a log line, never a
//! failure of what it tells about.

use std::collections::HashMap;

use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::Value;

use super::Bus;

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// How urgent a notification is (the spec's `urgency` hint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    Low = 0,
    Normal = 1,
    Critical = 2,
}

/// A connection to the session's notification service.
pub struct Notifier {
    conn: Option<Connection>,
}

impl Notifier {
    /// Connects to the session bus; without one, notifications are logged
    /// only.
    pub fn connect(bus: &Bus) -> Notifier {
        let conn = match bus {
            Bus::Default => Connection::session(),
            Bus::Address(a) => zbus::blocking::connection::Builder::address(a.as_str())
                .and_then(zbus::blocking::connection::Builder::build),
        };
        let conn = match conn {
            Ok(c) => Some(c),
            Err(e) => {
                ::log::warn!("no desktop notifications: cannot reach the session bus ({e})");
                None
            }
        };
        Notifier { conn }
    }

    /// Shows a notification; `replaces` is the id of one to update in
    /// place (0 for a new one). Its id, or `None` when it could not be
    /// shown (the reason is logged).
    pub fn send(&self, replaces: u32, summary: &str, body: &str, urgency: Urgency) -> Option<u32> {
        ::log::info!("notification: {summary}: {body}");
        let conn = self.conn.as_ref()?;
        let sent = Proxy::new(conn, NAME, PATH, NAME).and_then(|p| {
            let hints: HashMap<&str, Value<'_>> =
                HashMap::from([("urgency", Value::from(urgency as u8))]);
            p.call::<_, _, u32>(
                "Notify",
                &(
                    "Coffer",
                    replaces,
                    "coffer",
                    summary,
                    body,
                    Vec::<&str>::new(),
                    hints,
                    -1i32,
                ),
            )
        });
        match sent {
            Ok(id) => Some(id),
            Err(e) => {
                ::log::warn!("cannot show a desktop notification: {e}");
                None
            }
        }
    }
}
