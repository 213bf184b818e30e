//! Canary releases: the new digest on `canary-<env>`, a traffic weight per step, the pointer
//! moved at 100. The state lives in the release store ([`CanaryMachine`]); every step is a
//! `canary_step` event.

use crate::history::{CanaryAction, CanaryStepDetails};
use crate::manager::{Canaries, CanaryView};
use crate::release::canary::{
    CanaryEffect, CanaryEvent, CanaryMachine, CanaryPhase, CanaryState, Stable,
};
use crate::release::machine::Step;
use crate::release::machine::{MachineName, advance, decode, encode};
use crate::release::{Release, ReleaseFilter, ReleaseKind};

use super::*;

impl DefaultPromotionManager {
    /// Starts a canary of a promotion whose checks and gates passed: `canary-<env>` on the new
    /// digest at the first step, the pointer untouched. A strategy whose first step is 100 is
    /// a direct promotion.
    pub(super) async fn start_canary(
        &self,
        req: &PromotionRequest,
        mut ev: Evaluation,
        started: DateTime<Utc>,
        approval: Option<(Uuid, &Actor)>,
        steps: &[CanaryStep],
    ) -> Result<PromotionRecord> {
        let Some(first) = steps.first().filter(|s| s.weight < 100) else {
            return self.finish_direct(req, ev, started, approval).await;
        };
        let (Some(digest), Some(target)) = (ev.digest().cloned(), ev.target.clone()) else {
            let e = Error::Conflict("the evaluation resolved nothing to write".into());
            return Err(self.fail_promotion(req, &ev, e).await);
        };
        if let Some(running) = self.running_canary(&req.to, &req.artifact).await? {
            let e = canary_busy(&running)?;
            return Err(self.fail_promotion(req, &ev, e).await);
        }
        if let Err(e) = self
            .plan_canary_tag(&mut ev, &req.to, &target, &digest)
            .await
        {
            return Err(self.fail_promotion(req, &ev, e).await);
        }
        let now = self.now();
        let stable = self
            .parts
            .history
            .deployments(Some(&req.to))
            .await?
            .into_iter()
            .find(|d| d.artifact == req.artifact)
            .map(|d| Stable {
                version: d.version,
                digest: d.digest,
            });
        let state = CanaryState::new(
            steps.to_vec(),
            req.from.clone(),
            req.version.clone(),
            digest.clone(),
            stable,
            req.actor.id.clone(),
            now,
        );
        let release = self
            .parts
            .releases
            .create(Release::new(
                ReleaseKind::Canary,
                req.to.clone(),
                req.artifact.clone(),
                req.version.clone(),
                digest.clone(),
                encode::<CanaryMachine>(&state)?,
                now,
            ))
            .await?;
        // Two promoters may have created one each: the oldest runs, the other steps back.
        let oldest = self
            .parts
            .releases
            .list(&canary_filter(&req.to, &req.artifact).status(CanaryPhase::Running.to_string()))
            .await?
            .into_iter()
            .next();
        if oldest.as_ref().is_some_and(|o| o.id != release.id) {
            self.close_claim(&release, &state).await;
            let e = canary_busy(oldest.as_ref().unwrap_or(&release))?;
            return Err(self.fail_promotion(req, &ev, e).await);
        }
        let event = |kind, at| self.promotion_event(kind, req, at);
        let tail = Tail {
            environment: &req.to,
            actor: &req.actor,
            override_lock: req.override_lock,
            event: &event,
            success: EventKind::CanaryStep,
        };
        let id = release.id;
        let weight = first.weight;
        let done = self
            .run_tail(&mut ev, tail, |done, ev, _| {
                done.gates = ev.gates.clone();
                Payload::CanaryStep(CanaryStepDetails::new(id, 1, weight, CanaryAction::Started))
            })
            .await;
        let done = match done {
            Ok(done) => done,
            Err(e) => {
                self.close_claim(&release, &state).await;
                return Err(self.fail_promotion(req, &ev, e).await);
            }
        };
        Ok(PromotionRecord {
            id: ev.id,
            outcome: Outcome::CanaryStarted,
            artifact: req.artifact.clone(),
            version: req.version.clone(),
            digest,
            from: Some(req.from.clone()),
            to: req.to.clone(),
            repository: target,
            actor: req.actor.id.clone(),
            reason: req.reason.clone(),
            gates: ev.gates,
            tags_written: done.tags,
            copy: done.copy,
            lock_overridden: ev.lock_overridden,
            window_overridden: ev.window_overridden.is_some(),
            warnings: Vec::new(),
            started,
            finished: done.finished,
            event_seq: done.event_seq,
        })
    }

    /// Replaces the planned tags of an evaluation with `canary-<env>` at `digest` (the
    /// environment tag and the pointer wait for the canary to complete).
    pub(super) async fn plan_canary_tag(
        &self,
        ev: &mut Evaluation,
        environment: &EnvName,
        target: &Repository,
        digest: &Digest,
    ) -> Result<()> {
        ev.tags.clear();
        let tag = self.settings().tag_scheme.canary_tag(environment)?;
        self.plan_tag(ev, target, tag, digest, false).await
    }

    /// What a dry run of a promotion into a canary environment shows: the canary tag instead
    /// of the environment tag and pointer, and a running canary of the artifact as a blocker.
    pub(super) async fn plan_canary(
        &self,
        req: &PromotionRequest,
        ev: &mut Evaluation,
    ) -> Result<()> {
        if let Some(running) = self.running_canary(&req.to, &req.artifact).await? {
            ev.block(canary_busy(&running)?)?;
        }
        if let (Some(digest), Some(target)) = (ev.digest().cloned(), ev.target.clone()) {
            self.plan_canary_tag(ev, &req.to, &target, &digest).await?;
        }
        Ok(())
    }

    /// Feeds `event` to the canary of `release` in `state` and stores the next state by
    /// compare-and-set on the release's version: the step taken and the release as stored.
    async fn step_canary(
        &self,
        release: &Release,
        state: &CanaryState,
        event: CanaryEvent,
    ) -> Result<(Step<CanaryState, CanaryEffect>, Release)> {
        let step = advance::<CanaryMachine>(state, event)?;
        let updated = self
            .parts
            .releases
            .update(
                release.id,
                release.version,
                encode::<CanaryMachine>(&step.state)?,
                self.now(),
            )
            .await?;
        Ok((step, updated))
    }

    /// Marks a canary that never got its tag as aborted (best effort: a claim left running
    /// is found by the next promotion, which names it).
    async fn close_claim(&self, release: &Release, state: &CanaryState) {
        if let Err(e) = self.step_canary(release, state, CanaryEvent::Abort).await {
            tracing::warn!(canary = %release.id, error = %e, "a canary that did not start is still marked running");
        }
    }

    /// The running (or completing) canary of `artifact` in `environment`, if any.
    async fn running_canary(
        &self,
        environment: &EnvName,
        artifact: &ArtifactName,
    ) -> Result<Option<Release>> {
        Ok(self
            .parts
            .releases
            .list(&canary_filter(environment, artifact))
            .await?
            .into_iter()
            .find(|r| {
                r.status == CanaryPhase::Running.as_str()
                    || r.status == CanaryPhase::Completing.as_str()
            }))
    }

    /// The canary an advance or abort means: of `artifact`, or the one canary running in
    /// `environment` when none is named.
    async fn the_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&ArtifactName>,
    ) -> Result<Release> {
        if let Some(a) = artifact {
            return self
                .running_canary(environment, a)
                .await?
                .ok_or_else(|| Error::not_found(format!("a canary of {a} in {environment}")));
        }
        let running: Vec<Release> = self
            .parts
            .releases
            .list(
                &ReleaseFilter::default()
                    .environment(environment.clone())
                    .kind(ReleaseKind::Canary),
            )
            .await?
            .into_iter()
            .filter(|r| {
                r.status == CanaryPhase::Running.as_str()
                    || r.status == CanaryPhase::Completing.as_str()
            })
            .collect();
        match running.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::not_found(format!("a canary in {environment}"))),
            _ => Err(Error::invalid(
                "canary",
                environment.as_str(),
                format!(
                    "{environment} runs canaries of several artifacts ({}); name the artifact",
                    running
                        .iter()
                        .map(|r| r.artifact.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The promotion request a canary stands for, as `actor`.
    fn canary_request(release: &Release, state: &CanaryState, actor: &Actor) -> PromotionRequest {
        PromotionRequest {
            artifact: release.artifact.clone(),
            version: state.version.clone(),
            from: state.from.clone(),
            to: release.environment.clone(),
            actor: actor.clone(),
            reason: None,
            override_lock: false,
            automatic: false,
            override_window: false,
        }
    }

    /// Records a `canary_step` event of `release` at `step` (from 1) and `weight`.
    async fn record_canary_step(
        &self,
        req: &PromotionRequest,
        release: &Release,
        step: usize,
        weight: u8,
        action: CanaryAction,
        reason: Option<String>,
    ) -> Result<()> {
        let mut e = self.promotion_event(EventKind::CanaryStep, req, self.now());
        e.digest = Some(release.digest.clone());
        e.reason = reason;
        e.set_payload(Payload::CanaryStep(CanaryStepDetails::new(
            release.id,
            u32::try_from(step).unwrap_or(u32::MAX),
            weight,
            action,
        )));
        self.record(vec![e]).await
    }

    pub(super) async fn run_advance_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&ArtifactName>,
        actor: &Actor,
    ) -> Result<CanaryView> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, None)?;
        self.check_authorized(env, actor, "advance the canary in")?;
        let release = self.the_canary(environment, artifact).await?;
        let state = decode::<CanaryMachine>(&release)?;
        let req = Self::canary_request(&release, &state, actor);
        // The environment's checks and gates again, on the canary's digest.
        let mut ev = Evaluation::new(self.now(), false);
        let evaluated =
            self.evaluate_promotion(&req, &mut ev)
                .await
                .and_then(|()| match ev.digest() {
                    Some(d) if d == &state.digest => Ok(()),
                    other => Err(Error::Conflict(format!(
                        "{}:{} resolves to {} in {} now, but the canary runs {}",
                        release.artifact,
                        state.version,
                        other.map_or("nothing".to_string(), ToString::to_string),
                        state.from,
                        state.digest
                    ))),
                });
        if let Err(e) = evaluated {
            self.record_canary_step(
                &req,
                &release,
                state.step + 1,
                state.weight(),
                CanaryAction::Blocked,
                Some(format!("advance refused: {e}")),
            )
            .await?;
            return Err(e);
        }
        if state.phase == CanaryPhase::Completing {
            // A process died while moving the pointer: finish its move.
            return self.complete_canary(release, state, req, ev).await;
        }
        let (step, updated) = self
            .step_canary(&release, &state, CanaryEvent::Advance(self.now()))
            .await?;
        if step.state.phase == CanaryPhase::Completing {
            return self.complete_canary(updated, step.state, req, ev).await;
        }
        self.record_canary_step(
            &req,
            &updated,
            step.state.step + 1,
            step.state.weight(),
            CanaryAction::Advanced,
            None,
        )
        .await?;
        Ok(view(&updated, &step.state))
    }

    /// Moves the pointer of a completing canary (environment tag and pointer, through the
    /// common tail), then completes it; a failed move puts it back at the step before.
    async fn complete_canary(
        &self,
        release: Release,
        state: CanaryState,
        req: PromotionRequest,
        mut ev: Evaluation,
    ) -> Result<CanaryView> {
        let started = self.now();
        let event = |kind, at| self.promotion_event(kind, &req, at);
        let tail = Tail {
            environment: &req.to,
            actor: &req.actor,
            override_lock: false,
            event: &event,
            success: EventKind::PromotionSucceeded,
        };
        let moved = self
            .run_tail(&mut ev, tail, |done, ev, w| {
                done.gates = ev.gates.clone();
                let mut p = PromotionSucceeded::new(ev.id, w.tags.clone());
                p.confirmed_after_lost_reply = w.confirmed.clone();
                p.noop = w.tags.is_empty();
                p.copy = w.copy.clone();
                Payload::PromotionSucceeded(p)
            })
            .await;
        let (event, action) = match &moved {
            Ok(_) => (CanaryEvent::Finish, CanaryAction::Completed),
            Err(_) => (CanaryEvent::Block, CanaryAction::Blocked),
        };
        let (step, updated) = self.step_canary(&release, &state, event).await?;
        if let Err(e) = moved {
            let e = self.fail_promotion(&req, &ev, e).await;
            self.record_canary_step(
                &req,
                &updated,
                step.state.step + 1,
                step.state.weight(),
                action,
                Some(format!("moving the pointer failed: {e}")),
            )
            .await?;
            return Err(e);
        }
        self.record_canary_step(
            &req,
            &updated,
            step.state.step + 1,
            100,
            action,
            Some(format!(
                "{}:{} is the stable version of {} (completed in {})",
                release.artifact,
                state.version,
                req.to,
                humantime::format_duration(
                    (self.now() - state.started)
                        .to_std()
                        .map(|d| std::time::Duration::from_secs(d.as_secs()))
                        .unwrap_or_default()
                )
            )),
        )
        .await?;
        let _ = started;
        self.release_rollback_holds(&req).await;
        Ok(view(&updated, &step.state))
    }

    pub(super) async fn run_abort_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&ArtifactName>,
        actor: &Actor,
        reason: &str,
    ) -> Result<CanaryView> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        require_reason(Reasoned::CanaryAbort, Some(reason))?;
        self.check_authorized(env, actor, "abort the canary in")?;
        let release = self.the_canary(environment, artifact).await?;
        self.abort(release, actor, reason).await
    }

    /// Aborts a running canary: the release first (compare-and-set), then `canary-<env>` back
    /// on the stable digest under the environment's lease (a lock is passed and the pass
    /// recorded: an abort stops a release, it does not start one), then the event.
    async fn abort(&self, release: Release, actor: &Actor, reason: &str) -> Result<CanaryView> {
        let state = decode::<CanaryMachine>(&release)?;
        let (step, updated) = self
            .step_canary(&release, &state, CanaryEvent::Abort)
            .await?;
        let mut req = Self::canary_request(&release, &state, actor);
        req.reason = Some(reason.to_string());
        let target = self
            .parts
            .config
            .repository(&release.environment, &release.artifact)?;
        let details = |id| {
            Payload::CanaryStep(CanaryStepDetails::new(
                id,
                u32::try_from(state.step + 1).unwrap_or(u32::MAX),
                0,
                CanaryAction::Aborted,
            ))
        };
        match &state.stable {
            Some(stable) => {
                let manifest = self
                    .parts
                    .registry
                    .resolve(&target, &Reference::Digest(stable.digest.clone()))
                    .await?;
                let mut ev = Evaluation::new(self.now(), false);
                ev.source = Some(target.clone());
                ev.target = Some(target.clone());
                ev.manifest = Some(manifest);
                self.plan_canary_tag(&mut ev, &release.environment, &target, &stable.digest)
                    .await?;
                let event = |kind, at| {
                    let mut e = self.promotion_event(kind, &req, at);
                    e.digest = Some(release.digest.clone());
                    e
                };
                let tail = Tail {
                    environment: &release.environment,
                    actor,
                    override_lock: true,
                    event: &event,
                    success: EventKind::CanaryStep,
                };
                self.run_tail(&mut ev, tail, |done, _, _| {
                    done.digest = Some(release.digest.clone());
                    details(release.id)
                })
                .await?;
            }
            None => {
                let mut e = self.promotion_event(EventKind::CanaryStep, &req, self.now());
                e.digest = Some(release.digest.clone());
                e.set_payload(details(release.id));
                self.record(vec![e]).await?;
            }
        }
        Ok(view(&updated, &step.state))
    }

    /// Aborts the running canary of `artifact` in `environment`, if any, before a rollback.
    pub(super) async fn abort_for_rollback(&self, req: &RollbackRequest) -> Result<()> {
        if let Some(release) = self
            .running_canary(&req.environment, &req.artifact)
            .await?
            .filter(|r| r.status == CanaryPhase::Running.as_str())
        {
            self.abort(release, &req.actor, &format!("rollback: {}", req.reason))
                .await?;
        }
        Ok(())
    }

    /// Advances the canaries of `environment` whose timed pause elapsed, as `actor`: what a
    /// pass of automatic promotion does first. Returns each canary and what happened.
    pub(super) async fn advance_due_canaries(
        &self,
        environment: &EnvName,
        actor: &Actor,
    ) -> Result<Vec<(CanaryView, Result<CanaryView>)>> {
        let now = self.now();
        let mut out = Vec::new();
        for release in self
            .parts
            .releases
            .list(
                &ReleaseFilter::default()
                    .environment(environment.clone())
                    .kind(ReleaseKind::Canary)
                    .status(CanaryPhase::Running.to_string()),
            )
            .await?
        {
            let state = decode::<CanaryMachine>(&release)?;
            if !state.is_due(now) {
                continue;
            }
            let before = view(&release, &state);
            let result = self
                .run_advance_canary(environment, Some(&release.artifact), actor)
                .await;
            out.push((before, result));
        }
        Ok(out)
    }

    pub(super) async fn run_canaries(
        &self,
        environment: Option<&EnvName>,
    ) -> Result<Vec<CanaryView>> {
        let mut filter = ReleaseFilter::default().kind(ReleaseKind::Canary);
        if let Some(e) = environment {
            self.parts.config.environment(e)?;
            filter = filter.environment(e.clone());
        }
        let mut out = Vec::new();
        for r in self.parts.releases.list(&filter).await? {
            if r.status == CanaryPhase::Running.as_str()
                || r.status == CanaryPhase::Completing.as_str()
            {
                out.push(view(&r, &decode::<CanaryMachine>(&r)?));
            }
        }
        Ok(out)
    }
}

fn canary_filter(environment: &EnvName, artifact: &ArtifactName) -> ReleaseFilter {
    ReleaseFilter::default()
        .environment(environment.clone())
        .artifact(artifact.clone())
        .kind(ReleaseKind::Canary)
}

/// The refusal of a second canary of one artifact in one environment.
fn canary_busy(running: &Release) -> Result<Error> {
    let state = decode::<CanaryMachine>(running)?;
    Ok(Error::Conflict(format!(
        "a canary of {}:{} runs in {} (step {} of {}, {}%); advance or abort it first",
        running.artifact,
        state.version,
        running.environment,
        state.step + 1,
        state.steps.len(),
        state.weight()
    )))
}

/// What callers see of a canary.
fn view(release: &Release, state: &CanaryState) -> CanaryView {
    CanaryView {
        id: release.id,
        environment: release.environment.clone(),
        from: state.from.clone(),
        artifact: release.artifact.clone(),
        version: state.version.clone(),
        digest: state.digest.clone(),
        phase: state.phase,
        step: state.step + 1,
        steps: state.steps.clone(),
        weight: state.weight(),
        step_started: state.step_started,
        due: state.due(),
        stable: state.stable.clone(),
        started_by: state.started_by.clone(),
        started: state.started,
    }
}

#[async_trait]
impl Canaries for DefaultPromotionManager {
    async fn advance_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&ArtifactName>,
        actor: &Actor,
    ) -> Result<CanaryView> {
        self.run_advance_canary(environment, artifact, actor).await
    }

    async fn abort_canary(
        &self,
        environment: &EnvName,
        artifact: Option<&ArtifactName>,
        actor: &Actor,
        reason: &str,
    ) -> Result<CanaryView> {
        self.run_abort_canary(environment, artifact, actor, reason)
            .await
    }

    async fn canaries(&self, environment: Option<&EnvName>) -> Result<Vec<CanaryView>> {
        self.run_canaries(environment).await
    }
}
