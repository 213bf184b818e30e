//! The typed details of blue-green events: a preview staged on the idle slot, a switch.

use std::collections::BTreeMap;
use std::str::FromStr;

use uuid::Uuid;

use super::codec::*;
use super::key;
use crate::error::Result;
use crate::model::{Digest, Tag};
use crate::registry::CopyReport;
use crate::release::blue_green::Slot;

/// A promotion staged its digest on the idle slot of a blue-green environment (details of
/// [`EventKind::PreviewStaged`](crate::history::EventKind::PreviewStaged)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviewStaged {
    /// The promotion request (its `promotion_requested` event's id, or the approval request's
    /// id). Key `request`.
    pub request: Uuid,
    /// The slot written (`blue` or `green`). Key `slot`.
    pub slot: Slot,
    /// The tags written, in order (the environment tag, then `<env>-<slot>`); empty when they
    /// held the digest already. Key `tags`, comma-separated.
    pub tags: Vec<Tag>,
    /// Tags whose write failed but that the registry holds all the same (a lost reply). Key
    /// `confirmed_after_lost_reply`, written when not empty.
    pub confirmed_after_lost_reply: Vec<Tag>,
    /// What the copy moved, when the repositories differ. Key `copy`.
    pub copy: Option<CopyReport>,
    /// The digest of the preview this one replaced, when one was staged. Key `replaced`.
    pub replaced: Option<Digest>,
    /// The approval request this promotion executed. Key `approval`.
    pub approval: Option<Uuid>,
    /// Who ran the approved request. Key `executed_by`.
    pub executed_by: Option<String>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl PreviewStaged {
    /// The payload of promotion `request`, which staged on `slot` writing `tags`.
    pub fn new(request: Uuid, slot: Slot, tags: Vec<Tag>) -> Self {
        PreviewStaged {
            request,
            slot,
            tags,
            confirmed_after_lost_reply: Vec::new(),
            copy: None,
            replaced: None,
            approval: None,
            executed_by: None,
            other: BTreeMap::new(),
        }
    }

    pub(super) fn read(d: &mut Reader<'_>) -> Result<Self> {
        Ok(PreviewStaged {
            request: d.required(key::REQUEST, parse_uuid)?,
            slot: d.required(key::SLOT, Slot::from_str)?,
            tags: d.required(key::TAGS, parse_tags)?,
            confirmed_after_lost_reply: d.optional(key::CONFIRMED, parse_tags)?.unwrap_or_default(),
            copy: d.optional(key::COPY, parse_copy)?,
            replaced: d.optional(key::REPLACED, Digest::from_str)?,
            approval: d.optional(key::APPROVAL, parse_uuid)?,
            executed_by: d.optional(key::EXECUTED_BY, text)?,
            other: BTreeMap::new(),
        })
    }

    pub(super) fn write(&self, w: &mut Writer) {
        w.put(key::REQUEST, self.request.to_string());
        w.put(key::SLOT, self.slot.as_str().into());
        w.put(key::TAGS, tag_list(&self.tags));
        if !self.confirmed_after_lost_reply.is_empty() {
            w.put(key::CONFIRMED, tag_list(&self.confirmed_after_lost_reply));
        }
        if let Some(c) = &self.copy {
            w.put(key::COPY, copy_summary(c));
        }
        if let Some(d) = &self.replaced {
            w.put(key::REPLACED, d.to_string());
        }
        if let Some(id) = self.approval {
            w.put(key::APPROVAL, id.to_string());
        }
        if let Some(by) = &self.executed_by {
            w.put(key::EXECUTED_BY, by.clone());
        }
    }
}

/// A blue-green switch moved the pointer to a slot (details of
/// [`EventKind::Switched`](crate::history::EventKind::Switched)); the event's version and
/// digest are the slot's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Switched {
    /// The switch's id. Key `request`.
    pub request: Uuid,
    /// The slot that is live now. Key `slot`.
    pub slot: Slot,
    /// The slot that was live before, if any (it is idle now). Key `previous_slot`.
    pub previous_slot: Option<Slot>,
    /// The digest the pointer left, if it was on one. Key `previous_digest`.
    pub previous_digest: Option<Digest>,
    /// The version the pointer left, if any. Key `previous_version`.
    pub previous_version: Option<Tag>,
    /// A switch back to the previous slot (the instant rollback). Key `back`, `"true"`,
    /// written only when true.
    pub back: bool,
    /// The tags written (the pointer); empty when it held the digest already. Key `tags`.
    pub tags: Vec<Tag>,
    /// Tags whose write failed but that the registry holds all the same (a lost reply). Key
    /// `confirmed_after_lost_reply`, written when not empty.
    pub confirmed_after_lost_reply: Vec<Tag>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl Switched {
    /// The payload of switch `request` to `slot`, which wrote `tags`.
    pub fn new(request: Uuid, slot: Slot, tags: Vec<Tag>) -> Self {
        Switched {
            request,
            slot,
            previous_slot: None,
            previous_digest: None,
            previous_version: None,
            back: false,
            tags,
            confirmed_after_lost_reply: Vec::new(),
            other: BTreeMap::new(),
        }
    }

    pub(super) fn read(d: &mut Reader<'_>) -> Result<Self> {
        Ok(Switched {
            request: d.required(key::REQUEST, parse_uuid)?,
            slot: d.required(key::SLOT, Slot::from_str)?,
            previous_slot: d.optional(key::PREVIOUS_SLOT, Slot::from_str)?,
            previous_digest: d.optional(key::PREVIOUS_DIGEST, Digest::from_str)?,
            previous_version: d.optional(key::PREVIOUS_VERSION, |s| Tag::new(s))?,
            back: d.flag(key::BACK)?,
            tags: d.required(key::TAGS, parse_tags)?,
            confirmed_after_lost_reply: d.optional(key::CONFIRMED, parse_tags)?.unwrap_or_default(),
            other: BTreeMap::new(),
        })
    }

    pub(super) fn write(&self, w: &mut Writer) {
        w.put(key::REQUEST, self.request.to_string());
        w.put(key::SLOT, self.slot.as_str().into());
        if let Some(s) = self.previous_slot {
            w.put(key::PREVIOUS_SLOT, s.as_str().into());
        }
        if let Some(d) = &self.previous_digest {
            w.put(key::PREVIOUS_DIGEST, d.to_string());
        }
        if let Some(v) = &self.previous_version {
            w.put(key::PREVIOUS_VERSION, v.to_string());
        }
        w.flag(key::BACK, self.back);
        w.put(key::TAGS, tag_list(&self.tags));
        if !self.confirmed_after_lost_reply.is_empty() {
            w.put(key::CONFIRMED, tag_list(&self.confirmed_after_lost_reply));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;
    use crate::history::{EventKind, EventRecord, Payload};
    use crate::model::Actor;

    fn slot() -> impl Strategy<Value = Slot> {
        prop::sample::select(vec![Slot::Blue, Slot::Green])
    }

    fn tags() -> impl Strategy<Value = Vec<Tag>> {
        vec(
            "[A-Za-z0-9][A-Za-z0-9._-]{0,12}".prop_map(|s| Tag::new(s).expect("valid tag")),
            0..4,
        )
    }

    fn digest() -> impl Strategy<Value = Option<Digest>> {
        proptest::option::of(any::<[u8; 8]>().prop_map(|b| Digest::of(&b)))
    }

    fn other() -> impl Strategy<Value = BTreeMap<String, String>> {
        btree_map("x_[a-z]{1,6}", any::<String>(), 0..3)
    }

    fn staged() -> impl Strategy<Value = Payload> {
        (
            any::<u128>(),
            slot(),
            tags(),
            tags(),
            digest(),
            proptest::option::of(any::<u128>()),
            proptest::option::of("[a-z]{1,8}"),
            other(),
        )
            .prop_map(
                |(id, slot, tags, confirmed, replaced, approval, by, other)| {
                    let mut p = PreviewStaged::new(Uuid::from_u128(id), slot, tags);
                    p.confirmed_after_lost_reply = confirmed;
                    p.replaced = replaced;
                    p.approval = approval.map(Uuid::from_u128);
                    p.executed_by = by;
                    p.other = other;
                    Payload::PreviewStaged(p)
                },
            )
    }

    fn switched() -> impl Strategy<Value = Payload> {
        (
            any::<u128>(),
            slot(),
            proptest::option::of(slot()),
            digest(),
            proptest::option::of("v[0-9]{1,3}"),
            any::<bool>(),
            tags(),
            other(),
        )
            .prop_map(|(id, slot, previous, digest, version, back, tags, other)| {
                let mut p = Switched::new(Uuid::from_u128(id), slot, tags);
                p.previous_slot = previous;
                p.previous_digest = digest;
                p.previous_version = version.map(|v| Tag::new(v).expect("valid tag"));
                p.back = back;
                p.other = other;
                Payload::Switched(p)
            })
    }

    proptest! {
        /// payload → details → payload.
        #[test]
        fn blue_green_payloads_round_trip(payload in prop_oneof![staged(), switched()]) {
            let record = EventRecord::new(
                EventKind::PromotionRequested,
                Actor::new("ci").expect("valid actor"),
                chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("in range"),
            )
            .with_payload(payload.clone());
            prop_assert_eq!(record.payload().expect("reads back"), payload);
        }
    }

    #[test]
    fn a_bad_slot_is_refused_naming_the_key() {
        let mut record = EventRecord::new(
            EventKind::PromotionRequested,
            Actor::new("ci").expect("valid actor"),
            chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("in range"),
        )
        .with_payload(Payload::Switched(Switched::new(
            Uuid::nil(),
            Slot::Blue,
            vec![],
        )));
        record.details.insert("slot".into(), "red".into());
        let e = record.payload().expect_err("bad slot");
        assert!(e.to_string().contains("`slot`"), "{e}");
        assert!(matches!(record.kind, EventKind::Switched));
    }
}
