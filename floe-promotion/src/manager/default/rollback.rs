//! `rollback` and `plan_rollback`.

use super::*;

impl DefaultPromotionManager {
    pub(super) async fn run_rollback(&self, req: RollbackRequest) -> Result<PromotionRecord> {
        let started = self.now();
        let mut ev = Evaluation::new(started, false);
        let mut warnings = Vec::new();
        self.check_rollback_input(&req)?;
        if let Err(e) = self.evaluate_rollback(&req, &mut ev).await {
            let record = self.rollback_event(EventKind::RollbackFailed, &req, self.now());
            self.record_failure(record, &ev, &e).await;
            return Err(e);
        }
        let mut events = Vec::new();
        if let (true, Some(lock)) = (ev.lock_overridden, &ev.lock) {
            events.push(self.rollback_lock_overridden_event(&req, &ev, lock));
        }
        let rollback_tag = ev.tags.first().map(|t| t.tag.clone());
        let immutable: Vec<&Tag> = rollback_tag.iter().collect();
        let w = match self
            .write(
                &ev,
                &req.environment,
                &req.actor,
                &immutable,
                req.override_lock,
            )
            .await
        {
            Ok(w) => w,
            Err(e) => {
                let record = self.rollback_event(EventKind::RollbackFailed, &req, self.now());
                self.record_failure(record, &ev, &e).await;
                return Err(e);
            }
        };
        if let (Some(lock), false) = (&w.lock, ev.lock_overridden) {
            ev.lock_overridden = true;
            events.push(self.rollback_lock_overridden_event(&req, &ev, lock));
        }
        let (written, lease) = (w.tags, w.lease);
        let repository = ev
            .target
            .clone()
            .ok_or_else(|| Error::Conflict("no target repository".into()))?;
        let finished = self.now();
        let digest = ev
            .digest()
            .cloned()
            .ok_or_else(|| Error::Conflict("no digest".into()))?;
        let mut done = self.rollback_event(EventKind::RollbackSucceeded, &req, finished);
        done.id = ev.id;
        done.digest = Some(digest.clone());
        done.details.insert("tags".into(), tag_list(&written));
        if !w.confirmed.is_empty() {
            done.details
                .insert("confirmed_after_lost_reply".into(), tag_list(&w.confirmed));
        }
        events.push(done);
        let stored = self.record(events, &mut warnings).await;
        self.release(&lease).await;
        let stored = stored?;
        Ok(PromotionRecord {
            id: ev.id,
            outcome: Outcome::RolledBack,
            artifact: req.artifact,
            version: req.to_version,
            digest,
            from: None,
            to: req.environment,
            repository,
            actor: req.actor.id,
            reason: Some(req.reason),
            gates: vec![],
            tags_written: written,
            copy: None,
            lock_overridden: ev.lock_overridden,
            warnings,
            started,
            finished,
            event_seq: stored.last().map(|e| e.seq),
        })
    }

    pub(super) async fn run_plan_rollback(&self, req: RollbackRequest) -> Result<PromotionPlan> {
        self.check_rollback_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        self.evaluate_rollback(&req, &mut ev).await?;
        let from = None;
        ev.into_plan(req.artifact, req.to_version, from, req.environment)
    }

    /// The record of a lock passed with a break-glass override by a rollback.
    pub(super) fn rollback_lock_overridden_event(
        &self,
        req: &RollbackRequest,
        ev: &Evaluation,
        lock: &EnvLock,
    ) -> EventRecord {
        let mut e = self.rollback_event(EventKind::LockOverridden, req, self.now());
        e.digest = ev.digest().cloned();
        e.details.insert("lock_owner".into(), lock.owner.clone());
        e.details.insert("lock_reason".into(), lock.reason.clone());
        e
    }

    pub(super) fn rollback_event(
        &self,
        kind: EventKind,
        req: &RollbackRequest,
        now: DateTime<Utc>,
    ) -> EventRecord {
        let mut e = self.event(kind, &req.actor, now);
        e.artifact = Some(req.artifact.clone());
        e.version = Some(req.to_version.clone());
        e.environment = Some(req.environment.clone());
        e.reason = Some(req.reason.clone());
        e
    }
}
