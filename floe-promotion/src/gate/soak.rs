use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{GateContext, GateOutcome, PromotionGate};
use crate::error::Result;
use crate::history::{EventKind, HistoryQuery, HistoryStore, Order};
use crate::model::{ArtifactName, Digest, EnvName};

/// How long `digest` of `artifact` has been in `environment` at `now`: the time since the
/// latest event that made it current there. `None` when history has no such event.
pub async fn soak_time(
    history: &dyn HistoryStore,
    environment: &EnvName,
    artifact: &ArtifactName,
    digest: &Digest,
    now: DateTime<Utc>,
) -> Result<Option<Duration>> {
    let events = history
        .query(&HistoryQuery {
            environment: Some(environment.clone()),
            artifact: Some(artifact.clone()),
            digest: Some(digest.clone()),
            kinds: EventKind::ALL
                .into_iter()
                .filter(|k| k.sets_current())
                .collect(),
            limit: Some(1),
            order: Order::NewestFirst,
            ..Default::default()
        })
        .await?;
    Ok(events
        .first()
        .map(|e| (now - e.record.time).to_std().unwrap_or_default()))
}

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
        Ok(
            match soak_time(
                ctx.history.as_ref(),
                &ctx.from,
                &ctx.artifact,
                &ctx.digest,
                ctx.now,
            )
            .await?
            {
                Some(t) if t >= self.minimum => GateOutcome::pass(format!(
                    "in {} for {} (minimum {min})",
                    ctx.from,
                    humantime::format_duration(Duration::from_secs(t.as_secs()))
                )),
                Some(t) => GateOutcome::fail(format!(
                    "in {} for only {} (minimum {min})",
                    ctx.from,
                    humantime::format_duration(Duration::from_secs(t.as_secs()))
                )),
                None => GateOutcome::fail(format!(
                    "history shows no arrival of {} in {}; the soak time cannot be measured",
                    ctx.digest, ctx.from
                )),
            },
        )
    }
}
