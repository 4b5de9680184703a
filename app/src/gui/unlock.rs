//! Passphrases of encrypted disks in the window.
//!
//! A job that needs encrypted disks (sync, verify, restore, a disk's own
//! catalog) first asks [`Ctx::unlocked`]. Each encrypted disk among them
//! (a USB disk as the watcher read it; a bucket disk, whether encrypted or
//! not, is found out by reaching it, `jobs::unlock`) with no passphrase
//! checked yet is tried, off the UI thread, with
//! `COFFER_PASSPHRASE`, the desktop keyring and the passphrases other disks
//! took (several disks often share one); for each that stays locked the
//! "Unlock" dialog asks, names the disk by its label, and checks the
//! answer against the disk's key check on a task thread, so a wrong one is
//! refused at once and can be typed again. A disk that cannot be reached
//! now is left to the job, which says why. When every disk is unlocked,
//! the job's action is applied again and runs with the answers
//! ([`Ctx::passphrases`]). Cancel ends the job before it started.
//!
//! Invariant: a passphrase is kept only in memory (zeroized when dropped),
//! for this window's life; it is never logged or shown, and only an answer
//! the key check accepted is kept or given to a job or to the keyring.

use std::path::{Path, PathBuf};

use coffer_core::Task;
use coffer_core::disk::{FixedPassphrase, Identity, Passphrase, Passphrases};
use coffer_core::jobs::{bucket::is_bucket, unlock};
use coffer_core::task::Outcome;
use zeroize::Zeroizing;

use super::action::{Action, Actions};
use super::ctx::{Ctx, Shared};
use super::dialog::{self, Key};
use super::messages::{self, Message};
use super::shown;
use crate::keyring::Keyring;

/// What the user did in the dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// "Unlock" (or Enter): check the typed passphrase.
    Submit,
    /// "Cancel" (or Esc): the job does not start.
    Cancel,
}

/// An encrypted disk a job waits for.
#[derive(Clone, Debug)]
struct Locked {
    root: PathBuf,
    id: uuid::Uuid,
    label: String,
}

/// The dialog's fields, edited as typed.
#[derive(Default)]
pub struct Form {
    pub answer: Zeroizing<String>,
    /// "Remember on this computer": the keyring keeps it once it unlocked.
    pub remember: bool,
    pub error: Option<String>,
    /// The answer being checked against the key check.
    checking: Option<Task<bool>>,
}

/// What trying found, disk by disk.
#[derive(Default)]
struct Tried {
    /// Passphrases the key check accepted.
    found: Vec<(uuid::Uuid, Zeroizing<String>)>,
    /// Bucket disks that turned out not to be encrypted.
    plain: Vec<uuid::Uuid>,
    /// Disks that cannot be reached now: left to the job.
    away: Vec<uuid::Uuid>,
}

enum Step {
    /// Trying what needs no asking, for every locked disk.
    Trying(Task<Tried>),
    /// The dialog asks for the first locked disk.
    Asking(Form),
}

/// A job waiting for passphrases.
struct Pending {
    /// Applied again when every disk is unlocked.
    then: Action,
    locked: Vec<Locked>,
    step: Step,
}

/// The passphrases the window knows, and the job waiting for more.
pub struct Unlock {
    /// Passphrases the key check accepted, by disk id.
    known: Vec<(uuid::Uuid, Zeroizing<String>)>,
    /// Bucket disks found not to be encrypted.
    plain: Vec<uuid::Uuid>,
    /// Disks the last try could not reach: the job applied again next is
    /// let through to say why, once.
    away_once: Vec<uuid::Uuid>,
    pending: Option<Pending>,
    keyring: Keyring,
    /// Raised each time a passphrase is learned (a plan made without it
    /// may now see more disks).
    pub generation: u64,
}

impl Unlock {
    pub fn new(keyring: Keyring) -> Unlock {
        Unlock {
            known: Vec::new(),
            plain: Vec::new(),
            away_once: Vec::new(),
            pending: None,
            keyring,
            generation: 0,
        }
    }

    pub fn set_keyring(&mut self, keyring: Keyring) {
        self.keyring = keyring;
    }

    /// True while a passphrase is tried or checked (not while the dialog
    /// waits for the user).
    pub fn busy(&self) -> bool {
        match self.pending.as_ref().map(|p| &p.step) {
            Some(Step::Trying(_)) => true,
            Some(Step::Asking(f)) => f.checking.is_some(),
            None => false,
        }
    }

    pub fn thread_ended(&self) -> bool {
        match self.pending.as_ref().map(|p| &p.step) {
            Some(Step::Trying(t)) => t.is_finished(),
            Some(Step::Asking(f)) => f.checking.as_ref().is_none_or(Task::is_finished),
            None => true,
        }
    }

    /// The label of the disk the dialog asks for, while it does.
    pub fn asking_for(&self) -> Option<&str> {
        match &self.pending {
            Some(Pending {
                locked,
                step: Step::Asking(_),
                ..
            }) => locked.first().map(|l| l.label.as_str()),
            _ => None,
        }
    }

    /// What a job gets: for each disk, the passphrase it took here, then
    /// `COFFER_PASSPHRASE`, then those other disks took.
    pub fn passphrases(&self) -> Passphrases {
        Passphrases::new(Known {
            known: self.known.clone(),
            env: FixedPassphrase::from_env(),
        })
    }

    /// Whether every encrypted disk among `disks` has a passphrase; when
    /// not, starts finding them, and `then` is applied once it has.
    fn gate(&mut self, shared: &Shared, disks: &[PathBuf], then: Action) -> bool {
        let away = std::mem::take(&mut self.away_once);
        let mut locked = self.locked_among(shared, disks);
        locked.retain(|l| !away.contains(&l.id));
        if locked.is_empty() {
            return true;
        }
        if self.pending.is_none() {
            let step = Step::Trying(try_given(&self.known, self.keyring, shared, &locked));
            self.pending = Some(Pending { then, locked, step });
        }
        false
    }

    /// The disks among `disks` with no passphrase known that may need
    /// one: encrypted USB disks (as the watcher read their identities) and
    /// bucket disks not yet found plain.
    fn locked_among(&self, shared: &Shared, disks: &[PathBuf]) -> Vec<Locked> {
        let open = |id: &uuid::Uuid| !self.known.iter().any(|(d, _)| d == id);
        let usb = shared
            .identified()
            .filter(|(root, id)| {
                disks.contains(root) && id.encryption.is_some() && open(&id.disk_id)
            })
            .map(|(root, id)| Locked {
                root: root.clone(),
                id: id.disk_id,
                label: id.label.clone(),
            });
        let buckets = shared
            .model
            .cards
            .iter()
            .filter_map(|c| Some((c.url.as_ref()?, c)))
            .filter(|(url, c)| {
                is_bucket(url) && disks.contains(url) && open(&c.id) && !self.plain.contains(&c.id)
            })
            .map(|(url, c)| Locked {
                root: url.clone(),
                id: c.id,
                label: c.label.clone(),
            });
        usb.chain(buckets).collect()
    }

    /// Takes finished tries and checks; the action to apply again once
    /// every disk its job needs is unlocked.
    pub fn poll(&mut self, shared: &Shared) -> Option<Action> {
        let pending = self.pending.as_mut()?;
        match &mut pending.step {
            Step::Trying(task) => {
                let out = task.try_finish()?;
                if let Outcome::Completed { value, .. } = out {
                    for (id, p) in value.found {
                        pending.locked.retain(|l| l.id != id);
                        self.known.push((id, p));
                        self.generation += 1;
                    }
                    let gone =
                        |l: &Locked| value.plain.contains(&l.id) || value.away.contains(&l.id);
                    pending.locked.retain(|l| !gone(l));
                    self.plain.extend(value.plain);
                    self.away_once.extend(value.away);
                }
                pending.step = Step::Asking(Form::default());
            }
            Step::Asking(form) => {
                let out = form.checking.as_mut()?.try_finish()?;
                form.checking = None;
                let label = pending.locked.first().map(|l| l.label.clone());
                match out {
                    Outcome::Completed { value: true, .. } => {
                        let answer = std::mem::take(&mut form.answer);
                        let disk = pending.locked.remove(0);
                        self.known.push((disk.id, answer));
                        self.generation += 1;
                        // The same passphrase may open the others too.
                        if !pending.locked.is_empty() {
                            let t = try_given(&self.known, self.keyring, shared, &pending.locked);
                            pending.step = Step::Trying(t);
                        }
                    }
                    Outcome::Completed { value: false, .. } => {
                        form.answer = Zeroizing::new(String::new());
                        form.error = Some(wrong_text(label.as_deref().unwrap_or_default()));
                    }
                    Outcome::Failed(e) => form.error = Some(messages::error_text(&e)),
                    Outcome::Cancelled => {}
                }
            }
        }
        let done = self.pending.as_ref().is_some_and(|p| p.locked.is_empty());
        done.then(|| self.pending.take().map(|p| p.then)).flatten()
    }

    /// The dialog's button (or key) was pressed; a message when the job
    /// will not start.
    pub fn answer(&mut self, answer: Answer, shared: &Shared) -> Option<Message> {
        let pending = self.pending.as_mut()?;
        let Step::Asking(form) = &mut pending.step else {
            return None;
        };
        let disk = pending.locked.first()?.clone();
        match answer {
            Answer::Cancel => {
                self.pending = None;
                Some(Message::problem(
                    "Not started",
                    format!("No passphrase was given for {}.", disk.label),
                ))
            }
            Answer::Submit if form.checking.is_some() => None,
            Answer::Submit if form.answer.is_empty() => {
                form.error = Some("Type the passphrase first.".into());
                None
            }
            Answer::Submit => {
                form.error = None;
                let p = form.answer.clone();
                let keyring = form.remember.then_some(self.keyring);
                form.checking = Some(coffer_core::task::spawn(
                    "unlock-check",
                    shared.waker.clone(),
                    move |_| check(&disk, &p, keyring),
                ));
                None
            }
        }
    }

    /// Draws the dialog while it asks.
    pub fn dialog(&mut self, ctx: &egui::Context, out: &mut Actions) {
        let Some(Pending {
            locked,
            step: Step::Asking(form),
            ..
        }) = &mut self.pending
        else {
            return;
        };
        let Some(disk) = locked.first() else { return };
        let checking = form.checking.is_some();
        let title = format!("Unlock {}", shown(&disk.label));
        let (clicked, key) = dialog::modal(ctx, "unlock", &title, |ui| {
            ui.label(format!(
                "{} is encrypted. Type its passphrase to go on.",
                shown(&disk.label)
            ));
            ui.horizontal(|ui| {
                let l = ui.label("Passphrase");
                let field = egui::TextEdit::singleline(&mut *form.answer)
                    .password(true)
                    .desired_width(260.0);
                let r = ui.add_enabled(!checking, field).labelled_by(l.id);
                if !checking && !r.has_focus() && form.answer.is_empty() {
                    r.request_focus();
                }
            });
            ui.checkbox(&mut form.remember, "Remember on this computer")
                .on_hover_text("Keep it in the desktop keyring, so it is not asked again");
            if checking {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Checking…");
                });
            }
            if let Some(e) = &form.error {
                ui.colored_label(ui.visuals().error_fg_color, shown(e));
            }
            let mut clicked = None;
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(!checking, egui::Button::new("Unlock"))
                    .clicked()
                {
                    clicked = Some(Answer::Submit);
                }
                if ui.button("Cancel").clicked() {
                    clicked = Some(Answer::Cancel);
                }
            });
            clicked
        });
        match (clicked, key) {
            (Some(a), _) => out.push(Action::Unlock(a)),
            (None, Key::Enter) => out.push(Action::Unlock(Answer::Submit)),
            (None, Key::Cancel) => out.push(Action::Unlock(Answer::Cancel)),
            (None, Key::Nothing) => {}
        }
    }
}

/// Tries, on a task thread, what needs no asking on each of `locked`:
/// `COFFER_PASSPHRASE`, the keyring, then the passphrases in `known` (and
/// those found on the way).
fn try_given(
    known: &[(uuid::Uuid, Zeroizing<String>)],
    keyring: Keyring,
    shared: &Shared,
    locked: &[Locked],
) -> Task<Tried> {
    let locked = locked.to_vec();
    let mut others: Vec<Zeroizing<String>> = known.iter().map(|(_, p)| p.clone()).collect();
    coffer_core::task::spawn("unlock", shared.waker.clone(), move |_| {
        let env = env_passphrase();
        let mut tried = Tried::default();
        for d in &locked {
            // A disk that cannot be reached now is left to the job, which
            // says why.
            let Ok(disk) = unlock::reach(&d.root) else {
                tried.away.push(d.id);
                continue;
            };
            if !disk.encrypted() {
                tried.plain.push(d.id);
                continue;
            }
            // The keyring is asked only when the variable did not fit.
            let mut tries = env
                .iter()
                .cloned()
                .chain(std::iter::once_with(|| keyring.lookup(d.id)).flatten())
                .chain(others.clone());
            if let Some(p) = tries.find(|p| disk.opens(p).unwrap_or(false)) {
                others.push(p.clone());
                tried.found.push((d.id, p));
            }
        }
        Ok(tried)
    })
}

/// What the dialog says to a passphrase the key check refused.
pub fn wrong_text(label: &str) -> String {
    format!("Wrong passphrase for {label}. Try again.")
}

/// Whether `passphrase` opens `disk`, by its key check; remembered in
/// `keyring` when it does and one is given (a keyring that fails is told
/// in the log, not to the job).
fn check(disk: &Locked, passphrase: &str, keyring: Option<Keyring>) -> coffer_core::Result<bool> {
    let d = unlock::reach(&disk.root)?;
    if d.identity().disk_id != disk.id {
        return Err(coffer_core::Error::Failed(format!(
            "the disk at {} is no longer {}",
            coffer_core::human::path(&disk.root),
            disk.label
        )));
    }
    let opens = d.opens(passphrase)?;
    if opens
        && let Some(k) = keyring
        && let Err(why) = k.store(disk.id, passphrase)
    {
        log::warn!("cannot remember the passphrase of {}: {why}", disk.label);
    }
    Ok(opens)
}

/// `COFFER_PASSPHRASE`, when set and not empty.
fn env_passphrase() -> Option<Zeroizing<String>> {
    std::env::var("COFFER_PASSPHRASE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
}

/// The window's passphrases, as a job's source.
struct Known {
    known: Vec<(uuid::Uuid, Zeroizing<String>)>,
    env: Option<FixedPassphrase>,
}

impl Passphrase for Known {
    fn passphrase(&self, id: &Identity, at: &Path, attempt: u32) -> Option<Zeroizing<String>> {
        let own = self.known.iter().filter(|(d, _)| *d == id.disk_id);
        let env = self.env.iter().filter_map(|e| e.passphrase(id, at, 0));
        let others = self.known.iter().filter(|(d, _)| *d != id.disk_id);
        own.map(|(_, p)| p.clone())
            .chain(env)
            .chain(others.map(|(_, p)| p.clone()))
            .nth(attempt as usize)
    }
}

impl Ctx {
    /// Whether the encrypted disks among `disks` are unlocked; when not,
    /// the window finds their passphrases (asking for those it must) and
    /// applies `then` again, and the caller does not start its job now.
    pub fn unlocked(&mut self, disks: &[PathBuf], then: impl Into<Action>) -> bool {
        self.unlock.gate(&self.shared, disks, then.into())
    }

    /// The passphrases a job of the window unlocks its disks with.
    pub fn passphrases(&self) -> Passphrases {
        self.unlock.passphrases()
    }
}
