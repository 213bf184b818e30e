use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Release, ReleaseFilter, ReleaseState, ReleaseStore, check_effect_key, check_new_release,
    check_status, release_exists, release_not_found, version_conflict,
};
use crate::error::Result;

/// Release state held in memory, for one process and for tests. Clones share the same state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryReleaseStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    releases: BTreeMap<Uuid, Release>,
    /// Recorded effect keys per release, in recording order.
    effects: BTreeMap<Uuid, Vec<String>>,
}

impl InMemoryReleaseStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ReleaseStore for InMemoryReleaseStore {
    async fn create(&self, release: Release) -> Result<Release> {
        check_new_release(&release)?;
        let mut inner = self.lock_inner();
        if let Some(existing) = inner.releases.get(&release.id) {
            return Err(release_exists(existing));
        }
        inner.releases.insert(release.id, release.clone());
        Ok(release)
    }

    async fn get(&self, id: Uuid) -> Result<Release> {
        self.lock_inner()
            .releases
            .get(&id)
            .cloned()
            .ok_or_else(|| release_not_found(id))
    }

    async fn list(&self, filter: &ReleaseFilter) -> Result<Vec<Release>> {
        let inner = self.lock_inner();
        let mut v: Vec<Release> = inner
            .releases
            .values()
            .filter(|r| r.matches(filter))
            .cloned()
            .collect();
        v.sort_by_key(Release::list_order);
        Ok(v)
    }

    async fn update(
        &self,
        id: Uuid,
        expected_version: u64,
        state: ReleaseState,
        now: DateTime<Utc>,
    ) -> Result<Release> {
        check_status(&state.status)?;
        let mut inner = self.lock_inner();
        let stored = inner
            .releases
            .get_mut(&id)
            .ok_or_else(|| release_not_found(id))?;
        if stored.version != expected_version {
            return Err(version_conflict(stored, expected_version));
        }
        *stored = stored.advanced(state, now);
        Ok(stored.clone())
    }

    async fn record_effect(&self, id: Uuid, key: &str) -> Result<bool> {
        check_effect_key(key)?;
        let mut inner = self.lock_inner();
        if !inner.releases.contains_key(&id) {
            return Err(release_not_found(id));
        }
        let keys = inner.effects.entry(id).or_default();
        if keys.iter().any(|k| k == key) {
            return Ok(false);
        }
        keys.push(key.to_string());
        Ok(true)
    }

    async fn effects(&self, id: Uuid) -> Result<Vec<String>> {
        let inner = self.lock_inner();
        if !inner.releases.contains_key(&id) {
            return Err(release_not_found(id));
        }
        Ok(inner.effects.get(&id).cloned().unwrap_or_default())
    }
}
