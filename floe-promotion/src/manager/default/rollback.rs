//! `rollback` and `plan_rollback`.

use super::*;

impl DefaultPromotionManager {
    pub(super) async fn run_rollback(&self, req: RollbackRequest) -> Result<PromotionRecord> {
        let started = self.now();
        let mut ev = Evaluation::new(started, false);

        self.check_rollback_input(&req)?;
        self.abort_for_rollback(&req).await?;
        let evaluated = self.evaluate_rollback(&req, &mut ev).await.and_then(|()| {
            match (ev.digest().cloned(), ev.target.clone()) {
                (Some(d), Some(r)) => Ok((d, r)),
                _ => Err(Error::Conflict(
                    "the evaluation resolved nothing to write".into(),
                )),
            }
        });
        let (digest, repository) = match evaluated {
            Ok(x) => x,
            Err(e) => return Err(self.fail_rollback(&req, &ev, e).await),
        };
        let event = |kind, at| self.rollback_event(kind, &req, at);
        let tail = Tail {
            environment: &req.environment,
            actor: &req.actor,
            override_lock: req.override_lock,
            event: &event,
            success: EventKind::RollbackSucceeded,
        };
        let done = match self
            .run_tail(&mut ev, tail, |done, ev, w| {
                done.id = ev.id;
                let mut p = RollbackSucceeded::new(w.tags.clone());
                p.confirmed_after_lost_reply = w.confirmed.clone();
                Payload::RollbackSucceeded(p)
            })
            .await
        {
            Ok(done) => done,
            Err(e) => return Err(self.fail_rollback(&req, &ev, e).await),
        };
        self.hold_after_rollback(&req).await;
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
            tags_written: done.tags,
            copy: None,
            lock_overridden: ev.lock_overridden,
            window_overridden: false,
            warnings: Vec::new(),
            started,
            finished: done.finished,
            event_seq: done.event_seq,
        })
    }

    /// Records the failure of a rollback and returns its error.
    pub(super) async fn fail_rollback(
        &self,
        req: &RollbackRequest,
        ev: &Evaluation,
        e: Error,
    ) -> Error {
        let record = self.rollback_event(EventKind::RollbackFailed, req, self.now());
        self.record_failure(record, ev, &e).await;
        e
    }

    pub(super) async fn run_plan_rollback(&self, req: RollbackRequest) -> Result<PromotionPlan> {
        self.check_rollback_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        self.evaluate_rollback(&req, &mut ev).await?;
        let from = None;
        ev.into_plan(req.artifact, req.to_version, from, req.environment)
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

    /// The artifact a rollback of `environment` to `version` means when the request names
    /// none: the one artifact running there. Refused as [`Error::VersionNotPromoted`] when
    /// nothing runs there, and as invalid input naming them when several artifacts do.
    pub async fn rollback_artifact(
        &self,
        environment: &EnvName,
        version: &Tag,
    ) -> Result<ArtifactName> {
        self.parts.config.environment(environment)?;
        let running = self.parts.history.deployments(Some(environment)).await?;
        match running.as_slice() {
            [one] => Ok(one.artifact.clone()),
            [] => Err(Error::VersionNotPromoted {
                artifact: "*".into(),
                version: version.to_string(),
                environment: environment.clone(),
            }),
            _ => Err(Error::invalid(
                "rollback target",
                version.to_string(),
                format!(
                    "{environment} runs several artifacts ({}); name the artifact as NAME:VERSION",
                    running
                        .iter()
                        .map(|d| d.artifact.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}
