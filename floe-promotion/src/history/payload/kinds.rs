//! The typed details of each event kind.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::codec::*;
use super::key;
use crate::error::{Error, Result};
use crate::model::{ArtifactName, Digest, Tag};
use crate::registry::{CopyReport, EvidenceKind, EvidenceStatus};
use crate::release::approval::Phase;
use crate::state::{HoldKind, Liveness};

/// A promotion wrote its tags (details of [`EventKind::PromotionSucceeded`](crate::history::EventKind::PromotionSucceeded)).
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
    /// The group this promotion was part of (`promote_with_dependencies`). Key `group`.
    pub group: Option<Uuid>,
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
            group: None,
            other: BTreeMap::new(),
        }
    }
}

/// A rollback wrote its tags (details of [`EventKind::RollbackSucceeded`](crate::history::EventKind::RollbackSucceeded)).
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

/// A promotion or rollback was refused or failed (details of [`EventKind::PromotionFailed`](crate::history::EventKind::PromotionFailed)
/// and [`EventKind::RollbackFailed`](crate::history::EventKind::RollbackFailed)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failed {
    /// The error, as displayed. Key `error`.
    pub error: String,
    /// The group the failed promotion was part of (`promote_with_dependencies`). Key `group`.
    pub group: Option<Uuid>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl Failed {
    /// The payload of a failure with this error message.
    pub fn new(error: impl Into<String>) -> Self {
        Failed {
            error: error.into(),
            group: None,
            other: BTreeMap::new(),
        }
    }

    pub(super) fn read(d: &mut Reader<'_>) -> Result<Self> {
        let mut failed = Failed::new(d.required(key::ERROR, text)?);
        failed.group = d.optional(key::GROUP, parse_uuid)?;
        Ok(failed)
    }
}

/// One member of a group: `name:version@digest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupMember {
    /// The artifact.
    pub artifact: ArtifactName,
    /// Its version.
    pub version: Tag,
    /// Its digest.
    pub digest: Digest,
}

impl fmt::Display for GroupMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.artifact, self.version, self.digest)
    }
}

impl FromStr for GroupMember {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("group member", s, "expected name:version@digest");
        let (name_version, digest) = s.split_once('@').ok_or_else(bad)?;
        let (name, version) = name_version.rsplit_once(':').ok_or_else(bad)?;
        Ok(GroupMember {
            artifact: ArtifactName::new(name)?,
            version: Tag::new(version)?,
            digest: Digest::new(digest)?,
        })
    }
}

/// A group of promotions (details of [`EventKind::GroupPromoted`](crate::history::EventKind::GroupPromoted)
/// and [`EventKind::GroupFailed`](crate::history::EventKind::GroupFailed)): a dependent and the
/// dependencies promoted before it. The record names the dependent (artifact, version, digest,
/// environments); each member's own events carry the group id too.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDetails {
    /// The group's id. Key `group`.
    pub group: Uuid,
    /// The members in promotion order, the dependent last (for a failed group: the members
    /// planned). Key `members`, comma-separated `name:version@digest`.
    pub members: Vec<GroupMember>,
    /// The member that failed. Key `failed`, the artifact's name.
    pub failed: Option<ArtifactName>,
    /// Why it failed. Key `error`.
    pub error: Option<String>,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl GroupDetails {
    /// The payload of group `group` with these members, in order.
    pub fn new(group: Uuid, members: Vec<GroupMember>) -> Self {
        GroupDetails {
            group,
            members,
            failed: None,
            error: None,
            other: BTreeMap::new(),
        }
    }

    pub(super) fn read(d: &mut Reader<'_>) -> Result<Self> {
        let mut g = GroupDetails::new(
            d.required(key::GROUP, parse_uuid)?,
            d.required(key::MEMBERS, parse_members)?,
        );
        g.failed = d.optional(key::FAILED, ArtifactName::from_str)?;
        g.error = d.optional(key::ERROR, text)?;
        Ok(g)
    }
}

fn parse_members(s: &str) -> Result<Vec<GroupMember>> {
    s.split(',')
        .filter(|m| !m.is_empty())
        .map(GroupMember::from_str)
        .collect()
}

/// An approval request was created (details of [`EventKind::ApprovalRequested`](crate::history::EventKind::ApprovalRequested)).
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

/// An approver voted (details of [`EventKind::ApprovalDecided`](crate::history::EventKind::ApprovalDecided)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalDecided {
    /// The request's id. Key `approval`.
    pub approval: Uuid,
    /// The vote. Key `decision`.
    pub decision: Decision,
    /// The request's phase after the vote. Key `status`.
    pub status: Phase,
    /// The signature of a signed vote (an environment with `approval.signers`): keys
    /// `signer` (the principal), `signed_message` and `signature` (armored SSHSIG).
    pub signature: Option<crate::model::SignedVote>,
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
            signature: None,
            other: BTreeMap::new(),
        }
    }

    /// The payload with the signature of a signed vote.
    pub fn with_signature(mut self, signature: crate::model::SignedVote) -> Self {
        self.signature = Some(signature);
        self
    }
}

/// An approval request expired (details of [`EventKind::ApprovalExpired`](crate::history::EventKind::ApprovalExpired)).
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

/// An environment was locked (details of [`EventKind::Locked`](crate::history::EventKind::Locked)).
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

/// A lock that was removed or passed (details of [`EventKind::Unlocked`](crate::history::EventKind::Unlocked) and
/// [`EventKind::LockOverridden`](crate::history::EventKind::LockOverridden)).
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

    pub(super) fn read(d: &mut Reader<'_>) -> Result<Self> {
        Ok(LockDetails::new(
            d.required(key::LOCK_OWNER, text)?,
            d.required(key::LOCK_REASON, text)?,
        ))
    }
}

/// Evidence was attached to a digest (details of [`EventKind::EvidenceAttached`](crate::history::EventKind::EvidenceAttached)).
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

/// A promotion lease was broken (details of [`EventKind::LeaseBroken`](crate::history::EventKind::LeaseBroken)).
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

/// A hold placed or released (details of [`EventKind::HoldPlaced`](crate::history::EventKind::HoldPlaced)
/// and [`EventKind::HoldReleased`](crate::history::EventKind::HoldReleased)). The hold's reason
/// is the record's `reason`; for a release, the record's reason is why it was released and
/// the hold's own reason is kept here as `hold_reason` when known.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldDetails {
    /// Who holds (or held) it. Key `holder`.
    pub holder: String,
    /// Placed by hand or by a rollback. Key `hold_kind`, `manual` or `rollback`.
    pub hold_kind: HoldKind,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

/// A closed promotion window was passed with a break-glass override (details of
/// [`EventKind::WindowOverridden`](crate::history::EventKind::WindowOverridden)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowOverridden {
    /// What closed it: a deny window, or no allow window being active. Key `window_kind`
    /// (`deny` or `allow`).
    pub window_kind: crate::config::WindowKind,
    /// The window's reason (why it was closed). Key `window_reason`.
    pub window_reason: String,
    /// Why the promotion went ahead anyway. Key `override_reason`.
    pub override_reason: String,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl HoldDetails {
    /// The payload of `holder`'s hold of `kind`.
    pub fn new(holder: impl Into<String>, kind: HoldKind) -> Self {
        HoldDetails {
            holder: holder.into(),
            hold_kind: kind,
            other: BTreeMap::new(),
        }
    }

    pub(super) fn read(d: &mut Reader<'_>) -> Result<Self> {
        Ok(HoldDetails::new(
            d.required(key::HOLDER, text)?,
            d.required(key::HOLD_KIND, HoldKind::from_str)?,
        ))
    }
}

impl WindowOverridden {
    /// The payload of a window of `kind`, closed for `window_reason`, overridden for
    /// `override_reason`.
    pub fn new(
        window_kind: crate::config::WindowKind,
        window_reason: impl Into<String>,
        override_reason: impl Into<String>,
    ) -> Self {
        WindowOverridden {
            window_kind,
            window_reason: window_reason.into(),
            override_reason: override_reason.into(),
            other: BTreeMap::new(),
        }
    }
}

/// What happened to a canary (the `canary_action` of a [`CanaryStepDetails`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CanaryAction {
    /// It started at its first step.
    Started,
    /// It moved to a later step below 100.
    Advanced,
    /// It reached 100: the pointer moved.
    Completed,
    /// It ended without moving the pointer.
    Aborted,
    /// An advance was refused (a gate, a lock, a window); it stays at its step.
    Blocked,
}

impl CanaryAction {
    /// The name stored: `started`, `advanced`, `completed`, `aborted`, `blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryAction::Started => "started",
            CanaryAction::Advanced => "advanced",
            CanaryAction::Completed => "completed",
            CanaryAction::Aborted => "aborted",
            CanaryAction::Blocked => "blocked",
        }
    }
}

impl FromStr for CanaryAction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [
            CanaryAction::Started,
            CanaryAction::Advanced,
            CanaryAction::Completed,
            CanaryAction::Aborted,
            CanaryAction::Blocked,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| {
            Error::invalid(
                "canary action",
                s,
                "expected started, advanced, completed, aborted or blocked",
            )
        })
    }
}

/// Where a canary is now (details of [`EventKind::CanaryStep`](crate::history::EventKind::CanaryStep)):
/// what a deployer or a service mesh controller acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CanaryStepDetails {
    /// The canary's release id. Key `canary`.
    pub canary: Uuid,
    /// The step, from 1. Key `step`.
    pub step: u32,
    /// The traffic weight for the new version now, in percent. Key `weight`.
    pub weight: u8,
    /// What happened. Key `canary_action`.
    pub action: CanaryAction,
    /// Keys this release does not know.
    pub other: BTreeMap<String, String>,
}

impl CanaryStepDetails {
    /// The payload of canary `canary` at `step` (from 1) and `weight` after `action`.
    pub fn new(canary: Uuid, step: u32, weight: u8, action: CanaryAction) -> Self {
        CanaryStepDetails {
            canary,
            step,
            weight,
            action,
            other: BTreeMap::new(),
        }
    }
}

/// A step number.
pub(super) fn parse_u32(s: &str) -> Result<u32> {
    s.parse()
        .map_err(|_| Error::invalid("canary step", s, "not a whole number"))
}

/// A weight: 0 to 100.
pub(super) fn parse_weight(s: &str) -> Result<u8> {
    s.parse::<u8>()
        .ok()
        .filter(|w| *w <= 100)
        .ok_or_else(|| Error::invalid("canary weight", s, "not a percentage from 0 to 100"))
}
