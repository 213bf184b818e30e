//! A [`LockStore`] wrapper that measures how long promotions wait for an environment's
//! promotion lease, for the `floe_lease_wait_seconds` metric.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use floe_promotion::state::{EnvLock, Lease, LeaseHolder};
use floe_promotion::{EnvName, Error, LockStore, Result};

use crate::metrics::Metrics;

/// Forwards every call to the inner store; a lease granted after refusals (`Busy`) to the
/// same holder is observed as a wait from the first refusal, one granted at once as no wait.
#[derive(Debug)]
pub struct LeaseTiming {
    inner: Arc<dyn LockStore>,
    metrics: Metrics,
    /// (environment, holder name) -> the first refusal.
    waiting: Mutex<HashMap<(String, String), Instant>>,
}

impl LeaseTiming {
    /// Wraps `inner`, observing into `metrics`.
    pub fn new(inner: Arc<dyn LockStore>, metrics: Metrics) -> LeaseTiming {
        LeaseTiming {
            inner,
            metrics,
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[floe_promotion::async_trait]
impl LockStore for LeaseTiming {
    async fn lock(&self, lock: EnvLock, now: DateTime<Utc>) -> Result<EnvLock> {
        self.inner.lock(lock, now).await
    }

    async fn unlock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        self.inner.unlock(environment, now).await
    }

    async fn get_lock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        self.inner.get_lock(environment, now).await
    }

    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<EnvLock>> {
        self.inner.locks(now).await
    }

    async fn acquire_lease(
        &self,
        environment: &EnvName,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let key = (environment.to_string(), holder.name.clone());
        let result = self
            .inner
            .acquire_lease(environment, holder, ttl, now)
            .await;
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Err(Error::Busy { .. }) => {
                waiting.entry(key).or_insert_with(Instant::now);
            }
            Ok(_) => {
                let waited = waiting
                    .remove(&key)
                    .map(|since| since.elapsed())
                    .unwrap_or_default();
                self.metrics
                    .observe_lease_wait(environment.as_str(), waited);
            }
            Err(_) => {
                waiting.remove(&key);
            }
        }
        result
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.inner.release_lease(lease).await
    }

    async fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>> {
        self.inner.leases(now).await
    }

    async fn break_lease(&self, lease: &Lease) -> Result<bool> {
        self.inner.break_lease(lease).await
    }
}
