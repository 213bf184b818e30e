//! An environment may accept promotions from listed sources only.

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};
use crate::model::EnvName;

/// The target's `policy.allowed_sources`, when set, lists the source.
#[derive(Debug, Clone, Copy)]
pub struct AllowedSources;

#[async_trait]
impl Check for AllowedSources {
    fn name(&self) -> &'static str {
        "allowed_sources"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        let allowed = &ctx.to.policy.allowed_sources;
        let Some(from) = ctx.from else {
            return Ok(None);
        };
        if allowed.is_empty() || allowed.contains(from) {
            return Ok(None);
        }
        Ok(Some(Error::PolicyViolation {
            environment: ctx.to.name.clone(),
            rule: "allowed_sources",
            detail: format!(
                "{from} is not one of the allowed sources [{}]",
                allowed
                    .iter()
                    .map(EnvName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }))
    }
}
