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
        self.record(vec![requested]).await?;

        if let Err(e) = self.evaluate_promotion(&req, &mut ev).await {
            return Err(self.fail_promotion(&req, &ev, e).await);
        }
        let (Some(digest), Some(repository)) = (ev.digest().cloned(), ev.target.clone()) else {
            let e = Error::Conflict("the evaluation resolved nothing to write".into());
            return Err(self.fail_promotion(&req, &ev, e).await);
        };
        let event = |kind, at| self.promotion_event(kind, &req, at);
        let tail = Tail {
            environment: &req.to,
            actor: &req.actor,
            override_lock: req.override_lock,
            event: &event,
            success: EventKind::PromotionSucceeded,
        };
        let finish = |done: &mut EventRecord, ev: &Evaluation, w: &Written| {
            done.gates = ev.gates.clone();
            done.details.insert("request".into(), ev.id.to_string());
            if w.tags.is_empty() {
                done.details.insert("noop".into(), "true".into());
            }
            if let Some(c) = &w.copy {
                done.details.insert("copy".into(), copy_summary(c));
            }
        };
        let done = match self.execute(&mut ev, tail, finish).await {
            Ok(done) => done,
            Err(e) => return Err(self.fail_promotion(&req, &ev, e).await),
        };
        for g in ev.gates.iter().filter(|g| g.status == GateStatus::Warned) {
            warnings.push(format!("gate {}: {}", g.gate, g.message));
        }
        Ok(PromotionRecord {
            id: ev.id,
            outcome: if done.tags.is_empty() {
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
            tags_written: done.tags,
            copy: done.copy,
            lock_overridden: ev.lock_overridden,
            warnings,
            started,
            finished: done.finished,
            event_seq: done.stored.last().map(|e| e.seq),
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
}

/// A copy report in one line, for event details.
fn copy_summary(c: &CopyReport) -> String {
    format!(
        "manifests={} mounted={} uploaded={} skipped={} bytes={} signatures={} referrers={}",
        c.manifests_copied,
        c.blobs_mounted,
        c.blobs_uploaded,
        c.blobs_skipped,
        c.bytes_uploaded,
        c.signatures_copied,
        c.referrers_copied
    )
}
