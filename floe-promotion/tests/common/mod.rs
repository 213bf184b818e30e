//! Mocks shared by test binaries (each includes this module with `mod common;`).

use chrono::{DateTime, Utc};
use floe_promotion::state::{EnvLock, Lease, LeaseHolder, LockStore};
use floe_promotion::{EnvName, Result, async_trait};
use mockall::mock;

mock! {
    #[derive(Debug)]
    pub Locks {}
    #[async_trait]
    impl LockStore for Locks {
        async fn lock(&self, lock: EnvLock, now: DateTime<Utc>) -> Result<EnvLock>;
        async fn unlock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>>;
        async fn get_lock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>>;
        async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<EnvLock>>;
        async fn acquire_lease(&self, environment: &EnvName, holder: &LeaseHolder, ttl: chrono::Duration, now: DateTime<Utc>) -> Result<Lease>;
        async fn release_lease(&self, lease: &Lease) -> Result<()>;
        async fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>>;
        async fn break_lease(&self, lease: &Lease) -> Result<bool>;
    }
}
