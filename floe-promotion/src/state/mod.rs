//! Shared mutable state: environment locks, promotion leases and approval requests.
//!
//! Separate processes share it through a durable store (`floe-promotion-sqlite`); the
//! in-memory [`InMemoryState`] serves one process and tests. Stores take the current time as an
//! argument, so expiry follows the manager's [`Clock`](crate::Clock).

mod memory;
mod process;

use std::fmt::{self, Debug};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};

pub use memory::InMemoryState;
pub use process::{HolderProcess, Liveness};

/// A lock on an environment: promotions and rollbacks into it are refused while it is active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvLock {
    /// The locked environment.
    pub environment: EnvName,
    /// Who locked it.
    pub owner: String,
    /// Why.
    pub reason: String,
    /// When.
    pub created: DateTime<Utc>,
    /// When it lapses by itself, if ever.
    pub expires: Option<DateTime<Utc>>,
}

impl EnvLock {
    /// Whether the lock is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

/// The right to promote into an environment, held by one promoter at a time until released or
/// expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The environment.
    pub environment: EnvName,
    /// Who holds it (for messages).
    pub holder: String,
    /// Identifies this acquisition; only it can release the lease.
    pub token: Uuid,
    /// When it was taken.
    pub acquired: DateTime<Utc>,
    /// When it lapses if not released.
    pub expires: DateTime<Utc>,
    /// The process that took it, when the holder said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<HolderProcess>,
}

impl Lease {
    /// Whether the lease is still held at `now` (not expired).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires
    }
}

/// Who asks for a promotion lease: a name for messages and, for a promoter process, which
/// process it is (so that a lease left by a killed promoter can be proven stale).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    /// Who holds it, for messages (e.g. `ci (request id)`).
    pub name: String,
    /// The holder's process.
    pub process: Option<HolderProcess>,
}

impl LeaseHolder {
    /// A holder known by name only.
    pub fn named(name: impl Into<String>) -> Self {
        LeaseHolder {
            name: name.into(),
            process: None,
        }
    }

    /// A holder that is this process.
    pub fn this_process(name: impl Into<String>) -> Self {
        LeaseHolder {
            name: name.into(),
            process: HolderProcess::current(),
        }
    }
}

/// Locks and promotion leases.
///
/// # Contract
///
/// - `lock` stores the lock when the environment has no active lock, and otherwise fails with
///   [`Error::Locked`](crate::Error::Locked) naming the lock in force; an expired lock counts
///   as absent and is replaced.
/// - `unlock` removes the environment's lock and returns it if it was active; unlocking an
///   unlocked environment returns `None`.
/// - `get_lock` returns the active lock of an environment, never an expired one; `locks` lists
///   every active lock sorted by environment.
/// - `acquire_lease` grants the lease when no unexpired lease is held on the environment, and
///   otherwise fails with [`Error::Busy`](crate::Error::Busy); at most one holder at a time,
///   also across processes sharing a durable store.
/// - `acquire_lease` stores the holder's name and process in the lease it returns.
/// - `release_lease` frees the lease only if it is still the holder's (same token); releasing
///   a lease that expired and was taken by another holder leaves the new holder's lease alone.
/// - `leases` lists every unexpired lease sorted by environment, never an expired or released
///   one.
/// - `break_lease` removes the given lease, expired or not, only if the environment's lease is
///   still that one (same token), and says whether it removed it; a lease taken since by
///   another holder is left alone. After a break the environment's lease can be acquired.
/// - Every method is atomic with respect to concurrent callers.
#[async_trait]
pub trait LockStore: Send + Sync + Debug + 'static {
    /// Locks an environment.
    async fn lock(&self, lock: EnvLock, now: DateTime<Utc>) -> Result<EnvLock>;
    /// Unlocks an environment.
    async fn unlock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>>;
    /// The active lock of an environment.
    async fn get_lock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>>;
    /// Every active lock.
    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<EnvLock>>;
    /// Takes the promotion lease of an environment for `ttl`.
    async fn acquire_lease(
        &self,
        environment: &EnvName,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease>;
    /// Gives the lease back.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;
    /// Every unexpired lease.
    async fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>>;
    /// Removes a lease someone else holds (a stale lease of a promoter that died).
    async fn break_lease(&self, lease: &Lease) -> Result<bool>;
}

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
    /// [`ApprovalStore`] applies inside its atomic update.
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

/// Durable approval requests.
///
/// # Contract
///
/// - `create` stores a new request; an id that exists is [`Error::Conflict`](crate::Error::Conflict).
/// - `get` returns the request as last stored; an unknown id is
///   [`Error::NotFound`](crate::Error::NotFound).
/// - `list` returns requests with the given status (all when `None`), oldest first.
/// - `add_decision` appends a decision atomically only while the request is pending and the
///   actor has not decided on it yet; otherwise it is [`Error::Conflict`](crate::Error::Conflict)
///   and nothing changes.
/// - `set_status` moves a request from `from` to `to` atomically (compare and set); when the
///   request is not in `from` it is [`Error::Conflict`](crate::Error::Conflict) and nothing changes.
#[async_trait]
pub trait ApprovalStore: Send + Sync + Debug + 'static {
    /// Stores a new request.
    async fn create(&self, request: ApprovalRequest) -> Result<()>;
    /// Reads a request.
    async fn get(&self, id: Uuid) -> Result<ApprovalRequest>;
    /// Lists requests.
    async fn list(&self, status: Option<ApprovalStatus>) -> Result<Vec<ApprovalRequest>>;
    /// Records a decision.
    async fn add_decision(&self, id: Uuid, decision: ApprovalDecision) -> Result<ApprovalRequest>;
    /// Moves a request between states.
    async fn set_status(
        &self,
        id: Uuid,
        from: ApprovalStatus,
        to: ApprovalStatus,
    ) -> Result<ApprovalRequest>;
}
