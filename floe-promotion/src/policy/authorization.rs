//! Only listed operators and groups may act on an environment that lists any.

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::model::Actor;

/// The actor is in the target's `allowed_operators` or one of its `allowed_groups` (or the
/// environment lists neither).
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

/// The refusal of `actor` for `action` on `env`, or `None` when allowed. Used by every
/// operation that needs authorization (promote, rollback, lock, unlock, breaking a lease).
pub fn authorize(env: &Environment, actor: &Actor, action: &'static str) -> Option<Error> {
    if env.authorization.allows(actor) {
        return None;
    }
    Some(Error::Forbidden {
        actor: actor.id.clone(),
        action,
        environment: env.name.clone(),
        reason: format!(
            "not in allowed_operators [{}] nor in allowed_groups [{}]",
            env.authorization.allowed_operators.join(", "),
            env.authorization.allowed_groups.join(", ")
        ),
    })
}

#[async_trait]
impl Check for Authorized {
    fn name(&self) -> &'static str {
        "authorization"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, _: Operation) -> bool {
        true
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        Ok(authorize(ctx.to, ctx.actor, ctx.operation.verb()))
    }
}
