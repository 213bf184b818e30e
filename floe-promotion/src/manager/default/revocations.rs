//! Revocation: a digest marked bad everywhere (see [`Revocations`]).

use crate::manager::Revocations;
use crate::state::Revocation;

use super::*;

impl DefaultPromotionManager {
    /// The revocations of the digests running in `environment` now.
    pub(super) async fn revoked_in(&self, environment: &EnvName) -> Result<Vec<Revocation>> {
        let mut out = Vec::new();
        for d in self.parts.history.deployments(Some(environment)).await? {
            if let Some(r) = self.parts.revocations.revocation(&d.digest).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn revocation_event(
        &self,
        kind: EventKind,
        r: &Revocation,
        actor: &Actor,
        reason: &str,
    ) -> EventRecord {
        let mut e = self.event(kind, actor, self.now());
        e.artifact = Some(r.artifact.clone());
        e.digest = Some(r.digest.clone());
        e.reason = Some(reason.to_string());
        e
    }
}

#[async_trait]
impl Revocations for DefaultPromotionManager {
    async fn revoke(
        &self,
        artifact: &ArtifactName,
        digest: &Digest,
        actor: &Actor,
        reason: &str,
    ) -> Result<Revocation> {
        check_text_input(actor, Some(reason))?;
        require_reason(Reasoned::Revocation, Some(reason))?;
        let revocation = Revocation {
            artifact: artifact.clone(),
            digest: digest.clone(),
            reason: reason.to_string(),
            by: actor.id.clone(),
            at: self.now(),
        };
        if !self.parts.revocations.revoke(revocation.clone()).await? {
            let existing = self.parts.revocations.revocation(digest).await?;
            return Err(Error::Conflict(match existing {
                Some(r) => format!(
                    "{digest} is revoked already (by {} at {}: {})",
                    r.by,
                    r.at.to_rfc3339(),
                    r.reason
                ),
                None => format!("{digest} is revoked already"),
            }));
        }
        self.record(vec![self.revocation_event(
            EventKind::Revoked,
            &revocation,
            actor,
            reason,
        )])
        .await?;
        Ok(revocation)
    }

    async fn unrevoke(&self, digest: &Digest, actor: &Actor, reason: &str) -> Result<Revocation> {
        check_text_input(actor, Some(reason))?;
        require_reason(Reasoned::Revocation, Some(reason))?;
        let revocation = self
            .parts
            .revocations
            .unrevoke(digest)
            .await?
            .ok_or_else(|| Error::not_found(format!("a revocation of {digest}")))?;
        self.record(vec![self.revocation_event(
            EventKind::Unrevoked,
            &revocation,
            actor,
            reason,
        )])
        .await?;
        Ok(revocation)
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        self.parts.revocations.revocations().await
    }
}
