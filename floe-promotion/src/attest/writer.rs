//! [`AttestationWriter`]: signed promotion and revocation attestations, written from the
//! outbox after the commit.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::Signer;
use super::attach::attach;
use super::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use super::predicate::{
    REVOCATION_PREDICATE_TYPE, RevocationAction, RevocationPredicate, VSA_PREDICATE_TYPE,
    VerificationSummary,
};
use super::statement::{ResourceDescriptor, Statement};
use crate::config::EnvironmentConfig;
use crate::error::{Error, Result};
use crate::history::{AuditEvent, EventKind, EventRecord};
use crate::model::{Digest, EnvName, Reference, Repository, Tag};
use crate::notify::Notifier;
use crate::registry::{ArtifactRegistry, EVIDENCE_ARTIFACT_TYPE};

/// Loads the signing key when the first attestation is signed (a key file decrypted with a
/// password costs a second or more; commands that sign nothing never pay it).
pub type SignerLoader = Arc<dyn Fn() -> Result<Arc<dyn Signer>> + Send + Sync>;

/// The name of the [`AttestationWriter`]'s delivery cursor.
pub const ATTESTATION_WRITER_NAME: &str = "attestations";

/// Writes signed attestations for committed events: a [`Notifier`] fed by the outbox, so a
/// registry that fails retries on the next delivery and never undoes a promotion.
///
/// # Contract
///
/// - For a `promotion_succeeded` (canary completions included), `rollback_succeeded` or
///   `switched` event, it attaches to the event's digest, in the repository of the event's
///   artifact in its environment, a DSSE envelope signed by the key over an in-toto Statement
///   v1 whose only subject is that digest and whose predicate is a SLSA verification summary
///   v1 ([`VerificationSummary::promotion`]): `timeVerified` is the event's time,
///   `resourceUri` is `repository@digest`, `policy` is the policy given at construction,
///   `inputAttestations` are the cosign signature manifest and the floe evidence attached to
///   the digest there, `verifiedLevels` is the environment's `FLOE_ENV_<NAME>`.
/// - For a `revoked` or `unrevoked` event, it attaches a signed statement with the predicate
///   [`RevocationPredicate`] (reason, by, at = the event's) to the digest in every
///   environment's repository of the artifact that holds it; repositories without it are
///   skipped.
/// - Each attestation is written in cosign's layout and as an OCI referrer
///   ([`attach`]), tagged with the event's id: delivering the same
///   event again writes nothing new.
/// - Events of other kinds write nothing and succeed.
/// - An event whose digest is no longer in its repository, or whose environment or artifact
///   the configuration no longer knows, is skipped with a warning, so it never blocks the
///   queue; a registry or key failure is an `Err`, so the dispatcher retries the event on the
///   next delivery.
/// - `name` is [`ATTESTATION_WRITER_NAME`], `attestations`.
pub struct AttestationWriter {
    registry: Arc<dyn ArtifactRegistry>,
    config: Arc<dyn EnvironmentConfig>,
    loader: SignerLoader,
    signer: Mutex<Option<Arc<dyn Signer>>>,
    policy: ResourceDescriptor,
}

impl fmt::Debug for AttestationWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationWriter")
            .field("registry", &self.registry)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AttestationWriter {
    /// A writer signing with `signer`, attesting against `policy` (the manifest: its URI and
    /// SHA-256, see [`policy_descriptor`]).
    pub fn new(
        registry: Arc<dyn ArtifactRegistry>,
        config: Arc<dyn EnvironmentConfig>,
        signer: Arc<dyn Signer>,
        policy: ResourceDescriptor,
    ) -> Self {
        let loaded = signer.clone();
        let mut writer = Self::with_loader(
            registry,
            config,
            Arc::new(move || Ok(loaded.clone())),
            policy,
        );
        writer.signer = Mutex::new(Some(signer));
        writer
    }

    /// A writer whose key is loaded by `loader` when it first signs; a failed load is
    /// retried on the next event.
    pub fn with_loader(
        registry: Arc<dyn ArtifactRegistry>,
        config: Arc<dyn EnvironmentConfig>,
        loader: SignerLoader,
        policy: ResourceDescriptor,
    ) -> Self {
        AttestationWriter {
            registry,
            config,
            loader,
            signer: Mutex::new(None),
            policy,
        }
    }

    fn signer(&self) -> Result<Arc<dyn Signer>> {
        let mut slot = self.signer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = (self.loader)()?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// The signature manifest and the floe evidence attached to `digest` in `repo`: what the
    /// signature and evidence gates read.
    async fn inputs(&self, repo: &Repository, digest: &Digest) -> Result<Vec<ResourceDescriptor>> {
        let mut inputs = Vec::new();
        let sig_tag = Tag::new(digest.signature_tag())?;
        match self
            .registry
            .resolve(repo, &Reference::Tag(sig_tag.clone()))
            .await
        {
            Ok(sig) => inputs.push(ResourceDescriptor {
                name: None,
                uri: Some(format!("{repo}:{sig_tag}")),
                ..ResourceDescriptor::oci("", sig.digest())
            }),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        for r in self.registry.referrers(repo, digest).await? {
            if r.artifact_type.as_deref() == Some(EVIDENCE_ARTIFACT_TYPE) {
                inputs.push(ResourceDescriptor {
                    name: None,
                    uri: Some(format!("{repo}@{}", r.digest)),
                    ..ResourceDescriptor::oci("", &r.digest)
                });
            }
        }
        Ok(inputs)
    }

    /// Signs `statement` and attaches it to `digest` in `repo`, once per event.
    async fn sign_and_attach(
        &self,
        repo: &Repository,
        digest: &Digest,
        statement: &Statement,
        record: &EventRecord,
    ) -> Result<()> {
        let signer = self.signer()?;
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), signer.as_ref())?;
        let id = record.id.to_string();
        let attached = attach(
            self.registry.as_ref(),
            repo,
            digest,
            &envelope,
            &statement.predicate_type,
            Some(&id),
            record.time,
        )
        .await?;
        tracing::info!(
            target: "floe::attest",
            repository = %repo,
            %digest,
            predicate_type = %statement.predicate_type,
            envelope = %attached.envelope,
            written = attached.written,
            "attestation attached"
        );
        Ok(())
    }

    async fn promotion(
        &self,
        record: &EventRecord,
        env: &EnvName,
        repo: Repository,
        digest: &Digest,
    ) -> Result<()> {
        let inputs = self.inputs(&repo, digest).await?;
        let summary = VerificationSummary::promotion(
            env,
            record.time,
            format!("{repo}@{digest}"),
            self.policy.clone(),
            inputs,
        );
        let statement = Statement::new(
            vec![ResourceDescriptor::oci(repo.as_str(), digest)],
            VSA_PREDICATE_TYPE,
            serde_json::to_value(&summary).map_err(|e| {
                Error::invalid("verification summary", digest.to_string(), e.to_string())
            })?,
        );
        self.sign_and_attach(&repo, digest, &statement, record)
            .await
    }

    async fn revocation(
        &self,
        record: &EventRecord,
        action: RevocationAction,
        digest: &Digest,
    ) -> Result<()> {
        let Some(artifact) = &record.artifact else {
            tracing::warn!(target: "floe::attest", seq = %record.id, "a revocation event without an artifact: nothing to attach to");
            return Ok(());
        };
        let predicate = RevocationPredicate {
            action,
            artifact: artifact.to_string(),
            reason: record.reason.clone().unwrap_or_default(),
            by: record.actor.id.to_string(),
            at: record.time,
        };
        let mut attached = 0;
        for env in self.config.environments() {
            let repo = self.config.repository(&env.name, artifact)?;
            match self
                .registry
                .resolve(&repo, &Reference::Digest(digest.clone()))
                .await
            {
                Ok(_) => {}
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
            let statement = Statement::new(
                vec![ResourceDescriptor::oci(repo.as_str(), digest)],
                REVOCATION_PREDICATE_TYPE,
                serde_json::to_value(&predicate).map_err(|e| {
                    Error::invalid("revocation predicate", digest.to_string(), e.to_string())
                })?,
            );
            self.sign_and_attach(&repo, digest, &statement, record)
                .await?;
            attached += 1;
        }
        if attached == 0 {
            tracing::warn!(target: "floe::attest", %digest, "revocation: no environment's repository holds the digest; nothing attached");
        }
        Ok(())
    }
}

/// The `policy` of floe's summaries: the manifest, as `uri`, with the SHA-256 of its bytes.
pub fn policy_descriptor(uri: impl Into<String>, manifest_bytes: &[u8]) -> ResourceDescriptor {
    ResourceDescriptor {
        name: None,
        uri: Some(uri.into()),
        ..ResourceDescriptor::oci("", &Digest::of(manifest_bytes))
    }
}

#[async_trait]
impl Notifier for AttestationWriter {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        let r = &event.record;
        let action = match r.kind {
            EventKind::PromotionSucceeded | EventKind::RollbackSucceeded | EventKind::Switched => {
                None
            }
            EventKind::Revoked => Some(RevocationAction::Revoked),
            EventKind::Unrevoked => Some(RevocationAction::Unrevoked),
            _ => return Ok(()),
        };
        let Some(digest) = &r.digest else {
            tracing::warn!(target: "floe::attest", seq = event.seq, kind = %r.kind, "event without a digest: nothing to attest");
            return Ok(());
        };
        let skip = |why: String| {
            tracing::warn!(target: "floe::attest", seq = event.seq, kind = %r.kind, %digest, "attestation skipped: {why}");
            Ok(())
        };
        if let Some(action) = action {
            return match self.revocation(r, action, digest).await {
                Err(Error::Config { message, .. }) => skip(message),
                Err(e @ Error::NotFound { .. }) => skip(e.to_string()),
                other => other,
            };
        }
        let (Some(env), Some(artifact)) = (&r.environment, &r.artifact) else {
            return skip("the event names no environment or artifact".into());
        };
        let repo = match self.config.repository(env, artifact) {
            Ok(repo) => repo,
            Err(e) => return skip(e.to_string()),
        };
        match self.promotion(r, env, repo, digest).await {
            Err(e @ Error::NotFound { .. }) => skip(e.to_string()),
            other => other,
        }
    }

    fn name(&self) -> &str {
        ATTESTATION_WRITER_NAME
    }
}
