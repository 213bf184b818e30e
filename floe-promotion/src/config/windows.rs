//! Promotion windows: periods when promotion into an environment is refused (`deny`) or the
//! only periods when it is allowed (`allow`), as RFC 5545 recurrence rules in an IANA time
//! zone or as one-off dates.
//!
//! # The rule
//!
//! At a moment `t`, promotion into an environment is **open** when no deny window is active
//! at `t` and, if the environment has any allow window, one of them is active at `t` (Kargo's
//! rule: any active deny wins; with allow windows, outside all of them is closed). Today's
//! `freeze_windows` are deny windows and go through the same evaluation
//! ([`FreezeWindow::to_window`](super::FreezeWindow::to_window)).
//!
//! # Recurring windows
//!
//! A [`Recurrence`] is an RFC 5545 `RRULE` (without `DTSTART`), a time zone, a first start
//! (`DTSTART`, a local time in the zone) and a duration. Each occurrence of the rule, a local
//! time in the zone, opens the window for `duration` of elapsed time: `FREQ=WEEKLY;BYDAY=FR;
//! BYHOUR=15` with `duration: 9h` in `Europe/Berlin` is every Friday from 15:00 Berlin time
//! (14:00 UTC in winter, 13:00 UTC in summer) to 9 hours of elapsed time later. `BYHOUR`,
//! `BYMINUTE` and `BYSECOND` set the local start time; what the rule leaves open is taken from
//! the first start, like RFC 5545 says: by default [`DEFAULT_START`], Monday 1 January 2024 at
//! local midnight, so a weekly rule without `BYDAY` falls on Mondays and a rule without
//! `BYHOUR` starts at midnight. `INTERVAL` and `COUNT` count from the first start.
//!
//! An occurrence at a local time that the clocks skip (the hour lost when summer time begins)
//! is read with the offset before the gap, as RFC 5545 (3.3.5) says: 02:30 on that night in
//! Berlin is 03:30 summer time. An ambiguous one (the hour repeated when summer time ends)
//! happens once, the first time. Rules recur at most hourly (`SECONDLY` and `MINUTELY` are refused), and every
//! evaluation looks at no more than [`MAX_OCCURRENCES`] occurrences of a rule: a rule that
//! needs more cannot be evaluated and counts as an active deny window (fail closed).
//!
//! # Searching for the next open moment
//!
//! [`Environment::next_open`](super::Environment::next_open) searches
//! [`NEXT_OPEN_HORIZON_DAYS`] days ahead and no further.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::time::Duration;

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, Unvalidated};
use serde::{Deserialize, Serialize};

/// The longest rule text accepted, in bytes.
pub const MAX_RULE_LEN: usize = 1024;

/// The most occurrences of one rule an evaluation looks at.
pub const MAX_OCCURRENCES: usize = 20_000;

/// How far ahead [`Environment::next_open`](super::Environment::next_open) searches, in days.
pub const NEXT_OPEN_HORIZON_DAYS: i64 = 366;

/// The longest window duration accepted: 366 days.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The default first start of a recurring window: Monday 2024-01-01 00:00, local time in the
/// window's zone.
pub const DEFAULT_START: NaiveDateTime = match NaiveDate::from_ymd_opt(2024, 1, 1) {
    Some(d) => d.and_time(NaiveTime::MIN),
    None => NaiveDateTime::MIN,
};

/// A period `[start, end)` in UTC: one occurrence of a window.
pub type Period = (DateTime<Utc>, DateTime<Utc>);

/// Whether a window refuses promotion while active, or is a period when promotion is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// No promotion while the window is active.
    Deny,
    /// Promotion only while a window of this kind is active.
    Allow,
}

impl WindowKind {
    /// `deny` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Deny => "deny",
            WindowKind::Allow => "allow",
        }
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WindowKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "deny" => Ok(WindowKind::Deny),
            "allow" => Ok(WindowKind::Allow),
            other => Err(format!(
                "unknown window kind {other:?}: expected deny or allow"
            )),
        }
    }
}

/// The field of a window a [`WindowError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowField {
    /// `kind`.
    Kind,
    /// `rrule`.
    Rrule,
    /// `duration`.
    Duration,
    /// `timezone`.
    Timezone,
    /// `start`.
    Start,
    /// `end`.
    End,
}

impl WindowField {
    /// The manifest key.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowField::Kind => "kind",
            WindowField::Rrule => "rrule",
            WindowField::Duration => "duration",
            WindowField::Timezone => "timezone",
            WindowField::Start => "start",
            WindowField::End => "end",
        }
    }
}

/// A window that cannot be built or evaluated: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", field.as_str())]
pub struct WindowError {
    /// The field at fault.
    pub field: WindowField,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl WindowError {
    fn new(field: WindowField, message: impl Into<String>) -> Self {
        WindowError {
            field,
            message: message.into(),
        }
    }
}

/// Parses an IANA time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, WindowError> {
    let name = name.trim();
    Tz::from_str(name).map_err(|_| {
        WindowError::new(
            WindowField::Timezone,
            format!(
                "{name:?} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)"
            ),
        )
    })
}

/// Parses a window duration (`9h`, `90m`, `1h30m`): more than zero, at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, WindowError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        WindowError::new(
            WindowField::Duration,
            format!("{text:?} is not a duration (expected e.g. 9h, 90m or 1h30m): {e}"),
        )
    })?;
    check_duration(d).map_err(|m| WindowError::new(WindowField::Duration, format!("{text:?} {m}")))
}

fn check_duration(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        return Err("is zero: a window must last longer than 0s".into());
    }
    if d > MAX_DURATION {
        return Err("is longer than 366 days".into());
    }
    Ok(d)
}

/// A time written in a manifest: RFC 3339 with an offset (`2026-12-24T00:00:00+01:00`,
/// `…Z`), or a local time in `tz` (`2026-12-24T00:00:00`, `2026-12-24T00:00`, `2026-12-24`
/// for midnight). A local time the clocks skip in `tz` is refused; an ambiguous one means its
/// first occurrence.
pub fn parse_time(text: &str, tz: Tz, field: WindowField) -> Result<DateTime<Utc>, WindowError> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    let local = parse_local(t).ok_or_else(|| {
        WindowError::new(
            field,
            format!(
                "{text:?} is not a time: expected a local time like 2026-12-24T00:00:00 (in the window's timezone) or RFC 3339 with an offset like 2026-12-24T00:00:00+01:00"
            ),
        )
    })?;
    localize(tz, local)
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| {
            WindowError::new(
                field,
                format!("{text:?} does not exist in {tz}: the clocks skip it"),
            )
        })
}

/// A local date and time without offset, as written in a manifest.
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN))
    })
}

fn localize(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    tz.from_local_datetime(&local).earliest()
}

/// Runs `f`, turning a panic of the recurrence library into an error: no input may panic.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the recurrence rule could not be evaluated".to_string()))
}

/// An RFC 5545 recurrence in a time zone: each occurrence opens the window for `duration`.
#[derive(Clone)]
pub struct Recurrence {
    rule: RRule<Unvalidated>,
    text: String,
    timezone: Tz,
    start: NaiveDateTime,
    duration: Duration,
    /// Whether the first start may be moved forward by whole periods without changing the
    /// occurrences (`INTERVAL=1`, no `COUNT`, no `UNTIL`): evaluation then starts near the
    /// time asked about instead of at the first start.
    shiftable: bool,
}

impl fmt::Debug for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recurrence")
            .field("rule", &self.text)
            .field("timezone", &self.timezone.name())
            .field("start", &self.start)
            .field("duration", &self.duration)
            .finish()
    }
}

impl PartialEq for Recurrence {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
            && self.timezone == other.timezone
            && self.start == other.start
            && self.duration == other.duration
    }
}

impl Eq for Recurrence {}

impl Recurrence {
    /// A recurrence of `rule` (an RFC 5545 `RRULE` value such as
    /// `FREQ=WEEKLY;BYDAY=FR;BYHOUR=15`, optionally prefixed `RRULE:`) in `timezone`, first
    /// starting at the local time `start` ([`DEFAULT_START`] when `None`), each occurrence
    /// lasting `duration`.
    ///
    /// Refused, naming the field and the value: a rule that does not parse or validate, one
    /// with `DTSTART` (use `start`), one recurring more often than hourly, a rule longer than
    /// [`MAX_RULE_LEN`], a zero or too long duration, a `start` that does not exist in the zone.
    pub fn new(
        rule: &str,
        timezone: Tz,
        start: Option<NaiveDateTime>,
        duration: Duration,
    ) -> Result<Self, WindowError> {
        let bad = |m: String| WindowError::new(WindowField::Rrule, m);
        if rule.len() > MAX_RULE_LEN {
            return Err(bad(format!(
                "the rule is {} bytes long; at most {MAX_RULE_LEN} are accepted",
                rule.len()
            )));
        }
        let text = rule.trim();
        let text = match text.get(..6) {
            Some(p) if p.eq_ignore_ascii_case("RRULE:") => text[6..].trim(),
            _ => text,
        };
        if text.is_empty() {
            return Err(bad(
                "an empty rule: expected e.g. FREQ=WEEKLY;BYDAY=FR;BYHOUR=15".into(),
            ));
        }
        if text.to_ascii_uppercase().contains("DTSTART") || text.contains(['\n', '\r']) {
            return Err(bad(format!(
                "{text:?}: give one RRULE value without DTSTART; the first start is the window's `start`"
            )));
        }
        let parsed = guarded(|| RRule::<Unvalidated>::from_str(text).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("{text:?} is not an RFC 5545 recurrence rule: {e}")))?;
        if matches!(parsed.get_freq(), Frequency::Secondly | Frequency::Minutely) {
            return Err(bad(format!(
                "{text:?}: windows recur at most hourly (FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY)"
            )));
        }
        let duration = check_duration(duration)
            .map_err(|m| WindowError::new(WindowField::Duration, format!("{duration:?} {m}")))?;
        let start = start.unwrap_or(DEFAULT_START);
        let first = localize(timezone, start).ok_or_else(|| {
            WindowError::new(
                WindowField::Start,
                format!("{start} does not exist in {timezone}: the clocks skip it"),
            )
        })?;
        let shiftable = parsed.get_interval() == 1
            && parsed.get_count().is_none()
            && parsed.get_until().is_none();
        let r = Recurrence {
            rule: parsed,
            text: text.to_string(),
            timezone,
            start,
            duration,
            shiftable,
        };
        r.build(first).map_err(|e| bad(format!("{text:?}: {e}")))?;
        Ok(r)
    }

    /// The rule, as given (without an `RRULE:` prefix).
    pub fn rule(&self) -> &str {
        &self.text
    }

    /// The time zone the rule is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first start (`DTSTART`), a local time in [`Recurrence::timezone`].
    pub fn start(&self) -> NaiveDateTime {
        self.start
    }

    /// How long each occurrence lasts.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn build(&self, first: DateTime<Tz>) -> Result<rrule::RRuleSet, String> {
        let first = first.with_timezone(&rrule::Tz::Tz(self.timezone));
        let rule = self.rule.clone();
        guarded(|| rule.build(first).map_err(|e| e.to_string())).map(rrule::RRuleSet::limit)
    }

    /// The first start to iterate from for occurrences ending after `from`: the configured
    /// one, moved forward by whole periods when that changes nothing.
    fn anchor(&self, from: DateTime<Utc>) -> DateTime<Tz> {
        let configured = localize(self.timezone, self.start);
        if !self.shiftable {
            return configured.unwrap_or_else(|| self.timezone.from_utc_datetime(&self.start));
        }
        let span = chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::MAX);
        let target = from
            .checked_sub_signed(span)
            .unwrap_or(from)
            .with_timezone(&self.timezone)
            .naive_local();
        let shifted = match self.rule.get_freq() {
            Frequency::Yearly | Frequency::Monthly => {
                let months = (target.year() - self.start.year()) * 12
                    + (target.month() as i32 - self.start.month() as i32)
                    - 13;
                let months = if self.rule.get_freq() == Frequency::Yearly {
                    months - months.rem_euclid(12)
                } else {
                    months
                };
                (months > 0 && self.start.day() <= 28)
                    .then(|| self.start.checked_add_months(Months::new(months as u32)))
                    .flatten()
            }
            _ => {
                let weeks = (target - self.start).num_weeks() - 2;
                (weeks > 0)
                    .then(|| {
                        self.start
                            .checked_add_signed(chrono::Duration::weeks(weeks))
                    })
                    .flatten()
            }
        };
        shifted
            .and_then(|s| localize(self.timezone, s))
            .or(configured)
            .unwrap_or_else(|| self.timezone.from_utc_datetime(&self.start))
    }

    /// The occurrences that end after `from` and start before `to`, as UTC periods
    /// `[start, end)`, in order; an error when more than [`MAX_OCCURRENCES`] would have to be
    /// looked at.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Period>, String> {
        self.scan(from, to, usize::MAX)
    }

    /// The first occurrence that ends after `from` (the one active at `from`, or the next),
    /// `None` when the rule has no more; an error when more than [`MAX_OCCURRENCES`] would
    /// have to be looked at.
    pub fn next_occurrence(&self, from: DateTime<Utc>) -> Result<Option<Period>, String> {
        Ok(self
            .scan(from, DateTime::<Utc>::MAX_UTC, 1)?
            .into_iter()
            .next())
    }

    fn scan(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        wanted: usize,
    ) -> Result<Vec<Period>, String> {
        let span = chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::MAX);
        let set = self.build(self.anchor(from))?;
        guarded(|| {
            let mut out = Vec::new();
            for (i, occurrence) in set.into_iter().enumerate() {
                if i >= MAX_OCCURRENCES {
                    return Err(format!(
                        "{:?} needs more than {MAX_OCCURRENCES} occurrences to be evaluated; give it a later start or a coarser FREQ",
                        self.text
                    ));
                }
                let start = occurrence.with_timezone(&Utc);
                if start >= to {
                    break;
                }
                let end = start
                    .checked_add_signed(span)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if end > from {
                    out.push((start, end));
                    if out.len() >= wanted {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// A weekly recurrence in UTC on `days` (0 = Monday) from `start` for `duration`, with
    /// no first start to speak of (every week, also before 2024): the shape of a weekly
    /// freeze window.
    pub(crate) fn weekly_utc(days: &[u32], start: NaiveTime, duration: Duration) -> Option<Self> {
        const NAMES: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
        let days: Vec<&str> = days
            .iter()
            .filter_map(|d| NAMES.get(*d as usize).copied())
            .collect();
        if days.is_empty() {
            return None;
        }
        let rule = format!(
            "FREQ=WEEKLY;BYDAY={};BYHOUR={};BYMINUTE={};BYSECOND={}",
            days.join(","),
            start.hour(),
            start.minute(),
            start.second()
        );
        // A Monday long ago; weekly rules with INTERVAL=1 move it forward as needed.
        let monday = NaiveDate::from_ymd_opt(1970, 1, 5)?.and_time(NaiveTime::MIN);
        Recurrence::new(&rule, Tz::UTC, Some(monday), duration).ok()
    }
}

/// When a window is active.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSchedule {
    /// Every occurrence of a recurrence rule, for its duration.
    Recurring(Box<Recurrence>),
    /// Once, from `start` (inclusive) to `end` (exclusive).
    Once {
        /// Start.
        start: DateTime<Utc>,
        /// End, after start.
        end: DateTime<Utc>,
    },
}

impl WindowSchedule {
    /// The schedule of a recurrence.
    pub fn recurring(recurrence: Recurrence) -> Self {
        WindowSchedule::Recurring(Box::new(recurrence))
    }

    /// A one-off period; refused when `end` is not after `start`.
    pub fn once(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, WindowError> {
        if end <= start {
            return Err(WindowError::new(
                WindowField::End,
                format!(
                    "{} is not after start {}",
                    end.to_rfc3339(),
                    start.to_rfc3339()
                ),
            ));
        }
        Ok(WindowSchedule::Once { start, end })
    }
}

/// A promotion window: its kind, when it is active, and why it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionWindow {
    /// Deny or allow.
    pub kind: WindowKind,
    /// When it is active.
    pub schedule: WindowSchedule,
    /// Why it exists (shown in refusals; may be empty).
    pub reason: String,
}

impl PromotionWindow {
    /// A window of `kind` on `schedule`, for `reason`.
    pub fn new(kind: WindowKind, schedule: WindowSchedule, reason: impl Into<String>) -> Self {
        PromotionWindow {
            kind,
            schedule,
            reason: reason.into(),
        }
    }

    /// The periods `[start, end)` of this window that end after `from` and start before
    /// `to`, in order; an error when the rule cannot be evaluated within
    /// [`MAX_OCCURRENCES`].
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Period>, String> {
        match &self.schedule {
            WindowSchedule::Recurring(r) => r.occurrences(from, to),
            WindowSchedule::Once { start, end } => Ok((*end > from && *start < to)
                .then_some((*start, *end))
                .into_iter()
                .collect()),
        }
    }

    /// Whether the window is active at `now`; a window that cannot be evaluated counts as
    /// active (fail closed).
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        let next = now + chrono::Duration::seconds(1);
        self.occurrences(now, next)
            .map(|o| o.iter().any(|(s, e)| *s <= now && now < *e))
            .unwrap_or(true)
    }

    /// The reason, or a description of the window when it gives none.
    pub fn label(&self) -> String {
        if self.reason.trim().is_empty() {
            self.describe()
        } else {
            self.reason.clone()
        }
    }

    /// One line describing the window, e.g. `deny FREQ=WEEKLY;BYDAY=FR;BYHOUR=15 for 9h
    /// (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        match &self.schedule {
            WindowSchedule::Recurring(r) => {
                let start = if r.start == DEFAULT_START {
                    String::new()
                } else {
                    format!(", from {}", r.start)
                };
                format!(
                    "{} {} for {} ({}{start})",
                    self.kind,
                    r.text,
                    humantime::format_duration(r.duration),
                    r.timezone.name()
                )
            }
            WindowSchedule::Once { start, end } => format!(
                "{} {} to {}",
                self.kind,
                start.to_rfc3339(),
                end.to_rfc3339()
            ),
        }
    }
}
