use std::time::Duration;

use async_trait::async_trait;

use super::{GateContext, GateOutcome, PromotionGate};
use crate::error::Result;
use crate::policy::soak::Soak;

/// Passes when the digest has been in the source environment for at least `minimum`.
///
/// Fails closed when history shows no arrival (for instance in the first environment, where CI
/// pushes directly): the soak cannot be measured.
#[derive(Debug, Clone)]
pub struct SoakGate {
    minimum: Duration,
}

impl SoakGate {
    /// A gate requiring `minimum` soak.
    pub fn new(minimum: Duration) -> Self {
        SoakGate { minimum }
    }
}

#[async_trait]
impl PromotionGate for SoakGate {
    fn name(&self) -> &str {
        "soak"
    }

    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome> {
        let min = humantime::format_duration(self.minimum);
        let soak = Soak::measure(
            ctx.history.as_ref(),
            &ctx.from,
            &ctx.artifact,
            &ctx.digest,
            ctx.now,
            self.minimum,
        )
        .await?;
        Ok(match soak {
            Soak::Enough(t) => GateOutcome::pass(format!(
                "in {} for {} (minimum {min})",
                ctx.from,
                humantime::format_duration(t)
            )),
            Soak::Short(t) => GateOutcome::fail(format!(
                "in {} for only {} (minimum {min})",
                ctx.from,
                humantime::format_duration(t)
            )),
            Soak::Unmeasured => GateOutcome::fail(format!(
                "history shows no arrival of {} in {}; the soak time cannot be measured",
                ctx.digest, ctx.from
            )),
        })
    }
}
