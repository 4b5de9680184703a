//! Looking after a disk from its card's "Manage" menu: rename, change its
//! quota, eject it, forget it when it is lost (after saying what that
//! costs); and starting the background agent at login ("Back up when a
//! disk is plugged in, even with this window closed"). The work is the job
//! service's (`core::jobs::manage`) and the desktop's (`desktop::udisks`,
//! `desktop::autostart`), on task threads.
//!
//! Invariant: a disk a job (the window's or the agent's) uses is not
//! renamed, given a quota, ejected or forgotten; the menu says why.

use std::path::PathBuf;

use coffer_core::jobs::manage;
use coffer_core::task::Outcome;
use coffer_core::{Catalog, Task, human};

use super::Action;
use crate::desktop::autostart::Dirs;
use crate::gui::action::Actions;
use crate::gui::ctx::Ctx;
use crate::gui::dialog::{self, Key};
use crate::gui::jobs::Kind;
use crate::gui::messages::{self, Message};
use crate::gui::model::DiskCard;
use crate::gui::shown;

#[derive(Clone, Debug)]
pub enum Manage {
    OpenRename(uuid::Uuid),
    OpenQuota(uuid::Uuid),
    OpenForget(uuid::Uuid),
    Rename(uuid::Uuid, String),
    Quota(uuid::Uuid, String),
    Forget(uuid::Uuid),
    Eject(uuid::Uuid, PathBuf),
    Close,
    /// Start the agent at login (and now), or no longer.
    AgentAtLogin(bool),
}

impl From<Manage> for crate::gui::action::Action {
    fn from(m: Manage) -> Self {
        Action::Manage(m).into()
    }
}

/// The open dialog.
#[derive(Clone, Debug)]
pub enum Form {
    Rename {
        id: uuid::Uuid,
        label: String,
        text: String,
    },
    Quota {
        id: uuid::Uuid,
        label: String,
        text: String,
    },
    Forget {
        id: uuid::Uuid,
        label: String,
        /// What forgetting costs, once counted.
        cost: Option<String>,
    },
}

/// The menu's state: its dialog, its task, the agent switch.
#[derive(Default)]
pub struct ManageState {
    form: Option<Form>,
    error: Option<String>,
    /// Renaming, a quota, forgetting or ejecting: its message.
    task: Option<Task<Message>>,
    /// Counting what forgetting costs.
    cost: Option<Task<String>>,
    /// Whether the agent starts at login.
    pub(crate) at_login: bool,
    /// The program started as `PROGRAM agent` when the switch goes on
    /// (this binary; tests leave it out).
    pub(crate) agent_program: Option<PathBuf>,
    /// Where autostart entries go (the environment's when `None`).
    pub(crate) autostart: Option<Dirs>,
}

impl ManageState {
    pub fn busy(&self) -> bool {
        self.task.is_some() || self.cost.is_some()
    }

    pub fn threads_ended(&self) -> bool {
        self.task.as_ref().is_none_or(Task::is_finished)
            && self.cost.as_ref().is_none_or(Task::is_finished)
    }

    pub fn apply(&mut self, m: Manage, cx: &mut Ctx) {
        let label_of = |id: uuid::Uuid| {
            cx.model
                .cards
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.label.clone())
                .unwrap_or_default()
        };
        match m {
            Manage::OpenRename(id) => {
                let label = label_of(id);
                self.open(Form::Rename {
                    id,
                    text: label.clone(),
                    label,
                });
            }
            Manage::OpenQuota(id) => {
                let quota = cx
                    .model
                    .cards
                    .iter()
                    .find(|c| c.id == id)
                    .and_then(|c| c.quota);
                self.open(Form::Quota {
                    id,
                    label: label_of(id),
                    text: quota.map(human::bytes).unwrap_or_default(),
                });
            }
            Manage::OpenForget(id) => {
                self.open(Form::Forget {
                    id,
                    label: label_of(id),
                    cost: None,
                });
                let (paths, profile, mounts) = inputs(cx);
                self.cost = Some(coffer_core::task::spawn(
                    "forget-cost",
                    cx.waker.clone(),
                    move |_| {
                        let catalog = Catalog::open(&paths.catalog_file())?;
                        let (_, cost) =
                            manage::forget_cost(&catalog, &profile, &mounts, &id.to_string())?;
                        Ok(manage::cost_words(&cost))
                    },
                ));
            }
            Manage::Rename(id, text) => self.run(cx, move |c, p, m| {
                let old = manage::find(c, m, &id.to_string())?.row.label;
                let row = manage::rename(c, p, m, &id.to_string(), &text)?;
                Ok(Message::done(format!("\"{old}\" is now \"{}\"", row.label)))
            }),
            Manage::Quota(id, text) => {
                let quota = match text.trim() {
                    "" => None,
                    t => match human::parse_size(t) {
                        Ok(q) => Some(q),
                        Err(e) => {
                            self.error = Some(e.to_string());
                            return;
                        }
                    },
                };
                self.run(cx, move |c, p, m| {
                    let row = manage::set_quota(c, p, m, &id.to_string(), quota)?;
                    Ok(Message::done(format!(
                        "{}: {}; {} free for Coffer",
                        row.label,
                        quota.map_or_else(
                            || "no quota".into(),
                            |q| format!("quota {}", human::bytes(q))
                        ),
                        human::bytes(row.free.unwrap_or(0))
                    )))
                });
            }
            Manage::Forget(id) => self.run(cx, move |c, p, m| {
                let (row, cost) = manage::forget(c, p, m, &id.to_string())?;
                Ok(Message {
                    ok: true,
                    title: format!("\"{}\" is forgotten", row.label),
                    details: vec![capital(&manage::cost_words(&cost))],
                })
            }),
            Manage::Eject(id, root) => {
                let (paths, profile, mounts) = inputs(cx);
                self.task = Some(coffer_core::task::spawn(
                    "eject",
                    cx.waker.clone(),
                    move |_| {
                        let catalog = Catalog::open(&paths.catalog_file())?;
                        let known = manage::find(&catalog, &mounts, &id.to_string())?;
                        let root = manage::idle_root(&known, &profile).unwrap_or(root);
                        let how =
                            crate::desktop::udisks::eject(&crate::desktop::Bus::Default, &root)
                                .map_err(|e| {
                                    coffer_core::Error::Failed(messages::anyhow_text(&e))
                                })?;
                        Ok(Message::done(format!(
                            "\"{}\" is {}: it can be unplugged",
                            known.row.label,
                            match how {
                                crate::desktop::udisks::Ejected::PoweredOff => "powered off",
                                crate::desktop::udisks::Ejected::Unmounted => "unmounted",
                            }
                        )))
                    },
                ));
            }
            Manage::Close => {
                self.form = None;
                self.error = None;
            }
            Manage::AgentAtLogin(on) => self.agent_at_login(on, cx),
        }
    }

    fn open(&mut self, form: Form) {
        self.form = Some(form);
        self.error = None;
    }

    fn run(
        &mut self,
        cx: &Ctx,
        job: impl FnOnce(
            &Catalog,
            &coffer_core::Profile,
            &coffer_core::volumes::MountSource,
        ) -> coffer_core::Result<Message>
        + Send
        + 'static,
    ) {
        let (paths, profile, mounts) = inputs(cx);
        self.error = None;
        self.task = Some(coffer_core::task::spawn(
            "manage-disk",
            cx.waker.clone(),
            move |_| job(&Catalog::open(&paths.catalog_file())?, &profile, &mounts),
        ));
    }

    fn agent_at_login(&mut self, on: bool, cx: &mut Ctx) {
        let dirs = self.autostart.clone().unwrap_or_else(Dirs::from_env);
        if let Err(e) = dirs.set(on) {
            cx.fail("Cannot change how Coffer starts", messages::anyhow_text(&e));
            return;
        }
        self.at_login = on;
        if on
            && cx.agent.is_none()
            && let Some(program) = &self.agent_program
        {
            match std::process::Command::new(program)
                .arg("agent")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
            {
                // Reaped when it ends, so it leaves no zombie behind.
                Ok(mut child) => {
                    let _ = std::thread::Builder::new()
                        .name("coffer-agent-child".into())
                        .spawn(move || child.wait());
                }
                Err(e) => cx.fail(
                    "Cannot start the background agent",
                    format!("{}: {e}", program.display()),
                ),
            }
        }
    }

    pub fn poll(&mut self, cx: &mut Ctx) {
        if let Some(out) = self.cost.as_mut().and_then(Task::try_finish) {
            self.cost = None;
            let words = match out {
                Outcome::Completed { value, .. } => value,
                Outcome::Failed(e) => messages::error_text(&e),
                Outcome::Cancelled => String::new(),
            };
            if let Some(Form::Forget { cost, .. }) = &mut self.form {
                *cost = Some(capital(&words));
            }
        }
        if let Some(out) = self.task.as_mut().and_then(Task::try_finish) {
            self.task = None;
            cx.refresh();
            match out {
                Outcome::Completed { value, .. } => {
                    self.form = None;
                    cx.say(value);
                }
                Outcome::Failed(e) if self.form.is_some() => {
                    self.error = Some(messages::error_text(&e));
                }
                Outcome::Failed(e) => cx.say(messages::failed_message("Cannot eject the disk", &e)),
                Outcome::Cancelled => {}
            }
        }
    }

    /// The card's "Manage" menu.
    pub fn menu(&self, cx: &Ctx, ui: &mut egui::Ui, card: &DiskCard, out: &mut Actions) {
        let label = shown(&card.label);
        // A disk a job uses is left alone: the same rule as for a verify.
        let busy = card
            .root
            .as_ref()
            .and_then(|r| cx.refusal(Kind::Verify, std::slice::from_ref(r)))
            .or_else(|| {
                self.task
                    .is_some()
                    .then(|| "Another change is being made".to_string())
            });
        ui.menu_button(format!("Manage {label}"), |ui| {
            let plugged = card.root.is_some();
            let needs_disk = (!plugged)
                .then(|| format!("Plug in {label} first: its name and quota are written on it"));
            let why = busy.clone().or(needs_disk);
            for (text, action) in [
                ("Rename…", Manage::OpenRename(card.id)),
                ("Change quota…", Manage::OpenQuota(card.id)),
            ] {
                if ui
                    .add_enabled(why.is_none(), egui::Button::new(text))
                    .on_disabled_hover_text(why.clone().unwrap_or_default())
                    .clicked()
                {
                    out.push(action);
                }
            }
            if let Some(root) = &card.root {
                if ui
                    .add_enabled(busy.is_none(), egui::Button::new("Eject"))
                    .on_hover_text("Unmount it and power it off, so it can be unplugged")
                    .on_disabled_hover_text(busy.clone().unwrap_or_default())
                    .clicked()
                {
                    out.push(Manage::Eject(card.id, root.clone()));
                }
            } else if ui
                .button("Forget…")
                .on_hover_text("The disk is lost for good: stop counting its copies")
                .clicked()
            {
                out.push(Manage::OpenForget(card.id));
            }
        });
    }

    /// The switch for the background agent.
    pub fn at_login_ui(&self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        let mut on = self.at_login;
        let text = "Back up when a disk is plugged in, even with this window closed";
        if ui
            .checkbox(&mut on, text)
            .on_hover_text("Starts Coffer's background agent at login: it syncs the disks set to sync when plugged in, and tells you when it is done")
            .changed()
        {
            out.push(Manage::AgentAtLogin(on));
        }
        if cx.agent.is_some() && cx.jobs.agent().is_none() {
            ui.label("The background agent is running and waiting for a disk.");
        }
    }

    /// The open dialog, modal: Enter is its main button, Esc cancels.
    pub fn dialog(&mut self, ctx: &egui::Context, out: &mut Actions) {
        let working = self.task.is_some();
        let error = self.error.clone();
        let Some(form) = &mut self.form else { return };
        let (id, title, main) = match form {
            Form::Rename { label, .. } => ("rename", format!("Rename {}", shown(label)), "Rename"),
            Form::Quota { label, .. } => (
                "quota",
                format!("Quota of {}", shown(label)),
                "Change quota",
            ),
            Form::Forget { label, .. } => {
                ("forget", format!("Forget {}", shown(label)), "Forget it")
            }
        };
        let (clicked, key) = dialog::modal(ctx, id, &title, |ui| {
            match form {
                Form::Rename { text, .. } => {
                    ui.label(
                        "The new name is written on the disk itself, so every computer sees it.",
                    );
                    ui.horizontal(|ui| {
                        let l = ui.label("New name");
                        ui.text_edit_singleline(text)
                            .labelled_by(l.id)
                            .request_focus();
                    });
                }
                Form::Quota { text, .. } => {
                    ui.label(
                        "The most space Coffer may use on this disk; leave it empty for no limit.",
                    );
                    ui.horizontal(|ui| {
                        let l = ui.label("Quota (e.g. 200 GB)");
                        ui.text_edit_singleline(text)
                            .labelled_by(l.id)
                            .request_focus();
                    });
                }
                Form::Forget { cost, .. } => {
                    ui.label("Forget this disk only if it is lost for good: its copies no longer count, and the next syncs of the other disks make up for them where there is room.");
                    match cost {
                        Some(c) => ui.strong(shown(c)),
                        None => ui.label("Counting what it held alone…"),
                    };
                }
            }
            if let Some(e) = &error {
                ui.colored_label(ui.visuals().error_fg_color, shown(e));
            }
            let mut clicked = None;
            ui.horizontal(|ui| {
                if ui.add_enabled(!working, egui::Button::new(main)).clicked() {
                    clicked = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    clicked = Some(false);
                }
            });
            clicked
        });
        let go = match (clicked, key) {
            (Some(go), _) => go,
            (None, Key::Enter) if !working => true,
            (None, Key::Cancel) => false,
            _ => return,
        };
        if !go {
            out.push(Manage::Close);
            return;
        }
        out.push(match form {
            Form::Rename { id, text, .. } => Manage::Rename(*id, text.clone()),
            Form::Quota { id, text, .. } => Manage::Quota(*id, text.clone()),
            Form::Forget { id, .. } => Manage::Forget(*id),
        });
    }
}

fn inputs(
    cx: &Ctx,
) -> (
    coffer_core::Paths,
    coffer_core::Profile,
    coffer_core::volumes::MountSource,
) {
    (
        cx.paths.clone(),
        cx.config.profile.clone(),
        cx.mount_source.clone(),
    )
}

/// The sentence with its first letter in capitals.
fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
