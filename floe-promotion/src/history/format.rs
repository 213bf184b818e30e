//! Audit formats: which bytes an event's hash covers, how to write them and how to read them
//! back. See the [module documentation](super#audit-formats).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{EventKind, EventRecord};
use crate::gate::GateStatus;
use crate::model::{ArtifactName, Digest, EnvName, Tag};

/// Format 1, written by the first release: serde_json of `{seq, …record}` with the record's
/// fields in declaration order, `details` sorted, no whitespace, and no `format` member.
pub const FORMAT_1: u32 = 1;

/// Format 2: RFC 8785 (JCS) canonical JSON of `{format: 2, seq, …record}`.
pub const FORMAT_2: u32 = 2;

/// The format this release writes.
pub const AUDIT_FORMAT: u32 = FORMAT_2;

/// Stored bytes that are not a readable, canonical event of a format this release knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadContent(pub String);

#[derive(Serialize)]
struct V2<'a> {
    format: u32,
    seq: u64,
    #[serde(flatten)]
    record: &'a EventRecord,
}

/// The canonical JSON of a new event, in the current format ([`AUDIT_FORMAT`]): RFC 8785
/// (JCS) of `{"format":2,"seq":…,…record}`. The hash covers exactly these bytes.
///
/// The common case is written directly (see `history/canonical.rs`); the rest, and every
/// event in a debug build as a check, goes through `serde_jcs`.
pub fn canonical_json(seq: u64, record: &EventRecord) -> Vec<u8> {
    match super::canonical::write_v2(seq, record) {
        Some(bytes) => {
            debug_assert_eq!(
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&jcs_v2(seq, record)),
                "the direct format-2 writer differs from serde_jcs"
            );
            bytes
        }
        None => jcs_v2(seq, record),
    }
}

/// [`canonical_json`] by `serde_jcs`, the reference.
pub(super) fn jcs_v2(seq: u64, record: &EventRecord) -> Vec<u8> {
    // The record holds strings, integers and string maps: JCS of those cannot fail.
    serde_jcs::to_vec(&V2 {
        format: FORMAT_2,
        seq,
        record,
    })
    .unwrap_or_default()
}

/// The members of a format-1 event, in the order format 1 writes them. Frozen: fields added
/// to [`EventRecord`] later are not part of format 1.
const V1_FIELDS: [&str; 13] = [
    "seq",
    "id",
    "time",
    "kind",
    "actor",
    "artifact",
    "version",
    "digest",
    "from",
    "environment",
    "reason",
    "gates",
    "details",
];

#[derive(Serialize)]
struct V1<'a> {
    seq: u64,
    id: &'a Uuid,
    time: &'a DateTime<Utc>,
    kind: EventKind,
    actor: V1Actor<'a>,
    artifact: &'a Option<ArtifactName>,
    version: &'a Option<Tag>,
    digest: &'a Option<Digest>,
    from: &'a Option<EnvName>,
    environment: &'a Option<EnvName>,
    reason: &'a Option<String>,
    gates: Vec<V1Gate<'a>>,
    details: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct V1Actor<'a> {
    id: &'a str,
    groups: &'a [String],
}

#[derive(Serialize)]
struct V1Gate<'a> {
    gate: &'a str,
    status: GateStatus,
    message: &'a str,
    duration_ms: u64,
}

/// The canonical JSON of an event in format 1 ([`FORMAT_1`]): how the first release hashed
/// events, kept to verify the chains it wrote.
pub fn canonical_json_v1(seq: u64, r: &EventRecord) -> Vec<u8> {
    let v1 = V1 {
        seq,
        id: &r.id,
        time: &r.time,
        kind: r.kind,
        actor: V1Actor {
            id: &r.actor.id,
            groups: &r.actor.groups,
        },
        artifact: &r.artifact,
        version: &r.version,
        digest: &r.digest,
        from: &r.from,
        environment: &r.environment,
        reason: &r.reason,
        gates: r
            .gates
            .iter()
            .map(|g| V1Gate {
                gate: &g.gate,
                status: g.status,
                message: &g.message,
                duration_ms: g.duration_ms,
            })
            .collect(),
        details: &r.details,
    };
    // Serialising plain data (strings, numbers, sorted maps) into a Vec cannot fail.
    serde_json::to_vec(&v1).unwrap_or_default()
}

/// `hex(SHA-256(prev_hash ‖ content))`: the hash of an event whose stored bytes are `content`.
pub fn content_hash(prev_hash: &str, content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(content);
    // Into a buffer: `hex::encode` builds the string a char at a time.
    let mut hex = [0u8; 64];
    match hex::encode_to_slice(h.finalize(), &mut hex) {
        Ok(()) => String::from_utf8_lossy(&hex).into_owned(),
        Err(_) => unreachable!("32 bytes are 64 hex digits"),
    }
}

/// `content_hash(prev_hash, canonical_json(seq, record))`: the hash a new event gets.
pub fn event_hash(prev_hash: &str, seq: u64, record: &EventRecord) -> String {
    content_hash(prev_hash, &canonical_json(seq, record))
}

#[derive(Deserialize)]
struct Head {
    seq: u64,
    format: Option<u32>,
}

/// Reads stored bytes: the sequence number, the format (1 when the bytes have no `format`
/// member) and the record. Members this release does not know are ignored. Does not check
/// that the bytes are canonical: see [`check_content`].
///
/// Bytes laid out as this release writes them, the common case, are read in one pass
/// (`history/layout.rs`); the rest by serde.
pub fn parse_content(content: &[u8]) -> Result<(u64, u32, EventRecord), BadContent> {
    match super::layout::record(content) {
        Some((seq, record)) => Ok((seq, FORMAT_2, record)),
        None => parse_content_general(content),
    }
}

/// [`parse_content`] by serde, for any bytes.
pub(super) fn parse_content_general(content: &[u8]) -> Result<(u64, u32, EventRecord), BadContent> {
    let bad =
        |e: serde_json::Error| BadContent(format!("the stored content is not a valid event: {e}"));
    let head: Head = serde_json::from_slice(content).map_err(bad)?;
    let format = head.format.unwrap_or(FORMAT_1);
    if format != FORMAT_1 && format != FORMAT_2 {
        return Err(BadContent(format!(
            "the event is in audit format {format}, which this release does not know (it reads formats 1 and 2); use a newer floe-promotion"
        )));
    }
    let record: EventRecord = serde_json::from_slice(content).map_err(bad)?;
    Ok((head.seq, format, record))
}

/// Checks that `content`, which [`parse_content`] read as `(seq, format, record)`, is the
/// canonical JSON of its format: RFC 8785 for format 2; for format 1, exactly what format 1
/// writes for that record (so no member was added, removed or reordered).
pub fn check_canonical(
    format: u32,
    seq: u64,
    record: &EventRecord,
    content: &[u8],
) -> Result<(), BadContent> {
    match format {
        FORMAT_2 => super::jcs::check(content).map_err(|(at, expected)| {
            BadContent(format!(
                "the stored content is not canonical JSON (RFC 8785): expected {expected} at byte {at}"
            ))
        }),
        FORMAT_1 if canonical_json_v1(seq, record) == content => Ok(()),
        FORMAT_1 => Err(BadContent(
            "the stored content is not the canonical format-1 JSON of the event it holds".into(),
        )),
        other => Err(BadContent(format!("unknown audit format {other}"))),
    }
}

/// [`parse_content`] and [`check_canonical`]: what stored bytes hold, when they are a
/// canonical event.
///
/// Format 2 laid out as this release writes it, the common case, is checked and read in one
/// pass (`history/layout.rs`); other format-2 bytes are checked in one pass that also reads
/// `seq` and `format`, and the record is parsed once.
pub fn check_content(content: &[u8]) -> Result<(u64, u32, EventRecord), BadContent> {
    // The layout this release writes is canonical: read in one pass.
    if let Some((seq, record)) = super::layout::record(content) {
        return Ok((seq, FORMAT_2, record));
    }
    check_content_general(content)
}

/// [`check_content`] without the one-pass reader.
pub(super) fn check_content_general(content: &[u8]) -> Result<(u64, u32, EventRecord), BadContent> {
    if let Ok(super::jcs::Top {
        seq: Some(seq),
        format: Some(2),
    }) = super::jcs::check_top(content)
    {
        let record: EventRecord = serde_json::from_slice(content)
            .map_err(|e| BadContent(format!("the stored content is not a valid event: {e}")))?;
        return Ok((seq, FORMAT_2, record));
    }
    let (seq, format, record) = parse_content(content)?;
    check_canonical(format, seq, &record, content)?;
    Ok((seq, format, record))
}

/// What `verify` needs of an event's stored bytes: what [`check_content`] reads, with the
/// record reduced to its id, time, kind and names, borrowed from the bytes where possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentFields<'a> {
    /// The sequence number the bytes hold.
    pub seq: u64,
    /// Their audit format.
    pub format: u32,
    /// [`EventRecord::id`].
    pub id: Uuid,
    /// [`EventRecord::time`].
    pub time: DateTime<Utc>,
    /// [`EventRecord::kind`].
    pub kind: EventKind,
    /// [`EventRecord::artifact`].
    pub artifact: Option<Cow<'a, str>>,
    /// [`EventRecord::version`].
    pub version: Option<Cow<'a, str>>,
    /// [`EventRecord::digest`].
    pub digest: Option<Cow<'a, str>>,
    /// [`EventRecord::environment`].
    pub environment: Option<Cow<'a, str>>,
}

impl ContentFields<'_> {
    pub(super) fn of(seq: u64, format: u32, r: EventRecord) -> Self {
        ContentFields {
            seq,
            format,
            id: r.id,
            time: r.time,
            kind: r.kind,
            artifact: r.artifact.map(|v| Cow::Owned(v.into())),
            version: r.version.map(|v| Cow::Owned(v.into())),
            digest: r.digest.map(|v| Cow::Owned(v.into())),
            environment: r.environment.map(|v| Cow::Owned(v.into())),
        }
    }
}

/// [`check_content`], without building the [`EventRecord`]: accepts exactly the bytes it
/// accepts, with the same error, and returns the same sequence number, format and fields.
///
/// A canonical format-2 event, the common case, is read in place (its strings are checked,
/// not copied): `verify` runs this for every stored event. Anything else, and any failure,
/// goes through [`check_content`].
pub fn check_content_fields(content: &[u8]) -> Result<ContentFields<'_>, BadContent> {
    if let Some(fields) = format_2_fields(content) {
        return Ok(fields);
    }
    let (seq, format, record) = check_content(content)?;
    Ok(ContentFields::of(seq, format, record))
}

/// The fields of a canonical format-2 event read in place, or `None` when the bytes are
/// anything else (or not an event at all).
///
/// The layout this release writes is matched in one pass (`history/layout.rs`); other bytes go
/// through [`format_2_fields_general`], which accepts everything the layout reader does, with
/// the same fields.
pub(super) fn format_2_fields(content: &[u8]) -> Option<ContentFields<'_>> {
    super::layout::read(content).or_else(|| format_2_fields_general(content))
}

/// [`format_2_fields`] by the general reader: the bytes checked canonical, then parsed.
pub(super) fn format_2_fields_general<'a>(content: &'a [u8]) -> Option<ContentFields<'a>> {
    let super::jcs::Top {
        seq: Some(seq),
        format: Some(2),
    } = super::jcs::check_top(content).ok()?
    else {
        return None;
    };
    let view: super::fields::RecordView<'a> = serde_json::from_slice(content).ok()?;
    if !view.names_are_valid() {
        return None;
    }
    let text = |t: Option<super::fields::Text<'a>>| t.map(|t| t.0);
    Some(ContentFields {
        seq,
        format: FORMAT_2,
        id: view.id,
        time: view.time,
        kind: view.kind,
        artifact: text(view.artifact),
        version: text(view.version),
        digest: text(view.digest),
        environment: text(view.environment),
    })
}

/// Rebuilds the stored bytes of an event from its JSON object without `prev_hash` and `hash`
/// (an exported line, in any member order): JCS of the object for format 2; for format 1,
/// the format-1 JSON of the record, refusing members format 1 does not have.
pub(crate) fn content_from_json(
    members: serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<u8>, BadContent> {
    let format = match members.get("format") {
        None => FORMAT_1,
        Some(v) => v
            .as_u64()
            .and_then(|f| u32::try_from(f).ok())
            .ok_or_else(|| BadContent(format!("format {v} is not a format number")))?,
    };
    match format {
        FORMAT_2 => serde_jcs::to_vec(&members)
            .map_err(|e| BadContent(format!("the event cannot be canonicalised: {e}"))),
        FORMAT_1 => {
            if let Some(extra) = members.keys().find(|k| !V1_FIELDS.contains(&k.as_str())) {
                return Err(BadContent(format!(
                    "member {extra:?} is not part of a format-1 event"
                )));
            }
            let seq = members
                .get("seq")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| BadContent("the event has no sequence number".into()))?;
            let record: EventRecord = serde_json::from_value(serde_json::Value::Object(members))
                .map_err(|e| BadContent(format!("not an audit event: {e}")))?;
            Ok(canonical_json_v1(seq, &record))
        }
        other => Err(BadContent(format!(
            "the event is in audit format {other}, which this release does not know; use a newer floe-promotion"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Actor;

    fn record() -> EventRecord {
        let mut r = EventRecord::new(
            EventKind::Locked,
            Actor::new("ops").expect("actor"),
            DateTime::parse_from_rfc3339("2025-01-02T03:04:05.123456789Z")
                .expect("time")
                .with_timezone(&Utc),
        );
        r.details = BTreeMap::from([
            ("\u{10000}".into(), "astral".into()),
            ("\u{ffff}".into(), "bmp".into()),
            ("b".into(), "tab\there".into()),
        ]);
        r
    }

    #[test]
    fn format_2_is_jcs_with_format_and_seq() {
        let r = record();
        let bytes = canonical_json(7, &r);
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        assert!(
            text.starts_with("{\"actor\":{\"groups\":[],\"id\":\"ops\"},"),
            "{text}"
        );
        assert_eq!(text.matches("\"format\":2").count(), 1, "{text}");
        assert_eq!(text.matches("\"seq\":7").count(), 1, "{text}");
        // Keys sort by UTF-16 code units: U+10000 (a surrogate pair) before U+FFFF.
        assert!(text.find('\u{10000}') < text.find('\u{ffff}'), "{text}");
        assert_eq!(check_content(&bytes), Ok((7, FORMAT_2, r)));
    }

    #[test]
    fn format_1_is_the_first_release_layout() {
        let r = record();
        let bytes = canonical_json_v1(3, &r);
        assert!(bytes.starts_with(b"{\"seq\":3,\"id\":"));
        assert_eq!(check_content(&bytes), Ok((3, FORMAT_1, r.clone())));
        // The same record reordered, or with a member format 1 does not have, is refused.
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).expect("json");
        assert_eq!(content_from_json(v.clone()), Ok(bytes.clone()));
        let reordered = serde_json::to_vec(&v).expect("json");
        assert!(check_content(&reordered).is_err());
        v.insert("extra".into(), serde_json::Value::Null);
        assert!(content_from_json(v).is_err());
    }

    #[test]
    fn unknown_members_are_read_and_kept_in_format_2() {
        let r = record();
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&canonical_json(1, &r)).expect("json");
        v.insert("zz_future".into(), serde_json::json!({"weight": 0.25}));
        let bytes = content_from_json(v).expect("canonical");
        assert!(
            std::str::from_utf8(&bytes)
                .expect("utf-8")
                .ends_with(",\"zz_future\":{\"weight\":0.25}}")
        );
        assert_eq!(check_content(&bytes), Ok((1, FORMAT_2, r)));
    }

    #[test]
    fn unknown_formats_are_refused_by_name() {
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&canonical_json(1, &record())).expect("json");
        v.insert("format".into(), 3.into());
        let bytes = serde_jcs::to_vec(&v).expect("jcs");
        let err = parse_content(&bytes).expect_err("format 3");
        assert!(err.0.contains("format 3"), "{err}");
        assert!(content_from_json(v).is_err());
    }
}
