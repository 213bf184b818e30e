//! Promotion goes forward, one environment at a time unless the settings allow skipping.

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};

/// Forward only, to the next environment (or further with `allow_skip`); never into the
/// source itself.
#[derive(Debug, Clone, Copy)]
pub struct Transition;

#[async_trait]
impl Check for Transition {
    fn name(&self) -> &'static str {
        "transition"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        let Some(from) = ctx.from else {
            return Ok(None);
        };
        let to = &ctx.to.name;
        let config = ctx.config;
        let (f, t) = (config.position(from)?, config.position(to)?);
        let refuse = |reason: String| {
            Some(Error::InvalidTransition {
                from: from.to_string(),
                to: to.to_string(),
                reason,
            })
        };
        Ok(if f == t {
            refuse("source and target are the same environment".into())
        } else if t < f {
            refuse("promotion goes forward only; use rollback to go back".into())
        } else if t > f + 1 && !config.settings().allow_skip {
            let skipped: Vec<&str> = config.environments()[f + 1..t]
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            refuse(format!(
                "it would skip {}; promote through each environment in order",
                skipped.join(", ")
            ))
        } else {
            None
        })
    }
}
