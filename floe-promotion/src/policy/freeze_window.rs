//! No promotions into an environment during its freeze windows.

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};

/// The evaluation time is outside the target's freeze windows.
#[derive(Debug, Clone, Copy)]
pub struct NotFrozen;

#[async_trait]
impl Check for NotFrozen {
    fn name(&self) -> &'static str {
        "freeze_window"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        Ok(ctx
            .to
            .frozen_at(ctx.now)
            .map(|window| Error::PolicyViolation {
                environment: ctx.to.name.clone(),
                rule: "freeze_window",
                detail: format!("promotions are frozen: {}", window.reason()),
            }))
    }
}
