//! Shared mutable state: environment locks, promotion leases and holds on automatic promotion. (Approval requests are
//! release state: see [`release`](crate::release).)
//!
//! Separate processes share it through a durable store (`floe-promotion-sqlite`); the
//! in-memory [`InMemoryState`] serves one process and tests. Stores take the current time as an
//! argument, so expiry follows the manager's [`Clock`](crate::Clock).

mod memory;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::error::Result;
use crate::model::EnvName;

pub use crate::model::hold::{Hold, HoldKind};
pub use crate::model::lease::{HolderProcess, Lease, LeaseHolder, Liveness};
pub use crate::model::lock::EnvLock;
pub use crate::model::revocation::Revocation;
pub use memory::InMemoryState;

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

/// Holds on automatic promotion, per environment and holder.
///
/// # Contract
///
/// - `place` stores the hold and returns `true` when its holder holds nothing on that
///   environment; when the holder already holds it, the stored hold is unchanged and `place`
///   returns `false`. Holds of other holders on the same environment are independent.
/// - `release` removes the given holder's hold on the environment and returns it; `None` when
///   that holder held nothing there. Other holders' holds stay.
/// - `release_kind` removes every hold of the given kind on the environment and returns them,
///   in `holds` order; holds of other kinds and other environments stay.
/// - `holds` lists the holds of one environment (or of all when `None`), sorted by
///   environment, then placement time, then holder.
/// - Every method is atomic with respect to concurrent callers; a durable store keeps holds
///   across processes sharing it.
#[async_trait]
pub trait HoldStore: Send + Sync + Debug + 'static {
    /// Places a hold; `false` when the holder already holds the environment.
    async fn place(&self, hold: Hold) -> Result<bool>;
    /// Releases one holder's hold.
    async fn release(&self, environment: &EnvName, holder: &str) -> Result<Option<Hold>>;
    /// Releases every hold of `kind` on an environment.
    async fn release_kind(&self, environment: &EnvName, kind: HoldKind) -> Result<Vec<Hold>>;
    /// The holds of one environment, or of all.
    async fn holds(&self, environment: Option<&EnvName>) -> Result<Vec<Hold>>;
}

/// Digests marked bad everywhere.
///
/// # Contract
///
/// - `revoke` stores the revocation and returns `true` when its digest is not revoked; when it
///   is, the stored revocation is unchanged and `revoke` returns `false`.
/// - `unrevoke` removes the revocation of a digest and returns it; `None` when it was not
///   revoked.
/// - `revocation` returns the revocation of a digest, if any, as stored.
/// - `revocations` lists every revocation, oldest first (then by digest).
/// - Every method is atomic with respect to concurrent callers; a durable store keeps
///   revocations across processes sharing it.
#[async_trait]
pub trait RevocationStore: Send + Sync + Debug + 'static {
    /// Revokes a digest; `false` when it already is.
    async fn revoke(&self, revocation: Revocation) -> Result<bool>;
    /// Lifts the revocation of a digest.
    async fn unrevoke(&self, digest: &crate::model::Digest) -> Result<Option<Revocation>>;
    /// The revocation of a digest.
    async fn revocation(&self, digest: &crate::model::Digest) -> Result<Option<Revocation>>;
    /// Every revocation.
    async fn revocations(&self) -> Result<Vec<Revocation>>;
}
