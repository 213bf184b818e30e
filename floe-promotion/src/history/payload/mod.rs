//! Typed event payloads: what [`EventRecord::details`] holds for each [`EventKind`].
//!
//! The details of a record stay a JSON object of string values (that is what the hash covers,
//! see the [module documentation](super#event-payloads)); [`Payload`] is the typed view of
//! them. [`EventRecord::payload`] reads it, [`EventRecord::set_payload`] and
//! [`EventRecord::with_payload`] write it, with the keys and value formats every release so far
//! has written. This module is the one place that names those keys.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::{EventKind, EventRecord};
use crate::error::Result;
use crate::model::Digest;
use crate::release::approval::Phase;

/// The keys of the details, in one place.
mod key {
    pub(super) const REQUEST: &str = "request";
    pub(super) const TAGS: &str = "tags";
    pub(super) const CONFIRMED: &str = "confirmed_after_lost_reply";
    pub(super) const NOOP: &str = "noop";
    pub(super) const COPY: &str = "copy";
    pub(super) const APPROVAL: &str = "approval";
    pub(super) const EXECUTED_BY: &str = "executed_by";
    pub(super) const ERROR: &str = "error";
    pub(super) const EXPIRES: &str = "expires";
    pub(super) const RULES: &str = "rules";
    pub(super) const DECISION: &str = "decision";
    pub(super) const STATUS: &str = "status";
    pub(super) const LOCK_OWNER: &str = "lock_owner";
    pub(super) const LOCK_REASON: &str = "lock_reason";
    pub(super) const EVIDENCE: &str = "evidence";
    pub(super) const KIND: &str = "kind";
    pub(super) const HOLDER: &str = "holder";
    pub(super) const HOLDER_PROCESS: &str = "holder_process";
    pub(super) const HOLDER_LIVENESS: &str = "holder_liveness";
    pub(super) const OVERRIDE: &str = "override";
    pub(super) const HOLD_KIND: &str = "hold_kind";
    pub(super) const CANARY: &str = "canary";
    pub(super) const STEP: &str = "step";
    pub(super) const WEIGHT: &str = "weight";
    pub(super) const CANARY_ACTION: &str = "canary_action";
    pub(super) const WINDOW_KIND: &str = "window_kind";
    pub(super) const WINDOW_REASON: &str = "window_reason";
    pub(super) const OVERRIDE_REASON: &str = "override_reason";
    pub(super) const SLOT: &str = "slot";
    pub(super) const REPLACED: &str = "replaced";
    pub(super) const PREVIOUS_SLOT: &str = "previous_slot";
    pub(super) const PREVIOUS_DIGEST: &str = "previous_digest";
    pub(super) const PREVIOUS_VERSION: &str = "previous_version";
    pub(super) const BACK: &str = "back";
    pub(super) const GROUP: &str = "group";
    pub(super) const MEMBERS: &str = "members";
    pub(super) const FAILED: &str = "failed";
    pub(super) const SIGNER: &str = "signer";
    pub(super) const SIGNED_MESSAGE: &str = "signed_message";
    pub(super) const SIGNATURE: &str = "signature";
}

/// The typed details of an event, one variant per [`EventKind`] that carries details, and
/// [`Payload::Untyped`] for the others.
///
/// Every typed payload keeps the keys this release does not know in its `other` map, so
/// reading a record and writing the payload back loses nothing. Later releases may add
/// variants (for kinds this release reads as [`Payload::Untyped`]) and fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload {
    /// [`EventKind::PromotionSucceeded`].
    PromotionSucceeded(PromotionSucceeded),
    /// [`EventKind::PromotionFailed`].
    PromotionFailed(Failed),
    /// [`EventKind::ApprovalRequested`].
    ApprovalRequested(ApprovalRequested),
    /// [`EventKind::ApprovalDecided`].
    ApprovalDecided(ApprovalDecided),
    /// [`EventKind::ApprovalExpired`].
    ApprovalExpired(ApprovalExpired),
    /// [`EventKind::RollbackSucceeded`].
    RollbackSucceeded(RollbackSucceeded),
    /// [`EventKind::RollbackFailed`].
    RollbackFailed(Failed),
    /// [`EventKind::Locked`].
    Locked(Locked),
    /// [`EventKind::Unlocked`]: the lock that was removed.
    Unlocked(LockDetails),
    /// [`EventKind::LockOverridden`]: the lock that was passed.
    LockOverridden(LockDetails),
    /// [`EventKind::EvidenceAttached`].
    EvidenceAttached(EvidenceAttached),
    /// [`EventKind::LeaseBroken`].
    LeaseBroken(LeaseBroken),
    /// [`EventKind::CanaryStep`]: where a canary is now.
    CanaryStep(CanaryStepDetails),
    /// [`EventKind::HoldPlaced`]: the hold placed.
    HoldPlaced(HoldDetails),
    /// [`EventKind::HoldReleased`]: the hold released.
    HoldReleased(HoldDetails),
    /// [`EventKind::WindowOverridden`]: the closed window that was passed, and why.
    WindowOverridden(WindowOverridden),
    /// [`EventKind::PreviewStaged`]: the slot a blue-green promotion staged on.
    PreviewStaged(PreviewStaged),
    /// [`EventKind::Switched`]: the slots and digests of a blue-green switch.
    Switched(Switched),
    /// [`EventKind::GroupPromoted`]: the group and its members.
    GroupPromoted(GroupDetails),
    /// [`EventKind::GroupFailed`]: the group, its members, which one failed and why.
    GroupFailed(GroupDetails),
    /// An event of a kind without typed details in this release
    /// ([`EventKind::PromotionRequested`], [`EventKind::CanaryStep`]),
    /// its details as stored. Writing one for a kind that has a typed payload writes the
    /// details as given, unchecked.
    Untyped {
        /// The event's kind.
        kind: EventKind,
        /// The details, as stored.
        details: BTreeMap<String, String>,
    },
}

impl Payload {
    /// The kind of event this payload belongs to.
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::PromotionSucceeded(_) => EventKind::PromotionSucceeded,
            Payload::PromotionFailed(_) => EventKind::PromotionFailed,
            Payload::ApprovalRequested(_) => EventKind::ApprovalRequested,
            Payload::ApprovalDecided(_) => EventKind::ApprovalDecided,
            Payload::ApprovalExpired(_) => EventKind::ApprovalExpired,
            Payload::RollbackSucceeded(_) => EventKind::RollbackSucceeded,
            Payload::RollbackFailed(_) => EventKind::RollbackFailed,
            Payload::Locked(_) => EventKind::Locked,
            Payload::Unlocked(_) => EventKind::Unlocked,
            Payload::LockOverridden(_) => EventKind::LockOverridden,
            Payload::EvidenceAttached(_) => EventKind::EvidenceAttached,
            Payload::LeaseBroken(_) => EventKind::LeaseBroken,
            Payload::CanaryStep(_) => EventKind::CanaryStep,
            Payload::HoldPlaced(_) => EventKind::HoldPlaced,
            Payload::HoldReleased(_) => EventKind::HoldReleased,
            Payload::WindowOverridden(_) => EventKind::WindowOverridden,
            Payload::PreviewStaged(_) => EventKind::PreviewStaged,
            Payload::Switched(_) => EventKind::Switched,
            Payload::GroupPromoted(_) => EventKind::GroupPromoted,
            Payload::GroupFailed(_) => EventKind::GroupFailed,
            Payload::Untyped { kind, .. } => *kind,
        }
    }

    /// The payload with no details of an event of `kind`: [`Payload::Untyped`] with an empty
    /// map.
    pub fn none(kind: EventKind) -> Payload {
        Payload::Untyped {
            kind,
            details: BTreeMap::new(),
        }
    }

    /// Reads the details of an event of `kind`. `event` names the event in errors.
    fn parse(kind: EventKind, event: &str, details: &BTreeMap<String, String>) -> Result<Payload> {
        let mut d = Reader {
            event,
            rest: details.clone(),
        };
        let payload = match kind {
            EventKind::PromotionSucceeded => Payload::PromotionSucceeded(PromotionSucceeded {
                request: d.required(key::REQUEST, parse_uuid)?,
                tags: d.required(key::TAGS, parse_tags)?,
                confirmed_after_lost_reply: d
                    .optional(key::CONFIRMED, parse_tags)?
                    .unwrap_or_default(),
                noop: d.flag(key::NOOP)?,
                copy: d.optional(key::COPY, parse_copy)?,
                approval: d.optional(key::APPROVAL, parse_uuid)?,
                executed_by: d.optional(key::EXECUTED_BY, text)?,
                group: d.optional(key::GROUP, parse_uuid)?,
                other: BTreeMap::new(),
            }),
            EventKind::PromotionFailed => Payload::PromotionFailed(Failed::read(&mut d)?),
            EventKind::RollbackFailed => Payload::RollbackFailed(Failed::read(&mut d)?),
            EventKind::ApprovalRequested => Payload::ApprovalRequested(ApprovalRequested {
                approval: d.required(key::APPROVAL, parse_uuid)?,
                expires: d.required(key::EXPIRES, parse_time)?,
                rules: d.required(key::RULES, text)?,
                other: BTreeMap::new(),
            }),
            EventKind::ApprovalDecided => Payload::ApprovalDecided(ApprovalDecided {
                approval: d.required(key::APPROVAL, parse_uuid)?,
                decision: d.required(key::DECISION, Decision::from_str)?,
                status: d.required(key::STATUS, Phase::from_str)?,
                signature: match d.optional(key::SIGNER, text)? {
                    Some(principal) => Some(crate::model::SignedVote {
                        principal,
                        message: d.required(key::SIGNED_MESSAGE, text)?,
                        signature: d.required(key::SIGNATURE, text)?,
                    }),
                    None => None,
                },
                other: BTreeMap::new(),
            }),
            EventKind::ApprovalExpired => Payload::ApprovalExpired(ApprovalExpired {
                approval: d.required(key::APPROVAL, parse_uuid)?,
                other: BTreeMap::new(),
            }),
            EventKind::RollbackSucceeded => Payload::RollbackSucceeded(RollbackSucceeded {
                tags: d.required(key::TAGS, parse_tags)?,
                confirmed_after_lost_reply: d
                    .optional(key::CONFIRMED, parse_tags)?
                    .unwrap_or_default(),
                other: BTreeMap::new(),
            }),
            EventKind::Locked => Payload::Locked(Locked {
                expires: d.optional(key::EXPIRES, parse_time)?,
                other: BTreeMap::new(),
            }),
            EventKind::Unlocked => Payload::Unlocked(LockDetails::read(&mut d)?),
            EventKind::LockOverridden => Payload::LockOverridden(LockDetails::read(&mut d)?),
            EventKind::EvidenceAttached => Payload::EvidenceAttached(EvidenceAttached {
                evidence: d.required(key::EVIDENCE, Digest::from_str)?,
                kind: d.required(key::KIND, parse_evidence_kind)?,
                status: d.required(key::STATUS, parse_evidence_status)?,
                other: BTreeMap::new(),
            }),
            EventKind::LeaseBroken => Payload::LeaseBroken(LeaseBroken {
                holder: d.required(key::HOLDER, text)?,
                expires: d.required(key::EXPIRES, parse_time)?,
                holder_process: d.optional(key::HOLDER_PROCESS, HostProcess::from_str)?,
                holder_liveness: d.required(key::HOLDER_LIVENESS, parse_liveness)?,
                forced: d.flag(key::OVERRIDE)?,
                other: BTreeMap::new(),
            }),
            EventKind::CanaryStep => Payload::CanaryStep(CanaryStepDetails {
                canary: d.required(key::CANARY, parse_uuid)?,
                step: d.required(key::STEP, parse_u32)?,
                weight: d.required(key::WEIGHT, parse_weight)?,
                action: d.required(key::CANARY_ACTION, CanaryAction::from_str)?,
                other: BTreeMap::new(),
            }),
            EventKind::HoldPlaced => Payload::HoldPlaced(HoldDetails::read(&mut d)?),
            EventKind::HoldReleased => Payload::HoldReleased(HoldDetails::read(&mut d)?),
            EventKind::WindowOverridden => Payload::WindowOverridden(WindowOverridden {
                window_kind: d.required(key::WINDOW_KIND, parse_window_kind)?,
                window_reason: d.required(key::WINDOW_REASON, text)?,
                override_reason: d.required(key::OVERRIDE_REASON, text)?,
                other: BTreeMap::new(),
            }),
            EventKind::PreviewStaged => Payload::PreviewStaged(PreviewStaged::read(&mut d)?),
            EventKind::Switched => Payload::Switched(Switched::read(&mut d)?),
            EventKind::GroupPromoted => Payload::GroupPromoted(GroupDetails::read(&mut d)?),
            EventKind::GroupFailed => Payload::GroupFailed(GroupDetails::read(&mut d)?),
            _ => {
                return Ok(Payload::Untyped {
                    kind,
                    details: details.clone(),
                });
            }
        };
        Ok(payload.with_other(d.rest))
    }

    fn with_other(mut self, rest: BTreeMap<String, String>) -> Payload {
        if let Some(other) = self.other_mut() {
            *other = rest;
        }
        self
    }

    /// The keys this release does not know, of a typed payload.
    pub fn other(&self) -> Option<&BTreeMap<String, String>> {
        Some(match self {
            Payload::PromotionSucceeded(p) => &p.other,
            Payload::PromotionFailed(p) | Payload::RollbackFailed(p) => &p.other,
            Payload::ApprovalRequested(p) => &p.other,
            Payload::ApprovalDecided(p) => &p.other,
            Payload::ApprovalExpired(p) => &p.other,
            Payload::RollbackSucceeded(p) => &p.other,
            Payload::Locked(p) => &p.other,
            Payload::Unlocked(p) | Payload::LockOverridden(p) => &p.other,
            Payload::EvidenceAttached(p) => &p.other,
            Payload::LeaseBroken(p) => &p.other,
            Payload::CanaryStep(p) => &p.other,
            Payload::HoldPlaced(p) | Payload::HoldReleased(p) => &p.other,
            Payload::WindowOverridden(p) => &p.other,
            Payload::PreviewStaged(p) => &p.other,
            Payload::Switched(p) => &p.other,
            Payload::GroupPromoted(p) | Payload::GroupFailed(p) => &p.other,
            Payload::Untyped { .. } => return None,
        })
    }

    fn other_mut(&mut self) -> Option<&mut BTreeMap<String, String>> {
        Some(match self {
            Payload::PromotionSucceeded(p) => &mut p.other,
            Payload::PromotionFailed(p) | Payload::RollbackFailed(p) => &mut p.other,
            Payload::ApprovalRequested(p) => &mut p.other,
            Payload::ApprovalDecided(p) => &mut p.other,
            Payload::ApprovalExpired(p) => &mut p.other,
            Payload::RollbackSucceeded(p) => &mut p.other,
            Payload::Locked(p) => &mut p.other,
            Payload::Unlocked(p) | Payload::LockOverridden(p) => &mut p.other,
            Payload::EvidenceAttached(p) => &mut p.other,
            Payload::LeaseBroken(p) => &mut p.other,
            Payload::CanaryStep(p) => &mut p.other,
            Payload::HoldPlaced(p) | Payload::HoldReleased(p) => &mut p.other,
            Payload::WindowOverridden(p) => &mut p.other,
            Payload::PreviewStaged(p) => &mut p.other,
            Payload::Switched(p) => &mut p.other,
            Payload::GroupPromoted(p) | Payload::GroupFailed(p) => &mut p.other,
            Payload::Untyped { .. } => return None,
        })
    }

    /// The details map of this payload: the `other` keys, then the typed ones (which win over
    /// an `other` key of the same name), in the formats every release has written.
    pub fn to_details(&self) -> BTreeMap<String, String> {
        let mut w = Writer(self.other().cloned().unwrap_or_default());
        match self {
            Payload::PromotionSucceeded(p) => {
                w.put(key::REQUEST, p.request.to_string());
                w.put(key::TAGS, tag_list(&p.tags));
                if !p.confirmed_after_lost_reply.is_empty() {
                    w.put(key::CONFIRMED, tag_list(&p.confirmed_after_lost_reply));
                }
                w.flag(key::NOOP, p.noop);
                if let Some(c) = &p.copy {
                    w.put(key::COPY, copy_summary(c));
                }
                if let Some(id) = p.approval {
                    w.put(key::APPROVAL, id.to_string());
                }
                if let Some(by) = &p.executed_by {
                    w.put(key::EXECUTED_BY, by.clone());
                }
                if let Some(g) = p.group {
                    w.put(key::GROUP, g.to_string());
                }
            }
            Payload::PromotionFailed(p) | Payload::RollbackFailed(p) => {
                w.put(key::ERROR, p.error.clone());
                if let Some(g) = p.group {
                    w.put(key::GROUP, g.to_string());
                }
            }
            Payload::GroupPromoted(p) | Payload::GroupFailed(p) => {
                w.put(key::GROUP, p.group.to_string());
                let members: Vec<String> = p.members.iter().map(ToString::to_string).collect();
                w.put(key::MEMBERS, members.join(","));
                if let Some(f) = &p.failed {
                    w.put(key::FAILED, f.to_string());
                }
                if let Some(e) = &p.error {
                    w.put(key::ERROR, e.clone());
                }
            }
            Payload::ApprovalRequested(p) => {
                w.put(key::APPROVAL, p.approval.to_string());
                w.put(key::EXPIRES, p.expires.to_rfc3339());
                w.put(key::RULES, p.rules.clone());
            }
            Payload::ApprovalDecided(p) => {
                w.put(key::APPROVAL, p.approval.to_string());
                w.put(key::DECISION, p.decision.as_str().into());
                w.put(key::STATUS, p.status.to_string());
                if let Some(sig) = &p.signature {
                    w.put(key::SIGNER, sig.principal.clone());
                    w.put(key::SIGNED_MESSAGE, sig.message.clone());
                    w.put(key::SIGNATURE, sig.signature.clone());
                }
            }
            Payload::ApprovalExpired(p) => w.put(key::APPROVAL, p.approval.to_string()),
            Payload::RollbackSucceeded(p) => {
                w.put(key::TAGS, tag_list(&p.tags));
                if !p.confirmed_after_lost_reply.is_empty() {
                    w.put(key::CONFIRMED, tag_list(&p.confirmed_after_lost_reply));
                }
            }
            Payload::Locked(p) => {
                if let Some(x) = p.expires {
                    w.put(key::EXPIRES, x.to_rfc3339());
                }
            }
            Payload::Unlocked(p) | Payload::LockOverridden(p) => {
                w.put(key::LOCK_OWNER, p.lock_owner.clone());
                w.put(key::LOCK_REASON, p.lock_reason.clone());
            }
            Payload::EvidenceAttached(p) => {
                w.put(key::EVIDENCE, p.evidence.to_string());
                w.put(key::KIND, p.kind.to_string());
                w.put(key::STATUS, p.status.to_string());
            }
            Payload::LeaseBroken(p) => {
                w.put(key::HOLDER, p.holder.clone());
                w.put(key::EXPIRES, p.expires.to_rfc3339());
                if let Some(h) = &p.holder_process {
                    w.put(key::HOLDER_PROCESS, h.to_string());
                }
                w.put(key::HOLDER_LIVENESS, liveness_str(p.holder_liveness).into());
                w.flag(key::OVERRIDE, p.forced);
            }
            Payload::CanaryStep(p) => {
                w.put(key::CANARY, p.canary.to_string());
                w.put(key::STEP, p.step.to_string());
                w.put(key::WEIGHT, p.weight.to_string());
                w.put(key::CANARY_ACTION, p.action.as_str().into());
            }
            Payload::HoldPlaced(p) | Payload::HoldReleased(p) => {
                w.put(key::HOLDER, p.holder.clone());
                w.put(key::HOLD_KIND, p.hold_kind.as_str().into());
            }
            Payload::WindowOverridden(p) => {
                w.put(key::WINDOW_KIND, p.window_kind.as_str().into());
                w.put(key::WINDOW_REASON, p.window_reason.clone());
                w.put(key::OVERRIDE_REASON, p.override_reason.clone());
            }
            Payload::PreviewStaged(p) => p.write(&mut w),
            Payload::Switched(p) => p.write(&mut w),
            Payload::Untyped { details, .. } => return details.clone(),
        }
        w.0
    }
}

impl EventRecord {
    /// The typed details of this record, read for its kind.
    ///
    /// A value that does not parse, or a key the kind requires that is missing, is an
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming the key and the event (id and kind). Keys this release
    /// does not know are kept in the payload's `other` map; a kind without typed details
    /// reads as [`Payload::Untyped`].
    pub fn payload(&self) -> Result<Payload> {
        let event = format!("{} ({})", self.id, self.kind);
        Payload::parse(self.kind, &event, &self.details)
    }

    /// Replaces the details with `payload`'s ([`Payload::to_details`]) and sets the kind to
    /// the payload's ([`Payload::kind`]).
    pub fn set_payload(&mut self, payload: Payload) {
        self.kind = payload.kind();
        self.details = payload.to_details();
    }

    /// The record with `payload` set ([`EventRecord::set_payload`]).
    pub fn with_payload(mut self, payload: Payload) -> Self {
        self.set_payload(payload);
        self
    }
}

mod blue_green;
mod codec;
mod kinds;
#[cfg(test)]
mod tests;

pub use blue_green::{PreviewStaged, Switched};
use codec::*;
pub use kinds::*;
