//! `promote` and `plan`.

use super::*;

impl DefaultPromotionManager {
    pub(super) async fn run_promote(&self, req: PromotionRequest) -> Result<PromotionRecord> {
        let started = self.now();
        let mut ev = Evaluation::new(started, false);
        let mut warnings = Vec::new();
        self.check_request_input(&req)?;
        let mut requested = self.promotion_event(EventKind::PromotionRequested, &req, started);
        requested.id = ev.id;
        self.record(vec![requested], &mut warnings).await?;

        if let Err(e) = self.evaluate_promotion(&req, &mut ev).await {
            return Err(self.fail_promotion(&req, &ev, e).await);
        }
        if let (true, Some(lock)) = (ev.lock_overridden, &ev.lock) {
            let e = self.lock_overridden_event(&req, &ev, lock);
            if let Err(err) = self.record(vec![e], &mut warnings).await {
                return Err(self.fail_promotion(&req, &ev, err).await);
            }
        }
        let env_tag = ev.tags.first().map(|t| t.tag.clone());
        let immutable: Vec<&Tag> = env_tag.iter().collect();
        let w = match self
            .write(&ev, &req.to, &req.actor, &immutable, req.override_lock)
            .await
        {
            Ok(w) => w,
            Err(e) => return Err(self.fail_promotion(&req, &ev, e).await),
        };
        let mut outcome_events = Vec::new();
        if let (Some(lock), false) = (&w.lock, ev.lock_overridden) {
            // Locked while the gates ran; the override passes it, and says so.
            ev.lock_overridden = true;
            outcome_events.push(self.lock_overridden_event(&req, &ev, lock));
        }
        let (written, copy, lease) = (w.tags, w.copy, w.lease);
        let repository = ev
            .target
            .clone()
            .ok_or_else(|| Error::Conflict("no target repository".into()))?;
        let finished = self.now();
        let mut done = self.promotion_event(EventKind::PromotionSucceeded, &req, finished);
        let digest = ev
            .digest()
            .cloned()
            .ok_or_else(|| Error::Conflict("no digest".into()))?;
        done.digest = Some(digest.clone());
        done.gates = ev.gates.clone();
        done.details.insert("request".into(), ev.id.to_string());
        done.details.insert("tags".into(), tag_list(&written));
        if written.is_empty() {
            done.details.insert("noop".into(), "true".into());
        }
        if let Some(c) = &copy {
            done.details.insert(
                "copy".into(),
                format!(
                    "manifests={} mounted={} uploaded={} skipped={} bytes={} signatures={} referrers={}",
                    c.manifests_copied,
                    c.blobs_mounted,
                    c.blobs_uploaded,
                    c.blobs_skipped,
                    c.bytes_uploaded,
                    c.signatures_copied,
                    c.referrers_copied
                ),
            );
        }
        for g in ev.gates.iter().filter(|g| g.status == GateStatus::Warned) {
            warnings.push(format!("gate {}: {}", g.gate, g.message));
        }
        if !w.confirmed.is_empty() {
            done.details
                .insert("confirmed_after_lost_reply".into(), tag_list(&w.confirmed));
        }
        outcome_events.push(done);
        let stored = self.record(outcome_events, &mut warnings).await;
        self.release(&lease).await;
        let stored = stored?;
        Ok(PromotionRecord {
            id: ev.id,
            outcome: if written.is_empty() {
                Outcome::AlreadyPromoted
            } else {
                Outcome::Promoted
            },
            artifact: req.artifact,
            version: req.version,
            digest,
            from: Some(req.from),
            to: req.to,
            repository,
            actor: req.actor.id,
            reason: req.reason,
            gates: ev.gates,
            tags_written: written,
            copy,
            lock_overridden: ev.lock_overridden,
            warnings,
            started,
            finished,
            event_seq: stored.last().map(|e| e.seq),
        })
    }

    pub(super) async fn run_plan(&self, req: PromotionRequest) -> Result<PromotionPlan> {
        self.check_request_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        self.evaluate_promotion(&req, &mut ev).await?;
        ev.into_plan(req.artifact, req.version, Some(req.from), req.to)
    }

    pub(super) async fn fail_promotion(
        &self,
        req: &PromotionRequest,
        ev: &Evaluation,
        e: Error,
    ) -> Error {
        let record = self.promotion_event(EventKind::PromotionFailed, req, self.now());
        self.record_failure(record, ev, &e).await;
        e
    }

    pub(super) fn promotion_event(
        &self,
        kind: EventKind,
        req: &PromotionRequest,
        now: DateTime<Utc>,
    ) -> EventRecord {
        let mut e = self.event(kind, &req.actor, now);
        e.artifact = Some(req.artifact.clone());
        e.version = Some(req.version.clone());
        e.from = Some(req.from.clone());
        e.environment = Some(req.to.clone());
        e.reason = req.reason.clone();
        e
    }

    /// The record of a lock passed with a break-glass override.
    pub(super) fn lock_overridden_event(
        &self,
        req: &PromotionRequest,
        ev: &Evaluation,
        lock: &EnvLock,
    ) -> EventRecord {
        let mut e = self.promotion_event(EventKind::LockOverridden, req, self.now());
        e.digest = ev.digest().cloned();
        e.details.insert("lock_owner".into(), lock.owner.clone());
        e.details.insert("lock_reason".into(), lock.reason.clone());
        e
    }
}
