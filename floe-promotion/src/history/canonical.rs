//! Writing the format-2 bytes of an event straight from its fields.
//!
//! `serde_jcs` is the reference for format 2, but it is slow for our use: it boxes a writer
//! for every fragment it emits and parses every object key back into a JSON value to sort it.
//! Sealing an event is on the path of every promotion, so the common case is written here
//! directly, in the order JCS sorts the members, and every case this writer is not sure to get
//! byte-identical is left to `serde_jcs` ([`write_v2`] returns `None`):
//!
//! - an integer above 2^53 (`seq`, a gate's `duration_ms`): JCS writes numbers as ECMAScript
//!   doubles, which round such integers;
//! - a `details` key that is not ASCII: JCS sorts keys by UTF-16 code units, which differs
//!   from the byte order of the map for some non-ASCII keys.
//!
//! Member names are ASCII, so their UTF-16 order is their byte order. String values are
//! escaped by serde_json, whose escapes are the ones JCS prescribes (`\"`, `\\`, `\b`, `\f`,
//! `\n`, `\r`, `\t`, other controls as `\u00xx` in lower-case hex, nothing else). Equivalence
//! with `serde_jcs` is tested below over random records, and checked on every event sealed in
//! a debug build ([`super::canonical_json`]).

use std::io::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use super::EventRecord;
use crate::gate::GateResult;
use crate::model::Actor;

/// The largest integer a JSON number (an IEEE double) holds exactly: JCS writes integers up
/// to it as their decimal digits.
const MAX_EXACT: u64 = 1 << 53;

/// RFC 8785 (JCS) canonical JSON of `{"format":2,"seq":seq,…record}`, or `None` when the
/// record holds something this writer leaves to `serde_jcs` (see the module documentation).
pub(super) fn write_v2(seq: u64, record: &EventRecord) -> Option<Vec<u8>> {
    // Destructured so that a field added to the record (or to its parts) fails to compile
    // here until it is written too.
    let EventRecord {
        id,
        time,
        kind,
        actor,
        artifact,
        version,
        digest,
        from,
        environment,
        reason,
        gates,
        details,
    } = record;
    let Actor {
        id: actor_id,
        groups,
    } = actor;
    if seq > MAX_EXACT
        || gates.iter().any(|g| g.duration_ms > MAX_EXACT)
        || details.keys().any(|k| !k.is_ascii())
    {
        return None;
    }
    let mut w = Writer(Vec::with_capacity(
        512 + details
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
            + gates
                .iter()
                .map(|g| g.gate.len() + g.message.len() + 64)
                .sum::<usize>(),
    ));
    // Members in JCS order: actor, artifact, details, digest, environment, format, from,
    // gates, id, kind, reason, seq, time, version.
    w.raw(b"{\"actor\":{\"groups\":[");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.string(g);
    }
    w.raw(b"],\"id\":");
    w.string(actor_id);
    w.raw(b"},\"artifact\":");
    w.optional(artifact.as_ref().map(|a| a.as_str()));
    w.raw(b",\"details\":{");
    for (i, (k, v)) in details.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.string(k);
        w.raw(b":");
        w.string(v);
    }
    w.raw(b"},\"digest\":");
    w.optional(digest.as_ref().map(|d| d.as_str()));
    w.raw(b",\"environment\":");
    w.optional(environment.as_ref().map(|e| e.as_str()));
    w.raw(b",\"format\":2,\"from\":");
    w.optional(from.as_ref().map(|e| e.as_str()));
    w.raw(b",\"gates\":[");
    for (i, g) in gates.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.gate(g);
    }
    w.raw(b"],\"id\":\"");
    let mut uuid = uuid::Uuid::encode_buffer();
    w.raw(id.hyphenated().encode_lower(&mut uuid).as_bytes());
    w.raw(b"\",\"kind\":");
    // The serde name (snake_case), checked against serde for every kind below.
    w.string(kind.as_str());
    w.raw(b",\"reason\":");
    w.optional(reason.as_deref());
    w.raw(b",\"seq\":");
    w.integer(seq);
    w.raw(b",\"time\":");
    w.time(time);
    w.raw(b",\"version\":");
    w.optional(version.as_ref().map(|v| v.as_str()));
    w.raw(b"}");
    Some(w.0)
}

struct Writer(Vec<u8>);

impl Writer {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A value whose serde form is a JSON string (a string, an enum of unit variants, a
    /// time): serde_json writes it with the escapes JCS uses.
    fn serde(&mut self, value: &(impl Serialize + ?Sized)) {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    fn string(&mut self, s: &str) {
        // Most strings need no escape (serde_json escapes `"`, `\` and controls below 0x20,
        // nothing else): they are copied between quotes as they are.
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.reserve(s.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(b'"');
        } else {
            self.serde(s);
        }
    }

    /// A time as chrono's serde writes a `DateTime<Utc>`: RFC 3339 with `Z`, the fraction of
    /// a second in the fewest of 0, 3, 6 or 9 digits that hold it. Years outside 0..=9999 and
    /// leap seconds are left to chrono.
    fn time(&mut self, time: &DateTime<Utc>) {
        let t = time.naive_utc();
        let (year, nanos) = (t.year(), t.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return self.serde(time);
        }
        let mut b = *b"\"0000-00-00T00:00:00.000000000Z\"";
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut v = value;
            for i in (at..at + digits).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(1, year as u32, 4);
        put(6, t.month(), 2);
        put(9, t.day(), 2);
        put(12, t.hour(), 2);
        put(15, t.minute(), 2);
        put(18, t.second(), 2);
        let fraction = if nanos == 0 {
            0
        } else if nanos % 1_000_000 == 0 {
            put(21, nanos / 1_000_000, 3);
            4
        } else if nanos % 1_000 == 0 {
            put(21, nanos / 1_000, 6);
            7
        } else {
            put(21, nanos, 9);
            10
        };
        self.raw(&b[..20 + fraction]);
        self.raw(b"Z\"");
    }

    fn optional(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.raw(b"null"),
        }
    }

    /// An integer of at most 2^53, which JCS writes as its decimal digits.
    fn integer(&mut self, n: u64) {
        let _ = write!(self.0, "{n}");
    }

    fn gate(&mut self, g: &GateResult) {
        let GateResult {
            gate,
            status,
            message,
            duration_ms,
        } = g;
        self.raw(b"{\"duration_ms\":");
        self.integer(*duration_ms);
        self.raw(b",\"gate\":");
        self.string(gate);
        self.raw(b",\"message\":");
        self.string(message);
        self.raw(b",\"status\":");
        self.serde(status);
        self.raw(b"}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, TimeZone, Timelike, Utc};
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;
    use crate::gate::GateStatus;
    use crate::history::{EventKind, format::jcs_v2};
    use crate::model::{ArtifactName, Digest, EnvName, Tag};

    fn reference(seq: u64, r: &EventRecord) -> Vec<u8> {
        jcs_v2(seq, r)
    }

    /// Any string: ASCII with every control character and JSON metacharacter, and beyond.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[\\x00-\\x7f]{0,12}",
            any::<String>(),
            "[a-z\"\\\\/\u{7f}\u{e000}-\u{ffff}\u{10000}-\u{10ffff}]{0,6}",
        ]
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        (0i64..4_000_000_000, 0u32..1_000_000_000)
            .prop_map(|(s, n)| Utc.timestamp_opt(s, n).single().unwrap_or_default())
    }

    fn status() -> impl Strategy<Value = GateStatus> {
        prop_oneof![
            Just(GateStatus::Passed),
            Just(GateStatus::Failed),
            Just(GateStatus::Warned),
            Just(GateStatus::Error),
            Just(GateStatus::TimedOut),
        ]
    }

    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..1000,
            Just(MAX_EXACT),
            Just(MAX_EXACT + 1),
            Just(u64::MAX),
            any::<u64>()
        ]
    }

    prop_compose! {
        fn record()(
            kind in proptest::sample::select(EventKind::ALL.to_vec()),
            time in time(),
            id in any::<u128>(),
            actor in text().prop_filter("an actor", |s| Actor::new(s.clone()).is_ok()),
            groups in vec(text(), 0..3),
            names in vec(proptest::option::of("[a-z][a-z0-9-]{0,8}"), 4),
            digest in proptest::option::of("[0-9a-f]{64}"),
            reason in proptest::option::of(text()),
            gates in vec((text(), status(), text(), number()), 0..4),
            details in btree_map(text(), text(), 0..5),
        ) -> EventRecord {
            let mut actor = Actor::new(actor).expect("filtered");
            actor.groups = groups;
            let mut r = EventRecord::new(kind, actor, time);
            r.id = uuid::Uuid::from_u128(id);
            r.artifact = names[0].as_deref().and_then(|n| ArtifactName::new(n).ok());
            r.version = names[1].as_deref().and_then(|n| Tag::new(n).ok());
            r.from = names[2].as_deref().and_then(|n| EnvName::new(n).ok());
            r.environment = names[3].as_deref().and_then(|n| EnvName::new(n).ok());
            r.digest = digest.and_then(|d| Digest::new(format!("sha256:{d}")).ok());
            r.reason = reason;
            r.gates = gates
                .into_iter()
                .map(|(gate, status, message, duration_ms)| GateResult {
                    gate,
                    status,
                    message,
                    duration_ms,
                })
                .collect();
            r.details = details;
            r
        }
    }

    proptest! {
        #[test]
        fn writes_what_serde_jcs_writes(seq in number(), r in record()) {
            match write_v2(seq, &r) {
                Some(bytes) => {
                    let expected = reference(seq, &r);
                    prop_assert_eq!(
                        String::from_utf8_lossy(&bytes),
                        String::from_utf8_lossy(&expected)
                    );
                }
                // Left to serde_jcs only for what the module documentation names.
                None => prop_assert!(
                    seq > MAX_EXACT
                        || r.gates.iter().any(|g| g.duration_ms > MAX_EXACT)
                        || r.details.keys().any(|k| !k.is_ascii())
                ),
            }
        }
    }

    #[test]
    fn kinds_and_times_are_written_like_serde() {
        for kind in EventKind::ALL {
            let mut w = Writer(Vec::new());
            w.string(kind.as_str());
            assert_eq!(w.0, serde_json::to_vec(&kind).expect("kind"), "{kind:?}");
        }
        let base = Utc
            .with_ymd_and_hms(2026, 1, 5, 12, 3, 4)
            .single()
            .expect("time");
        let mut times: Vec<DateTime<Utc>> = [
            0u32,
            1,
            999,
            1_000,
            120_000,
            1_000_000,
            5_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            999_999_999,
        ]
        .into_iter()
        .filter_map(|n| base.with_nanosecond(n))
        .collect();
        // A leap second, left to chrono.
        times.extend(
            Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59)
                .single()
                .and_then(|t| t.with_nanosecond(1_500_000_000)),
        );
        times.extend(
            [
                (0, 1, 1, 0, 0, 0),
                (9, 2, 3, 4, 5, 6),
                (999, 12, 31, 23, 59, 59),
                (2024, 2, 29, 1, 2, 3),
                (9999, 12, 31, 23, 59, 59),
                // Outside 0..=9999, left to chrono.
                (10000, 1, 1, 0, 0, 0),
                (-1, 6, 1, 0, 0, 0),
            ]
            .into_iter()
            .filter_map(|(y, mo, d, h, mi, s)| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single()),
        );
        assert_eq!(times.len(), 19, "every instant is valid: {}", times.len());
        for t in times {
            let mut w = Writer(Vec::new());
            w.time(&t);
            assert_eq!(
                String::from_utf8_lossy(&w.0),
                serde_json::to_string(&t).expect("time"),
                "{t:?}"
            );
        }
    }

    #[test]
    fn a_full_record_is_written_like_serde_jcs() {
        let mut r = EventRecord::new(
            EventKind::PromotionSucceeded,
            Actor::new("ci").expect("actor"),
            Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0)
                .single()
                .expect("time"),
        );
        // Escapes everywhere a string goes (validation is not this writer's business).
        r.actor.id = "ci \"bot\"\n\\".into();
        r.actor.groups = vec!["ops".into(), "dev\u{1}".into()];
        r.artifact = Some(ArtifactName::new("app").expect("name"));
        r.version = Some(Tag::new("v1.2.3").expect("tag"));
        r.from = Some(EnvName::new("dev").expect("env"));
        r.environment = Some(EnvName::new("staging").expect("env"));
        r.digest = Some(Digest::of(b"x"));
        r.reason = Some("tab\there/\u{7f}\u{2028}".into());
        r.gates = vec![GateResult {
            gate: "tests".into(),
            status: GateStatus::Warned,
            message: "é\u{10000}".into(),
            duration_ms: 12,
        }];
        r.details = BTreeMap::from([
            ("request".into(), "x".into()),
            ("tags".into(), "v1.2.3-staging,latest-staging".into()),
        ]);
        let bytes = write_v2(7, &r).expect("the common case");
        assert_eq!(bytes, reference(7, &r));
        // Non-ASCII details keys and large integers are left to serde_jcs.
        r.details.insert("\u{ffff}".into(), "v".into());
        assert_eq!(write_v2(7, &r), None);
        r.details.remove("\u{ffff}");
        assert_eq!(write_v2(MAX_EXACT + 1, &r), None);
        assert!(write_v2(MAX_EXACT, &r).is_some());
    }
}
