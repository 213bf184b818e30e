//! A revoked digest enters no environment: neither by promotion nor as a rollback target.

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};

/// The resolved digest is not revoked.
#[derive(Debug, Clone, Copy)]
pub struct NotRevoked;

#[async_trait]
impl Check for NotRevoked {
    fn name(&self) -> &'static str {
        "revocation"
    }

    fn stage(&self) -> Stage {
        Stage::Resolved
    }

    fn applies_to(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Promote | Operation::Rollback)
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        Ok(ctx.revocation.map(|r| Error::Revoked {
            artifact: format!("{}:{}", ctx.artifact, ctx.version),
            digest: r.digest.clone(),
            environment: ctx.to.name.clone(),
            by: r.by.clone(),
            reason: r.reason.clone(),
        }))
    }
}
