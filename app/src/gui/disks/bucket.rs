//! Bucket disks on the Disks tab: whether each bucket disk the catalog
//! knows answers now, and its card (label, URL, reachable with its room and
//! last sync, or unreachable and why; Sync and Verify through the same
//! chain as a USB disk's).
//!
//! Reaching a bucket is network I/O, so it runs on a task thread (one
//! thread per bucket, all at once): when the tab opens, on "Check again",
//! when a bucket disk appears in the catalog, and every [`RECHECK`] while
//! the tab shows. A card keeps its last answer while it is checked again;
//! before the first, it says "checking…".
//!
//! Invariant: no bucket is reached on the UI thread; what a server said
//! reaches the window only as `jobs::bucket::why`'s plain words, drawn
//! through `shown`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer_core::jobs::bucket::Away;
use coffer_core::task::Outcome;
use coffer_core::{Task, human, jobs};

use super::{Action, DisksTab, Target, sync_disks};
use crate::gui::action::Actions;
use crate::gui::ctx::{Ctx, Shared};
use crate::gui::jobs::{Kind, Waker};
use crate::gui::model::DiskCard;
use crate::gui::{shown, shown_path, swatch};

/// How often the buckets are checked again while the Disks tab shows: often
/// enough that a card follows a network coming and going, rarely enough
/// that a few buckets cost nothing (each check is one small GET).
pub const RECHECK: Duration = Duration::from_secs(60);

/// Whether a bucket disk answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Not known yet: the first check runs.
    Checking,
    /// It answers; `ours` when it is a disk of this backup set.
    Reachable { ours: bool, encrypted: bool },
    /// It did not answer, and why, in plain words.
    Unreachable(String),
}

/// What the tab knows of its buckets, and the check under way.
#[derive(Default)]
pub struct Buckets {
    states: BTreeMap<PathBuf, Reach>,
    probe: Option<Task<Vec<(PathBuf, Reach)>>>,
    /// When the last check started.
    checked: Option<Instant>,
    /// Check again at the next chance (the tab opened, "Check again").
    wanted: bool,
}

impl Buckets {
    /// What is known of the bucket at `url`.
    pub fn reach(&self, url: &Path) -> &Reach {
        self.states.get(url).unwrap_or(&Reach::Checking)
    }

    /// True while a check runs.
    pub fn checking(&self) -> bool {
        self.probe.is_some()
    }

    pub fn thread_ended(&self) -> bool {
        self.probe.as_ref().is_none_or(Task::is_finished)
    }

    /// Check again at the next chance.
    pub fn stale(&mut self) {
        self.wanted = true;
    }

    /// The buckets of this backup set that answered at the last check.
    pub fn reachable(&self) -> Vec<PathBuf> {
        self.states
            .iter()
            .filter(|(_, r)| matches!(r, Reach::Reachable { ours: true, .. }))
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Takes a finished check, and starts the next when one is due and the
    /// tab shows. Returns how long until the next is due (for a repaint),
    /// while the tab shows.
    pub fn poll(&mut self, visible: bool, shared: &Shared) -> Option<Duration> {
        if let Some(out) = self.probe.as_mut().and_then(Task::try_finish) {
            self.probe = None;
            if let Outcome::Completed { value, .. } = out {
                self.states.extend(value);
            }
        }
        let urls = shared.bucket_urls();
        self.states.retain(|u, _| urls.contains(u));
        if !visible || urls.is_empty() {
            return None;
        }
        let unknown = urls.iter().any(|u| !self.states.contains_key(u));
        let due = self.checked.is_none_or(|t| t.elapsed() >= RECHECK);
        if self.probe.is_none() && (self.wanted || unknown || due) {
            self.wanted = false;
            self.checked = Some(Instant::now());
            self.probe = Some(start_probe(
                urls,
                shared.config.profile.set_id,
                &shared.waker,
            ));
        }
        let since = self.checked.map_or(Duration::ZERO, |t| t.elapsed());
        Some(RECHECK.saturating_sub(since))
    }
}

/// Checks every bucket at once, each on its own thread: one that does not
/// answer does not hold the others' cards at "checking…".
fn start_probe(urls: Vec<PathBuf>, set: uuid::Uuid, waker: &Waker) -> Task<Vec<(PathBuf, Reach)>> {
    coffer_core::task::spawn("buckets", waker.clone(), move |_| {
        Ok(std::thread::scope(|s| {
            let checks: Vec<_> = urls
                .into_iter()
                .map(|url| s.spawn(move || (url.clone(), probe(&url, set))))
                .collect();
            checks.into_iter().filter_map(|c| c.join().ok()).collect()
        }))
    })
}

/// Whether the bucket at `url` answers, as the job service finds out.
fn probe(url: &Path, set: uuid::Uuid) -> Reach {
    let Some(text) = url.to_str() else {
        return Reach::Unreachable("its address is not text".into());
    };
    match jobs::bucket::probe(text) {
        Ok(d) => Reach::Reachable {
            ours: d.identity.sets.contains(&set),
            encrypted: d.encrypted(),
        },
        Err(why) => Reach::Unreachable(why),
    }
}

/// The lines a sync leaves for the buckets that did not answer ("not a
/// failure": like a disk left in the drawer).
pub fn away_lines(shared: &Shared, away: &[Away]) -> Vec<String> {
    away.iter()
        .map(|(url, why)| {
            format!(
                "{} ({}) did not answer: {why}; not synced this time",
                shared.label_of(url),
                human::path(url)
            )
        })
        .collect()
}

/// "1.2 GiB free of its 5 GiB quota", or what it stores without one.
fn room(card: &DiskCard) -> String {
    let stored = card.bar.current + card.bar.old;
    match card.quota {
        Some(q) => format!(
            "{} free of its {} quota",
            human::bytes(card.bar.free),
            human::bytes(q)
        ),
        None => format!("{} stored, no quota", human::bytes(stored)),
    }
}

impl DisksTab {
    /// The bucket disks' cards, under their heading with "Check again".
    pub(super) fn bucket_cards_ui(&self, cx: &Ctx, ui: &mut egui::Ui, out: &mut Actions) {
        let cards: Vec<&DiskCard> = cx.model.cards.iter().filter(|c| c.url.is_some()).collect();
        if cards.is_empty() {
            return;
        }
        ui.horizontal(|ui| {
            ui.heading("Bucket disks");
            let checking = self.buckets.checking();
            if ui
                .add_enabled(!checking, egui::Button::new("Check again"))
                .on_hover_text("Find out again which bucket disks answer")
                .on_disabled_hover_text("Checking…")
                .clicked()
            {
                out.push(Action::CheckBuckets);
            }
        });
        for card in cards {
            self.bucket_card_ui(cx, ui, card, out);
            ui.add_space(6.0);
        }
    }

    fn bucket_card_ui(&self, cx: &Ctx, ui: &mut egui::Ui, card: &DiskCard, out: &mut Actions) {
        let Some(url) = &card.url else { return };
        let reach = self.buckets.reach(url);
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                let (dot, state) = match reach {
                    Reach::Reachable { .. } => (egui::Color32::from_rgb(60, 170, 90), "reachable"),
                    Reach::Unreachable(_) => (egui::Color32::from_rgb(200, 90, 60), "unreachable"),
                    Reach::Checking => (egui::Color32::GRAY, "checking…"),
                };
                swatch(ui, dot, state);
                ui.heading(shown(&card.label));
                ui.label(shown_path(url));
            });
            ui.label(match reach {
                Reach::Reachable { ours: false, .. } => {
                    "reachable: it belongs to another backup set".to_string()
                }
                Reach::Reachable { encrypted, .. } => format!(
                    "reachable{}: {}",
                    if *encrypted { ", encrypted" } else { "" },
                    room(card)
                ),
                // The reason is the job service's plain words; escaped all
                // the same, as every text that came near a server.
                Reach::Unreachable(why) => format!("unreachable: {}", shown(why)),
                Reach::Checking => "checking whether it answers…".to_string(),
            });
            ui.label(super::view::holds_line(card));
            self.bucket_buttons(cx, ui, card, url, reach, out);
        });
    }

    fn bucket_buttons(
        &self,
        cx: &Ctx,
        ui: &mut egui::Ui,
        card: &DiskCard,
        url: &Path,
        reach: &Reach,
        out: &mut Actions,
    ) {
        let label = shown(&card.label);
        let not_now = match reach {
            Reach::Reachable { ours: true, .. } => None,
            Reach::Reachable { ours: false, .. } => {
                Some(format!("{label} belongs to another backup set"))
            }
            Reach::Unreachable(_) => Some(format!("{label} did not answer: check again later")),
            Reach::Checking => Some(format!("Finding out whether {label} answers…")),
        };
        ui.horizontal(|ui| {
            for (kind, verb) in [(Kind::Sync, "Sync"), (Kind::Verify, "Verify")] {
                let disks = match kind {
                    Kind::Sync => sync_disks(cx, &Target::Disk(url.to_path_buf())),
                    _ => vec![url.to_path_buf()],
                };
                let refusal = not_now.clone().or_else(|| cx.refusal(kind, &disks));
                let button = ui
                    .add_enabled(
                        refusal.is_none(),
                        egui::Button::new(format!("{verb} {label}")),
                    )
                    .on_disabled_hover_text(refusal.unwrap_or_default());
                if button.clicked() {
                    out.push(match kind {
                        Kind::Sync => Action::Sync(url.to_path_buf()),
                        _ => Action::Verify(url.to_path_buf()),
                    });
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gui::model::SpaceBar;

    fn card(quota: Option<u64>, bar: SpaceBar) -> DiskCard {
        DiskCard {
            id: uuid::Uuid::nil(),
            label: "Cloud".into(),
            quota,
            ever_synced: true,
            root: None,
            url: Some("s3://b/p".into()),
            presence: String::new(),
            bar,
            missing: 0,
            last_sync: "now".into(),
            last_verify: "never".into(),
            only_copy: Default::default(),
            auto_sync: false,
            cannot_hold: Vec::new(),
        }
    }

    #[test]
    fn a_buckets_room_is_its_quota_left_or_what_it_stores() {
        let bar = SpaceBar {
            current: 3_000_000,
            old: 1_000_000,
            other: 0,
            free: 6_000_000,
        };
        assert_eq!(
            room(&card(Some(10_000_000), bar)),
            "6.0 MB free of its 10 MB quota"
        );
        let bar = SpaceBar { free: 0, ..bar };
        assert_eq!(room(&card(None, bar)), "4.0 MB stored, no quota");
    }
}
