//! Typed event payloads: what [`EventRecord::details`] holds for each [`EventKind`].
//!
//! The details of a record stay a JSON object of string values (that is what the hash covers,
//! see the [module documentation](super#event-payloads)); [`Payload`] is the typed view of
//! them. [`EventRecord::payload`] reads it, [`EventRecord::set_payload`] and
//! [`EventRecord::with_payload`] write it, with the keys and value formats every release so far
//! has written. This module is the one place that names those keys.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{EventKind, EventRecord};
use crate::error::{Error, Result};
use crate::model::{Digest, Tag};
use crate::registry::{CopyReport, EvidenceKind, EvidenceStatus};
use crate::release::approval::Phase;
use crate::state::Liveness;

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
    /// An event of a kind without typed details in this release
    /// ([`EventKind::PromotionRequested`], [`EventKind::CanaryStep`], [`EventKind::Switched`]),
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
            }
            Payload::PromotionFailed(p) | Payload::RollbackFailed(p) => {
                w.put(key::ERROR, p.error.clone());
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
            Payload::Untyped { details, .. } => return details.clone(),
        }
        w.0
    }
}

impl EventRecord {
    /// The typed details of this record, read for its kind.
    ///
    /// A value that does not parse, or a key the kind requires that is missing, is an
    /// [`Error::InvalidInput`] naming the key and the event (id and kind). Keys this release
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

/// A promotion wrote its tags (details of [`EventKind::PromotionSucceeded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PromotionSucceeded {
    /// The promotion request (its `promotion_requested` event's id, or the approval request's
    /// id). Key `request`.
    pub request: Uuid,
    /// The tags written, in order; empty when the target held them all already. Key `tags`,
    /// comma-separated.
    pub tags: Vec<Tag>,
    /// Tags whose write failed but that the registry holds all the same (a lost reply). Key
    /// `confirmed_after_lost_reply`, written when not empty.
    pub confirmed_after_lost_reply: Vec<Tag>,
    /// Nothing was written: the target held the version already. Key `noop`, `"true"`,
    /// written only when true.
    pub noop: bool,
    /// What the copy moved, when the repositories differ. Key `copy`,
    /// `manifests=… mounted=… uploaded=… skipped=… bytes=… signatures=… referrers=…`.
    pub copy: Option<CopyReport>,
    /// The approval request this promotion executed. Key `approval`.
    pub approval: Option<Uuid>,
    /// Who ran the approved request. Key `executed_by`.
    pub executed_by: Option<String>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl PromotionSucceeded {
    /// The payload of promotion `request`, which wrote `tags`.
    pub fn new(request: Uuid, tags: Vec<Tag>) -> Self {
        PromotionSucceeded {
            request,
            tags,
            confirmed_after_lost_reply: Vec::new(),
            noop: false,
            copy: None,
            approval: None,
            executed_by: None,
            other: BTreeMap::new(),
        }
    }
}

/// A rollback wrote its tags (details of [`EventKind::RollbackSucceeded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RollbackSucceeded {
    /// The tags written, in order. Key `tags`, comma-separated.
    pub tags: Vec<Tag>,
    /// Tags whose write failed but that the registry holds all the same (a lost reply). Key
    /// `confirmed_after_lost_reply`, written when not empty.
    pub confirmed_after_lost_reply: Vec<Tag>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl RollbackSucceeded {
    /// The payload of a rollback that wrote `tags`.
    pub fn new(tags: Vec<Tag>) -> Self {
        RollbackSucceeded {
            tags,
            confirmed_after_lost_reply: Vec::new(),
            other: BTreeMap::new(),
        }
    }
}

/// A promotion or rollback was refused or failed (details of [`EventKind::PromotionFailed`]
/// and [`EventKind::RollbackFailed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failed {
    /// The error, as displayed. Key `error`.
    pub error: String,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl Failed {
    /// The payload of a failure with this error message.
    pub fn new(error: impl Into<String>) -> Self {
        Failed {
            error: error.into(),
            other: BTreeMap::new(),
        }
    }

    fn read(d: &mut Reader<'_>) -> Result<Self> {
        Ok(Failed::new(d.required(key::ERROR, text)?))
    }
}

/// An approval request was created (details of [`EventKind::ApprovalRequested`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalRequested {
    /// The request's id. Key `approval`.
    pub approval: Uuid,
    /// When it expires. Key `expires`, RFC 3339.
    pub expires: DateTime<Utc>,
    /// Who may approve, as a sentence
    /// ([`ApprovalState::who_may_approve`](crate::release::approval::ApprovalState::who_may_approve)).
    /// Key `rules`.
    pub rules: String,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl ApprovalRequested {
    /// The payload of request `approval`.
    pub fn new(approval: Uuid, expires: DateTime<Utc>, rules: impl Into<String>) -> Self {
        ApprovalRequested {
            approval,
            expires,
            rules: rules.into(),
            other: BTreeMap::new(),
        }
    }
}

/// What an approver decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// `approved`.
    Approved,
    /// `rejected`.
    Rejected,
}

impl Decision {
    /// `approved` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Decision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "approved" => Ok(Decision::Approved),
            "rejected" => Ok(Decision::Rejected),
            _ => Err(Error::invalid("decision", s, "approved or rejected")),
        }
    }
}

/// An approver voted (details of [`EventKind::ApprovalDecided`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalDecided {
    /// The request's id. Key `approval`.
    pub approval: Uuid,
    /// The vote. Key `decision`.
    pub decision: Decision,
    /// The request's phase after the vote. Key `status`.
    pub status: Phase,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl ApprovalDecided {
    /// The payload of a vote on request `approval`.
    pub fn new(approval: Uuid, decision: Decision, status: Phase) -> Self {
        ApprovalDecided {
            approval,
            decision,
            status,
            other: BTreeMap::new(),
        }
    }
}

/// An approval request expired (details of [`EventKind::ApprovalExpired`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalExpired {
    /// The request's id. Key `approval`.
    pub approval: Uuid,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl ApprovalExpired {
    /// The payload of the expiry of request `approval`.
    pub fn new(approval: Uuid) -> Self {
        ApprovalExpired {
            approval,
            other: BTreeMap::new(),
        }
    }
}

/// An environment was locked (details of [`EventKind::Locked`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Locked {
    /// When the lock expires, if it does. Key `expires`, RFC 3339.
    pub expires: Option<DateTime<Utc>>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl Locked {
    /// The payload of a lock that expires at `expires`, if ever.
    pub fn new(expires: Option<DateTime<Utc>>) -> Self {
        Locked {
            expires,
            other: BTreeMap::new(),
        }
    }
}

/// A lock that was removed or passed (details of [`EventKind::Unlocked`] and
/// [`EventKind::LockOverridden`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockDetails {
    /// Who held the lock. Key `lock_owner`.
    pub lock_owner: String,
    /// Why it was taken. Key `lock_reason`.
    pub lock_reason: String,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl LockDetails {
    /// The payload of a lock held by `owner` for `reason`.
    pub fn new(owner: impl Into<String>, reason: impl Into<String>) -> Self {
        LockDetails {
            lock_owner: owner.into(),
            lock_reason: reason.into(),
            other: BTreeMap::new(),
        }
    }

    fn read(d: &mut Reader<'_>) -> Result<Self> {
        Ok(LockDetails::new(
            d.required(key::LOCK_OWNER, text)?,
            d.required(key::LOCK_REASON, text)?,
        ))
    }
}

/// Evidence was attached to a digest (details of [`EventKind::EvidenceAttached`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvidenceAttached {
    /// The evidence manifest's digest. Key `evidence`.
    pub evidence: Digest,
    /// What it attests. Key `kind`.
    pub kind: EvidenceKind,
    /// Its verdict. Key `status`.
    pub status: EvidenceStatus,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl EvidenceAttached {
    /// The payload of evidence `evidence` of `kind` with verdict `status`.
    pub fn new(evidence: Digest, kind: EvidenceKind, status: EvidenceStatus) -> Self {
        EvidenceAttached {
            evidence,
            kind,
            status,
            other: BTreeMap::new(),
        }
    }
}

/// A process on a host, as a lease break records its holder: `host:pid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostProcess {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
}

impl fmt::Display for HostProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.pid)
    }
}

impl FromStr for HostProcess {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("holder process", s, "expected <host>:<pid>");
        let (host, pid) = s.rsplit_once(':').ok_or_else(bad)?;
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(HostProcess {
            host: host.to_string(),
            pid: pid.parse().map_err(|_| bad())?,
        })
    }
}

/// A promotion lease was broken (details of [`EventKind::LeaseBroken`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseBroken {
    /// Who held the lease. Key `holder`.
    pub holder: String,
    /// When the lease would have expired. Key `expires`, RFC 3339.
    pub expires: DateTime<Utc>,
    /// The holder's process, when the lease named one. Key `holder_process`, `host:pid`.
    pub holder_process: Option<HostProcess>,
    /// Whether the holder was running when the lease was broken. Key `holder_liveness`,
    /// `alive`, `gone` or `unknown`.
    pub holder_liveness: Liveness,
    /// The break was a break-glass override of a live holder. Key `override`, `"true"`,
    /// written only when true.
    pub forced: bool,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl LeaseBroken {
    /// The payload of breaking `holder`'s lease that expires at `expires`.
    pub fn new(holder: impl Into<String>, expires: DateTime<Utc>, liveness: Liveness) -> Self {
        LeaseBroken {
            holder: holder.into(),
            expires,
            holder_process: None,
            holder_liveness: liveness,
            forced: false,
            other: BTreeMap::new(),
        }
    }
}

/// Takes the keys of a details map one by one; what is left is the `other` map.
struct Reader<'a> {
    event: &'a str,
    rest: BTreeMap<String, String>,
}

impl Reader<'_> {
    fn bad(&self, key: &str, value: &str, why: impl fmt::Display) -> Error {
        Error::invalid(
            "event detail",
            value,
            format!("`{key}` of event {}: {why}", self.event),
        )
    }

    fn optional<T>(
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

    fn required<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        self.optional(key, parse)?
            .ok_or_else(|| self.bad(key, "", "missing, and this kind of event requires it"))
    }

    /// A flag written as `"true"` only when set; `"false"` reads as unset.
    fn flag(&mut self, key: &str) -> Result<bool> {
        Ok(self
            .optional(key, |s| match s {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::invalid("flag", s, "expected true or false")),
            })?
            .unwrap_or(false))
    }
}

struct Writer(BTreeMap<String, String>);

impl Writer {
    fn put(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }

    fn flag(&mut self, key: &str, set: bool) {
        if set {
            self.put(key, "true".into());
        } else {
            self.0.remove(key);
        }
    }
}

fn text(s: &str) -> Result<String> {
    Ok(s.to_string())
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| Error::invalid("id", s, format!("not a UUID: {e}")))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::invalid("time", s, format!("not an RFC 3339 time: {e}")))
}

/// Tags as a comma-separated list (empty: no tags).
fn tag_list(tags: &[Tag]) -> String {
    tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(",")
}

fn parse_tags(s: &str) -> Result<Vec<Tag>> {
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
fn copy_summary(c: &CopyReport) -> String {
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

fn parse_copy(s: &str) -> Result<CopyReport> {
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

fn parse_evidence_kind(s: &str) -> Result<EvidenceKind> {
    [
        EvidenceKind::Tests,
        EvidenceKind::Policy,
        EvidenceKind::Scan,
    ]
    .into_iter()
    .find(|k| k.to_string() == s)
    .ok_or_else(|| Error::invalid("evidence kind", s, "tests, policy or scan"))
}

fn parse_evidence_status(s: &str) -> Result<EvidenceStatus> {
    [EvidenceStatus::Passed, EvidenceStatus::Failed]
        .into_iter()
        .find(|k| k.to_string() == s)
        .ok_or_else(|| Error::invalid("evidence status", s, "passed or failed"))
}

fn liveness_str(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Gone => "gone",
        Liveness::Unknown => "unknown",
    }
}

fn parse_liveness(s: &str) -> Result<Liveness> {
    [Liveness::Alive, Liveness::Gone, Liveness::Unknown]
        .into_iter()
        .find(|l| liveness_str(*l) == s)
        .ok_or_else(|| Error::invalid("holder liveness", s, "alive, gone or unknown"))
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;
    use crate::history::{AuditEvent, GENESIS_HASH};
    use crate::model::Actor;

    fn uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // 1970 to 2200, with nanoseconds.
        (0i64..7_258_118_400, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range"))
    }

    fn tags() -> impl Strategy<Value = Vec<Tag>> {
        vec(
            "[A-Za-z0-9][A-Za-z0-9._-]{0,12}".prop_map(|s| Tag::new(s).expect("valid tag")),
            0..4,
        )
    }

    fn other() -> impl Strategy<Value = BTreeMap<String, String>> {
        btree_map("x_[a-z]{1,6}", any::<String>(), 0..3)
    }

    fn copy() -> impl Strategy<Value = Option<CopyReport>> {
        proptest::option::of(any::<[u64; 7]>().prop_map(|v| CopyReport {
            manifests_copied: v[0],
            blobs_mounted: v[1],
            blobs_uploaded: v[2],
            blobs_skipped: v[3],
            bytes_uploaded: v[4],
            signatures_copied: v[5],
            referrers_copied: v[6],
        }))
    }

    fn phase() -> impl Strategy<Value = Phase> {
        prop::sample::select(vec![
            Phase::Pending,
            Phase::Approved,
            Phase::Executing,
            Phase::Executed,
            Phase::Rejected,
            Phase::Expired,
        ])
    }

    fn lock_details() -> impl Strategy<Value = LockDetails> {
        (any::<String>(), any::<String>(), other()).prop_map(|(o, r, other)| LockDetails {
            lock_owner: o,
            lock_reason: r,
            other,
        })
    }

    fn failed() -> impl Strategy<Value = Failed> {
        (any::<String>(), other()).prop_map(|(error, other)| Failed { error, other })
    }

    fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            (
                uuid(),
                tags(),
                tags(),
                any::<bool>(),
                copy(),
                proptest::option::of(uuid()),
                proptest::option::of(any::<String>()),
                other()
            )
                .prop_map(
                    |(request, tags, confirmed, noop, copy, approval, by, other)| {
                        Payload::PromotionSucceeded(PromotionSucceeded {
                            request,
                            tags,
                            confirmed_after_lost_reply: confirmed,
                            noop,
                            copy,
                            approval,
                            executed_by: by,
                            other,
                        })
                    }
                ),
            failed().prop_map(Payload::PromotionFailed),
            failed().prop_map(Payload::RollbackFailed),
            (uuid(), time(), any::<String>(), other()).prop_map(
                |(approval, expires, rules, other)| {
                    Payload::ApprovalRequested(ApprovalRequested {
                        approval,
                        expires,
                        rules,
                        other,
                    })
                }
            ),
            (uuid(), any::<bool>(), phase(), other()).prop_map(|(approval, yes, status, other)| {
                Payload::ApprovalDecided(ApprovalDecided {
                    approval,
                    decision: if yes {
                        Decision::Approved
                    } else {
                        Decision::Rejected
                    },
                    status,
                    other,
                })
            }),
            (uuid(), other()).prop_map(|(approval, other)| {
                Payload::ApprovalExpired(ApprovalExpired { approval, other })
            }),
            (tags(), tags(), other()).prop_map(|(tags, confirmed, other)| {
                Payload::RollbackSucceeded(RollbackSucceeded {
                    tags,
                    confirmed_after_lost_reply: confirmed,
                    other,
                })
            }),
            (proptest::option::of(time()), other())
                .prop_map(|(expires, other)| Payload::Locked(Locked { expires, other })),
            lock_details().prop_map(Payload::Unlocked),
            lock_details().prop_map(Payload::LockOverridden),
            (
                "[0-9a-f]{64}",
                prop::sample::select(vec![
                    EvidenceKind::Tests,
                    EvidenceKind::Policy,
                    EvidenceKind::Scan
                ]),
                any::<bool>(),
                other()
            )
                .prop_map(|(hex, kind, passed, other)| {
                    Payload::EvidenceAttached(EvidenceAttached {
                        evidence: Digest::new(format!("sha256:{hex}")).expect("valid digest"),
                        kind,
                        status: if passed {
                            EvidenceStatus::Passed
                        } else {
                            EvidenceStatus::Failed
                        },
                        other,
                    })
                }),
            (
                any::<String>(),
                time(),
                proptest::option::of((any::<String>(), any::<u32>())),
                prop::sample::select(vec![Liveness::Alive, Liveness::Gone, Liveness::Unknown]),
                any::<bool>(),
                other()
            )
                .prop_map(|(holder, expires, process, liveness, forced, other)| {
                    Payload::LeaseBroken(LeaseBroken {
                        holder,
                        expires,
                        holder_process: process.map(|(host, pid)| HostProcess { host, pid }),
                        holder_liveness: liveness,
                        forced,
                        other,
                    })
                }),
            (
                prop::sample::select(vec![
                    EventKind::PromotionRequested,
                    EventKind::CanaryStep,
                    EventKind::Switched
                ]),
                btree_map("[a-z_]{1,8}", any::<String>(), 0..4)
            )
                .prop_map(|(kind, details)| Payload::Untyped { kind, details }),
        ]
    }

    fn record(payload: Payload) -> EventRecord {
        EventRecord::new(
            EventKind::PromotionRequested,
            Actor::new("ci").expect("valid actor"),
            DateTime::from_timestamp(1_800_000_000, 0).expect("in range"),
        )
        .with_payload(payload)
    }

    proptest! {
        /// payload → details → payload, directly and through the stored bytes; and the
        /// details written read back into the same details.
        #[test]
        fn every_payload_round_trips(p in payload()) {
            let r = record(p.clone());
            prop_assert_eq!(r.kind, p.kind());
            prop_assert_eq!(&r.details, &p.to_details());
            let read = r.payload().expect("own details parse");
            prop_assert_eq!(&read, &p);
            prop_assert_eq!(read.to_details(), r.details.clone());
            let stored = AuditEvent::seal(1, r, GENESIS_HASH.to_string());
            prop_assert_eq!(stored.record.payload().expect("stored details parse"), p);
        }

        /// Any details, for any kind, read as a payload or a clear error, never a panic; a
        /// payload that reads writes details that read back as the same payload.
        #[test]
        fn any_details_parse_or_fail_cleanly(
            kind in prop::sample::select(EventKind::ALL.to_vec()),
            details in btree_map(
                prop::sample::select(vec![
                    "request", "tags", "noop", "copy", "approval", "expires", "status",
                    "decision", "holder_liveness", "holder_process", "override", "x",
                ]).prop_map(str::to_string),
                "[a-z0-9:,=. -]{0,12}",
                0..6,
            ),
        ) {
            let mut r = record(Payload::none(kind));
            r.details = details;
            match r.payload() {
                Ok(p) => {
                    prop_assert_eq!(p.kind(), kind);
                    prop_assert_eq!(record(p.clone()).payload().expect("rewritten details parse"), p);
                }
                Err(e) => {
                    prop_assert!(matches!(e, Error::InvalidInput { what: "event detail", .. }), "{e:?}");
                    prop_assert!(e.to_string().contains(&r.id.to_string()), "{e}");
                }
            }
        }
    }

    /// A kind, its details, the key an error names and a piece of its reason.
    type Case<'a> = (EventKind, Vec<(&'a str, &'a str)>, &'a str, &'a str);

    #[test]
    fn malformed_values_are_errors_naming_the_key_and_the_event() {
        let id = "0ec57a12-9ef0-43ee-b26c-b91c96d86462";
        let digest = format!("sha256:{}", "0".repeat(64));
        let cases: Vec<Case<'_>> = vec![
            (
                EventKind::PromotionSucceeded,
                vec![("request", "nope"), ("tags", "")],
                "request",
                "not a UUID",
            ),
            (
                EventKind::PromotionSucceeded,
                vec![("request", id)],
                "tags",
                "missing",
            ),
            (
                EventKind::PromotionSucceeded,
                vec![("request", id), ("tags", "v1,,latest")],
                "tags",
                "invalid tag",
            ),
            (
                EventKind::PromotionSucceeded,
                vec![("request", id), ("tags", ""), ("noop", "yes")],
                "noop",
                "true or false",
            ),
            (
                EventKind::PromotionSucceeded,
                vec![("request", id), ("tags", ""), ("copy", "manifests=1")],
                "copy",
                "manifests=<count> mounted=<count>",
            ),
            (
                EventKind::PromotionSucceeded,
                vec![
                    ("request", id),
                    ("tags", ""),
                    (
                        "copy",
                        "manifests=1 mounted=2 uploaded=x skipped=0 bytes=0 signatures=0 referrers=0",
                    ),
                ],
                "copy",
                "copy report",
            ),
            (
                EventKind::Locked,
                vec![("expires", "tomorrow")],
                "expires",
                "RFC 3339",
            ),
            (EventKind::PromotionFailed, vec![], "error", "missing"),
            (
                EventKind::ApprovalDecided,
                vec![
                    ("approval", id),
                    ("decision", "maybe"),
                    ("status", "pending"),
                ],
                "decision",
                "approved or rejected",
            ),
            (
                EventKind::ApprovalDecided,
                vec![
                    ("approval", id),
                    ("decision", "approved"),
                    ("status", "sideways"),
                ],
                "status",
                "approval status",
            ),
            (
                EventKind::EvidenceAttached,
                vec![
                    ("evidence", "sha256:zz"),
                    ("kind", "tests"),
                    ("status", "passed"),
                ],
                "evidence",
                "invalid digest",
            ),
            (
                EventKind::EvidenceAttached,
                vec![
                    ("evidence", &digest),
                    ("kind", "vibes"),
                    ("status", "passed"),
                ],
                "kind",
                "tests, policy or scan",
            ),
            (
                EventKind::LeaseBroken,
                vec![
                    ("holder", "ci"),
                    ("expires", "2026-01-05T12:00:00+00:00"),
                    ("holder_liveness", "zombie"),
                ],
                "holder_liveness",
                "alive, gone or unknown",
            ),
            (
                EventKind::LeaseBroken,
                vec![
                    ("holder", "ci"),
                    ("expires", "2026-01-05T12:00:00+00:00"),
                    ("holder_liveness", "gone"),
                    ("holder_process", "host:-1"),
                ],
                "holder_process",
                "<host>:<pid>",
            ),
        ];
        for (kind, details, key, why) in cases {
            let mut r = record(Payload::none(kind));
            r.details = details
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let e = r.payload().expect_err(&format!("{kind} {details:?}"));
            let text = e.to_string();
            assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
            assert!(text.contains(&format!("`{key}`")), "{key}: {text}");
            assert!(text.contains(&r.id.to_string()), "{text}");
            assert!(text.contains(kind.as_str()), "{text}");
            assert!(text.contains(why), "{why}: {text}");
        }
    }

    #[test]
    fn unknown_keys_are_kept_and_typed_keys_win() {
        let mut r = record(Payload::none(EventKind::Unlocked));
        r.details = BTreeMap::from([
            ("lock_owner".to_string(), "ops".to_string()),
            ("lock_reason".to_string(), "freeze".to_string()),
            ("ticket".to_string(), "INC-7".to_string()),
        ]);
        let p = r.payload().unwrap();
        let Payload::Unlocked(ref lock) = p else {
            panic!("{p:?}")
        };
        assert_eq!(lock.lock_owner, "ops");
        assert_eq!(
            lock.other,
            BTreeMap::from([("ticket".to_string(), "INC-7".to_string())])
        );
        assert_eq!(p.to_details(), r.details);

        let mut clash = LockDetails::new("ops", "freeze");
        clash.other.insert("lock_owner".into(), "eve".into());
        assert_eq!(
            Payload::Unlocked(clash).to_details()["lock_owner"],
            "ops",
            "the typed field wins"
        );
    }

    #[test]
    fn set_payload_sets_the_kind() {
        let r = record(Payload::ApprovalExpired(ApprovalExpired::new(Uuid::nil())));
        assert_eq!(r.kind, EventKind::ApprovalExpired);
        assert_eq!(
            r.details,
            BTreeMap::from([("approval".to_string(), Uuid::nil().to_string())])
        );
    }
}
