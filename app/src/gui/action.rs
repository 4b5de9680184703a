//! What the user asked for while a frame was drawn: window-wide actions,
//! and each tab's own, which its tab applies after the frame (as egui's
//! demo app and rerun's command sender do).

use std::path::PathBuf;

use super::jobs::Kind;
use super::picker::Purpose;
use super::{archives, disks, map, restore, sources};

/// The tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Disks,
    Sources,
    Map,
    Restore,
    Archives,
    History,
}

#[derive(Clone, Debug)]
pub enum Action {
    Tab(Tab),
    Disks(disks::Action),
    Sources(sources::Action),
    Map(map::Action),
    Restore(restore::Action),
    Archives(archives::Action),
    /// Choose a folder for this purpose.
    Pick(Purpose),
    /// The system's folder chooser does not show: use the window's own.
    PickInWindow,
    /// A folder chosen, in either chooser (tests push this for what the
    /// system's chooser would answer).
    Picked(Purpose, PathBuf),
    Cancel(Kind),
    DismissMessage,
    /// Show the last lines of the log file.
    ShowLog,
    /// Show the toolkit's lines in the log window too.
    LogShowAll(bool),
    CloseLog,
    /// Light, dark, or as the system says.
    Theme(super::remember::Theme),
    /// The passphrase dialog's answer.
    Unlock(super::unlock::Answer),
}

macro_rules! tab_action {
    ($($tab:ident => $variant:ident),*) => {$(
        impl From<$tab::Action> for Action {
            fn from(a: $tab::Action) -> Action {
                Action::$variant(a)
            }
        }
    )*};
}

tab_action!(disks => Disks, sources => Sources, map => Map, restore => Restore, archives => Archives);

/// Where a view records actions.
#[derive(Default)]
pub struct Actions(Vec<Action>);

impl Actions {
    pub fn push(&mut self, a: impl Into<Action>) {
        self.0.push(a.into());
    }

    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.0)
    }
}
