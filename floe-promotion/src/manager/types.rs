use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::gate::GateResult;
use crate::history::Deployment;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Repository, Tag};
use crate::registry::{CopyMode, CopyReport};
use crate::state::EnvLock;

/// A request to promote `artifact:version` from one environment to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRequest {
    /// Artifact.
    pub artifact: ArtifactName,
    /// Version (release tag).
    pub version: Tag,
    /// Source environment.
    pub from: EnvName,
    /// Target environment.
    pub to: EnvName,
    /// Who asks.
    pub actor: Actor,
    /// Why (recorded; required with `override_lock` and `override_window`).
    pub reason: Option<String>,
    /// Break-glass: promote even if the target is locked. Needs a reason.
    pub override_lock: bool,
    /// Asked for by automatic promotion (`run_auto_promotions`) rather than by a person. A
    /// promotion that is not automatic releases the rollback holds of its target.
    #[serde(default)]
    pub automatic: bool,
    /// Break-glass: promote even while the target's promotion window is closed (recorded as
    /// `window_overridden`). Needs a reason.
    #[serde(default)]
    pub override_window: bool,
}

impl PromotionRequest {
    /// Validates the names and builds a request without reason or override.
    pub fn new(artifact: &str, version: &str, from: &str, to: &str, actor: Actor) -> Result<Self> {
        Ok(PromotionRequest {
            artifact: ArtifactName::new(artifact)?,
            version: Tag::new(version)?,
            from: EnvName::new(from)?,
            to: EnvName::new(to)?,
            actor,
            reason: None,
            override_lock: false,
            automatic: false,
            override_window: false,
        })
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Overrides a lock on the target, with a reason.
    pub fn override_lock(mut self, reason: impl Into<String>) -> Self {
        self.override_lock = true;
        self.reason = Some(reason.into());
        self
    }

    /// Promotes while the target's promotion window is closed (break-glass), with a reason;
    /// recorded as a `window_overridden` event.
    pub fn override_window(mut self, reason: impl Into<String>) -> Self {
        self.override_window = true;
        self.reason = Some(reason.into());
        self
    }
}

/// A request to roll an environment back to an earlier version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// Artifact.
    pub artifact: ArtifactName,
    /// The environment to roll back.
    pub environment: EnvName,
    /// The version to return to.
    pub to_version: Tag,
    /// Who asks.
    pub actor: Actor,
    /// Why (required).
    pub reason: String,
    /// Break-glass: roll back even if the environment is locked.
    pub override_lock: bool,
}

impl RollbackRequest {
    /// Validates the names and builds a request.
    pub fn new(
        artifact: &str,
        environment: &str,
        to_version: &str,
        actor: Actor,
        reason: &str,
    ) -> Result<Self> {
        Ok(RollbackRequest {
            artifact: ArtifactName::new(artifact)?,
            environment: EnvName::new(environment)?,
            to_version: Tag::new(to_version)?,
            actor,
            reason: reason.to_string(),
            override_lock: false,
        })
    }
}

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The version was promoted: tags were written.
    Promoted,
    /// The version was already there at the same digest: nothing was written.
    AlreadyPromoted,
    /// The environment was rolled back.
    RolledBack,
    /// The version was staged on the idle slot of a blue-green environment (the preview); the
    /// pointer did not move.
    Staged,
    /// A blue-green switch moved the pointer to the preview.
    Switched,
    /// A blue-green switch moved the pointer back to the previous slot.
    SwitchedBack,
    /// A canary started: the new digest is on `canary-<env>` at the first step's weight; the
    /// pointer moves when the canary completes.
    CanaryStarted,
}

/// A canary release as callers see it: what a deployer or a service mesh controller reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryView {
    /// The canary's release id.
    pub id: Uuid,
    /// The environment.
    pub environment: EnvName,
    /// Where the version came from.
    pub from: EnvName,
    /// The artifact.
    pub artifact: ArtifactName,
    /// The version under test, on `canary-<env>`.
    pub version: Tag,
    /// Its digest.
    pub digest: Digest,
    /// `running`, `completing`, `completed` or `aborted`.
    pub phase: crate::release::canary::CanaryPhase,
    /// The current step, from 1.
    pub step: usize,
    /// How many steps there are (the last at 100).
    pub steps: Vec<crate::config::CanaryStep>,
    /// The traffic weight for the new version now, in percent.
    pub weight: u8,
    /// When the current step began.
    pub step_started: DateTime<Utc>,
    /// When the current step advances by itself (a timed pause), if it does.
    pub due: Option<DateTime<Utc>>,
    /// What the pointer showed when it started (the stable version), if anything.
    pub stable: Option<crate::release::canary::Stable>,
    /// Who started it.
    pub started_by: String,
    /// When it started.
    pub started: DateTime<Utc>,
}

/// The record of a completed promotion or rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRecord {
    /// Operation id (the id of the request event).
    pub id: Uuid,
    /// What happened.
    pub outcome: Outcome,
    /// Artifact.
    pub artifact: ArtifactName,
    /// Version.
    pub version: Tag,
    /// Digest, identical in every environment.
    pub digest: Digest,
    /// Source environment (none for a rollback).
    pub from: Option<EnvName>,
    /// Target environment.
    pub to: EnvName,
    /// The target repository.
    pub repository: Repository,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// Gate results.
    pub gates: Vec<GateResult>,
    /// Tags written, in order.
    pub tags_written: Vec<Tag>,
    /// What the copy between repositories did, if one was needed.
    pub copy: Option<CopyReport>,
    /// Whether a lock was overridden.
    pub lock_overridden: bool,
    /// Whether a closed promotion window was overridden.
    #[serde(default)]
    pub window_overridden: bool,
    /// Warnings (gate warnings, notifier failures).
    pub warnings: Vec<String>,
    /// Start time.
    pub started: DateTime<Utc>,
    /// End time.
    pub finished: DateTime<Utc>,
    /// Sequence number of the outcome event in the audit chain (none for a no-op).
    pub event_seq: Option<u64>,
}

/// What a planned write would do to a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagAction {
    /// The tag does not exist and would be created.
    Create,
    /// The tag exists at another digest and would move (pointer tags only).
    Move,
    /// The tag already holds the digest.
    Unchanged,
}

/// One tag a promotion would write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTag {
    /// The tag.
    pub tag: Tag,
    /// What would happen.
    pub action: TagAction,
    /// The digest it holds now, if any.
    pub current: Option<Digest>,
    /// Whether the tag may never move once written (an environment or rollback tag); a
    /// pointer, canary or slot tag moves.
    #[serde(default)]
    pub immutable: bool,
}

/// The result of a dry run: every check and gate, and what would be written.
#[derive(Debug)]
pub struct PromotionPlan {
    /// Artifact.
    pub artifact: ArtifactName,
    /// Version.
    pub version: Tag,
    /// The digest that would be promoted, when it could be resolved.
    pub digest: Option<Digest>,
    /// Source environment (none for a rollback).
    pub from: Option<EnvName>,
    /// Target environment.
    pub to: EnvName,
    /// Source repository.
    pub source: Option<Repository>,
    /// Target repository.
    pub target: Repository,
    /// How blobs would move.
    pub copy_mode: Option<CopyMode>,
    /// Tags that would be written.
    pub tags: Vec<PlannedTag>,
    /// Every gate's result.
    pub gates: Vec<GateResult>,
    /// The lock in force on the target, if any.
    pub lock: Option<EnvLock>,
    /// Everything that would refuse the operation, in the order the real run checks them.
    pub blockers: Vec<Error>,
    /// The approval a real run would wait for, when the target has an approval policy.
    pub approval: Option<PlannedApproval>,
    /// How the target releases a new version: a canary's steps are the plan's steps (its
    /// tags are then `canary-<env>` alone).
    pub strategy: crate::config::Strategy,
    /// The blue-green slot the promotion would stage on (the pointer would not move), when
    /// the target releases by blue-green.
    pub preview_slot: Option<crate::release::blue_green::Slot>,
    /// The artifact's direct dependencies, each at the digest wanted (empty for a rollback).
    pub dependencies: Vec<crate::model::Dependency>,
}

/// The approval a promotion would wait for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedApproval {
    /// The rules to meet, each with who may approve.
    pub rules: Vec<crate::config::ApprovalRule>,
    /// Who may never approve.
    pub separation: crate::config::ApprovalSeparation,
    /// How long the request would stay open, in seconds.
    pub timeout_seconds: u64,
    /// An open request for the same digest that the run would use instead of a new one.
    pub open_request: Option<uuid::Uuid>,
}

/// An approval request as callers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// The request's id.
    pub id: uuid::Uuid,
    /// Where it stands now (a request past its expiry shows as expired).
    pub status: crate::release::approval::Phase,
    /// What is approved.
    pub ticket: crate::release::approval::ApprovalTicket,
    /// The votes, in order.
    pub votes: Vec<crate::release::approval::Vote>,
    /// Per rule, who counts toward it.
    pub assigned: std::collections::BTreeMap<String, Vec<String>>,
    /// Per rule still short, how many approvals it lacks.
    pub missing: Vec<(String, u32)>,
}

/// What a vote did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalOutcome {
    /// The request after the vote.
    pub request: ApprovalView,
    /// The promotion, when the vote met the quorum and it ran.
    pub executed: Option<PromotionRecord>,
    /// Why the approved promotion did not run yet (it stays approved until it expires).
    pub execution_blocked: Option<String>,
}

impl PromotionPlan {
    /// Whether the operation would succeed now.
    pub fn would_succeed(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// What runs in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    /// The environment.
    pub environment: EnvName,
    /// Its position in the promotion order (0 first).
    pub position: usize,
    /// The current version of each artifact there.
    pub deployments: Vec<Deployment>,
    /// Its active lock.
    pub lock: Option<EnvLock>,
    /// Its holds on automatic promotion, by holder.
    pub holds: Vec<crate::state::Hold>,
    /// The canaries running in it.
    pub canaries: Vec<CanaryView>,
    /// The revocations of digests still running in it (a warning for every one).
    pub revoked: Vec<crate::state::Revocation>,
    /// The blue-green slots of each artifact released there by blue-green (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<super::SlotStatus>,
}
