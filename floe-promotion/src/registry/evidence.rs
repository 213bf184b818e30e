use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ArtifactRegistry, Descriptor, Manifest, ManifestBody, OCI_EMPTY, OCI_MANIFEST, SMALL_BLOB_LIMIT,
};
use crate::error::{Error, Result};
use crate::model::{Digest, EnvName, Reference, Repository};

/// The `artifactType` of evidence attached by floe.
pub const EVIDENCE_ARTIFACT_TYPE: &str = "application/vnd.floe.evidence.v1+json";

/// What a piece of evidence attests.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// Test results.
    Tests,
    /// A policy evaluation.
    Policy,
    /// A security scan report.
    Scan,
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvidenceKind::Tests => "tests",
            EvidenceKind::Policy => "policy",
            EvidenceKind::Scan => "scan",
        })
    }
}

/// The verdict a piece of evidence records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceStatus {
    /// The check passed.
    Passed,
    /// The check failed.
    Failed,
}

impl fmt::Display for EvidenceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvidenceStatus::Passed => "passed",
            EvidenceStatus::Failed => "failed",
        })
    }
}

/// A record attached to a digest as an OCI referrer: test results, policy results, scans.
///
/// Evidence is bound to the digest it is attached to, and travels with the artifact when it is
/// copied to another repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What it attests.
    pub kind: EvidenceKind,
    /// The verdict.
    pub status: EvidenceStatus,
    /// The environment it was produced in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvName>,
    /// When it was produced.
    pub created: DateTime<Utc>,
    /// Who attached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Free-form details (e.g. the report file's content).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// Conveniences over any [`ArtifactRegistry`]: evidence attachment and lookup, implemented for
/// every registry.
///
/// # Contract
///
/// - `attach_evidence` stores the evidence as an OCI artifact whose `subject` is the digest
///   (so it is one of its referrers and travels with it on `copy`), and returns its digest; a
///   subject missing from the repository is [`Error::NotFound`](crate::Error::NotFound).
/// - `evidence` returns every piece of evidence attached to that digest, oldest first, and
///   none attached to another digest; referrers that are not floe evidence are skipped.
#[async_trait]
pub trait RegistryExt: ArtifactRegistry {
    /// Attaches `evidence` to `subject` in `repo` as an OCI artifact whose `subject` is the
    /// digest, and returns the evidence manifest's digest.
    async fn attach_evidence(
        &self,
        repo: &Repository,
        subject: &Digest,
        evidence: &Evidence,
    ) -> Result<Digest> {
        let target = self
            .resolve(repo, &Reference::Digest(subject.clone()))
            .await?;
        let payload = serde_json::to_vec(evidence)
            .map_err(|e| Error::invalid("evidence", evidence.kind.to_string(), e.to_string()))?;
        let payload_len = payload.len() as u64;
        let payload_digest = self.push_blob(repo, payload).await?;
        let empty_digest = self.push_blob(repo, b"{}".to_vec()).await?;
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "org.opencontainers.image.created".to_string(),
            evidence.created.to_rfc3339(),
        );
        annotations.insert("dev.floe.evidence.kind".into(), evidence.kind.to_string());
        annotations.insert(
            "dev.floe.evidence.status".into(),
            evidence.status.to_string(),
        );
        let body = ManifestBody {
            schema_version: Some(2),
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(EVIDENCE_ARTIFACT_TYPE.into()),
            config: Some(Descriptor {
                media_type: OCI_EMPTY.into(),
                digest: empty_digest,
                size: 2,
                annotations: BTreeMap::new(),
                artifact_type: None,
                platform: None,
            }),
            layers: vec![Descriptor {
                media_type: EVIDENCE_ARTIFACT_TYPE.into(),
                digest: payload_digest,
                size: payload_len,
                annotations: BTreeMap::new(),
                artifact_type: None,
                platform: None,
            }],
            manifests: None,
            subject: Some(target.descriptor()),
            annotations,
        };
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| Error::invalid("evidence manifest", subject.to_string(), e.to_string()))?;
        let manifest = Manifest::from_bytes(bytes, Some(OCI_MANIFEST))?;
        self.put_manifest(repo, None, &manifest).await?;
        Ok(manifest.digest().clone())
    }

    /// All evidence attached to `subject` in `repo`, oldest first. Referrers that are not floe
    /// evidence are skipped; evidence that cannot be read is an error.
    async fn evidence(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Evidence>> {
        let mut out = Vec::new();
        for referrer in self.referrers(repo, subject).await? {
            if referrer.artifact_type.as_deref() != Some(EVIDENCE_ARTIFACT_TYPE) {
                continue;
            }
            let manifest = self
                .resolve(repo, &Reference::Digest(referrer.digest.clone()))
                .await?;
            let body = manifest.body();
            let Some(layer) = body.layers.first() else {
                continue;
            };
            let bytes = self
                .fetch_blob(repo, &layer.digest, SMALL_BLOB_LIMIT)
                .await?;
            let evidence: Evidence = serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid("evidence", referrer.digest.to_string(), e.to_string())
            })?;
            out.push(evidence);
        }
        out.sort_by_key(|e| e.created);
        Ok(out)
    }
}

impl<R: ArtifactRegistry + ?Sized> RegistryExt for R {}
