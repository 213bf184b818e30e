//! `promote` and `plan`.

use super::*;

impl DefaultPromotionManager {
    pub(super) async fn run_promote(&self, req: PromotionRequest) -> Result<PromotionRecord> {
        self.run_promote_in(req, None).await
    }

    /// A promotion, as a member of `group` when given (its events carry the group id).
    pub(super) async fn run_promote_in(
        &self,
        req: PromotionRequest,
        group: Option<Uuid>,
    ) -> Result<PromotionRecord> {
        let started = self.now();
        let mut ev = Evaluation::new(started, false);
        ev.group = group;
        self.check_request_input(&req)?;
        let mut requested = self.promotion_event(EventKind::PromotionRequested, &req, started);
        requested.id = ev.id;
        if let Some(group) = group {
            requested.details.insert("group".into(), group.to_string());
        }
        // The request is made durable while the evaluation reads: it writes nothing, and
        // nothing is written to a registry before both are done. A request that cannot be
        // recorded fails the promotion whatever the evaluation found.
        //
        // The evaluation is polled first: a lease taken before the checks is then handed to
        // the store before the request's record, so a store that runs one write at a time
        // (SQLite) usually commits the lease, which is not fsynced, first. The reads then
        // wait for the lease only, and the record's fsync runs while they are made instead
        // of before them. Either order is correct; this one is faster.
        let early = self.lease_before_checks(&req)?;
        let evaluate = async {
            if early {
                ev.lease = Some(self.take_lease(&req.to, &req.actor, ev.id).await?);
            }
            self.evaluate_promotion(&req, &mut ev).await
        };
        let (evaluated, recorded) = futures::join!(evaluate, self.record(vec![requested]));
        match (recorded, evaluated) {
            (Err(e), _) => {
                self.release_held(&mut ev).await;
                return Err(e);
            }
            (Ok(()), Err(e)) => return Err(self.fail_direct(&req, &mut ev, e).await),
            (Ok(()), Ok(())) => {}
        }
        if let Some(policy) = self.parts.config.environment(&req.to)?.approval.clone() {
            // Boxed, like the other strategies' tails below: their futures are large, and
            // inline they would grow the future of every promotion, which is moved into its
            // box on each call.
            return Box::pin(self.wait_for_approval(&req, &ev, &policy)).await;
        }
        // The common case without the dispatch of `finish_promotion` around it (one move of
        // the tail's state less); the other strategies are boxed there.
        if let Strategy::Direct = self.parts.config.environment(&req.to)?.strategy {
            return self.finish_direct(&req, ev, started, None).await;
        }
        Box::pin(self.finish_promotion(&req, ev, started, None)).await
    }

    /// Whether a promotion into `req.to` takes its lease before the checks: when the target
    /// has no gates, no approval and releases directly, nothing slow runs before the writes,
    /// so the lease can cover the whole evaluation. Its reads of the lock and the target's
    /// tags are then the check under the lease of step 6, and neither the immutable tags nor
    /// the lock need a second read. Otherwise the lease is taken after the gates, and the
    /// check repeated.
    fn lease_before_checks(&self, req: &PromotionRequest) -> Result<bool> {
        let env = self.parts.config.environment(&req.to)?;
        Ok(self.gates(&req.to).is_empty()
            && env.approval.is_none()
            && matches!(env.strategy, Strategy::Direct))
    }

    /// A promotion whose checks and gates passed (and whose approval, if any, was given),
    /// released by the target's strategy: at once (direct), as a canary, or to the idle
    /// blue-green slot. `approval` names the approved request and who ran it.
    pub(super) async fn finish_promotion(
        &self,
        req: &PromotionRequest,
        ev: Evaluation,
        started: DateTime<Utc>,
        approval: Option<(Uuid, &Actor)>,
    ) -> Result<PromotionRecord> {
        match self.parts.config.environment(&req.to)?.strategy.clone() {
            Strategy::Direct => self.finish_direct(req, ev, started, approval).await,
            Strategy::Canary { steps } => {
                Box::pin(self.start_canary(req, ev, started, approval, &steps)).await
            }
            Strategy::BlueGreen { auto_switch } => {
                Box::pin(self.stage_preview(req, ev, started, approval, auto_switch)).await
            }
        }
    }

    /// Steps 6 and 7 of a direct promotion: the common tail, then the record.
    pub(super) async fn finish_direct(
        &self,
        req: &PromotionRequest,
        mut ev: Evaluation,
        started: DateTime<Utc>,
        approval: Option<(Uuid, &Actor)>,
    ) -> Result<PromotionRecord> {
        let mut warnings = Vec::new();
        let (Some(digest), Some(repository)) = (ev.digest().cloned(), ev.target.clone()) else {
            let e = Error::Conflict("the evaluation resolved nothing to write".into());
            return Err(self.fail_direct(req, &mut ev, e).await);
        };
        let event = |kind, at| self.promotion_event(kind, req, at);
        let tail = Tail {
            environment: &req.to,
            actor: &req.actor,
            override_lock: req.override_lock,
            event: &event,
            success: EventKind::PromotionSucceeded,
        };
        let finish = |done: &mut EventRecord, ev: &Evaluation, w: &Written| {
            done.gates = ev.gates.clone();
            let mut p = PromotionSucceeded::new(ev.id, w.tags.clone());
            p.confirmed_after_lost_reply = w.confirmed.clone();
            p.noop = w.tags.is_empty();
            p.copy = w.copy.clone();
            if let Some((id, by)) = approval {
                p.approval = Some(id);
                p.executed_by = Some(by.id.clone());
            }
            p.group = ev.group;
            Payload::PromotionSucceeded(p)
        };
        let done = match self.run_tail(&mut ev, tail, finish).await {
            Ok(done) => done,
            Err(e) => return Err(self.fail_direct(req, &mut ev, e).await),
        };
        self.release_rollback_holds(req).await;
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
            artifact: req.artifact.clone(),
            version: req.version.clone(),
            digest,
            from: Some(req.from.clone()),
            to: req.to.clone(),
            repository,
            actor: req.actor.id.clone(),
            reason: req.reason.clone(),
            gates: ev.gates,
            tags_written: done.tags,
            copy: done.copy,
            lock_overridden: ev.lock_overridden,
            window_overridden: ev.window_overridden.is_some(),
            warnings,
            started,
            finished: done.finished,
            event_seq: done.event_seq,
        })
    }

    pub(super) async fn run_plan(&self, req: PromotionRequest) -> Result<PromotionPlan> {
        self.check_request_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        self.evaluate_promotion(&req, &mut ev).await?;
        let strategy = self.parts.config.environment(&req.to)?.strategy.clone();
        if let Strategy::Canary { .. } = &strategy {
            self.plan_canary(&req, &mut ev).await?;
        }
        let approval = self.plan_approval(&req, &ev).await?;
        let preview_slot = self.plan_preview(&req, &mut ev).await?;
        let mut plan = ev.into_plan(req.artifact, req.version, Some(req.from), req.to)?;
        plan.approval = approval;
        plan.strategy = strategy;
        plan.preview_slot = preview_slot;
        Ok(plan)
    }

    /// [`fail_promotion`](Self::fail_promotion), then gives back the lease the evaluation
    /// took first if it is still held (a failure before the writes began).
    async fn fail_direct(&self, req: &PromotionRequest, ev: &mut Evaluation, e: Error) -> Error {
        let e = self.fail_promotion(req, ev, e).await;
        self.release_held(ev).await;
        e
    }

    /// Gives back the lease the evaluation took first, if it still holds it.
    async fn release_held(&self, ev: &mut Evaluation) {
        if let Some(lease) = ev.lease.take() {
            self.release(&lease).await;
        }
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
