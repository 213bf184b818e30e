//! A locked environment takes no promotion or rollback, unless the request is a break-glass
//! override (which needs a reason, checked with the request's input, and is recorded).

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};

/// The target has no lock in force, or the request overrides it.
#[derive(Debug, Clone, Copy)]
pub struct NotLocked;

#[async_trait]
impl Check for NotLocked {
    fn name(&self) -> &'static str {
        "lock"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, _: Operation) -> bool {
        true
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        Ok(match ctx.lock {
            Some(lock) if !ctx.override_lock => Some(Error::Locked {
                lock: Box::new(lock.clone()),
            }),
            _ => None,
        })
    }
}
