//! The predicates floe signs: the SLSA Verification Summary (VSA) v1 of a promotion, and
//! floe's revocation predicate.
//!
//! A promotion attestation says "floe verified this digest against its policy and admitted it
//! into an environment": [`VerificationSummary`], predicate type [`VSA_PREDICATE_TYPE`], with
//! the environment as a custom level ([`environment_level`], e.g. `FLOE_ENV_PROD`; SLSA
//! reserves levels starting with `SLSA_`). A revocation attestation says "this digest is bad
//! from this time on" (or, after `unrevoke`, "no longer"): [`RevocationPredicate`],
//! predicate type [`REVOCATION_PREDICATE_TYPE`].

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::statement::ResourceDescriptor;
use crate::error::{Error, Result};
use crate::model::EnvName;

/// The predicate type of a SLSA Verification Summary Attestation v1.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";

/// The predicate type of floe's revocation attestations.
pub const REVOCATION_PREDICATE_TYPE: &str = "https://floe.dev/revocation/v1";

/// The `verifier.id` of floe's summaries.
pub const VERIFIER_ID: &str = "https://floe.dev/floe-promotion";

/// The SLSA specification version the summaries follow (`slsaVersion`).
pub const SLSA_VERSION: &str = "1.0";

/// `verificationResult` of a summary whose policy held.
pub const PASSED: &str = "PASSED";

/// The custom SLSA level that says a digest was promoted into `environment`:
/// `FLOE_ENV_` and the name in upper case, `-` written as `_`.
///
/// ```
/// use floe_promotion::EnvName;
/// use floe_promotion::attest::environment_level;
/// assert_eq!(environment_level(&EnvName::new("prod").unwrap()), "FLOE_ENV_PROD");
/// assert_eq!(environment_level(&EnvName::new("pre-prod").unwrap()), "FLOE_ENV_PRE_PROD");
/// ```
pub fn environment_level(environment: &EnvName) -> String {
    let name: String = environment
        .as_str()
        .chars()
        .map(|c| match c {
            '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("FLOE_ENV_{name}")
}

/// Times are written RFC 3339 in UTC with milliseconds (`2026-01-31T12:00:00.123Z`), the
/// form in-toto's Timestamp field uses, readable by every JSON and date library.
mod time_millis {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        t: &DateTime<Utc>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time: {e}")))
    }
}

/// `verifier` of a summary: who verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    /// A URI naming the verifier ([`VERIFIER_ID`] for floe).
    pub id: String,
    /// Component name to version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// The SLSA Verification Summary predicate v1 (`https://slsa.dev/verification_summary/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    /// Who verified.
    pub verifier: Verifier,
    /// When the verification happened (for floe: when the promotion was recorded).
    #[serde(with = "time_millis")]
    pub time_verified: DateTime<Utc>,
    /// The artifact verified: the destination reference `repository@sha256:…`.
    pub resource_uri: String,
    /// The policy verified against: the manifest, by URI and SHA-256.
    pub policy: ResourceDescriptor,
    /// What the verification read: the signatures and evidence attached to the digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_attestations: Vec<ResourceDescriptor>,
    /// `PASSED` or `FAILED`.
    pub verification_result: String,
    /// The levels verified: for floe, the environment's `FLOE_ENV_<NAME>`.
    #[serde(default)]
    pub verified_levels: Vec<String>,
    /// The SLSA version followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slsa_version: Option<String>,
}

impl VerificationSummary {
    /// The summary of a promotion into `environment` recorded at `time`: floe as verifier
    /// (this crate's version), `PASSED`, the environment's level, SLSA 1.0.
    pub fn promotion(
        environment: &EnvName,
        time: DateTime<Utc>,
        resource_uri: String,
        policy: ResourceDescriptor,
        input_attestations: Vec<ResourceDescriptor>,
    ) -> Self {
        VerificationSummary {
            verifier: Verifier {
                id: VERIFIER_ID.to_string(),
                version: BTreeMap::from([(
                    "floe-promotion".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                )]),
            },
            time_verified: time,
            resource_uri,
            policy,
            input_attestations,
            verification_result: PASSED.to_string(),
            verified_levels: vec![environment_level(environment)],
            slsa_version: Some(SLSA_VERSION.to_string()),
        }
    }

    /// Reads a summary from a statement's predicate; the error names what is wrong.
    pub fn from_value(predicate: &serde_json::Value) -> Result<Self> {
        serde_json::from_value(predicate.clone()).map_err(|e| {
            Error::invalid(
                "verification summary",
                predicate.to_string(),
                format!("not a SLSA verification summary v1: {e}"),
            )
        })
    }
}

/// What a revocation attestation records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationAction {
    /// The digest was revoked: refuse it from `at` on.
    Revoked,
    /// A revocation was lifted at `at`.
    Unrevoked,
}

/// floe's revocation predicate (`https://floe.dev/revocation/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPredicate {
    /// Revoked, or lifted.
    pub action: RevocationAction,
    /// The artifact's name.
    pub artifact: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When.
    #[serde(with = "time_millis")]
    pub at: DateTime<Utc>,
}

impl RevocationPredicate {
    /// Reads a revocation from a statement's predicate; the error names what is wrong.
    pub fn from_value(predicate: &serde_json::Value) -> Result<Self> {
        serde_json::from_value(predicate.clone()).map_err(|e| {
            Error::invalid(
                "revocation predicate",
                predicate.to_string(),
                format!("not a floe revocation v1: {e}"),
            )
        })
    }
}
