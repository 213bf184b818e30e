//! The outputs of `floe verify` and `floe keygen`.

use chrono::{DateTime, Utc};
use floe_promotion::{Digest, EnvName};
use serde::{Deserialize, Serialize};

/// What `floe verify` admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationVerifyOutput {
    /// The image checked, `repository@digest`.
    pub image: String,
    /// Its digest.
    pub digest: Digest,
    /// The environment it was promoted to.
    pub environment: EnvName,
    /// The level found, e.g. `FLOE_ENV_PROD`.
    pub level: String,
    /// When the promotion was verified.
    pub time_verified: DateTime<Utc>,
    /// The attestation's `resourceUri`.
    pub resource_uri: String,
    /// The fingerprint of the key that signed it.
    pub key: String,
    /// The envelope that satisfied the check.
    pub envelope: Digest,
    /// How many attestations the digest carries.
    pub envelopes_examined: usize,
}

/// What `floe keygen` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenOutput {
    /// The encrypted private key file.
    pub private_key: String,
    /// The public key file.
    pub public_key: String,
    /// `sha256:<hex>` of the public key.
    pub fingerprint: String,
}
