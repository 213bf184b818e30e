//! Approval requests and decisions.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};

/// Where an approval request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for decisions.
    Pending,
    /// The quorum approved; the promotion may execute.
    Approved,
    /// Someone rejected; final.
    Rejected,
    /// It expired before completing; final.
    Expired,
    /// The approved promotion ran.
    Executed,
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Executed => "executed",
        })
    }
}

/// One approver's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    /// Who decided.
    pub actor: Actor,
    /// Approve (`true`) or reject.
    pub approve: bool,
    /// Why.
    pub comment: Option<String>,
    /// When.
    pub time: DateTime<Utc>,
}

/// A request to promote a digest into an environment that needs approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Id.
    pub id: Uuid,
    /// Artifact.
    pub artifact: ArtifactName,
    /// Version.
    pub version: Tag,
    /// The digest the approval binds to.
    pub digest: Digest,
    /// Source environment.
    pub from: EnvName,
    /// Target environment.
    pub to: EnvName,
    /// Who asked (may not approve).
    pub requested_by: Actor,
    /// Why.
    pub reason: Option<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// Approvals needed.
    pub required: u32,
    /// Users who may approve.
    pub approvers: Vec<String>,
    /// Groups whose members may approve.
    pub approver_groups: Vec<String>,
    /// Decisions so far, in order.
    pub decisions: Vec<ApprovalDecision>,
    /// Where it stands.
    pub status: ApprovalStatus,
}

impl ApprovalRequest {
    /// Appends a decision if the request is pending and the actor has not decided yet;
    /// otherwise [`Error::Conflict`](crate::Error::Conflict) and nothing changes. The rule every
    /// [`ApprovalStore`](crate::ApprovalStore) applies inside its atomic update.
    pub fn record_decision(&mut self, decision: ApprovalDecision) -> Result<()> {
        if self.status != ApprovalStatus::Pending {
            return Err(crate::Error::Conflict(format!(
                "approval request {} is {}, not pending",
                self.id, self.status
            )));
        }
        if self
            .decisions
            .iter()
            .any(|d| d.actor.id == decision.actor.id)
        {
            return Err(crate::Error::Conflict(format!(
                "{} has already decided on approval request {}",
                decision.actor.id, self.id
            )));
        }
        self.decisions.push(decision);
        Ok(())
    }

    /// Moves the request from `from` to `to` (compare and set); otherwise
    /// [`Error::Conflict`](crate::Error::Conflict) and nothing changes.
    pub fn transition(&mut self, from: ApprovalStatus, to: ApprovalStatus) -> Result<()> {
        if self.status != from {
            return Err(crate::Error::Conflict(format!(
                "approval request {} is {}, not {from}",
                self.id, self.status
            )));
        }
        self.status = to;
        Ok(())
    }
}
