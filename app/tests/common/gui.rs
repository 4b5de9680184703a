//! Driving the real window with egui_kittest, by role and label, over a
//! temp world (catalog, config, a test mount root); no display needed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coffer::gui::CofferApp;
use coffer_core::config::{Config, Paths, Source};
use coffer_core::volumes::MountSource;
use coffer_tests::World;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

pub fn paths(w: &World) -> Paths {
    Paths {
        config_dir: w.config_dir(),
        data_dir: w.data_dir(),
    }
}

/// A saved config with the world's home as basepath and `sources` under it.
pub fn config(w: &World, sources: &[&str]) -> Config {
    let mut cfg = Config::load_or_default(&paths(w)).unwrap();
    cfg.profile.basepath = w.home();
    for s in sources {
        std::fs::create_dir_all(w.home().join(s)).unwrap();
        cfg.profile
            .add_source(Source {
                path: w.home().join(s),
                excludes: Vec::new(),
                copies: None,
                priority: 0,
                outside_basepath: false,
            })
            .unwrap();
    }
    cfg.save(&paths(w)).unwrap();
    cfg
}

pub fn harness(w: &World) -> Harness<'static, CofferApp> {
    let app = CofferApp::new(paths(w), MountSource::TestRoot(w.mounts()))
        .unwrap()
        .with_folder_chooser_in_window()
        .with_log_file(log_file(w))
        // Never the user's real keyring.
        .with_keyring(coffer::keyring::Keyring::Off);
    harness_of(app)
}

/// A harness over an app a test set up itself.
pub fn harness_of(app: CofferApp) -> Harness<'static, CofferApp> {
    Harness::<CofferApp>::builder()
        .with_size(egui::vec2(1200.0, 900.0))
        .build_ui_state(
            |ui, app: &mut CofferApp| {
                app.logic(ui.ctx());
                app.draw(ui);
            },
            app,
        )
}

/// The world's log file, as `COFFER_DATA_DIR` places it.
pub fn log_file(w: &World) -> PathBuf {
    w.data_dir().join("logs/coffer.log")
}

/// Steps frames until `done` holds, failing after a generous timeout.
pub fn step_until(
    h: &mut Harness<'_, CofferApp>,
    what: &str,
    done: impl Fn(&Harness<'_, CofferApp>) -> bool,
) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clicks the widget with this label and lets the click take effect (one
/// frame to see it, one to draw the result).
pub fn click(h: &mut Harness<'_, CofferApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
    // Panels take a frame to settle at their new size (the status panel
    // after Dismiss, the restore bar above it).
    h.step();
}

pub fn has_label(h: &Harness<'_, CofferApp>, label: &str) -> bool {
    h.query_by_label(label).is_some()
}

pub fn has_label_containing(h: &Harness<'_, CofferApp>, label: &str) -> bool {
    h.query_all_by_label_contains(label).next().is_some()
}

/// True when the widget with this label is there and can be clicked.
pub fn enabled(h: &Harness<'_, CofferApp>, label: &str) -> bool {
    h.query_by_label(label)
        .is_some_and(|n| !n.accesskit_node().is_disabled())
}

pub fn wait_for_message(h: &mut Harness<'_, CofferApp>, what: &str) -> coffer::gui::Message {
    step_until(h, what, |h| {
        !h.state().busy() && h.state().message().is_some()
    });
    h.state().message().unwrap().clone()
}

/// A disk of the world's set, set up in the drawer (not plugged in).
pub fn disk_in_drawer(
    w: &World,
    cfg: &Config,
    name: &str,
    label: &str,
    quota: Option<u64>,
) -> PathBuf {
    let away = w.dir.path().join("drawer").join(name);
    std::fs::create_dir_all(&away).unwrap();
    coffer_core::Disk::init(
        &away,
        label,
        cfg.profile.set_id,
        quota,
        coffer_core::disk::io::real(),
    )
    .unwrap();
    away
}

/// An encrypted disk of the world's set with this passphrase, plugged in
/// (made through the library, so no passphrase is in the environment).
pub fn plugged_encrypted_disk(
    w: &World,
    cfg: &Config,
    name: &str,
    label: &str,
    pass: &str,
) -> PathBuf {
    use coffer_core::crypto::{Encryption, MIN_MEMORY_KIB};
    let root = w.mounts().join(name);
    std::fs::create_dir_all(&root).unwrap();
    let enc = Encryption::create(pass.as_bytes(), Some(MIN_MEMORY_KIB), Some(1)).unwrap();
    coffer_core::Disk::init_full(
        &root,
        label,
        cfg.profile.set_id,
        None,
        coffer_core::disk::io::real(),
        false,
        Some(enc),
    )
    .unwrap();
    root
}

/// A disk of the world's set, plugged in.
pub fn plugged_disk(
    w: &World,
    cfg: &Config,
    name: &str,
    label: &str,
    quota: Option<u64>,
) -> PathBuf {
    let away = disk_in_drawer(w, cfg, name, label, quota);
    let root = w.mounts().join(name);
    std::fs::rename(&away, &root).unwrap();
    root
}

/// Types `text` into the Unlock dialog's passphrase field and presses Enter.
pub fn answer(h: &mut Harness<'_, CofferApp>, text: &str) {
    h.get_by_label("Passphrase").set_text_value_accesskit(text);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
}

/// Steps until the Unlock dialog asks for the disk `label`.
pub fn wait_for_dialog(h: &mut Harness<'_, CofferApp>, label: &str) {
    step_until(h, "the passphrase dialog", |h| {
        h.state().asking_passphrase_for() == Some(label) && has_label(h, &format!("Unlock {label}"))
    });
}

/// Answers the folder chooser for `purpose` as if `dir` was picked, and
/// lets the window take the answer.
pub fn pick(h: &mut Harness<'_, CofferApp>, purpose: coffer::gui::Purpose, dir: &std::path::Path) {
    h.state_mut()
        .push(coffer::gui::Action::Picked(purpose, dir.to_path_buf()));
    h.step();
    h.step();
}
