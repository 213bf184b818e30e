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
//! compared, strings with JCS's escapes only, integers up to 2^53 without a leading
//! zero, no whitespace), and each value has the type serde reads: names checked by the
//! newtypes' validators, the id by `Uuid::parse_str` (what `uuid`'s serde does), the kind and
//! gate statuses by their own `Deserialize` on the string, the time by chrono's parser unless
//! it has the shape `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, read here (checked against chrono
//! below). The tests compare both readers on written events, on edited ones, and on random
//! bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};
use uuid::Uuid;

use super::format::{ContentFields, FORMAT_2};
use super::{EventKind, EventRecord};
use crate::gate::{GateResult, GateStatus};
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};

/// The fields of a format-2 event with the layout this release writes, or `None` when the
/// bytes differ from it anywhere (they may still be a valid event: ask the general reader).
pub(super) fn read(content: &[u8]) -> Option<ContentFields<'_>> {
    let m = walk(content, &mut ())?;
    Some(ContentFields {
        seq: m.seq,
        format: FORMAT_2,
        id: m.id,
        time: m.time,
        kind: m.kind,
        artifact: m.artifact.map(Cow::Borrowed),
        version: m.version.map(Cow::Borrowed),
        digest: m.digest.map(Cow::Borrowed),
        environment: m.environment.map(Cow::Borrowed),
    })
}

/// The sequence number and record of a format-2 event with the layout this release writes,
/// as [`parse_content`](super::parse_content) reads them, or `None` when the bytes differ from
/// the layout anywhere. Used when events are read back, where the bytes are not checked.
pub(super) fn record(content: &[u8]) -> Option<(u64, EventRecord)> {
    let mut lists = Lists::default();
    let m = walk(content, &mut lists)?;
    Some((
        m.seq,
        EventRecord {
            id: m.id,
            time: m.time,
            kind: m.kind,
            actor: Actor {
                id: m.actor.decode(),
                groups: lists.groups,
            },
            artifact: m
                .artifact
                .map(str::parse::<ArtifactName>)
                .transpose()
                .ok()?,
            version: m.version.map(str::parse::<Tag>).transpose().ok()?,
            digest: m.digest.map(str::parse::<Digest>).transpose().ok()?,
            from: m.from.map(str::parse::<EnvName>).transpose().ok()?,
            environment: m.environment.map(str::parse::<EnvName>).transpose().ok()?,
            reason: m.reason.map(Str::decode),
            gates: lists.gates,
            details: lists.details,
        },
    ))
}

/// A string as written: its text between the quotes, and whether it has escapes (only the
/// ones JCS writes).
#[derive(Clone, Copy)]
struct Str<'a>(&'a str, bool);

impl Str<'_> {
    /// The string's value.
    fn decode(self) -> String {
        let Str(raw, escaped) = self;
        if !escaped {
            return raw.to_owned();
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let (c, len) = match rest.as_bytes().get(at + 1) {
                Some(b'"') => ('"', 2),
                Some(b'\\') => ('\\', 2),
                Some(b'b') => ('\u{8}', 2),
                Some(b't') => ('\t', 2),
                Some(b'n') => ('\n', 2),
                Some(b'f') => ('\u{c}', 2),
                Some(b'r') => ('\r', 2),
                // `\u00xx`, checked by the walk.
                _ => {
                    let hex = rest.get(at + 2..at + 6).unwrap_or_default();
                    let v = u8::from_str_radix(hex, 16).unwrap_or_default();
                    (char::from(v), 6)
                }
            };
            out.push(c);
            rest = rest.get(at + len..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }
}

/// The members of an event, strings as written.
struct Members<'a> {
    actor: Str<'a>,
    artifact: Option<&'a str>,
    digest: Option<&'a str>,
    environment: Option<&'a str>,
    from: Option<&'a str>,
    id: Uuid,
    kind: EventKind,
    reason: Option<Str<'a>>,
    seq: u64,
    time: DateTime<Utc>,
    version: Option<&'a str>,
}

/// What the walk hands over of the lists (groups, details, gates) as it meets them.
trait Collect<'a> {
    fn group(&mut self, group: Str<'a>);
    fn detail(&mut self, key: &'a str, value: Str<'a>);
    fn gate(&mut self, duration_ms: u64, gate: Str<'a>, message: Str<'a>, status: GateStatus);
}

/// `verify` keeps none of them.
impl Collect<'_> for () {
    fn group(&mut self, _: Str<'_>) {}
    fn detail(&mut self, _: &str, _: Str<'_>) {}
    fn gate(&mut self, _: u64, _: Str<'_>, _: Str<'_>, _: GateStatus) {}
}

/// A record keeps them all, decoded.
#[derive(Default)]
struct Lists {
    groups: Vec<String>,
    details: BTreeMap<String, String>,
    gates: Vec<GateResult>,
}

impl Collect<'_> for Lists {
    fn group(&mut self, group: Str<'_>) {
        self.groups.push(group.decode());
    }
    fn detail(&mut self, key: &str, value: Str<'_>) {
        self.details.insert(key.to_owned(), value.decode());
    }
    fn gate(&mut self, duration_ms: u64, gate: Str<'_>, message: Str<'_>, status: GateStatus) {
        self.gates.push(GateResult {
            gate: gate.decode(),
            status,
            message: message.decode(),
            duration_ms,
        });
    }
}

/// Matches the layout, handing the lists to `lists`; `None` at the first byte that differs.
fn walk<'a>(content: &'a [u8], lists: &mut impl Collect<'a>) -> Option<Members<'a>> {
    let text = std::str::from_utf8(content).ok()?;
    let mut c = Cursor {
        s: content,
        text,
        i: 0,
    };
    // Members in JCS order: actor, artifact, details, digest, environment, format, from,
    // gates, id, kind, reason, seq, time, version.
    c.lit(b"{\"actor\":{\"groups\":[")?;
    c.groups(lists)?;
    c.lit(b"],\"id\":")?;
    let actor = c.string()?;
    c.lit(b"},\"artifact\":")?;
    let artifact = c.name(ArtifactName::is_valid)?;
    c.lit(b",\"details\":{")?;
    c.details(lists)?;
    c.lit(b",\"digest\":")?;
    let digest = c.name(Digest::is_valid)?;
    c.lit(b",\"environment\":")?;
    let environment = c.name(EnvName::is_valid)?;
    c.lit(b",\"format\":2,\"from\":")?;
    let from = c.name(EnvName::is_valid)?;
    c.lit(b",\"gates\":[")?;
    c.gates(lists)?;
    c.lit(b",\"id\":")?;
    let id = Uuid::parse_str(c.plain()?).ok()?;
    c.lit(b",\"kind\":")?;
    let kind =
        EventKind::deserialize(BorrowedStrDeserializer::<ValueError>::new(c.plain()?)).ok()?;
    c.lit(b",\"reason\":")?;
    let reason = match c.lit(b"null") {
        Some(()) => None,
        None => Some(c.string()?),
    };
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
    Some(Members {
        actor,
        artifact,
        digest,
        environment,
        from,
        id,
        kind,
        reason,
        seq,
        time,
        version,
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
    fn string(&mut self) -> Option<Str<'a>> {
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
        Some(Str(self.text.get(start..j)?, escaped))
    }

    /// A string without escapes.
    fn plain(&mut self) -> Option<&'a str> {
        match self.string()? {
            Str(s, false) => Some(s),
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

    /// The actor's groups after the `[`, up to (not including) the `]`.
    fn groups(&mut self, lists: &mut impl Collect<'a>) -> Option<()> {
        if self.s.get(self.i) == Some(&b']') {
            return Some(());
        }
        loop {
            lists.group(self.string()?);
            if self.lit(b",").is_none() {
                return Some(());
            }
        }
    }

    /// An integer of at most 2^53 without a leading zero: JCS writes such an integer as its
    /// digits (a double holds it exactly), and serde reads it as itself.
    fn integer(&mut self) -> Option<u64> {
        let rest = self.s.get(self.i..)?;
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 16 || (n > 1 && rest[0] == b'0') {
            return None;
        }
        let v: u64 = self.text.get(self.i..self.i + n)?.parse().ok()?;
        if v > 1 << 53 {
            return None;
        }
        self.i += n;
        Some(v)
    }

    /// The members of `details` after its `{`, through its `}`: strings to strings, keys
    /// without escapes in strictly ascending UTF-16 order.
    fn details(&mut self, lists: &mut impl Collect<'a>) -> Option<()> {
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
            lists.detail(key, self.string()?);
            if self.lit(b",").is_none() {
                return self.lit(b"}");
            }
        }
    }

    /// The gate results after the `[`, through the `]`: objects of exactly the members of a
    /// [`GateResult`](crate::gate::GateResult).
    fn gates(&mut self, lists: &mut impl Collect<'a>) -> Option<()> {
        if self.lit(b"]").is_some() {
            return Some(());
        }
        loop {
            self.lit(b"{\"duration_ms\":")?;
            let duration_ms = self.integer()?;
            self.lit(b",\"gate\":")?;
            let gate = self.string()?;
            self.lit(b",\"message\":")?;
            let message = self.string()?;
            self.lit(b",\"status\":")?;
            let status =
                GateStatus::deserialize(BorrowedStrDeserializer::<ValueError>::new(self.plain()?))
                    .ok()?;
            lists.gate(duration_ms, gate, message, status);
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

    use super::super::format::{
        check_content_general, format_2_fields_general, jcs_v2, parse_content_general,
    };
    use super::super::{EventRecord, canonical_json};
    use super::*;
    use crate::gate::GateResult;
    use crate::model::Actor;

    fn sample(i: u64) -> EventRecord {
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
        if !i.is_multiple_of(3) {
            r.artifact = ArtifactName::new("team/app").ok();
            r.version = Tag::new(format!("v1.{i}")).ok();
            r.digest = Some(Digest::of(format!("{i}").as_bytes()));
            r.from = EnvName::new("staging").ok();
            r.environment = EnvName::new("prod").ok();
        }
        if i.is_multiple_of(2) {
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

    /// Both readers on `bytes`: when the layout reader accepts, the general readers accept
    /// with the same fields and record; the layout reader reads fields exactly when it reads a
    /// record. Returns whether the layout reader accepted.
    fn agree(bytes: &[u8]) -> bool {
        let what = String::from_utf8_lossy(bytes);
        let fields = read(bytes);
        let record = super::record(bytes);
        assert_eq!(fields.is_some(), record.is_some(), "{what}");
        let (Some(fields), Some((seq, record))) = (fields, record) else {
            return false;
        };
        assert_eq!(
            format_2_fields_general(bytes).as_ref(),
            Some(&fields),
            "{what}"
        );
        let read = (seq, FORMAT_2, record);
        assert_eq!(parse_content_general(bytes).as_ref(), Ok(&read), "{what}");
        assert_eq!(check_content_general(bytes).as_ref(), Ok(&read), "{what}");
        true
    }

    #[test]
    fn written_events_are_read_in_one_pass() {
        for i in 0..200 {
            let r = sample(i);
            let bytes = canonical_json(i + 1, &r);
            assert_eq!(bytes, jcs_v2(i + 1, &r));
            assert!(agree(&bytes), "{}", String::from_utf8_lossy(&bytes));
        }
    }

    /// Every single-byte edit, deletion and insertion of a written event: the layout reader
    /// never accepts what the general reader refuses, nor reads other fields.
    #[test]
    fn edited_events_are_accepted_only_when_the_general_reader_agrees() {
        let bytes = canonical_json(42, &sample(4));
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

        /// Written events with any text in the members that take text: read in one pass, to
        /// the record serde reads (escapes decoded).
        #[test]
        fn written_events_with_any_text_agree(
            actor in "[ -~]{1,8}",
            group in any::<String>(),
            reason in any::<String>(),
            key in "[a-zA-Z0-9_ ]{0,5}",
            value in any::<String>(),
            gate in any::<String>(),
            message in "[\\x00-\\x7f]{0,12}",
            duration_ms in 0u64..=1 << 53,
        ) {
            let mut r = sample(4);
            r.actor.id = actor;
            r.actor.groups.push(group);
            r.reason = Some(reason);
            r.details.insert(key, value);
            r.gates[0].gate = gate;
            r.gates[1].message = message;
            r.gates[1].duration_ms = duration_ms;
            let bytes = canonical_json(5, &r);
            prop_assert!(agree(&bytes), "{}", String::from_utf8_lossy(&bytes));
            prop_assert_eq!(super::record(&bytes).map(|(_, r)| r), Some(r));
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
            let bytes = canonical_json(i + 1, &sample(i));
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
