//! Reading what `verify` needs of a format-2 event without building an [`EventRecord`].
//!
//! `verify` reads every stored event; most of the cost of parsing one into an [`EventRecord`]
//! is copying its strings (a dozen allocations an event). [`RecordView`] has the same members
//! as [`EventRecord`], read by the same derived `Deserialize` logic, with the same types where
//! nothing is copied (`Uuid`, `DateTime<Utc>`, `EventKind`, `GateStatus`, `u64`) and borrowed
//! strings in place of `String`, the name newtypes, `Vec` and `BTreeMap`; the names are then
//! checked with the newtypes' own validators. So it accepts exactly the bytes [`EventRecord`]
//! accepts. The tests below keep the members in step (a member added to [`EventRecord`],
//! [`Actor`](crate::Actor) or [`GateResult`](crate::gate::GateResult) fails to compile there)
//! and compare both readers on edited events.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use uuid::Uuid;

use super::EventKind;
use crate::gate::GateStatus;
use crate::model::{ArtifactName, Digest, EnvName, Tag};

/// A JSON string, borrowed from the input unless it had escapes. Read as `String` is.
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                std::str::from_utf8(v)
                    .map(|s| Cow::Owned(s.to_owned()))
                    .map_err(|_| E::invalid_value(de::Unexpected::Bytes(v), &self))
            }
        }
        // `String` asks for `deserialize_string`: so do we, to accept the same inputs.
        d.deserialize_string(V).map(Text)
    }
}

/// A sequence of `T`, checked and not kept. Read as `Vec<T>` is.
pub(super) struct Seq<T>(PhantomData<T>);

impl<T> Default for Seq<T> {
    fn default() -> Self {
        Seq(PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<T>()?.is_some() {}
                Ok(Seq::default())
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A map of strings to strings, checked and not kept. Read as `BTreeMap<String, String>` is.
pub(super) struct StrMap;

impl<'de> Deserialize<'de> for StrMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Text<'de>, Text<'de>>()?.is_some() {}
                Ok(StrMap)
            }
        }
        d.deserialize_map(V)
    }
}

/// [`crate::Actor`]'s members.
#[derive(Deserialize)]
#[allow(dead_code)]
pub(super) struct ActorView<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(default)]
    groups: Seq<Text<'a>>,
}

/// [`crate::gate::GateResult`]'s members.
#[derive(Deserialize)]
#[allow(dead_code)]
pub(super) struct GateView<'a> {
    #[serde(borrow)]
    gate: Text<'a>,
    status: GateStatus,
    #[serde(borrow)]
    message: Text<'a>,
    duration_ms: u64,
}

/// [`EventRecord`](super::EventRecord)'s members, read without copying; see the module
/// documentation. The names are not checked yet: [`RecordView::names_are_valid`] does.
#[derive(Deserialize)]
pub(super) struct RecordView<'a> {
    pub(super) id: Uuid,
    pub(super) time: DateTime<Utc>,
    pub(super) kind: EventKind,
    #[serde(borrow)]
    #[allow(dead_code)]
    actor: ActorView<'a>,
    #[serde(borrow)]
    pub(super) artifact: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) version: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) digest: Option<Text<'a>>,
    #[serde(borrow)]
    from: Option<Text<'a>>,
    #[serde(borrow)]
    pub(super) environment: Option<Text<'a>>,
    #[serde(borrow)]
    #[allow(dead_code)]
    reason: Option<Text<'a>>,
    #[serde(borrow)]
    #[allow(dead_code)]
    gates: Seq<GateView<'a>>,
    #[allow(dead_code)]
    details: StrMap,
}

impl RecordView<'_> {
    /// Whether the names hold what their newtypes accept, as [`EventRecord`]'s
    /// deserialisation checks them.
    ///
    /// [`EventRecord`]: super::EventRecord
    pub(super) fn names_are_valid(&self) -> bool {
        fn ok(v: &Option<Text<'_>>, valid: fn(&str) -> bool) -> bool {
            v.as_ref().is_none_or(|t| valid(&t.0))
        }
        ok(&self.artifact, ArtifactName::is_valid)
            && ok(&self.version, Tag::is_valid)
            && ok(&self.digest, Digest::is_valid)
            && ok(&self.from, EnvName::is_valid)
            && ok(&self.environment, EnvName::is_valid)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use serde_json::{Value, json};

    use super::super::format::{ContentFields, format_2_fields};
    use super::super::{EventRecord, canonical_json, check_content};
    use super::*;
    use crate::gate::GateResult;
    use crate::model::Actor;

    fn rich() -> EventRecord {
        let time = Utc
            .with_ymd_and_hms(2025, 3, 4, 5, 6, 7)
            .single()
            .expect("time");
        let mut r = EventRecord::new(
            EventKind::PromotionSucceeded,
            Actor::new("alice")
                .expect("actor")
                .with_groups(["release", "ops"]),
            time,
        );
        r.artifact = ArtifactName::new("team/app").ok();
        r.version = Tag::new("v1.2.3").ok();
        r.digest = Some(Digest::of(b"app"));
        r.from = EnvName::new("staging").ok();
        r.environment = EnvName::new("prod").ok();
        r.reason = Some("ship \"it\",\nnow — ünïcödé".into());
        r.gates = vec![GateResult {
            gate: "signature".into(),
            status: GateStatus::Passed,
            message: "verified by key \"a\"".into(),
            duration_ms: 12,
        }];
        r.details = BTreeMap::from([
            ("tags".into(), "v1.2.3-prod".into()),
            ("note".into(), "tab\there".into()),
        ]);
        r
    }

    /// Fails to compile when a member is added to a record, an actor or a gate result: add it
    /// to [`RecordView`], [`ActorView`] or [`GateView`] too, with the same type or one read the
    /// same way, and to the members edited below.
    #[test]
    fn the_views_have_the_members_of_what_they_read() {
        let EventRecord {
            id: _,
            time: _,
            kind: _,
            actor: Actor { id: _, groups: _ },
            artifact: _,
            version: _,
            digest: _,
            from: _,
            environment: _,
            reason: _,
            gates,
            details: _,
        } = rich();
        for GateResult {
            gate: _,
            status: _,
            message: _,
            duration_ms: _,
        } in gates
        {}
    }

    /// Both readers on `value` (canonicalised): the view accepts exactly when
    /// [`check_content`] does, and then reads the same fields. Returns whether they accept.
    fn agree(value: &Value, what: &str) -> bool {
        let bytes = serde_jcs::to_vec(value).expect("jcs");
        let full = check_content(&bytes);
        let fast = format_2_fields(&bytes);
        match (&full, &fast) {
            (Ok((seq, format, record)), Some(fields)) => assert_eq!(
                fields,
                &ContentFields::of(*seq, *format, record.clone()),
                "{what}"
            ),
            (Err(_), None) => return false,
            _ => panic!(
                "{what}: the record reader says {full:?}, the view {}",
                if fast.is_some() { "accepts" } else { "refuses" }
            ),
        }
        true
    }

    #[test]
    fn the_view_accepts_exactly_what_the_record_accepts() {
        let base: Value = serde_json::from_slice(&canonical_json(9, &rich())).expect("json");
        assert!(agree(&base, "unchanged"));
        let mut accepted = 0;
        let mut refused = 0;
        let mut count = |ok: bool| if ok { accepted += 1 } else { refused += 1 };
        let values = [
            Value::Null,
            json!(true),
            json!(0),
            json!(7),
            json!(-1),
            json!(1.5),
            json!(""),
            json!("x"),
            json!("Prod"),
            json!("a\nb"),
            json!("team/app"),
            json!("v1.2.3"),
            json!("passed"),
            json!("promotion_succeeded"),
            json!("2025-03-04T05:06:07Z"),
            json!("2025-03-04T05:06:07+01:00"),
            json!("6f1c3ad8-2a5e-4c0e-9d51-5d0c8a1b2c3d"),
            json!("6f1c3ad82a5e4c0e9d515d0c8a1b2c3d"),
            json!(format!("sha256:{}", "a".repeat(64))),
            json!(format!("sha256:{}", "A".repeat(64))),
            json!([]),
            json!(["x"]),
            json!([1]),
            json!([{}]),
            json!({}),
            json!({"k": "v"}),
            json!({"k": 1}),
        ];
        // Every member, at the top and nested: replaced by each value, removed, and joined by
        // one this release does not know.
        let paths: [&[&str]; 21] = [
            &["id"],
            &["time"],
            &["kind"],
            &["actor"],
            &["actor", "id"],
            &["actor", "groups"],
            &["artifact"],
            &["version"],
            &["digest"],
            &["from"],
            &["environment"],
            &["reason"],
            &["gates"],
            &["gates", "0", "gate"],
            &["gates", "0", "status"],
            &["gates", "0", "message"],
            &["gates", "0", "duration_ms"],
            &["details"],
            &["details", "tags"],
            &["seq"],
            &["format"],
        ];
        fn at<'v>(v: &'v mut Value, path: &[&str]) -> &'v mut Value {
            path.iter().fold(v, |v, p| match v {
                Value::Array(a) => &mut a[p.parse::<usize>().expect("index")],
                _ => &mut v[*p],
            })
        }
        for path in paths {
            let (parent, last) = path.split_at(path.len() - 1);
            for value in &values {
                let mut v = base.clone();
                *at(&mut v, path) = value.clone();
                count(agree(&v, &format!("{path:?} = {value}")));
            }
            let mut v = base.clone();
            if let Value::Object(m) = at(&mut v, parent) {
                m.remove(last[0]);
            }
            count(agree(&v, &format!("{path:?} removed")));
            let mut v = base.clone();
            if let Value::Object(m) = at(&mut v, parent) {
                m.insert("zz_future".into(), json!({"weight": 0.25}));
            }
            count(agree(&v, &format!("a member beside {path:?}")));
        }
        // Both kinds of outcome were seen, many times.
        assert!(
            accepted > 50 && refused > 300,
            "{accepted} accepted, {refused} refused"
        );
    }
}
