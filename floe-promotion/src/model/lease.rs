//! Promotion leases: the right to write into an environment, one promoter at a time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use super::process::{HolderProcess, Liveness};
use crate::model::EnvName;

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
