//! Promotion windows: recurrence rules in time zones across DST changes, one-off dates, deny
//! beating allow, the next open moment, the freeze windows evaluated the same way, bounded
//! work, and no panic on any rule text.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use floe_promotion::config::{
    Environment, FreezeWindow, PromotionWindow, Recurrence, Weekday, WindowKind, WindowSchedule,
    WindowState, parse_local, parse_time, parse_timezone,
};
use floe_promotion::{Clock, EnvName, ManualClock};
use proptest::prelude::*;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

fn rule(
    kind: WindowKind,
    rrule: &str,
    tz: &str,
    length: Duration,
    reason: &str,
) -> PromotionWindow {
    let r = Recurrence::new(rrule, parse_timezone(tz).unwrap(), None, length).unwrap();
    PromotionWindow::new(kind, WindowSchedule::recurring(r), reason)
}

fn once(kind: WindowKind, start: &str, end: &str, reason: &str) -> PromotionWindow {
    PromotionWindow::new(
        kind,
        WindowSchedule::once(t(start), t(end)).unwrap(),
        reason,
    )
}

fn prod(windows: Vec<PromotionWindow>) -> Environment {
    let mut env = Environment::new(EnvName::new("prod").unwrap());
    env.windows = windows;
    env
}

fn starts(w: &PromotionWindow, from: &str, to: &str) -> Vec<String> {
    w.occurrences(t(from), t(to))
        .unwrap()
        .into_iter()
        .map(|(s, _)| s.to_rfc3339())
        .collect()
}

fn closed(kind: WindowKind, reason: &str, until: Option<&str>) -> WindowState {
    WindowState::Closed {
        reason: reason.into(),
        kind,
        until: until.map(t),
    }
}

/// Europe/Berlin changes to summer time on Sunday 2026-03-29 and back on Sunday 2026-10-25:
/// a Friday 15:00 local window starts at 14:00 UTC in winter (CET, UTC+1) and 13:00 UTC in
/// summer (CEST, UTC+2), and a 9 h window ends 9 h of elapsed time later.
#[test]
fn berlin_friday_15h_follows_summer_time() {
    let w = rule(
        WindowKind::Deny,
        "FREQ=WEEKLY;BYDAY=FR;BYHOUR=15",
        "Europe/Berlin",
        hours(9),
        "weekend",
    );
    assert_eq!(
        starts(&w, "2026-03-19T00:00:00Z", "2026-04-10T00:00:00Z"),
        [
            "2026-03-20T14:00:00+00:00",
            "2026-03-27T14:00:00+00:00",
            "2026-04-03T13:00:00+00:00",
        ]
    );
    assert_eq!(
        starts(&w, "2026-10-20T00:00:00Z", "2026-11-01T00:00:00Z"),
        ["2026-10-23T13:00:00+00:00", "2026-10-30T14:00:00+00:00"]
    );

    let env = prod(vec![w]);
    let clock = ManualClock::new(t("2026-03-27T13:59:59Z"));
    assert_eq!(env.window_state(clock.now()), WindowState::Open);
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(
        env.window_state(clock.now()),
        closed(WindowKind::Deny, "weekend", Some("2026-03-27T23:00:00Z"))
    );
    // A week later, across the change: an hour earlier in UTC.
    let clock = ManualClock::new(t("2026-04-03T12:59:59Z"));
    assert!(env.window_state(clock.now()).is_open());
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(
        env.window_state(clock.now()),
        closed(WindowKind::Deny, "weekend", Some("2026-04-03T22:00:00Z"))
    );
    clock.advance(chrono::Duration::hours(9));
    assert!(env.window_state(clock.now()).is_open());
    assert_eq!(
        env.next_open(t("2026-04-03T15:00:00Z")),
        Some(t("2026-04-03T22:00:00Z"))
    );
    assert_eq!(
        env.next_open(t("2026-04-03T23:00:00Z")),
        Some(t("2026-04-03T23:00:00Z"))
    );
}

/// An occurrence that spans the night of the change lasts its duration in elapsed time; a local
/// start the clocks skip is read with the offset before the gap (RFC 5545 3.3.5); an ambiguous
/// one happens once, the first time.
#[test]
fn dst_nights_in_berlin() {
    let sunday = rule(
        WindowKind::Deny,
        "FREQ=WEEKLY;BYDAY=SU;BYHOUR=1",
        "Europe/Berlin",
        hours(3),
        "",
    );
    let spring = sunday
        .occurrences(t("2026-03-28T00:00:00Z"), t("2026-03-30T00:00:00Z"))
        .unwrap();
    assert_eq!(
        spring,
        [(t("2026-03-29T00:00:00Z"), t("2026-03-29T03:00:00Z"))]
    );
    let autumn = sunday
        .occurrences(t("2026-10-24T00:00:00Z"), t("2026-10-26T00:00:00Z"))
        .unwrap();
    assert_eq!(
        autumn,
        [(t("2026-10-24T23:00:00Z"), t("2026-10-25T02:00:00Z"))]
    );

    let half_past_two = rule(
        WindowKind::Deny,
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "Europe/Berlin",
        Duration::from_secs(1800),
        "",
    );
    // 2026-03-29 02:30 does not exist in Berlin: 02:30 at UTC+1, which is 03:30 summer time.
    assert_eq!(
        starts(
            &half_past_two,
            "2026-03-28T00:00:00Z",
            "2026-03-31T00:00:00Z"
        ),
        [
            "2026-03-28T01:30:00+00:00",
            "2026-03-29T01:30:00+00:00",
            "2026-03-30T00:30:00+00:00"
        ]
    );
    // 2026-10-25 02:30 happens twice in Berlin; the window opens once, the first time (CEST).
    assert_eq!(
        starts(
            &half_past_two,
            "2026-10-24T12:00:00Z",
            "2026-10-26T00:00:00Z"
        ),
        ["2026-10-25T00:30:00+00:00"]
    );
}

/// New York (summer time from 2026-03-08), Kolkata (UTC+05:30, no summer time) and UTC.
#[test]
fn other_time_zones() {
    let monday = rule(
        WindowKind::Deny,
        "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9",
        "America/New_York",
        hours(8),
        "change board",
    );
    assert_eq!(
        starts(&monday, "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z"),
        ["2026-03-02T14:00:00+00:00", "2026-03-09T13:00:00+00:00"]
    );
    assert_eq!(
        starts(&monday, "2026-10-26T00:00:00Z", "2026-11-03T00:00:00Z"),
        ["2026-10-26T13:00:00+00:00", "2026-11-02T14:00:00+00:00"]
    );

    // Allowed 10:00 to 12:00 Kolkata time every day: 04:30 to 06:30 UTC.
    let kolkata = prod(vec![rule(
        WindowKind::Allow,
        "FREQ=DAILY;BYHOUR=10;BYMINUTE=0",
        "Asia/Kolkata",
        hours(2),
        "business hours",
    )]);
    assert_eq!(
        kolkata.window_state(t("2026-06-01T04:29:59Z")),
        closed(
            WindowKind::Allow,
            "outside every allow window (business hours)",
            Some("2026-06-01T04:30:00Z")
        )
    );
    assert!(kolkata.window_state(t("2026-06-01T04:30:00Z")).is_open());
    assert!(kolkata.window_state(t("2026-06-01T06:29:59Z")).is_open());
    assert_eq!(
        kolkata.next_open(t("2026-06-01T06:30:00Z")),
        Some(t("2026-06-02T04:30:00Z"))
    );

    let first_of_month = prod(vec![rule(
        WindowKind::Deny,
        "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=0",
        "UTC",
        hours(24),
        "month end close",
    )]);
    assert_eq!(
        first_of_month.window_state(t("2026-07-01T12:00:00Z")),
        closed(
            WindowKind::Deny,
            "month end close",
            Some("2026-07-02T00:00:00Z")
        )
    );
    assert!(
        first_of_month
            .window_state(t("2026-07-02T00:00:00Z"))
            .is_open()
    );
}

/// Any active deny window wins over an active allow window; with allow windows, outside all
/// of them is closed; the next open moment skips both.
#[test]
fn deny_beats_allow_and_outside_every_allow_window_is_closed() {
    let env = prod(vec![
        rule(
            WindowKind::Allow,
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9",
            "UTC",
            hours(8),
            "office hours",
        ),
        once(
            WindowKind::Deny,
            "2026-06-03T00:00:00Z",
            "2026-06-04T12:00:00Z",
            "release party",
        ),
    ]);
    // Tuesday, in office hours.
    assert_eq!(
        env.window_state(t("2026-06-02T10:00:00Z")),
        WindowState::Open
    );
    assert_eq!(
        env.next_open(t("2026-06-02T10:00:00Z")),
        Some(t("2026-06-02T10:00:00Z"))
    );
    // Wednesday in office hours, but denied: opens Thursday at noon, inside office hours.
    assert_eq!(
        env.window_state(t("2026-06-03T10:00:00Z")),
        closed(
            WindowKind::Deny,
            "release party",
            Some("2026-06-04T12:00:00Z")
        )
    );
    // Tuesday 17:00 (the allow window's end is exclusive): Wednesday denied, Thursday noon.
    assert_eq!(
        env.next_open(t("2026-06-02T17:00:00Z")),
        Some(t("2026-06-04T12:00:00Z"))
    );
    // Saturday: outside every allow window until Monday 09:00.
    assert_eq!(
        env.window_state(t("2026-06-06T10:00:00Z")),
        closed(
            WindowKind::Allow,
            "outside every allow window (office hours)",
            Some("2026-06-08T09:00:00Z")
        )
    );
}

/// Adjacent deny windows chain; a window that never closes gives no next open moment.
#[test]
fn next_open_chains_deny_windows_and_is_bounded() {
    let env = prod(vec![
        rule(
            WindowKind::Deny,
            "FREQ=WEEKLY;BYDAY=MO;BYHOUR=0",
            "UTC",
            hours(24),
            "monday",
        ),
        rule(
            WindowKind::Deny,
            "FREQ=WEEKLY;BYDAY=TU;BYHOUR=0",
            "UTC",
            hours(24),
            "tuesday",
        ),
    ]);
    assert_eq!(
        env.next_open(t("2026-06-01T12:00:00Z")),
        Some(t("2026-06-03T00:00:00Z"))
    );
    match env.window_state(t("2026-06-02T12:00:00Z")) {
        WindowState::Closed { reason, until, .. } => {
            assert_eq!(reason, "tuesday");
            assert_eq!(until, Some(t("2026-06-03T00:00:00Z")));
        }
        other => panic!("{other:?}"),
    }
    let always = prod(vec![rule(
        WindowKind::Deny,
        "FREQ=DAILY;BYHOUR=0",
        "UTC",
        hours(24),
        "",
    )]);
    let started = Instant::now();
    assert_eq!(always.next_open(t("2026-06-01T12:00:00Z")), None);
    match always.window_state(t("2026-06-01T12:00:00Z")) {
        WindowState::Closed { until, reason, .. } => {
            assert_eq!(until, None);
            // No reason given: the window describes itself.
            assert!(reason.contains("FREQ=DAILY;BYHOUR=0"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Allow windows that are all over: never opens again.
    let over = prod(vec![once(
        WindowKind::Allow,
        "2025-01-01T00:00:00Z",
        "2025-01-02T00:00:00Z",
        "one day only",
    )]);
    assert_eq!(over.next_open(t("2026-01-01T00:00:00Z")), None);
}

/// One-off windows: local times in the window's zone, or RFC 3339 with an offset.
#[test]
fn one_off_dates_in_a_zone() {
    let berlin = parse_timezone("Europe/Berlin").unwrap();
    let start = parse_time(
        "2026-12-24T00:00:00",
        berlin,
        floe_promotion::config::WindowField::Start,
    )
    .unwrap();
    let end = parse_time(
        "2026-12-27",
        berlin,
        floe_promotion::config::WindowField::End,
    )
    .unwrap();
    assert_eq!(start, t("2026-12-23T23:00:00Z"));
    assert_eq!(end, t("2026-12-26T23:00:00Z"));
    assert_eq!(
        parse_time(
            "2026-12-24T00:00:00+01:00",
            chrono_tz::Tz::UTC,
            floe_promotion::config::WindowField::Start
        )
        .unwrap(),
        start
    );
    // A local time the clocks skip is refused.
    let gap = parse_time(
        "2026-03-29T02:30:00",
        berlin,
        floe_promotion::config::WindowField::Start,
    )
    .unwrap_err();
    assert!(gap.message.contains("does not exist"), "{gap}");
    assert!(parse_local("24.12.2026").is_none());

    let env = prod(vec![PromotionWindow::new(
        WindowKind::Deny,
        WindowSchedule::once(start, end).unwrap(),
        "holidays",
    )]);
    assert!(env.window_state(t("2026-12-23T22:59:59Z")).is_open());
    assert_eq!(
        env.window_state(t("2026-12-23T23:00:00Z")),
        closed(WindowKind::Deny, "holidays", Some("2026-12-26T23:00:00Z"))
    );
    assert!(env.window_state(end).is_open());
    assert!(WindowSchedule::once(end, start).is_err());
    assert!(WindowSchedule::once(end, end).is_err());
}

/// The old weekly freeze windows, evaluated by the shared evaluation, match what they always
/// meant: the listed UTC days, from `start` (inclusive) to `end` (exclusive), every week,
/// before and after 2024.
#[test]
fn freeze_windows_keep_their_meaning() {
    let weekly = FreezeWindow::Weekly {
        days: vec![Weekday::Sat, Weekday::Sun, Weekday::Wed],
        start: NaiveTime::from_hms_opt(13, 30, 0).unwrap(),
        end: NaiveTime::from_hms_opt(23, 59, 0).unwrap(),
        reason: "weekends and wednesday evenings".into(),
    };
    let old = |now: DateTime<Utc>| {
        let day = now.weekday().num_days_from_monday();
        [2u32, 5, 6].contains(&day)
            && now.time() >= NaiveTime::from_hms_opt(13, 30, 0).unwrap()
            && now.time() < NaiveTime::from_hms_opt(23, 59, 0).unwrap()
    };
    for base in [
        "1999-12-27T00:00:00Z",
        "2026-03-23T00:00:00Z",
        "2040-06-04T00:00:00Z",
    ] {
        let mut now = t(base);
        for _ in 0..(14 * 24 * 60 / 17) {
            assert_eq!(weekly.contains(now), old(now), "{now}");
            now += chrono::Duration::minutes(17);
        }
        // Wednesday 13:30 (inclusive) to 23:59 (exclusive).
        let wednesday = t(base) + chrono::Duration::days(2);
        let (from, to) = (
            wednesday + chrono::Duration::minutes(13 * 60 + 30),
            wednesday + chrono::Duration::minutes(23 * 60 + 59),
        );
        assert!(weekly.contains(from), "{from}");
        assert!(
            !weekly.contains(from - chrono::Duration::seconds(1)),
            "{from}"
        );
        assert!(weekly.contains(to - chrono::Duration::seconds(1)), "{to}");
        assert!(!weekly.contains(to), "{to}");
    }
    let mut env = prod(vec![]);
    env.freeze_windows = vec![weekly.clone()];
    let sat = t("2026-03-28T14:00:00Z");
    assert_eq!(
        env.window_state(sat),
        closed(
            WindowKind::Deny,
            "weekends and wednesday evenings",
            Some("2026-03-28T23:59:00Z")
        )
    );
    assert_eq!(env.frozen_at(sat), Some(&weekly));
    assert_eq!(sat.hour(), 14);
    // Never active: no days, or an end not after the start.
    let never = FreezeWindow::Weekly {
        days: vec![],
        start: NaiveTime::MIN,
        end: NaiveTime::from_hms_opt(1, 0, 0).unwrap(),
        reason: String::new(),
    };
    assert!(!never.contains(t("2026-03-23T00:30:00Z")));
}

/// A rule that needs more occurrences than the bound cannot be evaluated and closes the
/// environment (fail closed) instead of running long; a rule that never matches ends quickly.
#[test]
fn work_is_bounded_and_fails_closed() {
    let hourly = Recurrence::new(
        "FREQ=HOURLY;COUNT=1000000",
        chrono_tz::Tz::UTC,
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    let env = prod(vec![PromotionWindow::new(
        WindowKind::Deny,
        WindowSchedule::recurring(hourly.clone()),
        "noisy",
    )]);
    let started = Instant::now();
    let now = t("2027-06-01T00:30:00Z");
    assert!(
        hourly
            .occurrences(now, now + chrono::Duration::days(1))
            .is_err()
    );
    match env.window_state(now) {
        WindowState::Closed {
            kind,
            reason,
            until,
        } => {
            assert_eq!(kind, WindowKind::Deny);
            assert!(reason.contains("cannot be evaluated"), "{reason}");
            assert_eq!(until, None);
        }
        other => panic!("{other:?}"),
    }
    let never = Recurrence::new(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;BYHOUR=0",
        chrono_tz::Tz::UTC,
        None,
        hours(1),
    );
    if let Ok(never) = never {
        assert_eq!(never.next_occurrence(now).unwrap_or(None), None);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// Rule texts that are refused when the window is built.
#[test]
fn bad_rules_are_refused_with_the_field() {
    let utc = chrono_tz::Tz::UTC;
    for (rule, expected) in [
        ("", "empty rule"),
        ("FREQ=FORTNIGHTLY", "not an RFC 5545 recurrence rule"),
        ("FREQ=WEEKLY;BYDAY=XX", "not an RFC 5545 recurrence rule"),
        ("FREQ=MINUTELY", "at most hourly"),
        ("FREQ=SECONDLY", "at most hourly"),
        (
            "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY",
            "without DTSTART",
        ),
        ("FREQ=DAILY;BYHOUR=25", "FREQ=DAILY;BYHOUR=25"),
        (
            "FREQ=DAILY;UNTIL=20200101T000000Z",
            "FREQ=DAILY;UNTIL=20200101T000000Z",
        ),
    ] {
        let e = Recurrence::new(rule, utc, None, hours(1)).unwrap_err();
        assert_eq!(
            e.field,
            floe_promotion::config::WindowField::Rrule,
            "{rule}"
        );
        assert!(e.message.contains(expected), "{rule}: {e}");
    }
    let long = "FREQ=DAILY;".repeat(200);
    assert!(Recurrence::new(&long, utc, None, hours(1)).is_err());
    let e = Recurrence::new("FREQ=DAILY", utc, None, Duration::ZERO).unwrap_err();
    assert_eq!(e.field, floe_promotion::config::WindowField::Duration);
    assert!(parse_timezone("Mars/Olympus_Mons").is_err());
    assert_eq!(
        Recurrence::new("RRULE:FREQ=DAILY;BYHOUR=3", utc, None, hours(1))
            .unwrap()
            .rule(),
        "FREQ=DAILY;BYHOUR=3"
    );
}

fn rule_part() -> impl Strategy<Value = String> {
    let n = -400i32..400;
    prop_oneof![
        prop::sample::select(vec![
            "YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "X"
        ])
        .prop_map(|f| format!("FREQ={f}")),
        n.clone().prop_map(|i| format!("INTERVAL={i}")),
        n.clone().prop_map(|i| format!("COUNT={i}")),
        n.clone().prop_map(|i| format!("BYHOUR={i}")),
        n.clone().prop_map(|i| format!("BYMINUTE={i}")),
        n.clone().prop_map(|i| format!("BYMONTHDAY={i}")),
        n.clone().prop_map(|i| format!("BYYEARDAY={i}")),
        n.clone().prop_map(|i| format!("BYWEEKNO={i}")),
        n.clone().prop_map(|i| format!("BYSETPOS={i}")),
        n.clone().prop_map(|i| format!("BYMONTH={i}")),
        (n, prop::sample::select(vec!["MO", "TU", "FR", "SU", "ZZ"]))
            .prop_map(|(i, d)| format!("BYDAY={i}{d}")),
        prop::sample::select(vec!["MO", "FR", "SA,SU", ""]).prop_map(|d| format!("BYDAY={d}")),
        prop::sample::select(vec!["20250101T000000Z", "20300101T000000Z", "2030", "x"])
            .prop_map(|u| format!("UNTIL={u}")),
        prop::sample::select(vec!["MO", "SU", "QQ"]).prop_map(|w| format!("WKST={w}")),
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random text never panics, whatever it is.
    #[test]
    fn random_rule_text_never_panics(text in "\\PC{0,80}", hours_ in 0u64..400) {
        if let Ok(r) = Recurrence::new(&text, chrono_tz::Tz::Europe__Berlin, None, Duration::from_secs(hours_ * 3600)) {
            let now = t("2026-06-01T00:00:00Z");
            let _ = r.occurrences(now, now + chrono::Duration::days(30));
            let _ = r.next_occurrence(now);
        }
    }

    /// Random rules built from real parts (valid or not) never panic, evaluate within the
    /// bound, and agree with the environment's state.
    #[test]
    fn random_rules_never_panic(
        parts in prop::collection::vec(rule_part(), 1..6),
        zone in prop::sample::select(vec!["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "Australia/Lord_Howe"]),
        minutes in 1u64..(60 * 24 * 9),
        offset in 0i64..(3 * 365 * 24 * 60),
    ) {
        let text = format!("FREQ=WEEKLY;{}", parts.join(";"));
        let tz = parse_timezone(zone).unwrap();
        for text in [text.clone(), parts.join(";")] {
            if let Ok(r) = Recurrence::new(&text, tz, None, Duration::from_secs(minutes * 60)) {
                let now = t("2025-01-01T00:00:00Z") + chrono::Duration::minutes(offset);
                let window = PromotionWindow::new(WindowKind::Deny, WindowSchedule::recurring(r.clone()), "r");
                let active = window.active_at(now);
                let state = prod(vec![window]).window_state(now);
                prop_assert_eq!(active, !state.is_open(), "{} at {}", text, now);
                if let WindowState::Closed { until: Some(until), .. } = state {
                    prop_assert!(until > now);
                }
            }
        }
    }
}
