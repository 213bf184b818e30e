//! An environment may accept only versions that match a pattern (e.g. releases, not RCs).

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};

/// The version matches the target's `policy.version_pattern`, when set.
#[derive(Debug, Clone, Copy)]
pub struct VersionPattern;

#[async_trait]
impl Check for VersionPattern {
    fn name(&self) -> &'static str {
        "version_pattern"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        Ok(match &ctx.to.policy.version_pattern {
            Some(pattern) if !pattern.is_match(ctx.version.as_str()) => {
                Some(Error::PolicyViolation {
                    environment: ctx.to.name.clone(),
                    rule: "version_pattern",
                    detail: format!("{} does not match {}", ctx.version, pattern.as_str()),
                })
            }
            _ => None,
        })
    }
}
