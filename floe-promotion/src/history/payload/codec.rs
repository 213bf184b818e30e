//! Reading and writing detail values: the string formats every release so far has written.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::Tag;
use crate::registry::{CopyReport, EvidenceKind, EvidenceStatus};
use crate::state::Liveness;

/// Takes the keys of a details map one by one; what is left is the `other` map.
pub(super) struct Reader<'a> {
    pub(super) event: &'a str,
    pub(super) rest: BTreeMap<String, String>,
}

impl Reader<'_> {
    pub(super) fn bad(&self, key: &str, value: &str, why: impl fmt::Display) -> Error {
        Error::invalid(
            "event detail",
            value,
            format!("`{key}` of event {}: {why}", self.event),
        )
    }

    pub(super) fn optional<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(value) = self.rest.remove(key) else {
            return Ok(None);
        };
        parse(&value)
            .map(Some)
            .map_err(|e| self.bad(key, &value, e))
    }

    pub(super) fn required<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T>,
    ) -> Result<T> {
        self.optional(key, parse)?
            .ok_or_else(|| self.bad(key, "", "missing, and this kind of event requires it"))
    }

    /// A flag written as `"true"` only when set; `"false"` reads as unset.
    pub(super) fn flag(&mut self, key: &str) -> Result<bool> {
        Ok(self
            .optional(key, |s| match s {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::invalid("flag", s, "expected true or false")),
            })?
            .unwrap_or(false))
    }
}

pub(super) struct Writer(pub(super) BTreeMap<String, String>);

impl Writer {
    pub(super) fn put(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }

    pub(super) fn flag(&mut self, key: &str, set: bool) {
        if set {
            self.put(key, "true".into());
        } else {
            self.0.remove(key);
        }
    }
}

pub(super) fn text(s: &str) -> Result<String> {
    Ok(s.to_string())
}

pub(super) fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| Error::invalid("id", s, format!("not a UUID: {e}")))
}

pub(super) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::invalid("time", s, format!("not an RFC 3339 time: {e}")))
}

/// Tags as a comma-separated list (empty: no tags).
pub(super) fn tag_list(tags: &[Tag]) -> String {
    tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(",")
}

pub(super) fn parse_tags(s: &str) -> Result<Vec<Tag>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(Tag::new).collect()
}

const COPY_FIELDS: [&str; 7] = [
    "manifests",
    "mounted",
    "uploaded",
    "skipped",
    "bytes",
    "signatures",
    "referrers",
];

/// A copy report in one line.
pub(super) fn copy_summary(c: &CopyReport) -> String {
    let values = [
        c.manifests_copied,
        c.blobs_mounted,
        c.blobs_uploaded,
        c.blobs_skipped,
        c.bytes_uploaded,
        c.signatures_copied,
        c.referrers_copied,
    ];
    COPY_FIELDS
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn parse_copy(s: &str) -> Result<CopyReport> {
    let bad = || {
        Error::invalid(
            "copy report",
            s,
            format!(
                "expected {}",
                COPY_FIELDS
                    .iter()
                    .map(|k| format!("{k}=<count>"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    };
    let parts: Vec<&str> = s.split(' ').collect();
    if parts.len() != COPY_FIELDS.len() {
        return Err(bad());
    }
    let mut values = [0u64; 7];
    for ((part, name), value) in parts.iter().zip(COPY_FIELDS).zip(values.iter_mut()) {
        let n = part
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(bad)?;
        *value = n.parse().map_err(|_| bad())?;
    }
    let [m, mounted, uploaded, skipped, bytes, signatures, referrers] = values;
    Ok(CopyReport {
        manifests_copied: m,
        blobs_mounted: mounted,
        blobs_uploaded: uploaded,
        blobs_skipped: skipped,
        bytes_uploaded: bytes,
        signatures_copied: signatures,
        referrers_copied: referrers,
    })
}

pub(super) fn parse_evidence_kind(s: &str) -> Result<EvidenceKind> {
    [
        EvidenceKind::Tests,
        EvidenceKind::Policy,
        EvidenceKind::Scan,
    ]
    .into_iter()
    .find(|k| k.to_string() == s)
    .ok_or_else(|| Error::invalid("evidence kind", s, "tests, policy or scan"))
}

pub(super) fn parse_evidence_status(s: &str) -> Result<EvidenceStatus> {
    [EvidenceStatus::Passed, EvidenceStatus::Failed]
        .into_iter()
        .find(|k| k.to_string() == s)
        .ok_or_else(|| Error::invalid("evidence status", s, "passed or failed"))
}

pub(super) fn liveness_str(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Gone => "gone",
        Liveness::Unknown => "unknown",
    }
}

pub(super) fn parse_liveness(s: &str) -> Result<Liveness> {
    [Liveness::Alive, Liveness::Gone, Liveness::Unknown]
        .into_iter()
        .find(|l| liveness_str(*l) == s)
        .ok_or_else(|| Error::invalid("holder liveness", s, "alive, gone or unknown"))
}

pub(super) fn parse_window_kind(s: &str) -> Result<crate::config::WindowKind> {
    s.parse()
        .map_err(|m: String| Error::invalid("window kind", s, m))
}
