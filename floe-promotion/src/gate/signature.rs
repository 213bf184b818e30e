use std::fmt::{self, Debug};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{GateContext, GateOutcome, PromotionGate};
use crate::error::{Error, Result};
use crate::model::{Digest, Repository};
use crate::registry::ArtifactRegistry;

/// How signature failures are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEnforcement {
    /// A missing or bad signature blocks the promotion.
    Enforce,
    /// A missing or bad signature is a warning on the record.
    Warn,
    /// Signatures are not checked.
    #[default]
    Off,
}

impl FromStr for SignatureEnforcement {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "enforce" => Ok(SignatureEnforcement::Enforce),
            "warn" => Ok(SignatureEnforcement::Warn),
            "off" => Ok(SignatureEnforcement::Off),
            other => Err(Error::invalid(
                "signature_enforcement",
                other,
                "expected enforce, warn or off",
            )),
        }
    }
}

impl fmt::Display for SignatureEnforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureEnforcement::Enforce => "enforce",
            SignatureEnforcement::Warn => "warn",
            SignatureEnforcement::Off => "off",
        })
    }
}

/// What a signature check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureReport {
    /// Whether a signature by a trusted key, made for exactly this digest, was found.
    pub verified: bool,
    /// Which key or identity signed, or why none verified.
    pub message: String,
}

/// Checks signatures of a digest in a repository.
///
/// # Contract
///
/// - `verify` reports `verified: true` only for a signature by a trusted key whose signed
///   payload names exactly `digest`, with every required condition met by that same signature.
/// - An unsigned digest, a wrong key, or a signature made for another digest is
///   `verified: false` with a message saying which; `Err` is for failures to look (registry
///   unavailable).
#[async_trait]
pub trait SignatureVerifier: Send + Sync + Debug + 'static {
    /// Checks the signatures of `digest` stored in `repo`.
    async fn verify(
        &self,
        registry: &dyn ArtifactRegistry,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<SignatureReport>;
}

/// The signature gate: passes when the verifier verifies the promoted digest; under
/// [`SignatureEnforcement::Warn`] a failure is a warning.
#[derive(Debug, Clone)]
pub struct SignatureGate {
    verifier: Arc<dyn SignatureVerifier>,
    enforcement: SignatureEnforcement,
}

impl SignatureGate {
    /// A gate over `verifier`.
    pub fn new(verifier: Arc<dyn SignatureVerifier>, enforcement: SignatureEnforcement) -> Self {
        SignatureGate {
            verifier,
            enforcement,
        }
    }
}

#[async_trait]
impl PromotionGate for SignatureGate {
    fn name(&self) -> &str {
        "signature"
    }

    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome> {
        if self.enforcement == SignatureEnforcement::Off {
            return Ok(GateOutcome::pass("signature enforcement is off"));
        }
        let report = self
            .verifier
            .verify(ctx.registry.as_ref(), &ctx.source, &ctx.digest)
            .await?;
        Ok(match (report.verified, self.enforcement) {
            (true, _) => GateOutcome::pass(report.message),
            (false, SignatureEnforcement::Warn) => GateOutcome::warn(format!(
                "not verified (enforcement is warn): {}",
                report.message
            )),
            (false, _) => GateOutcome::fail(report.message),
        })
    }
}
