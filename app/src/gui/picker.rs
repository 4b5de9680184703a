//! Choosing a folder: the system's folder chooser (through the desktop
//! portal, on its own thread since it blocks), or the window's own
//! (`egui_file`) where there is none. Which one opens is decided here and
//! nowhere else; a view only asks for a folder for a [`Purpose`].
//!
//! Without a session bus there is no portal, so the window's own opens at
//! once. With one, the system's is tried first: an answer of "nothing"
//! within a moment cannot be a person pressing Cancel (the portal failed),
//! so the window's own opens instead; and while the system's is awaited, a
//! small note offers the window's own, in case the system's never shows.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::action::{Action, Actions};
use super::jobs::Waker;

/// What a folder is chosen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A folder to back up.
    Source,
    /// Where the Restore tab restores into.
    RestoreDest,
    /// Where archives are written and listed.
    ArchiveDir,
    /// Where a restore from an archive goes.
    ArchiveRestoreDest,
}

impl Purpose {
    fn title(self) -> &'static str {
        match self {
            Purpose::Source => "Add a folder to back up",
            Purpose::RestoreDest => "Restore into this folder",
            Purpose::ArchiveDir => "Write archives into this folder",
            Purpose::ArchiveRestoreDest => "Restore the archive into this folder",
        }
    }
}

/// Which chooser opens first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// The system's, falling back to the window's own.
    System,
    /// The window's own only.
    InWindow,
}

impl Way {
    /// The system's chooser when a session bus (and so maybe a portal) is
    /// there, else the window's own.
    pub fn detect() -> Way {
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|s| !s.is_empty())
            || std::env::var_os("XDG_RUNTIME_DIR")
                .is_some_and(|d| Path::new(&d).join("bus").exists());
        if bus { Way::System } else { Way::InWindow }
    }
}

enum Open {
    System {
        purpose: Purpose,
        answer: Receiver<Option<PathBuf>>,
        since: Instant,
    },
    InWindow {
        purpose: Purpose,
        dialog: Box<egui_file::FileDialog>,
    },
}

/// The folder chooser, at most one open at a time.
pub struct Picker {
    way: Way,
    open: Option<Open>,
}

/// A "nothing" from the system's chooser faster than this is a failure.
const TOO_FAST: Duration = Duration::from_millis(700);

impl Picker {
    pub fn new(way: Way) -> Picker {
        Picker { way, open: None }
    }

    /// Opens a chooser for `purpose`, starting at `start`.
    pub fn open(&mut self, purpose: Purpose, start: &Path, waker: &Waker) {
        if self.open.is_some() {
            return;
        }
        if self.way == Way::InWindow {
            return self.in_window(purpose, start);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let waker = waker.clone();
        let dir = start.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("coffer-picker".into())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title(purpose.title())
                    .set_directory(dir)
                    .pick_folder();
                let _ = tx.send(picked);
                if let Some(w) = waker {
                    w();
                }
            });
        match spawned {
            Ok(_) => {
                self.open = Some(Open::System {
                    purpose,
                    answer: rx,
                    since: Instant::now(),
                });
            }
            Err(_) => self.in_window(purpose, start),
        }
    }

    /// The window's own chooser instead of the system's being awaited (whose
    /// answer, if it comes, is then ignored).
    pub fn switch_to_window(&mut self, start: &Path) {
        if let Some(Open::System { purpose, .. }) = self.open {
            self.open = None;
            self.in_window(purpose, start);
        }
    }

    fn in_window(&mut self, purpose: Purpose, start: &Path) {
        // Only folders are chosen here: the line under the list names the
        // folder, and there is nothing to rename.
        let mut dialog = egui_file::FileDialog::select_folder()
            .title(purpose.title())
            .file_label_text("Folder:".into())
            .show_rename(false)
            .initial_path(start);
        dialog.open();
        self.open = Some(Open::InWindow {
            purpose,
            dialog: Box::new(dialog),
        });
    }

    /// The system chooser's answer, if it came (called from `logic()`).
    pub fn poll(&mut self, start: &Path) -> Option<Action> {
        let Some(Open::System {
            purpose,
            answer,
            since,
        }) = &self.open
        else {
            return None;
        };
        let purpose = *purpose;
        match answer.try_recv() {
            Ok(Some(path)) => {
                self.open = None;
                Some(Action::Picked(purpose, path))
            }
            Ok(None) => {
                let failed = since.elapsed() < TOO_FAST;
                self.open = None;
                if failed {
                    self.in_window(purpose, start);
                }
                None
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.open = None;
                self.in_window(purpose, start);
                None
            }
        }
    }

    /// Draws the window's own chooser, or the note beside the system's.
    pub fn show(&mut self, ctx: &egui::Context, out: &mut Actions) {
        match &mut self.open {
            None => {}
            Some(Open::System { .. }) => {
                egui::Window::new("Choosing a folder")
                    .collapsible(false)
                    .resizable(false)
                    .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 60.0))
                    .show(ctx, |ui| {
                        ui.label("Waiting for the system's folder chooser…");
                        if ui.button("Choose in this window instead").clicked() {
                            out.push(Action::PickInWindow);
                        }
                    });
            }
            Some(Open::InWindow { purpose, dialog }) => {
                dialog.show(ctx);
                match dialog.state() {
                    egui_file::State::Selected => {
                        if let Some(p) = dialog.path() {
                            out.push(Action::Picked(*purpose, p.to_path_buf()));
                        }
                        self.open = None;
                    }
                    egui_file::State::Cancelled | egui_file::State::Closed => self.open = None,
                    egui_file::State::Open => {}
                }
            }
        }
    }
}
