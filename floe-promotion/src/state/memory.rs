use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{
    EnvLock, Hold, HoldKind, HoldStore, Lease, LeaseHolder, LockStore, Revocation, RevocationStore,
};
use crate::error::{Error, Result};
use crate::model::EnvName;

/// Locks, leases and holds held in memory, for one process and for tests. Clones share
/// the same state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryState {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    locks: BTreeMap<EnvName, EnvLock>,
    leases: BTreeMap<EnvName, Lease>,
    holds: BTreeMap<(EnvName, String), Hold>,
    revocations: BTreeMap<crate::model::Digest, Revocation>,
}

impl InMemoryState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `lease` if it is still the one held; whether it was.
    fn remove_lease(&self, lease: &Lease) -> bool {
        let mut inner = self.lock_inner();
        if inner
            .leases
            .get(&lease.environment)
            .is_some_and(|l| l.token == lease.token)
        {
            inner.leases.remove(&lease.environment);
            return true;
        }
        false
    }
}

#[async_trait]
impl LockStore for InMemoryState {
    async fn lock(&self, lock: EnvLock, now: DateTime<Utc>) -> Result<EnvLock> {
        let mut inner = self.lock_inner();
        if let Some(existing) = inner.locks.get(&lock.environment)
            && existing.is_active(now)
        {
            return Err(Error::Locked {
                lock: Box::new(existing.clone()),
            });
        }
        inner.locks.insert(lock.environment.clone(), lock.clone());
        Ok(lock)
    }

    async fn unlock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        let mut inner = self.lock_inner();
        Ok(inner.locks.remove(environment).filter(|l| l.is_active(now)))
    }

    async fn get_lock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        let inner = self.lock_inner();
        Ok(inner
            .locks
            .get(environment)
            .filter(|l| l.is_active(now))
            .cloned())
    }

    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<EnvLock>> {
        let inner = self.lock_inner();
        Ok(inner
            .locks
            .values()
            .filter(|l| l.is_active(now))
            .cloned()
            .collect())
    }

    async fn acquire_lease(
        &self,
        environment: &EnvName,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let mut inner = self.lock_inner();
        if let Some(l) = inner.leases.get(environment)
            && l.is_active(now)
        {
            return Err(Error::Busy {
                environment: environment.clone(),
                holder: l.holder.clone(),
                until: l.expires.to_rfc3339(),
            });
        }
        let lease = Lease {
            environment: environment.clone(),
            holder: holder.name.clone(),
            token: Uuid::new_v4(),
            acquired: now,
            expires: now + ttl,
            process: holder.process.clone(),
        };
        inner.leases.insert(environment.clone(), lease.clone());
        Ok(lease)
    }

    // Not through `break_lease`: every promotion releases a lease, and each call of a
    // trait method is one more boxed future.
    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.remove_lease(lease);
        Ok(())
    }

    async fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>> {
        let inner = self.lock_inner();
        Ok(inner
            .leases
            .values()
            .filter(|l| l.is_active(now))
            .cloned()
            .collect())
    }

    async fn break_lease(&self, lease: &Lease) -> Result<bool> {
        Ok(self.remove_lease(lease))
    }
}

/// The holds of `inner` in contract order.
fn sorted_holds<'a>(holds: impl Iterator<Item = &'a Hold>) -> Vec<Hold> {
    let mut out: Vec<Hold> = holds.cloned().collect();
    out.sort_by(|a, b| {
        (&a.environment, a.placed, &a.holder).cmp(&(&b.environment, b.placed, &b.holder))
    });
    out
}

#[async_trait]
impl HoldStore for InMemoryState {
    async fn place(&self, hold: Hold) -> Result<bool> {
        let mut inner = self.lock_inner();
        let key = (hold.environment.clone(), hold.holder.clone());
        if inner.holds.contains_key(&key) {
            return Ok(false);
        }
        inner.holds.insert(key, hold);
        Ok(true)
    }

    async fn release(&self, environment: &EnvName, holder: &str) -> Result<Option<Hold>> {
        let mut inner = self.lock_inner();
        Ok(inner
            .holds
            .remove(&(environment.clone(), holder.to_string())))
    }

    async fn release_kind(&self, environment: &EnvName, kind: HoldKind) -> Result<Vec<Hold>> {
        let mut inner = self.lock_inner();
        let released = sorted_holds(
            inner
                .holds
                .values()
                .filter(|h| &h.environment == environment && h.kind == kind),
        );
        for h in &released {
            inner
                .holds
                .remove(&(h.environment.clone(), h.holder.clone()));
        }
        Ok(released)
    }

    async fn holds(&self, environment: Option<&EnvName>) -> Result<Vec<Hold>> {
        let inner = self.lock_inner();
        Ok(sorted_holds(inner.holds.values().filter(|h| {
            environment.is_none_or(|e| &h.environment == e)
        })))
    }
}

#[async_trait]
impl RevocationStore for InMemoryState {
    async fn revoke(&self, revocation: Revocation) -> Result<bool> {
        let mut inner = self.lock_inner();
        if inner.revocations.contains_key(&revocation.digest) {
            return Ok(false);
        }
        inner
            .revocations
            .insert(revocation.digest.clone(), revocation);
        Ok(true)
    }

    async fn unrevoke(&self, digest: &crate::model::Digest) -> Result<Option<Revocation>> {
        Ok(self.lock_inner().revocations.remove(digest))
    }

    async fn revocation(&self, digest: &crate::model::Digest) -> Result<Option<Revocation>> {
        Ok(self.lock_inner().revocations.get(digest).cloned())
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        let mut all: Vec<Revocation> = self.lock_inner().revocations.values().cloned().collect();
        all.sort_by(|a, b| (a.at, &a.digest).cmp(&(b.at, &b.digest)));
        Ok(all)
    }
}
