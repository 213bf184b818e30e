//! The promotion path: [`PromotionManager`] and its implementation [`DefaultPromotionManager`].

mod blue_green;
mod builder;
mod default;
mod group;
mod types;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::Duration;

use crate::error::Result;
use crate::history::{AuditEvent, HistoryQuery, VerifyReport};
use crate::model::{Actor, EnvName};
use crate::orchestrate::{AutoOptions, AutoReport};
use crate::state::{EnvLock, Hold, Lease};

pub use blue_green::{BlueGreen, SlotStatus, SwitchPlan, SwitchRequest};
pub use builder::PromotionManagerBuilder;
pub use default::DefaultPromotionManager;
pub use group::{GroupPlan, GroupRecord};
pub use types::{
    ApprovalOutcome, ApprovalView, CanaryView, EnvironmentStatus, Outcome, PlannedApproval,
    PlannedTag, PromotionPlan, PromotionRecord, PromotionRequest, RollbackRequest, TagAction,
};

/// Moves versions between environments: promotion, rollback and their dry runs.
///
/// # Contract
///
/// - `promote` resolves the digest once, in the source environment, and binds every check and
///   every written tag to it; the tags it writes carry the byte-exact manifest.
/// - `promote` goes forward only, to the next environment unless the settings allow skipping;
///   it refuses an actor the target's authorization does not list, and under separation of
///   duties the actor who promoted the version into the source environment.
/// - `promote` refuses a locked target unless the request overrides the lock with a reason,
///   which is recorded.
/// - `promote` runs the target's gates concurrently, each with a timeout; a failure, error or
///   timeout of any gate blocks it.
/// - `promote` never moves an environment tag: the same digest again writes nothing new, another
///   digest is an immutability error; the pointer tag moves to the promoted digest.
/// - A refused or failed `promote` or `rollback` records a failed event and leaves the pointer
///   where it was; a successful one records a success event with the gate results and tags.
/// - `plan` runs every check and gate of `promote` without stopping at the first failure and
///   reports what would be written; it writes no tag, history event, approval, lock or
///   notification.
/// - `rollback` moves the pointer to a version that history shows was in that environment, at
///   the digest history recorded, requires a reason, writes a rollback tag
///   `<version>-<env>-rollback-<n>`, and obeys locks like `promote`.
/// - `promote` and `rollback` check the target's lock again under the environment's promotion
///   lease, before the copy and before the first tag is written: a lock taken while the gates
///   ran refuses them unless the request overrides it, and the override is recorded.
/// - A tag write that fails is read back: when the registry holds the new digest all the same,
///   the operation succeeded; otherwise it failed and the pointer is where it was. The recorded
///   outcome never disagrees with what the registry shows.
/// - Every recorded event is also sent to the notifiers; a notifier's failure becomes a warning
///   on the record and never fails the operation.
#[async_trait]
pub trait Promotions: Send + Sync + Debug + 'static {
    /// Promotes a version from one environment to the next.
    async fn promote(&self, request: PromotionRequest) -> Result<PromotionRecord>;

    /// Checks a promotion without doing it (dry run).
    async fn plan(&self, request: PromotionRequest) -> Result<PromotionPlan>;

    /// Rolls an environment back to a version it ran before.
    async fn rollback(&self, request: RollbackRequest) -> Result<PromotionRecord>;

    /// Checks a rollback without doing it (dry run).
    async fn plan_rollback(&self, request: RollbackRequest) -> Result<PromotionPlan>;
}

/// Looks after environments: locks, promotion leases, status, the audit trail.
///
/// # Contract
///
/// - `lock` refuses an environment that is already locked; `unlock` of an unlocked environment
///   is [`Error::NotFound`](crate::Error::NotFound). Both are recorded.
/// - `status` reports, per environment in order, what runs there and its lock.
/// - `leases` lists the promotion leases in force. `break_lease` needs a reason, removes the
///   environment's lease and records a `lease_broken` event; it refuses a lease whose holder
///   process is provably alive on this machine unless the request is a break-glass override,
///   which is recorded as such.
/// - `history` returns the events a query selects; `verify` checks the whole audit chain.
#[async_trait]
pub trait Administration: Send + Sync + Debug + 'static {
    /// Locks an environment.
    async fn lock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        expires_in: Option<Duration>,
    ) -> Result<EnvLock>;

    /// Unlocks an environment.
    async fn unlock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<EnvLock>;

    /// What runs where, per environment in promotion order (one environment when given).
    async fn status(&self, environment: Option<&EnvName>) -> Result<Vec<EnvironmentStatus>>;

    /// Audit events matching a query.
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>>;

    /// Verifies the audit chain.
    async fn verify(&self) -> Result<VerifyReport>;

    /// The promotion leases in force, sorted by environment.
    async fn leases(&self) -> Result<Vec<Lease>>;

    /// Removes the promotion lease of `environment` (left by a promoter that died), for
    /// `reason`. `force` breaks it even when its holder's process is alive on this machine.
    async fn break_lease(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        force: bool,
    ) -> Result<Lease>;
}

/// Approval workflows: promotions into an environment with an approval policy wait for votes.
///
/// # Contract
///
/// - `promote` into an environment with an approval policy runs every check and gate, then
///   creates a request bound to the digest (with the gate results), records
///   `approval_requested` and returns [`Error::ApprovalPending`](crate::Error::ApprovalPending)
///   with the request id; the same `promote` of the same digest again returns the same open
///   request, or executes it once approved.
/// - `approve` and `reject` refuse the requester, (under `promoters`) whoever promoted the
///   digest into the source, anyone no rule admits (each with who may approve), a second vote
///   by the same person, and every vote on a rejected, expired or executed request
///   ([`Error::ApprovalClosed`](crate::Error::ApprovalClosed)); every vote is recorded as
///   `approval_decided`, one rejection is final.
/// - The quorum is met when approvals can be assigned to the rules with each person used once
///   and each rule getting its number; then the promotion executes at once: locks apply,
///   gates run again on the same digest, the tags are written by the common tail. If it is
///   blocked, the request stays approved and `execute` (or `promote` again) runs it later
///   without new votes, until it expires.
/// - An expired request can be neither approved nor executed; its expiry is recorded as
///   `approval_expired` when noticed.
/// - A request is executed at most once: a process that died between the quorum and the tag
///   write leaves it `executing`, and the next `execute` completes it without writing or
///   recording the promotion twice.
/// - `approvals` lists requests, oldest first, filtered by environment and status, with a
///   request past its expiry shown as expired.
/// - In an environment whose approval has `signers`, `approve` and `reject` (a claimed
///   actor) are refused with [`Error::VoteSignature`](crate::Error::VoteSignature), and
///   `approve_signed`/`reject_signed` count only a signature, in namespace `floe-approval`,
///   by a key the signers file lists for a principal whose line allows that namespace, over
///   this request's [`vote_message`](crate::release::approval::ApprovalTicket::vote_message)
///   for that decision; anything else is refused with the same error. The vote's actor is
///   the principal, its groups the manifest's `groups`; the `approval_decided` event keeps
///   the principal, the signed message and the armored signature. In an environment without
///   signers, signed votes are refused.
#[async_trait]
pub trait Approvals: Send + Sync + Debug + 'static {
    /// The approval requests matching the filter.
    async fn approvals(
        &self,
        environment: Option<&EnvName>,
        status: Option<crate::release::approval::Phase>,
    ) -> Result<Vec<ApprovalView>>;

    /// Approves a request; executes the promotion when this vote meets the quorum.
    async fn approve(
        &self,
        id: uuid::Uuid,
        actor: &Actor,
        comment: Option<&str>,
    ) -> Result<ApprovalOutcome>;

    /// Rejects a request, for good.
    async fn reject(&self, id: uuid::Uuid, actor: &Actor, reason: &str) -> Result<ApprovalView>;

    /// Approves a request with a signed vote: the voter is the signature's principal.
    async fn approve_signed(
        &self,
        id: uuid::Uuid,
        signature: &crate::model::VoteSignature,
        comment: Option<&str>,
    ) -> Result<ApprovalOutcome>;

    /// Rejects a request, for good, with a signed vote.
    async fn reject_signed(
        &self,
        id: uuid::Uuid,
        signature: &crate::model::VoteSignature,
        reason: &str,
    ) -> Result<ApprovalView>;

    /// Executes an approved request whose execution was blocked or interrupted.
    async fn execute(&self, id: uuid::Uuid, actor: &Actor) -> Result<PromotionRecord>;
}

/// Automatic promotion, and the holds that stop it.
///
/// # Contract
///
/// - `run_auto_promotions` looks at every environment with `auto_promote` (or only
///   `options.environment`) and, per artifact, at its candidate as
///   [`candidates`](crate::orchestrate::candidates) defines it: the newest version that ran in
///   `from` without interruption for at least `soak`, matches `versions`, was never rolled back
///   in `from` or the target, and is newer in `from` than what the target runs.
/// - A candidate is promoted through `promote` (checks, gates, approvals, locks, leases) as
///   `options.actor`, marked automatic; each decision is in the report, and a candidate whose
///   checks or gates block it now is left for a later pass with nothing recorded.
/// - An environment with any hold, or whose promotion window is closed, gets no automatic
///   promotion; the report says which holders or which window.
/// - A candidate that needs approval gets one request: later passes find it open and create
///   nothing; after its request was rejected or expired the candidate is no longer promoted
///   automatically.
/// - Passes running at once, in one process or several sharing the stores, promote each
///   candidate once; a pass with nothing to do records nothing.
/// - With `options.dry_run` a pass only plans: it records, claims and writes nothing.
/// - A pass asked to stop (`options.stop`) finishes the promotion under way and reports
///   `stopped` before its next candidate.
/// - `hold` places the actor's hold on an environment with a reason and records
///   `hold_placed`; an actor who already holds it gets [`Error::Conflict`](crate::Error).
///   Holding needs the authorization that locking needs.
/// - `release_hold` removes the actor's own hold, or `holder`'s when given, with a reason, and
///   records `hold_released`; no such hold is [`Error::NotFound`](crate::Error). Other holders'
///   holds stay: the environment moves again only when every holder released.
/// - A successful rollback places a rollback hold on its environment for its actor; a
///   successful promotion there that is not automatic releases every rollback hold of it.
#[async_trait]
pub trait AutoPromotions: Send + Sync + Debug + 'static {
    /// One pass of automatic promotion.
    async fn run_auto_promotions(&self, options: &AutoOptions) -> Result<AutoReport>;

    /// Places the actor's hold on automatic promotion into `environment`.
    async fn hold(&self, environment: &EnvName, actor: &Actor, reason: &str) -> Result<Hold>;

    /// Releases the actor's hold on `environment`, or `holder`'s.
    async fn release_hold(
        &self,
        environment: &EnvName,
        actor: &Actor,
        holder: Option<&str>,
        reason: &str,
    ) -> Result<Hold>;

    /// The holds on one environment, or on all.
    async fn holds(&self, environment: Option<&EnvName>) -> Result<Vec<Hold>>;
}

/// Canary releases: advance, abort, and what runs.
///
/// # Contract
///
/// - A promotion into an environment with a canary strategy starts a canary: the new digest
///   on `canary-<env>` at the first step's weight, the pointer and the environment tag
///   untouched; one canary at a time per environment and artifact (another promotion of that
///   artifact there is refused while one runs).
/// - `advance_canary` re-runs the environment's checks and gates on the canary's digest; a
///   failure refuses the step (recorded as a `blocked` step) and the canary stays where it
///   was. Otherwise it moves to the next step and records it; at 100 it writes the
///   environment tag, moves the pointer (a `promotion_succeeded`) and the canary completes.
/// - `abort_canary` needs a reason, ends a running canary with the pointer untouched and
///   `canary-<env>` back on the stable digest (when there was one), and records it.
/// - A rollback of an environment aborts its running canary of that artifact first.
/// - A timed pause advances by itself when `run_auto_promotions` runs after it elapsed; a
///   pause without a duration waits for `advance_canary`.
/// - Concurrent advances of one canary move it one step: the release store decides.
/// - Every step, completion and abort is an audit event (`canary_step`, with the weight).
#[async_trait]
pub trait Canaries: Send + Sync + Debug + 'static {
    /// Moves the canary of `artifact` (the one canary when `None`) in `environment` to its
    /// next step.
    async fn advance_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&crate::model::ArtifactName>,
        actor: &Actor,
    ) -> Result<CanaryView>;

    /// Ends the canary without moving the pointer.
    async fn abort_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&crate::model::ArtifactName>,
        actor: &Actor,
        reason: &str,
    ) -> Result<CanaryView>;

    /// The canaries that run (running or completing), in one environment or all.
    async fn canaries(&self, environment: Option<&EnvName>) -> Result<Vec<CanaryView>>;
}

/// Revocation: digests marked bad everywhere.
///
/// # Contract
///
/// - `revoke` needs a reason, marks the digest revoked for every environment and records
///   `revoked`; a digest revoked already is [`Error::Conflict`](crate::Error) naming who revoked
///   it and why.
/// - While a digest is revoked, promoting it into any environment and rolling back to it are
///   refused with [`Error::Revoked`](crate::Error) (a dry run lists it as a blocker), and
///   automatic promotion never picks it.
/// - `status` lists, per environment, the revocations of the digests still running there.
/// - `unrevoke` needs a reason, lifts the revocation and records `unrevoked`; a digest that is
///   not revoked is [`Error::NotFound`](crate::Error).
#[async_trait]
pub trait Revocations: Send + Sync + Debug + 'static {
    /// Revokes `digest` (of `artifact`).
    async fn revoke(
        &self,
        artifact: &crate::model::ArtifactName,
        digest: &crate::model::Digest,
        actor: &Actor,
        reason: &str,
    ) -> Result<crate::state::Revocation>;

    /// Lifts the revocation of `digest`.
    async fn unrevoke(
        &self,
        digest: &crate::model::Digest,
        actor: &Actor,
        reason: &str,
    ) -> Result<crate::state::Revocation>;

    /// Every revocation, oldest first.
    async fn revocations(&self) -> Result<Vec<crate::state::Revocation>>;
}

/// The whole surface of a manager, by capability: [`Promotions`], [`Administration`],
/// [`Approvals`], [`AutoPromotions`], [`Canaries`], [`BlueGreen`] and [`Revocations`]. Implemented for every type that implements
/// the capabilities; hold it as `Arc<dyn PromotionManager>`. Bring the capability traits into
/// scope with `use floe_promotion::prelude::*`.
pub trait PromotionManager:
    Promotions + Administration + Approvals + AutoPromotions + Canaries + BlueGreen + Revocations
{
}

impl<
    T: Promotions + Administration + Approvals + AutoPromotions + Canaries + BlueGreen + Revocations,
> PromotionManager for T
{
}
