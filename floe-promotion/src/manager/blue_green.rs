//! Blue-green releases for embedders: the [`BlueGreen`] capability and its request, plan and
//! status types.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::types::{PlannedTag, PromotionRecord};
use crate::error::{Error, Result};
use crate::gate::GateResult;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};
use crate::release::blue_green::{BlueGreenPhase, Slot, SlotContent};
use crate::state::EnvLock;

/// Blue-green releases: in an environment with `strategy: blue_green`, a promotion stages its
/// digest on the idle slot (`<env>-blue` or `<env>-green`) and a switch moves the pointer.
///
/// # Contract
///
/// - `promote` into a blue-green environment runs every check, gate and approval of the
///   promotion path, then writes the environment tag and the idle slot's tag at the digest
///   (the preview) and records `preview_staged`; the pointer does not move and history's
///   current version stays what it was. A second promotion while a preview is staged replaces
///   the preview on the same slot. With `auto_switch: true` the switch follows at once, without
///   running the gates a second time.
/// - `switch` moves the pointer to the preview's digest: it refuses an environment that is not
///   blue-green, and a switch with no staged preview, as
///   [`Error::InvalidTransition`](crate::Error::InvalidTransition); it re-runs the
///   environment's gates on the preview's digest, and a failing gate refuses it with
///   [`Error::GateFailed`](crate::Error::GateFailed) and the pointer unmoved; the approval
///   given when the preview was staged covers the switch (no new request).
/// - A switch obeys the environment's lock like `promote` (checked again under the
///   environment's promotion lease; an override needs a reason and is recorded), and records
///   `switched` with both slots and digests; the slot that was live becomes the idle one.
/// - `switch` with `back` moves the pointer to the idle slot (the version that ran before),
///   needs a reason, runs no gates, records `switched` with `back`, and places a rollback hold
///   on automatic promotion like `rollback`. It is refused while a preview is staged (the idle
///   slot holds the preview then) or when the idle slot holds nothing.
/// - Of concurrent switches of one environment and artifact, exactly one moves the pointer
///   (compare-and-set on the release state); the others get
///   [`Error::Conflict`](crate::Error::Conflict) or, when the winner consumed the preview,
///   [`Error::InvalidTransition`](crate::Error::InvalidTransition).
/// - A refused or failed switch records a failed event (`promotion_failed`, or
///   `rollback_failed` for a switch back) after its input was accepted.
/// - `plan_switch` runs the same checks and gates without stopping at the first refusal and
///   reports which slot the pointer would move to; it writes no tag, history event, release
///   state or notification.
/// - `slots` reports both slots of each artifact with a blue-green release in an environment:
///   what each holds, which one is live, which one holds a staged preview.
#[async_trait]
pub trait BlueGreen: Send + Sync + std::fmt::Debug + 'static {
    /// Moves the pointer to the staged preview, or back to the previous slot.
    async fn switch(&self, request: SwitchRequest) -> Result<PromotionRecord>;

    /// Checks a switch without doing it (dry run).
    async fn plan_switch(&self, request: SwitchRequest) -> Result<SwitchPlan>;

    /// Both slots of every artifact with a blue-green release in `environment`.
    async fn slots(&self, environment: &EnvName) -> Result<Vec<SlotStatus>>;
}

/// A request to switch a blue-green environment's pointer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRequest {
    /// The environment.
    pub environment: EnvName,
    /// The artifact.
    pub artifact: ArtifactName,
    /// Who asks.
    pub actor: Actor,
    /// Why (required to switch back and to override a lock).
    pub reason: Option<String>,
    /// Back to the previous slot (the instant rollback) rather than to the preview.
    pub back: bool,
    /// Break-glass: switch even if the environment is locked. Needs a reason.
    pub override_lock: bool,
}

impl SwitchRequest {
    /// A switch of `artifact` in `environment` to its preview, without reason or override.
    pub fn new(environment: &str, artifact: &str, actor: Actor) -> Result<Self> {
        Ok(SwitchRequest {
            environment: EnvName::new(environment)?,
            artifact: ArtifactName::new(artifact)?,
            actor,
            reason: None,
            back: false,
            override_lock: false,
        })
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Switches back to the previous slot instead, for `reason`.
    pub fn back(mut self, reason: impl Into<String>) -> Self {
        self.back = true;
        self.reason = Some(reason.into());
        self
    }

    /// Overrides a lock on the environment, with a reason.
    pub fn override_lock(mut self, reason: impl Into<String>) -> Self {
        self.override_lock = true;
        self.reason = Some(reason.into());
        self
    }
}

/// The result of a switch's dry run.
#[derive(Debug)]
pub struct SwitchPlan {
    /// The environment.
    pub environment: EnvName,
    /// The artifact.
    pub artifact: ArtifactName,
    /// Whether it is a switch back.
    pub back: bool,
    /// The slot the pointer is on now, and what it holds.
    pub live: Option<(Slot, SlotContent)>,
    /// The slot the pointer would move to, and what it holds.
    pub target: Option<(Slot, SlotContent)>,
    /// The tags that would be written (the pointer; the environment tag is checked).
    pub tags: Vec<PlannedTag>,
    /// Every gate's result (none for a switch back).
    pub gates: Vec<GateResult>,
    /// The lock in force, if any.
    pub lock: Option<EnvLock>,
    /// Everything that would refuse the switch.
    pub blockers: Vec<Error>,
}

impl SwitchPlan {
    /// Whether the switch would succeed now.
    pub fn would_succeed(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// One slot of one artifact in a blue-green environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotStatus {
    /// The artifact.
    pub artifact: ArtifactName,
    /// The slot.
    pub slot: Slot,
    /// Its tag, `<env>-<slot>`.
    pub tag: Tag,
    /// The version it holds, if any.
    pub version: Option<Tag>,
    /// The digest it holds, if any.
    pub digest: Option<Digest>,
    /// The pointer is on it.
    pub live: bool,
    /// It holds a staged preview waiting for a switch.
    pub preview: bool,
    /// Where the artifact's blue-green release stands.
    pub phase: BlueGreenPhase,
}
