//! Owners and groups: numeric ids are what a file holds and what restore
//! gives back; the names beside them (from the system's user database,
//! NSS included) are recorded so that a catalog read on another computer
//! can still say whose files they were.
//!
//! Invariant: nothing here changes a file; a name that cannot be found is
//! `None`, never an error.

use std::collections::BTreeSet;

/// An id's name in the user or group database, as it is now.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

pub fn group_name(gid: u32) -> Option<String> {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// The id a user name has here, if it has one.
pub fn uid_named(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

pub fn gid_named(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The id to give a restored file: the one the recorded name has here (a
/// catalog from another computer, where `alice` may be 1001 instead of
/// 1000), else the recorded id itself, as tar does without
/// `--numeric-owner`.
pub fn local_id(of: Of, recorded: u32, name: Option<&str>) -> u32 {
    let here = match (of, name) {
        (Of::User, Some(n)) => uid_named(n),
        (Of::Group, Some(n)) => gid_named(n),
        (_, None) => None,
    };
    here.unwrap_or(recorded)
}

/// Whether a user or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Of {
    User,
    Group,
}

impl Of {
    pub fn to_i64(self) -> i64 {
        match self {
            Of::User => 0,
            Of::Group => 1,
        }
    }
}

/// The names of the ids a scan found, looked up once each.
pub fn names_of(uids: &BTreeSet<u32>, gids: &BTreeSet<u32>) -> Vec<(Of, u32, String)> {
    let mut out = Vec::new();
    for &u in uids {
        if let Some(n) = user_name(u) {
            out.push((Of::User, u, n));
        }
    }
    for &g in gids {
        if let Some(n) = group_name(g) {
            out.push((Of::Group, g, n));
        }
    }
    out
}

/// Whether this process may give files away (`chown` to any owner, device
/// nodes): root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name_and_an_unused_id_has_none() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(3_999_999_999), None);
        let names = names_of(&BTreeSet::from([0, 3_999_999_999]), &BTreeSet::from([0]));
        assert_eq!(
            names,
            vec![(Of::User, 0, "root".into()), (Of::Group, 0, "root".into())]
        );
    }

    #[test]
    fn a_recorded_name_maps_to_its_id_here_and_an_unknown_one_keeps_the_id() {
        // Recorded as 4242 on another computer, `root` is 0 here.
        assert_eq!(local_id(Of::User, 4242, Some("root")), 0);
        assert_eq!(local_id(Of::Group, 4242, Some("root")), 0);
        // A name this computer does not know, or none: the id as recorded.
        assert_eq!(local_id(Of::User, 4242, Some("no-such-user-here")), 4242);
        assert_eq!(local_id(Of::Group, 77, None), 77);
    }
}
