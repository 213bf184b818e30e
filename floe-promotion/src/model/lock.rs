//! Environment locks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::EnvName;

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
