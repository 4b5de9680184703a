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
}
