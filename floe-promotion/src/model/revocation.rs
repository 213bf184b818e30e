//! Revocations: digests marked bad everywhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{ArtifactName, Digest};

/// A digest marked bad: promotion of it into any environment is refused, automatic promotion
/// skips it, rollback never targets it, and `status` flags every environment still running it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The artifact it was revoked as (the same content under another name is revoked too:
    /// revocation is by digest).
    pub artifact: ArtifactName,
    /// The revoked digest.
    pub digest: Digest,
    /// Why.
    pub reason: String,
    /// Who revoked it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}
