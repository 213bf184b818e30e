//! Separation of duties: whoever promoted a version into an environment may not also promote
//! it out of that environment.

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};

/// Under the target's `separation_of_duties`, the actor is not the one who brought the
/// version into the source.
#[derive(Debug, Clone, Copy)]
pub struct SeparationOfDuties;

#[async_trait]
impl Check for SeparationOfDuties {
    fn name(&self) -> &'static str {
        "separation_of_duties"
    }

    fn stage(&self) -> Stage {
        Stage::Resolved
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        let (Some(from), Some(arrival)) = (ctx.from, ctx.arrival) else {
            return Ok(None);
        };
        if !ctx.to.authorization.separation_of_duties || arrival.record.actor.id != ctx.actor.id {
            return Ok(None);
        }
        Ok(Some(Error::SeparationOfDuties {
            actor: ctx.actor.id.clone(),
            reason: format!(
                "promoted {}:{} into {from} (event {}) and may not also promote it out of {from}",
                ctx.artifact, ctx.version, arrival.seq
            ),
        }))
    }
}
