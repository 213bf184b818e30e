//! Holds on automatic promotion: placed by hand or by a rollback, released by their holder
//! (or, for rollback holds, by a manual promotion).

use super::*;
use crate::history::HoldDetails;

impl DefaultPromotionManager {
    pub(super) async fn run_hold(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
    ) -> Result<Hold> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        require_reason(Reasoned::Hold, Some(reason))?;
        self.check_authorized(env, actor, "hold")?;
        let hold = Hold {
            environment: environment.clone(),
            holder: actor.id.clone(),
            kind: HoldKind::Manual,
            reason: reason.to_string(),
            placed: self.now(),
        };
        if !self.parts.holds.place(hold.clone()).await? {
            let existing = self
                .parts
                .holds
                .holds(Some(environment))
                .await?
                .into_iter()
                .find(|h| h.holder == actor.id);
            return Err(Error::Conflict(match existing {
                Some(h) => format!(
                    "{} already holds {environment} ({} hold since {}: {})",
                    h.holder,
                    h.kind,
                    h.placed.to_rfc3339(),
                    h.reason
                ),
                None => format!("{} already holds {environment}", actor.id),
            }));
        }
        self.record(vec![self.hold_event(
            EventKind::HoldPlaced,
            &hold,
            actor,
            reason,
        )])
        .await?;
        Ok(hold)
    }

    pub(super) async fn run_release_hold(
        &self,
        environment: &EnvName,
        actor: &Actor,
        holder: Option<&str>,
        reason: &str,
    ) -> Result<Hold> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        if let Some(h) = holder {
            crate::model::text::check_free_text("holder", h)?;
        }
        require_reason(Reasoned::HoldRelease, Some(reason))?;
        self.check_authorized(env, actor, "release a hold on")?;
        let holder = holder.unwrap_or(&actor.id);
        let hold = self
            .parts
            .holds
            .release(environment, holder)
            .await?
            .ok_or_else(|| Error::not_found(format!("a hold by {holder} on {environment}")))?;
        self.record(vec![self.hold_event(
            EventKind::HoldReleased,
            &hold,
            actor,
            reason,
        )])
        .await?;
        Ok(hold)
    }

    /// The event of placing or releasing `hold`, by `actor`, for `reason`.
    fn hold_event(&self, kind: EventKind, hold: &Hold, actor: &Actor, reason: &str) -> EventRecord {
        let mut e = self.event(kind, actor, self.now());
        e.environment = Some(hold.environment.clone());
        e.reason = Some(reason.to_string());
        let details = HoldDetails::new(&hold.holder, hold.kind);
        e.set_payload(match kind {
            EventKind::HoldPlaced => Payload::HoldPlaced(details),
            _ => Payload::HoldReleased(details),
        });
        e
    }

    /// After a successful rollback of `environment` by `actor`: holds automatic promotion into
    /// it (unless the actor holds it already). A failure here is logged, never undoes the
    /// rollback: history still shows the rolled-back digest, which is never re-promoted
    /// automatically.
    pub(super) async fn hold_after_rollback(&self, req: &RollbackRequest) {
        let hold = Hold {
            environment: req.environment.clone(),
            holder: req.actor.id.clone(),
            kind: HoldKind::Rollback,
            reason: format!(
                "rolled back to {}:{}: {}",
                req.artifact, req.to_version, req.reason
            ),
            placed: self.now(),
        };
        let placed = async {
            if self.parts.holds.place(hold.clone()).await? {
                let reason = hold.reason.clone();
                self.record(vec![self.hold_event(
                    EventKind::HoldPlaced,
                    &hold,
                    &req.actor,
                    &reason,
                )])
                .await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(e) = placed.await {
            tracing::warn!(environment = %req.environment, error = %e, "the rollback succeeded but its hold on automatic promotion was not placed");
        }
    }

    /// After a successful promotion that is not automatic: releases the rollback holds of its
    /// target. A failure is logged and leaves the holds (the safe side).
    pub(super) async fn release_rollback_holds(&self, req: &PromotionRequest) {
        if req.automatic {
            return;
        }
        let released = async {
            let holds = self
                .parts
                .holds
                .release_kind(&req.to, HoldKind::Rollback)
                .await?;
            if !holds.is_empty() {
                let reason = format!(
                    "manual promotion of {}:{} into {}",
                    req.artifact, req.version, req.to
                );
                let events = holds
                    .iter()
                    .map(|h| self.hold_event(EventKind::HoldReleased, h, &req.actor, &reason))
                    .collect();
                self.record(events).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(e) = released.await {
            tracing::warn!(environment = %req.to, error = %e, "the promotion succeeded but the rollback holds of its target were not released");
        }
    }
}
