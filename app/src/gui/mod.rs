//! The desktop window (eframe/egui): disks, sources, sync, the redundancy
//! map, restore and archives over `coffer-core`.
//!
//! The layout: `app` (`CofferApp`: the tabs, the shared context, the
//! folder chooser; `logic()`) and `frame` (`ui()`: drawing, then applying
//! the recorded actions); `action` (what a frame records: window-wide
//! actions and each tab's own); `ctx` (what the tabs share: folders, config,
//! connected disks, the view model, the running jobs, the status); `jobs`
//! (the one owner of long work: one job per kind, never two on a disk);
//! `messages` (every result and error text); `picker` (the folder chooser,
//! system or in-window, decided in one place); `status` (the bottom panel);
//! `model` (the view models, plain structs tested without egui); and one
//! module per tab (`disks`, `sources`, `map`, `restore`, `archives`), each
//! owning its state, its tasks and its actions.
//!
//! Labels, paths, member names and messages read from a disk, a catalog or
//! an archive are drawn through [`shown`] and [`shown_path`]: egui breaks
//! lines at `\n` and draws most controls as boxes, so a hostile label could
//! otherwise forge lines of the window or hide what a name really is. The
//! models keep labels and paths as they are (they are compared and acted
//! on); the few strings they compose only for display (a card's presence, a
//! map row's name) are escaped already, and escaping twice changes nothing.

mod action;
mod app;
mod archives;
mod ctx;
mod dialog;
mod disks;
mod first_run;
mod frame;
mod history;
mod jobs;
mod log_view;
mod map;
pub(crate) mod messages;
pub mod model;
mod picker;
pub mod remember;
mod restore;
mod sources;
mod status;
mod unlock;

use std::borrow::Cow;
use std::path::Path;
use std::process::ExitCode;

use coffer_core::human;

pub use action::{Action, Tab};
pub use app::CofferApp;
pub use jobs::Kind;
pub use messages::Message;
pub use picker::Purpose;
pub use restore::Origin as RestoreOrigin;

/// Opens the window, or explains the command line when there is no display.
pub fn run() -> ExitCode {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !has_display {
        eprintln!(
            "coffer: no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set).\n\
             Use the command line instead, for example:\n  \
             coffer source add ~/Documents\n  \
             coffer disk init /media/me/USB --label \"Blue WD\"\n  \
             coffer sync\n  \
             coffer status\n\
             See `coffer --help` for every command."
        );
        return ExitCode::from(crate::cli::Exit::Usage as u8);
    }
    match open() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coffer: {}", shown(&messages::anyhow_text(&e)));
            ExitCode::from(crate::cli::Exit::Failed as u8)
        }
    }
}

fn open() -> anyhow::Result<()> {
    crate::log::init(false);
    ::log::info!("window opened");
    let paths = coffer_core::Paths::from_env()?;
    let mut app = CofferApp::new(paths, coffer_core::volumes::MountSource::from_env())?;
    if let Ok(exe) = std::env::current_exe() {
        app = app.with_agent_program(exe);
    }
    let viewport = egui::ViewportBuilder::default()
        .with_title("Coffer")
        .with_app_id("coffer")
        .with_inner_size([1100.0, 720.0])
        .with_min_inner_size([640.0, 420.0])
        .with_icon(std::sync::Arc::new(
            // The icon drawn for the project; the simple drawn one if decoding fails.
            eframe::icon_data::from_png_bytes(crate::icon::icon_png()).unwrap_or_else(|_| icon()),
        ));
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    eframe::run_native("Coffer", options, Box::new(|_cc| Ok(Box::new(app))))
        .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

/// The app icon, drawn here so no image file or decoder is needed: a coffer
/// (a chest) in amber with a dark lid band and a keyhole.
fn icon() -> egui::IconData {
    const N: u32 = 64;
    let mut rgba = Vec::with_capacity((N * N * 4) as usize);
    for y in 0..N {
        for x in 0..N {
            let inside = (6..58).contains(&x) && (12..56).contains(&y);
            let lid = inside && (24..30).contains(&y);
            let keyhole = (29..35).contains(&x) && (32..42).contains(&y);
            let px: [u8; 4] = if !inside {
                [0, 0, 0, 0]
            } else if lid || keyhole {
                [60, 40, 20, 255]
            } else {
                [222, 160, 60, 255]
            };
            rgba.extend_from_slice(&px);
        }
    }
    egui::IconData {
        rgba,
        width: N,
        height: N,
    }
}

/// A small coloured square with an accessible name, for colours that carry
/// meaning (a disk connected, a folder's copies). Painted, not a glyph, so no
/// font is needed for it.
pub(crate) fn swatch(ui: &mut egui::Ui, color: egui::Color32, name: &str) {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, name));
    ui.painter().rect_filled(rect.shrink(1.0), 2.0, color);
}

/// Text from a disk, a catalog, an archive or an error, as the window draws
/// it: controls (line breaks included) and bidirectional overrides escaped.
pub(crate) fn shown(s: &str) -> Cow<'_, str> {
    human::escape(s)
}

/// A path as the window draws it: as [`shown`], with bytes that are not
/// UTF-8 as `\xNN`.
pub(crate) fn shown_path(p: &Path) -> Cow<'_, str> {
    human::path(p)
}
