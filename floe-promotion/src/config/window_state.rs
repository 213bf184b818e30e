//! The one evaluation of promotion windows: whether promotion is open at a moment under an
//! environment's windows (deny and allow, freeze windows included), and the next open moment.
//! See [the windows module](super::windows) for the rule.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::windows::{NEXT_OPEN_HORIZON_DAYS, PromotionWindow, WindowKind};

/// Whether promotion is open at a moment, and if not, why and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum WindowState {
    /// Promotion is open: no deny window is active, and an allow window is active or there
    /// are none.
    Open,
    /// Promotion is closed.
    Closed {
        /// The reason of the active deny window, or why no allow window is active.
        reason: String,
        /// `deny`: a deny window is active; `allow`: outside every allow window.
        kind: WindowKind,
        /// When promotion opens next, if within [`NEXT_OPEN_HORIZON_DAYS`](super::NEXT_OPEN_HORIZON_DAYS) days.
        until: Option<DateTime<Utc>>,
    },
}

impl WindowState {
    /// Whether promotion is open.
    pub fn is_open(&self) -> bool {
        matches!(self, WindowState::Open)
    }
}

/// The windows' periods around a moment, for [`evaluate`].
struct Timeline {
    deny: Vec<(DateTime<Utc>, DateTime<Utc>, String)>,
    allow: Vec<(DateTime<Utc>, DateTime<Utc>, String)>,
    has_allow: bool,
    horizon: DateTime<Utc>,
}

impl Timeline {
    fn new<'a>(windows: impl IntoIterator<Item = &'a PromotionWindow>, now: DateTime<Utc>) -> Self {
        let horizon = now
            .checked_add_signed(chrono::Duration::days(NEXT_OPEN_HORIZON_DAYS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut t = Timeline {
            deny: vec![],
            allow: vec![],
            has_allow: false,
            horizon,
        };
        for w in windows {
            let label = w.label();
            if w.kind == WindowKind::Allow {
                t.has_allow = true;
            }
            match w.occurrences(now, horizon) {
                Ok(periods) => {
                    let list = match w.kind {
                        WindowKind::Deny => &mut t.deny,
                        WindowKind::Allow => &mut t.allow,
                    };
                    list.extend(periods.into_iter().map(|(s, e)| (s, e, label.clone())));
                }
                // Fail closed: a window that cannot be evaluated denies.
                Err(e) => t.deny.push((
                    now,
                    horizon,
                    format!("window {label:?} cannot be evaluated: {e}"),
                )),
            }
        }
        t
    }

    fn active(
        list: &[(DateTime<Utc>, DateTime<Utc>, String)],
        t: DateTime<Utc>,
    ) -> impl Iterator<Item = &(DateTime<Utc>, DateTime<Utc>, String)> {
        list.iter().filter(move |(s, e, _)| *s <= t && t < *e)
    }

    fn open_at(&self, t: DateTime<Utc>) -> bool {
        Self::active(&self.deny, t).next().is_none()
            && (!self.has_allow || Self::active(&self.allow, t).next().is_some())
    }

    /// The first open moment in `[now, horizon)`: openness only changes where a deny window
    /// ends or an allow window starts.
    fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut candidates: Vec<DateTime<Utc>> = std::iter::once(now)
            .chain(self.deny.iter().map(|(_, e, _)| *e))
            .chain(self.allow.iter().map(|(s, _, _)| *s))
            .filter(|c| *c >= now && *c < self.horizon)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.into_iter().find(|c| self.open_at(*c))
    }

    fn state(&self, now: DateTime<Utc>) -> WindowState {
        if let Some((_, _, reason)) = Self::active(&self.deny, now).next() {
            return WindowState::Closed {
                reason: reason.clone(),
                kind: WindowKind::Deny,
                until: self.next_open(now),
            };
        }
        if self.has_allow && Self::active(&self.allow, now).next().is_none() {
            let mut labels: Vec<&str> = self.allow.iter().map(|(_, _, l)| l.as_str()).collect();
            labels.dedup();
            let reason = if labels.is_empty() {
                "outside every allow window (none opens within a year)".to_string()
            } else {
                format!("outside every allow window ({})", labels.join("; "))
            };
            return WindowState::Closed {
                reason,
                kind: WindowKind::Allow,
                until: self.next_open(now),
            };
        }
        WindowState::Open
    }
}

/// The state of promotion at `now` under `windows` (deny and allow together): the one
/// evaluation behind [`Environment::window_state`](super::Environment::window_state).
pub(super) fn evaluate<'a>(
    windows: impl IntoIterator<Item = &'a PromotionWindow>,
    now: DateTime<Utc>,
) -> WindowState {
    Timeline::new(windows, now).state(now)
}

/// The first moment at or after `now`, within [`NEXT_OPEN_HORIZON_DAYS`](super::NEXT_OPEN_HORIZON_DAYS) days, when
/// promotion is open under `windows`: the one search behind
/// [`Environment::next_open`](super::Environment::next_open).
pub(super) fn next_open<'a>(
    windows: impl IntoIterator<Item = &'a PromotionWindow>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    Timeline::new(windows, now).next_open(now)
}
