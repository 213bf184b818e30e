//! What an admission controller checks before it admits a digest into an environment: a
//! promotion attestation signed by floe's key, about exactly this digest, saying it was
//! promoted into the environment, recent enough, and not revoked since.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::KeyVerifier;
use super::attach::{FoundEnvelope, envelopes};
use super::predicate::{
    PASSED, REVOCATION_PREDICATE_TYPE, RevocationAction, RevocationPredicate, VSA_PREDICATE_TYPE,
    VerificationSummary, environment_level,
};
use super::statement::Statement;
use crate::error::{Error, Result};
use crate::model::{Digest, EnvName, Repository};
use crate::registry::ArtifactRegistry;

/// What [`verify_promotion`] requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// The environment the digest must have been promoted into.
    pub environment: EnvName,
    /// How old the promotion attestation may be; `None`: any age.
    pub max_age: Option<chrono::Duration>,
    /// The time to measure the age from (now, outside tests).
    pub now: DateTime<Utc>,
}

impl VerifyPolicy {
    /// Promotion into `environment`, any age, measured from now.
    pub fn new(environment: EnvName) -> Self {
        VerifyPolicy {
            environment,
            max_age: None,
            now: Utc::now(),
        }
    }

    /// The same policy with a maximum age.
    pub fn with_max_age(mut self, max_age: chrono::Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The same policy measured from `now`.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }
}

/// The attestation that satisfied [`verify_promotion`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedPromotion {
    /// The digest verified.
    pub digest: Digest,
    /// The environment it was promoted into.
    pub environment: EnvName,
    /// The level found, e.g. `FLOE_ENV_PROD`.
    pub level: String,
    /// When the promotion was verified (the newest such attestation).
    pub time_verified: DateTime<Utc>,
    /// The summary's `resourceUri`.
    pub resource_uri: String,
    /// The `sha256:<hex>` fingerprint of the key that signed it.
    pub key: String,
    /// The digest of the envelope that satisfied the policy.
    pub envelope: Digest,
    /// How many envelopes were attached to the digest.
    pub envelopes_examined: usize,
}

/// How far one envelope got through the checks, and why it stopped there.
#[derive(Debug)]
struct Miss {
    stage: u8,
    why: String,
}

/// Reads the attestations attached to `digest` in `repo` and checks them as an admission
/// controller would ([`verify_envelopes`]).
pub async fn verify_promotion(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    digest: &Digest,
    key: &dyn KeyVerifier,
    policy: &VerifyPolicy,
) -> Result<VerifiedPromotion> {
    let found = match envelopes(registry, repo, digest).await {
        Ok(found) => found,
        // A repository or digest the registry does not know carries no attestation.
        Err(Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    if found.is_empty() {
        return Err(Error::Signature {
            digest: digest.clone(),
            message: format!("no attestation is attached to it in {repo}"),
        });
    }
    verify_envelopes(&found, digest, key, policy)
}

/// Checks envelopes found on `digest`: one of them must be a DSSE envelope signed by `key`
/// over an in-toto statement whose subject is `digest`, with the SLSA verification summary
/// predicate, `verificationResult` `PASSED`, `verifiedLevels` holding the environment's level
/// (`FLOE_ENV_<NAME>`) and `timeVerified` within `max_age`; and no revocation attestation
/// signed by `key` about `digest` may be newer than the newest such summary (unless a later
/// one lifts it). Every refusal is [`Error::Signature`] with one line saying what was missing.
pub fn verify_envelopes(
    found: &[FoundEnvelope],
    digest: &Digest,
    key: &dyn KeyVerifier,
    policy: &VerifyPolicy,
) -> Result<VerifiedPromotion> {
    let level = environment_level(&policy.environment);
    let mut best: Option<(VerificationSummary, &FoundEnvelope)> = None;
    let mut latest_revocation: Option<RevocationPredicate> = None;
    let mut closest = Miss {
        stage: 0,
        why: format!(
            "none of its {} attestation(s) is a readable DSSE envelope",
            found.len()
        ),
    };
    let mut miss = |stage: u8, why: String| {
        if stage >= closest.stage {
            closest = Miss { stage, why };
        }
    };
    for f in found {
        let Ok(payload) = f.envelope.verify(key) else {
            miss(
                1,
                format!(
                    "no attestation on it is signed by the key {}",
                    key.fingerprint()
                ),
            );
            continue;
        };
        let Ok(statement) = Statement::from_json(&payload) else {
            miss(
                2,
                format!(
                    "the envelope {} signed by the key is not an in-toto statement",
                    f.digest
                ),
            );
            continue;
        };
        if !statement.names_digest(digest) {
            miss(
                3,
                format!(
                    "the signed statement in {} is about another digest",
                    f.digest
                ),
            );
            continue;
        }
        if statement.predicate_type == REVOCATION_PREDICATE_TYPE {
            if let Ok(r) = RevocationPredicate::from_value(&statement.predicate)
                && latest_revocation.as_ref().is_none_or(|l| r.at > l.at)
            {
                latest_revocation = Some(r);
            }
            continue;
        }
        if statement.predicate_type != VSA_PREDICATE_TYPE {
            miss(
                4,
                format!("no signed statement about it has the predicate type {VSA_PREDICATE_TYPE}"),
            );
            continue;
        }
        let summary = match VerificationSummary::from_value(&statement.predicate) {
            Ok(s) => s,
            Err(e) => {
                miss(
                    5,
                    format!("the signed summary in {} does not read: {e}", f.digest),
                );
                continue;
            }
        };
        if summary.verification_result != PASSED {
            miss(
                6,
                format!(
                    "the signed summary in {} says {}",
                    f.digest, summary.verification_result
                ),
            );
            continue;
        }
        if !summary.verified_levels.iter().any(|l| l == &level) {
            miss(
                7,
                format!(
                    "no signed summary says it was promoted to {} (levels seen: {})",
                    policy.environment,
                    summary.verified_levels.join(", ")
                ),
            );
            continue;
        }
        if let Some(max) = policy.max_age
            && policy.now - summary.time_verified > max
        {
            miss(
                8,
                format!(
                    "its promotion to {} was verified at {}, older than the maximum age {}",
                    policy.environment,
                    summary.time_verified.to_rfc3339(),
                    humantime::format_duration(max.to_std().unwrap_or_default())
                ),
            );
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(b, _)| summary.time_verified > b.time_verified)
        {
            best = Some((summary, f));
        }
    }
    let Some((summary, envelope)) = best else {
        return Err(Error::Signature {
            digest: digest.clone(),
            message: closest.why,
        });
    };
    if let Some(r) = latest_revocation
        && r.action == RevocationAction::Revoked
        && r.at >= summary.time_verified
    {
        return Err(Error::Signature {
            digest: digest.clone(),
            message: format!(
                "it was revoked at {} by {} ({}), after its promotion to {} at {}",
                r.at.to_rfc3339(),
                r.by,
                r.reason,
                policy.environment,
                summary.time_verified.to_rfc3339()
            ),
        });
    }
    Ok(VerifiedPromotion {
        digest: digest.clone(),
        environment: policy.environment.clone(),
        level,
        time_verified: summary.time_verified,
        resource_uri: summary.resource_uri,
        key: key.fingerprint().to_string(),
        envelope: envelope.digest.clone(),
        envelopes_examined: found.len(),
    })
}
