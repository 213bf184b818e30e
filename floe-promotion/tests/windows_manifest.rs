//! `windows:` in the manifest: what loads, and bad windows refused at load with the file, the
//! line and column of the offending value, and the value.

use std::path::Path;

use chrono::{DateTime, Utc};
use floe_promotion::config::{WindowKind, WindowSchedule, WindowState, parse_manifest};
use floe_promotion::{EnvName, EnvironmentConfig, Error};

const HEAD: &str = "artifacts:
  registry: { uri: oci://registry.example.com/floe }
  promotion:
    environments:
      - name: dev
      - name: prod
        windows:
";

fn manifest(windows: &str) -> String {
    let indented: String = windows
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    format!("{HEAD}{indented}")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn windows_load_with_their_kinds_zones_and_dates() {
    let text = manifest(
        "- kind: deny
  rrule: \"FREQ=WEEKLY;BYDAY=FR;BYHOUR=15\"
  duration: 9h
  timezone: Europe/Berlin
  reason: no friday afternoon releases
- kind: allow
  rrule: RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8
  duration: 10h
  timezone: Europe/Berlin
  reason: office hours
- kind: deny
  start: 2026-12-24T00:00:00
  end: 2026-12-27T00:00:00
  timezone: Europe/Berlin
  reason: holidays
- kind: deny
  start: 2027-01-10T00:00:00Z
  duration: 2h
- kind: allow
  rrule: FREQ=WEEKLY;INTERVAL=2;BYDAY=SA;BYHOUR=10
  start: 2026-01-03T00:00:00
  duration: 1h
  reason: every other saturday",
    );
    let config = parse_manifest(&text, Some(Path::new("/cfg/manifest.yaml"))).unwrap();
    let prod = config.environment(&EnvName::new("prod").unwrap()).unwrap();
    assert_eq!(prod.windows.len(), 5);
    assert_eq!(prod.windows[0].kind, WindowKind::Deny);
    assert_eq!(prod.windows[1].kind, WindowKind::Allow);
    match &prod.windows[1].schedule {
        WindowSchedule::Recurring(r) => {
            assert_eq!(r.rule(), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8");
            assert_eq!(r.timezone().name(), "Europe/Berlin");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        prod.windows[2].schedule,
        WindowSchedule::Once {
            start: t("2026-12-23T23:00:00Z"),
            end: t("2026-12-26T23:00:00Z")
        }
    );
    assert_eq!(
        prod.windows[3].schedule,
        WindowSchedule::Once {
            start: t("2027-01-10T00:00:00Z"),
            end: t("2027-01-10T02:00:00Z")
        }
    );
    // Every other Saturday from 2026-01-03, at 10:00 UTC (no timezone: UTC).
    let sat = prod.windows[4]
        .occurrences(t("2026-01-01T00:00:00Z"), t("2026-01-25T00:00:00Z"))
        .unwrap();
    assert_eq!(
        sat.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [t("2026-01-03T10:00:00Z"), t("2026-01-17T10:00:00Z")]
    );
    // A Friday at 16:00 Berlin: the deny window wins over office hours.
    match prod.window_state(t("2026-02-06T15:00:00Z")) {
        WindowState::Closed { kind, reason, .. } => {
            assert_eq!(kind, WindowKind::Deny);
            assert_eq!(reason, "no friday afternoon releases");
        }
        other => panic!("{other:?}"),
    }
    assert!(prod.window_state(t("2026-02-05T10:00:00Z")).is_open());
}

fn refused(windows: &str) -> (String, (usize, usize), String) {
    let text = manifest(windows);
    match parse_manifest(&text, Some(Path::new("/cfg/manifest.yaml"))) {
        Err(
            e @ Error::Config {
                location: Some(at), ..
            },
        ) => {
            let Error::Config { file, message, .. } = &e else {
                unreachable!()
            };
            assert_eq!(file.as_deref(), Some(Path::new("/cfg/manifest.yaml")));
            assert!(!message.contains('\n'), "one line: {message}");
            (text, at, e.to_string())
        }
        other => panic!("{windows}: expected a Config error with a location, got {other:?}"),
    }
}

/// Each bad window is refused at load with the file, the line and column of the value at
/// fault (or of the window, when a key is missing), and the value.
#[test]
fn bad_windows_are_refused_with_file_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        // (windows, the text the location points at, what the message says)
        (
            "- kind: deny\n  rrule: FREQ=SOMETIMES\n  duration: 1h",
            "FREQ=SOMETIMES",
            "\"FREQ=SOMETIMES\" is not an RFC 5545 recurrence rule",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY;BYHOUR=24\n  duration: 1h",
            "FREQ=DAILY;BYHOUR=24",
            "windows[0].rrule",
        ),
        (
            "- kind: deny\n  rrule: FREQ=MINUTELY;BYSECOND=0\n  duration: 1m",
            "FREQ=MINUTELY",
            "at most hourly",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY\n  duration: 1h\n  timezone: Europe/Atlantis",
            "Europe/Atlantis",
            "\"Europe/Atlantis\" is not an IANA time zone",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY\n  duration: 0s",
            "0s",
            "\"0s\" is zero",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY\n  duration: -1h",
            "-1h",
            "\"-1h\" is not a duration",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY\n  duration: soon",
            "soon",
            "\"soon\" is not a duration",
        ),
        (
            "- kind: maybe\n  rrule: FREQ=DAILY\n  duration: 1h",
            "maybe",
            "unknown window kind \"maybe\": expected deny or allow",
        ),
        (
            "- kind: deny\n  start: 2026-12-27T00:00:00Z\n  end: 2026-12-24T00:00:00Z",
            "2026-12-24T00:00:00Z",
            "windows[0].end",
        ),
        (
            "- kind: deny\n  start: 2026-12-24 noon\n  end: 2026-12-27T00:00:00Z",
            "2026-12-24 noon",
            "\"2026-12-24 noon\" is not a time",
        ),
        (
            "- kind: deny\n  start: 2026-03-29T02:30:00\n  end: 2026-03-29T05:00:00\n  timezone: Europe/Berlin",
            "2026-03-29T02:30:00",
            "does not exist in Europe/Berlin",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY;UNTIL=20250101T000000Z\n  duration: 1h",
            "FREQ=DAILY;UNTIL",
            "has no occurrence after",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY;COUNT=3\n  duration: 1h",
            "FREQ=DAILY;COUNT=3",
            "has no occurrence after",
        ),
        (
            "- kind: deny\n  rrule: FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\n  duration: 1h",
            "FREQ=YEARLY;BYMONTH=2",
            "windows[0].rrule",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY\n  duration: 1h\n  end: 2026-12-24T00:00:00Z",
            "2026-12-24T00:00:00Z",
            "end is for one-off windows",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY",
            "kind: deny",
            "a recurring window needs a duration",
        ),
        (
            "- rrule: FREQ=DAILY\n  duration: 1h",
            "rrule: FREQ=DAILY",
            "kind: required: deny or allow",
        ),
        (
            "- kind: deny\n  reason: nothing else",
            "kind: deny",
            "expected { kind, rrule, duration, timezone, reason }",
        ),
        (
            "- kind: deny\n  rrule: FREQ=DAILY\n  duration: 1h\n  every: day",
            "every",
            "unknown field `every`",
        ),
    ];
    for (windows, points_at, says) in cases {
        let (text, (line, column), message) = refused(windows);
        assert!(
            message.starts_with("/cfg/manifest.yaml:"),
            "{windows}: {message}"
        );
        assert!(
            message.contains(&format!(":{line}:{column}: ")),
            "{windows}: {message}"
        );
        assert!(message.contains(says), "{windows}: {message}");
        let written = text.lines().nth(line - 1).unwrap_or_default();
        let from_column: String = written.chars().skip(column - 1).collect();
        assert!(
            from_column.starts_with(points_at) || from_column.contains(points_at),
            "{windows}: line {line} column {column} is {from_column:?}, expected {points_at:?}"
        );
        assert!(line > 7, "{windows}: {message}");
    }
}

/// Freeze windows still load as before and are deny windows in the shared evaluation.
#[test]
fn freeze_windows_and_windows_together() {
    let text = format!(
        "{HEAD}          - {{ kind: allow, rrule: \"FREQ=DAILY;BYHOUR=9\", duration: 8h }}\n        freeze_windows:\n          - {{ days: [sat, sun], from: \"00:00\", to: \"23:59\", reason: no weekend releases }}\n"
    );
    let config = parse_manifest(&text, None).unwrap();
    let prod = config.environment(&EnvName::new("prod").unwrap()).unwrap();
    assert_eq!(prod.freeze_windows.len(), 1);
    // Saturday 10:00 UTC: allowed by the daily window, frozen by the weekend freeze.
    match prod.window_state(t("2026-02-07T10:00:00Z")) {
        WindowState::Closed {
            kind,
            reason,
            until,
        } => {
            assert_eq!(kind, WindowKind::Deny);
            assert_eq!(reason, "no weekend releases");
            assert_eq!(until, Some(t("2026-02-09T09:00:00Z")));
        }
        other => panic!("{other:?}"),
    }
}

/// The manifest of the README's "Promotion windows" section loads.
#[test]
fn the_readme_windows_load() {
    let readme = include_str!("../../README.md");
    let yaml = readme
        .split("## Promotion windows")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a yaml block in the Promotion windows section");
    let config = parse_manifest(yaml, None).unwrap_or_else(|e| panic!("refused: {e}"));
    let prod = config.environment(&EnvName::new("prod").unwrap()).unwrap();
    assert_eq!(prod.windows.len(), 4);
}
