//! Reading a format-2 event laid out exactly as this release writes it, in one pass.
//!
//! `verify` reads every stored event. The general reader ([`super::format::format_2_fields`])
//! checks the bytes against RFC 8785 in one pass and then parses them with serde in a second;
//! profiled over a history of 1,000,000 events, those two passes were most of the checking
//! threads' time. Almost every stored event has the one layout the direct writer
//! (`history/canonical.rs`) produces: the members of [`EventRecord`](super::EventRecord) in JCS
//! order, names without escapes, a time in the form chrono writes. [`read`] matches that
//! layout byte by byte, reading the fields `verify` needs on the way, and gives up (`None`) at
//! the first byte that differs, leaving the bytes to the general reader.
//!
//! So [`read`] never decides that bytes are bad: it only recognises bytes it is sure the
//! general reader accepts, and then returns the same fields. Everything it accepts is
//! canonical JCS by construction (members in ascending order with the `details` keys
//! compared, strings with JCS's escapes only, integers of at most 15 digits without a leading
//! zero, no whitespace), and each value has the type serde reads: names checked by the
//! newtypes' validators, the id by `Uuid::parse_str` (what `uuid`'s serde does), the kind and
//! gate statuses by their own `Deserialize` on the string, the time by chrono's parser unless
//! it has the shape `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, read here (checked against chrono
//! below). The tests compare both readers on written events, on edited ones, and on random
//! bytes.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};
use uuid::Uuid;

use super::EventKind;
use super::format::{ContentFields, FORMAT_2};
use crate::gate::GateStatus;
use crate::model::{ArtifactName, Digest, EnvName, Tag};

/// The fields of a format-2 event with the layout this release writes, or `None` when the
/// bytes differ from it anywhere (they may still be a valid event: ask the general reader).
pub(super) fn read(content: &[u8]) -> Option<ContentFields<'_>> {
    let text = std::str::from_utf8(content).ok()?;
    let mut c = Cursor {
        s: content,
        text,
        i: 0,
    };
    // Members in JCS order: actor, artifact, details, digest, environment, format, from,
    // gates, id, kind, reason, seq, time, version.
    c.lit(b"{\"actor\":{\"groups\":[")?;
    c.strings()?;
    c.lit(b"],\"id\":")?;
    c.string()?;
    c.lit(b"},\"artifact\":")?;
    let artifact = c.name(ArtifactName::is_valid)?;
    c.lit(b",\"details\":{")?;
    c.details()?;
    c.lit(b",\"digest\":")?;
    let digest = c.name(Digest::is_valid)?;
    c.lit(b",\"environment\":")?;
    let environment = c.name(EnvName::is_valid)?;
    c.lit(b",\"format\":2,\"from\":")?;
    c.name(EnvName::is_valid)?;
    c.lit(b",\"gates\":[")?;
    c.gates()?;
    c.lit(b",\"id\":")?;
    let id = Uuid::parse_str(c.plain()?).ok()?;
    c.lit(b",\"kind\":")?;
    let kind =
        EventKind::deserialize(BorrowedStrDeserializer::<ValueError>::new(c.plain()?)).ok()?;
    c.lit(b",\"reason\":")?;
    if c.lit(b"null").is_none() {
        c.string()?;
    }
    c.lit(b",\"seq\":")?;
    let seq = c.integer()?;
    c.lit(b",\"time\":")?;
    let time = time(c.plain()?)?;
    c.lit(b",\"version\":")?;
    let version = c.name(Tag::is_valid)?;
    c.lit(b"}")?;
    if c.i != content.len() {
        return None;
    }
    Some(ContentFields {
        seq,
        format: FORMAT_2,
        id,
        time,
        kind,
        artifact: artifact.map(Cow::Borrowed),
        version: version.map(Cow::Borrowed),
        digest: digest.map(Cow::Borrowed),
        environment: environment.map(Cow::Borrowed),
    })
}

/// What serde reads a JSON string of RFC 3339 as (`DateTime<Utc>`'s `Deserialize`): the
/// shape chrono writes is read here, anything else by chrono's parser.
pub(super) fn time(s: &str) -> Option<DateTime<Utc>> {
    match utc_time(s.as_bytes()) {
        Some(t) => Some(t),
        None => s
            .parse::<DateTime<FixedOffset>>()
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f]Z` with 1 to 9 fraction digits and a second below 60, when it
/// names a valid time.
fn utc_time(b: &[u8]) -> Option<DateTime<Utc>> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    }
    let (head, rest) = b.split_at_checked(19)?;
    if head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let year = i32::try_from(num(&head[0..4])?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(&head[5..7])?, num(&head[8..10])?)?;
    let (hour, minute, second) = (
        num(&head[11..13])?,
        num(&head[14..16])?,
        num(&head[17..19])?,
    );
    let nano = match rest {
        b"Z" => 0,
        [b'.', fraction @ .., b'Z'] if (1..=9).contains(&fraction.len()) => {
            num(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    if second > 59 {
        return None;
    }
    Some(date.and_hms_nano_opt(hour, minute, second, nano)?.and_utc())
}

struct Cursor<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Exactly these bytes next.
    fn lit(&mut self, bytes: &[u8]) -> Option<()> {
        self.s.get(self.i..)?.starts_with(bytes).then(|| {
            self.i += bytes.len();
        })
    }

    /// A JSON string as JCS writes it; its text between the quotes (escapes not decoded) and
    /// whether it has escapes.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        loop {
            let rest = self.s.get(j..)?;
            let run = memchr::memchr2(b'"', b'\\', rest)?;
            // Every byte is looked at, so that this is vectorised.
            if rest[..run].iter().fold(false, |c, &b| c | (b < 0x20)) {
                return None;
            }
            j += run;
            if self.s[j] == b'"' {
                break;
            }
            escaped = true;
            j += match self.s.get(j + 1)? {
                b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => 2,
                // Only control characters without a short escape are written as \u00xx, in
                // lower-case hex.
                b'u' => match *self.s.get(j + 2..j + 6)? {
                    [b'0', b'0', b'0', b'0'..=b'7' | b'b' | b'e' | b'f']
                    | [b'0', b'0', b'1', b'0'..=b'9' | b'a'..=b'f'] => 6,
                    _ => return None,
                },
                _ => return None,
            };
        }
        self.i = j + 1;
        Some((self.text.get(start..j)?, escaped))
    }

    /// A string without escapes.
    fn plain(&mut self) -> Option<&'a str> {
        match self.string()? {
            (s, false) => Some(s),
            _ => None,
        }
    }

    /// `null`, or a string without escapes that `valid` accepts.
    fn name(&mut self, valid: fn(&str) -> bool) -> Option<Option<&'a str>> {
        if self.lit(b"null").is_some() {
            return Some(None);
        }
        let s = self.plain()?;
        valid(s).then_some(Some(s))
    }

    /// Strings separated by commas, up to (not including) a `]`.
    fn strings(&mut self) -> Option<()> {
        if self.s.get(self.i) == Some(&b']') {
            return Some(());
        }
        loop {
            self.string()?;
            if self.lit(b",").is_none() {
                return Some(());
            }
        }
    }

    /// An integer of at most 15 digits without a leading zero (JCS writes such an integer as
    /// its digits; serde reads it as itself).
    fn integer(&mut self) -> Option<u64> {
        let rest = self.s.get(self.i..)?;
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 15 || (n > 1 && rest[0] == b'0') {
            return None;
        }
        let v = self.text.get(self.i..self.i + n)?.parse().ok()?;
        self.i += n;
        Some(v)
    }

    /// The members of `details` after its `{`, through its `}`: strings to strings, keys
    /// without escapes in strictly ascending UTF-16 order.
    fn details(&mut self) -> Option<()> {
        if self.lit(b"}").is_some() {
            return Some(());
        }
        let mut previous: Option<&str> = None;
        loop {
            let key = self.plain()?;
            if previous.is_some_and(|p| super::jcs::utf16_cmp(p, key).is_ge()) {
                return None;
            }
            previous = Some(key);
            self.lit(b":")?;
            self.string()?;
            if self.lit(b",").is_none() {
                return self.lit(b"}");
            }
        }
    }

    /// The gate results after the `[`, through the `]`: objects of exactly the members of a
    /// [`GateResult`](crate::gate::GateResult).
    fn gates(&mut self) -> Option<()> {
        if self.lit(b"]").is_some() {
            return Some(());
        }
        loop {
            self.lit(b"{\"duration_ms\":")?;
            self.integer()?;
            self.lit(b",\"gate\":")?;
            self.string()?;
            self.lit(b",\"message\":")?;
            self.string()?;
            self.lit(b",\"status\":")?;
            GateStatus::deserialize(BorrowedStrDeserializer::<ValueError>::new(self.plain()?))
                .ok()?;
            self.lit(b"}")?;
            if self.lit(b",").is_none() {
                return self.lit(b"]");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::super::format::{format_2_fields_general, jcs_v2};
    use super::super::{EventRecord, canonical_json};
    use super::*;
    use crate::gate::GateResult;
    use crate::model::Actor;

    fn record(i: u64) -> EventRecord {
        let time = Utc
            .timestamp_opt(1_700_000_000 + i as i64 * 37, (i as u32 % 7) * 1_000_000)
            .single()
            .expect("time");
        let mut r = EventRecord::new(
            EventKind::ALL[i as usize % EventKind::ALL.len()],
            Actor::new(format!("ci-{i}"))
                .expect("actor")
                .with_groups(["ci", "ops"]),
            time,
        );
        if i % 3 != 0 {
            r.artifact = ArtifactName::new("team/app").ok();
            r.version = Tag::new(format!("v1.{i}")).ok();
            r.digest = Some(Digest::of(format!("{i}").as_bytes()));
            r.from = EnvName::new("staging").ok();
            r.environment = EnvName::new("prod").ok();
        }
        if i % 2 == 0 {
            r.reason = Some("why \"not\"\n\u{1}é".into());
            r.gates = vec![
                GateResult {
                    gate: "signature".into(),
                    status: GateStatus::Passed,
                    message: "ok".into(),
                    duration_ms: i,
                },
                GateResult {
                    gate: "soak".into(),
                    status: GateStatus::TimedOut,
                    message: "tab\there".into(),
                    duration_ms: 0,
                },
            ];
        }
        r.details = BTreeMap::from([
            ("tags".into(), format!("v1.{i}-prod")),
            ("copied_blobs".into(), "3".into()),
            ("Z".into(), "\u{7f}\u{2028}😀".into()),
        ]);
        r
    }

    /// Both readers on `bytes`: when the layout reader accepts, the general reader accepts
    /// with the same fields. Returns whether the layout reader accepted.
    fn agree(bytes: &[u8]) -> bool {
        let Some(fast) = read(bytes) else {
            return false;
        };
        let general = format_2_fields_general(bytes);
        assert_eq!(
            general.as_ref(),
            Some(&fast),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        true
    }

    #[test]
    fn written_events_are_read_in_one_pass() {
        for i in 0..200 {
            let r = record(i);
            let bytes = canonical_json(i + 1, &r);
            assert_eq!(bytes, jcs_v2(i + 1, &r));
            assert!(agree(&bytes), "{}", String::from_utf8_lossy(&bytes));
        }
    }

    /// Every single-byte edit, deletion and insertion of a written event: the layout reader
    /// never accepts what the general reader refuses, nor reads other fields.
    #[test]
    fn edited_events_are_accepted_only_when_the_general_reader_agrees() {
        let bytes = canonical_json(42, &record(4));
        let mut accepted = 0;
        let mut declined = 0;
        let replacements = [
            b'"', b'\\', b',', b':', b'{', b'}', b'[', b']', b'0', b'1', b'9', b'a', b'A', b'Z',
            b'T', b'.', b'-', b' ', b'\n', b'n', b'u', 0x01, 0x7f, 0xc3, 0xff,
        ];
        for at in 0..bytes.len() {
            for &r in &replacements {
                let mut edited = bytes.clone();
                edited[at] = r;
                if agree(&edited) {
                    accepted += 1;
                } else {
                    declined += 1;
                }
                let mut inserted = bytes.clone();
                inserted.insert(at, r);
                if agree(&inserted) {
                    accepted += 1;
                } else {
                    declined += 1;
                }
            }
            let mut removed = bytes.clone();
            removed.remove(at);
            if agree(&removed) {
                accepted += 1;
            } else {
                declined += 1;
            }
        }
        assert!(
            accepted > 500 && declined > 5000,
            "{accepted} accepted, {declined} declined"
        );
    }

    #[test]
    fn times_read_here_are_the_times_chrono_reads() {
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-02-29T23:59:59.999Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T23:59:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567891Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00+00:00",
            "0000-01-01T00:00:00.5Z",
            "+10000-01-01T00:00:00Z",
        ] {
            assert_eq!(
                time(s),
                s.parse::<DateTime<FixedOffset>>()
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
                "{s}"
            );
        }
    }

    proptest! {
        /// Times in the shape read here, valid or not: the same instant as chrono, or both
        /// refuse.
        #[test]
        fn time_agrees_with_chrono(
            y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62,
            s in 0u32..62, frac in proptest::option::of("[0-9]{1,10}"),
        ) {
            let t = format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}Z",
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            );
            prop_assert_eq!(
                time(&t),
                t.parse::<DateTime<FixedOffset>>().ok().map(|t| t.with_timezone(&Utc)),
                "{}", t
            );
        }

        /// Arbitrary bytes spliced into a written event: accepted only when the general
        /// reader accepts them with the same fields.
        #[test]
        fn spliced_events_agree(
            i in 0u64..50,
            at in 0usize..1000,
            cut in 0usize..8,
            insert in proptest::collection::vec(any::<u8>(), 0..8),
            text in "[\\x00-\\x7f]{0,6}",
        ) {
            let bytes = canonical_json(i + 1, &record(i));
            let at = at % bytes.len();
            let end = (at + cut).min(bytes.len());
            for insert in [insert.as_slice(), text.as_bytes()] {
                let mut edited = bytes[..at].to_vec();
                edited.extend_from_slice(insert);
                edited.extend_from_slice(&bytes[end..]);
                agree(&edited);
            }
        }
    }
}
