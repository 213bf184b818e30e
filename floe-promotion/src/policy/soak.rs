//! Minimum soak: a version must have run in the source environment for a while before it
//! moves on. One measurement, used by the policy check, the soak gate and auto-promotion.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};
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

/// A soak time measured against a minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Soak {
    /// At least the minimum (the time in the environment, whole seconds).
    Enough(Duration),
    /// Less than the minimum (the time so far, whole seconds).
    Short(Duration),
    /// History shows no arrival: the soak cannot be measured, which fails closed.
    Unmeasured,
}

impl Soak {
    /// Measures the soak of `digest` of `artifact` in `environment` at `now` against `minimum`.
    pub async fn measure(
        history: &dyn HistoryStore,
        environment: &EnvName,
        artifact: &ArtifactName,
        digest: &Digest,
        now: DateTime<Utc>,
        minimum: Duration,
    ) -> Result<Soak> {
        Ok(
            match soak_time(history, environment, artifact, digest, now).await? {
                Some(t) if t >= minimum => Soak::Enough(Duration::from_secs(t.as_secs())),
                Some(t) => Soak::Short(Duration::from_secs(t.as_secs())),
                None => Soak::Unmeasured,
            },
        )
    }
}

/// The version has been in the source for the target's `policy.minimum_soak`.
#[derive(Debug, Clone, Copy)]
pub struct MinimumSoak;

#[async_trait]
impl Check for MinimumSoak {
    fn name(&self) -> &'static str {
        "minimum_soak"
    }

    fn stage(&self) -> Stage {
        Stage::Resolved
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        let (Some(minimum), Some(from), Some(digest)) =
            (ctx.to.policy.minimum_soak, ctx.from, ctx.digest)
        else {
            return Ok(None);
        };
        let (artifact, version) = (ctx.artifact, ctx.version);
        let detail = match Soak::measure(ctx.history, from, artifact, digest, ctx.now, minimum)
            .await?
        {
            Soak::Enough(_) => return Ok(None),
            Soak::Short(t) => format!(
                "{artifact}:{version} has been in {from} for {}, less than {}",
                humantime::format_duration(t),
                humantime::format_duration(minimum)
            ),
            Soak::Unmeasured => format!(
                "history shows no arrival of {artifact}:{version} in {from}; its soak time cannot be measured"
            ),
        };
        Ok(Some(Error::PolicyViolation {
            environment: ctx.to.name.clone(),
            rule: "minimum_soak",
            detail,
        }))
    }
}
