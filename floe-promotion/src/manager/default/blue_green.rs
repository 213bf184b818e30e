//! Blue-green releases: two slot tags per environment, a new version staged on the idle one
//! (the preview), and a switch that moves the pointer. The state of each (environment,
//! artifact) is a [`BlueGreenMachine`] release; every write goes through the common tail.

use crate::history::{PreviewStaged, Switched};
use crate::manager::{BlueGreen, SlotStatus, SwitchPlan, SwitchRequest};
use crate::release::blue_green::{
    BlueGreenEvent, BlueGreenMachine, BlueGreenPhase, BlueGreenState, InFlight, Slot, SlotContent,
};
use crate::release::machine::{advance, decode, encode};
use crate::release::{Release, ReleaseFilter, ReleaseKind};

use super::*;

/// How often a compare-and-set of a blue-green release is retried when another process moved
/// it.
const CAS_TRIES: usize = 8;

/// What a switch moves to, as its checks found it.
struct SwitchTarget {
    /// The slot the pointer is on, and what it holds.
    live: Option<(Slot, SlotContent)>,
    /// The slot the pointer moves to, and what it holds.
    slot: Slot,
    content: SlotContent,
}

impl DefaultPromotionManager {
    /// The blue-green release of `artifact` in `env`, if one exists: the oldest (two first
    /// stages racing may each create one; the oldest is the one every process uses).
    async fn blue_green_release(
        &self,
        env: &EnvName,
        artifact: &ArtifactName,
    ) -> Result<Option<(Release, BlueGreenState)>> {
        let first = self
            .parts
            .releases
            .list(
                &ReleaseFilter::default()
                    .environment(env.clone())
                    .artifact(artifact.clone())
                    .kind(ReleaseKind::BlueGreen),
            )
            .await?
            .into_iter()
            .next();
        match first {
            Some(r) => {
                let state = decode::<BlueGreenMachine>(&r)?;
                Ok(Some((r, state)))
            }
            None => Ok(None),
        }
    }

    /// The blue-green release of a staged promotion, created empty when there is none yet.
    async fn ensure_blue_green_release(
        &self,
        req: &PromotionRequest,
        digest: &Digest,
    ) -> Result<(Release, BlueGreenState)> {
        if let Some(found) = self.blue_green_release(&req.to, &req.artifact).await? {
            return Ok(found);
        }
        self.parts
            .releases
            .create(Release::new(
                ReleaseKind::BlueGreen,
                req.to.clone(),
                req.artifact.clone(),
                req.version.clone(),
                digest.clone(),
                encode::<BlueGreenMachine>(&BlueGreenState::new())?,
                self.now(),
            ))
            .await?;
        self.blue_green_release(&req.to, &req.artifact)
            .await?
            .ok_or_else(|| Error::Conflict("the blue-green release just created is gone".into()))
    }

    async fn store_blue_green(&self, release: &Release, state: &BlueGreenState) -> Result<Release> {
        self.parts
            .releases
            .update(
                release.id,
                release.version,
                encode::<BlueGreenMachine>(state)?,
                self.now(),
            )
            .await
    }

    /// Whether the outcome event of operation `id` (its event id) is in history.
    async fn operation_recorded(&self, release: &Release, op: &InFlight) -> Result<bool> {
        let kind = match op {
            InFlight::Stage { .. } => EventKind::PreviewStaged,
            InFlight::Switch { .. } => EventKind::Switched,
        };
        Ok(self
            .parts
            .history
            .query(&HistoryQuery {
                environment: Some(release.environment.clone()),
                artifact: Some(release.artifact.clone()),
                kinds: vec![kind],
                order: Order::NewestFirst,
                limit: Some(64),
                ..Default::default()
            })
            .await?
            .iter()
            .any(|e| e.record.id == op.id()))
    }

    /// Settles an operation left under way: finished when its outcome was recorded, abandoned
    /// when it is older than a promotion lease (its process died), else still running
    /// ([`Error::Conflict`]).
    async fn settle_blue_green(
        &self,
        release: Release,
        state: BlueGreenState,
    ) -> Result<(Release, BlueGreenState)> {
        let Some(op) = state.in_flight.clone() else {
            return Ok((release, state));
        };
        let event = if self.operation_recorded(&release, &op).await? {
            match op {
                InFlight::Stage { .. } => BlueGreenEvent::Staged,
                InFlight::Switch { .. } => BlueGreenEvent::Switched,
            }
        } else if self.now() - op.started()
            > Duration::from_std(self.settings().lease_ttl).unwrap_or(Duration::minutes(15))
        {
            tracing::warn!(release = %release.id, operation = %op.id(), "abandoning a blue-green operation whose process is gone");
            BlueGreenEvent::Abandon
        } else {
            return Err(under_way(&release, &op));
        };
        let step = advance::<BlueGreenMachine>(&state, event)?;
        let stored = self.store_blue_green(&release, &step.state).await?;
        Ok((stored, step.state))
    }

    /// Starts an operation by compare-and-set: reads the release (created for a stage when
    /// there is none; settling what a dead process left), feeds it the event `make` returns,
    /// stores the step. Returns the state before and after. A release moved by another
    /// process meanwhile is read again.
    async fn begin_blue_green(
        &self,
        env: &EnvName,
        artifact: &ArtifactName,
        create: Option<(&PromotionRequest, &Digest)>,
        make: impl Fn(&BlueGreenState) -> Result<BlueGreenEvent>,
    ) -> Result<(BlueGreenState, BlueGreenState)> {
        let mut last = None;
        for _ in 0..CAS_TRIES {
            let (release, state) = match create {
                Some((req, digest)) => self.ensure_blue_green_release(req, digest).await?,
                None => self
                    .blue_green_release(env, artifact)
                    .await?
                    .ok_or_else(|| {
                        Error::Conflict(format!(
                            "the blue-green release of {artifact} in {env} is gone"
                        ))
                    })?,
            };
            let (release, state) = self.settle_blue_green(release, state).await?;
            let step = advance::<BlueGreenMachine>(&state, make(&state)?)?;
            match self.store_blue_green(&release, &step.state).await {
                Ok(_) => return Ok((state, step.state)),
                Err(e @ Error::Conflict(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Conflict("blue-green release kept changing".into())))
    }

    /// Ends operation `id` with `event` (`staged`, `switched` or `abandon`), by
    /// compare-and-set; an operation another process settled already is left as it is.
    async fn end_blue_green(
        &self,
        env: &EnvName,
        artifact: &ArtifactName,
        id: Uuid,
        event: BlueGreenEvent,
    ) {
        let ended = async {
            for _ in 0..CAS_TRIES {
                let Some((release, state)) = self.blue_green_release(env, artifact).await? else {
                    return Ok(());
                };
                if state.in_flight.as_ref().map(InFlight::id) != Some(id) {
                    return Ok(());
                }
                let step = advance::<BlueGreenMachine>(&state, event.clone())?;
                match self.store_blue_green(&release, &step.state).await {
                    Ok(_) => return Ok(()),
                    Err(Error::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::Conflict("blue-green release kept changing".into()))
        };
        if let Err(e) = ended.await {
            tracing::warn!(environment = %env, %artifact, operation = %id, error = %e, "could not store the end of a blue-green operation; the next operation settles it");
        }
    }

    /// Replaces the planned pointer with the idle slot's tag: a blue-green promotion stages,
    /// it does not move the pointer. Returns the slot, `None` for other strategies.
    pub(super) async fn plan_preview(
        &self,
        req: &PromotionRequest,
        ev: &mut Evaluation,
    ) -> Result<Option<Slot>> {
        if !matches!(
            self.parts.config.environment(&req.to)?.strategy,
            Strategy::BlueGreen { .. }
        ) {
            return Ok(None);
        }
        let slot = match self.blue_green_release(&req.to, &req.artifact).await? {
            Some((_, state)) => state.idle(),
            None => Slot::Blue,
        };
        self.retarget_to_slot(req, ev, slot).await?;
        Ok(Some(slot))
    }

    async fn retarget_to_slot(
        &self,
        req: &PromotionRequest,
        ev: &mut Evaluation,
        slot: Slot,
    ) -> Result<()> {
        let scheme = &self.settings().tag_scheme;
        let pointer = scheme.pointer_tag(&req.to)?;
        let slot_tag = scheme.slot_tag(&req.to, slot)?;
        ev.tags.retain(|t| t.tag != pointer && t.tag != slot_tag);
        if let (Some(digest), Some(target)) = (ev.digest().cloned(), ev.target.clone()) {
            self.plan_tag(ev, &target, slot_tag, &digest, false).await?;
        }
        Ok(())
    }

    /// Stages a promotion whose checks, gates and approval passed on the idle slot of its
    /// target (the preview), then switches at once with `auto_switch`.
    pub(super) async fn stage_preview(
        &self,
        req: &PromotionRequest,
        mut ev: Evaluation,
        started: DateTime<Utc>,
        approval: Option<(Uuid, &Actor)>,
        auto_switch: bool,
    ) -> Result<PromotionRecord> {
        let (Some(digest), Some(repository)) = (ev.digest().cloned(), ev.target.clone()) else {
            let e = Error::Conflict("the evaluation resolved nothing to write".into());
            return Err(self.fail_promotion(req, &ev, e).await);
        };
        let op = Uuid::new_v4();
        let content = SlotContent {
            version: req.version.clone(),
            digest: digest.clone(),
            from: req.from.clone(),
            staged: started,
            by: req.actor.id.clone(),
        };
        let begun = self
            .begin_blue_green(&req.to, &req.artifact, Some((req, &digest)), |_| {
                Ok(BlueGreenEvent::Stage {
                    id: op,
                    content: content.clone(),
                    at: self.now(),
                })
            })
            .await;
        let (before, after) = match begun {
            Ok(x) => x,
            Err(e) => return Err(self.fail_promotion(req, &ev, e).await),
        };
        let Some(InFlight::Stage { slot, .. }) = after.in_flight else {
            let e = Error::Conflict("the stage started no operation".into());
            return Err(self.fail_promotion(req, &ev, e).await);
        };
        let replaced = before.preview().map(|(_, c)| c.digest.clone());
        let event = |kind, at| self.promotion_event(kind, req, at);
        let tail = Tail {
            environment: &req.to,
            actor: &req.actor,
            override_lock: req.override_lock,
            event: &event,
            success: EventKind::PreviewStaged,
        };
        let finish = |done: &mut EventRecord, ev: &Evaluation, w: &Written| {
            done.id = op;
            done.gates = ev.gates.clone();
            let mut p = PreviewStaged::new(ev.id, slot, w.tags.clone());
            p.confirmed_after_lost_reply = w.confirmed.clone();
            p.copy = w.copy.clone();
            p.replaced = replaced.clone();
            if let Some((id, by)) = approval {
                p.approval = Some(id);
                p.executed_by = Some(by.id.clone());
            }
            Payload::PreviewStaged(p)
        };
        let written = match self.retarget_to_slot(req, &mut ev, slot).await {
            Ok(()) => self.run_tail(&mut ev, tail, finish).await,
            Err(e) => Err(e),
        };
        let done = match written {
            Ok(done) => done,
            Err(e) => {
                self.end_blue_green(&req.to, &req.artifact, op, BlueGreenEvent::Abandon)
                    .await;
                return Err(self.fail_promotion(req, &ev, e).await);
            }
        };
        self.end_blue_green(&req.to, &req.artifact, op, BlueGreenEvent::Staged)
            .await;
        self.release_rollback_holds(req).await;
        let mut warnings: Vec<String> = ev
            .gates
            .iter()
            .filter(|g| g.status == GateStatus::Warned)
            .map(|g| format!("gate {}: {}", g.gate, g.message))
            .collect();
        let staged = PromotionRecord {
            id: ev.id,
            outcome: Outcome::Staged,
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
            warnings: Vec::new(),
            started,
            finished: done.finished,
            event_seq: done.stored.last().map(|e| e.seq),
        };
        if !auto_switch {
            return Ok(PromotionRecord { warnings, ..staged });
        }
        let switch = SwitchRequest {
            environment: req.to.clone(),
            artifact: req.artifact.clone(),
            actor: req.actor.clone(),
            reason: req.reason.clone(),
            back: false,
            override_lock: req.override_lock,
        };
        match self.run_switch(switch, false).await {
            Ok(switched) => {
                let mut tags = staged.tags_written;
                tags.extend(switched.tags_written);
                warnings.extend(switched.warnings);
                Ok(PromotionRecord {
                    outcome: Outcome::Switched,
                    tags_written: tags,
                    warnings,
                    finished: switched.finished,
                    event_seq: switched.event_seq,
                    lock_overridden: staged.lock_overridden || switched.lock_overridden,
                    ..staged
                })
            }
            Err(e) => {
                warnings.push(format!(
                    "auto_switch: the preview is staged but the switch was refused: {e}"
                ));
                Ok(PromotionRecord { warnings, ..staged })
            }
        }
    }

    /// The checks of a switch, in order: the release and its target slot, the lock, the
    /// environment tag and the pointer, the gates (forward switches, when `gates`). Stops at
    /// the first refusal unless planning.
    async fn evaluate_switch(
        &self,
        req: &SwitchRequest,
        ev: &mut Evaluation,
        gates: bool,
    ) -> Result<Option<SwitchTarget>> {
        let config = &self.parts.config;
        let env = config.environment(&req.environment)?;
        let repo = config.repository(&req.environment, &req.artifact)?;
        ev.source = Some(repo.clone());
        ev.target = Some(repo.clone());
        ev.copy_mode = Some(CopyMode::TagOnly);
        self.check_authorized(env, &req.actor, "switch")?;
        let found = self
            .blue_green_release(&req.environment, &req.artifact)
            .await?;
        let Some((release, state)) = found else {
            ev.block(nothing_to_switch(req, None))?;
            return Ok(None);
        };
        // An operation under way: a real run settles what a dead process left; a plan only
        // reports it.
        let state = match (&state.in_flight, ev.plan) {
            (None, _) => state,
            (Some(op), true) => {
                ev.block(under_way(&release, op))?;
                state
            }
            (Some(_), false) => self.settle_blue_green(release, state).await?.1,
        };
        let live = state
            .live
            .and_then(|s| state.slot(s).map(|c| (s, c.clone())));
        let target = if req.back {
            let idle = state.idle();
            match (state.phase, &live, state.slot(idle)) {
                (BlueGreenPhase::Live, Some(_), Some(c)) => Some((idle, c.clone())),
                _ => None,
            }
        } else {
            state.preview().map(|(s, c)| (s, c.clone()))
        };
        let Some((slot, content)) = target else {
            ev.block(nothing_to_switch(req, Some(&state)))?;
            return Ok(None);
        };
        let lock = self.parts.locks.get_lock(&req.environment, ev.now).await?;
        ev.lock = lock.clone();
        ev.lock_overridden = lock.is_some() && req.override_lock;
        if let Some(lock) = lock
            && !req.override_lock
        {
            ev.block(Error::Locked {
                lock: Box::new(lock),
            })?;
        }
        let manifest = self
            .parts
            .registry
            .resolve(&repo, &Reference::Digest(content.digest.clone()))
            .await?;
        ev.manifest = Some(manifest.clone());
        let scheme = &self.settings().tag_scheme;
        let env_tag = scheme.environment_tag(&content.version, &req.environment)?;
        self.plan_tag(ev, &repo, env_tag, &content.digest, true)
            .await?;
        let pointer = scheme.pointer_tag(&req.environment)?;
        self.plan_tag(ev, &repo, pointer, &content.digest, false)
            .await?;
        if gates && !req.back {
            let ctx = GateContext {
                artifact: req.artifact.clone(),
                version: content.version.clone(),
                digest: content.digest.clone(),
                manifest,
                source: repo.clone(),
                from: content.from.clone(),
                to: req.environment.clone(),
                actor: req.actor.clone(),
                now: ev.now,
                registry: Arc::clone(&self.parts.registry),
                history: Arc::clone(&self.parts.history),
            };
            let timeout = env.gate_timeout.unwrap_or(self.settings().default_timeout);
            ev.gates = run_gates(self.gates(&req.environment), &ctx, timeout).await;
            let failed: Vec<GateResult> = ev
                .gates
                .iter()
                .filter(|g| !g.status.allows())
                .cloned()
                .collect();
            if !failed.is_empty() {
                ev.block(Error::GateFailed { failed })?;
            }
        }
        Ok(Some(SwitchTarget {
            live,
            slot,
            content,
        }))
    }

    fn check_switch_input(&self, req: &SwitchRequest) -> Result<()> {
        check_text_input(&req.actor, req.reason.as_deref())?;
        let env = self.parts.config.environment(&req.environment)?;
        if req.back {
            require_reason(Reasoned::SwitchBack, req.reason.as_deref())?;
        }
        if req.override_lock {
            require_reason(Reasoned::LockOverride, req.reason.as_deref())?;
        }
        if !matches!(env.strategy, Strategy::BlueGreen { .. }) {
            return Err(Error::InvalidTransition {
                from: req.environment.to_string(),
                to: req.environment.to_string(),
                reason: format!(
                    "{} does not release by blue-green (strategy: blue_green); there is nothing to switch",
                    req.environment
                ),
            });
        }
        Ok(())
    }

    fn switch_event(
        &self,
        kind: EventKind,
        req: &SwitchRequest,
        version: Option<&Tag>,
        at: DateTime<Utc>,
    ) -> EventRecord {
        let mut e = self.event(kind, &req.actor, at);
        e.artifact = Some(req.artifact.clone());
        e.version = version.cloned();
        e.environment = Some(req.environment.clone());
        e.reason = req.reason.clone();
        e
    }

    async fn fail_switch(
        &self,
        req: &SwitchRequest,
        ev: &Evaluation,
        version: Option<&Tag>,
        e: Error,
    ) -> Error {
        let kind = if req.back {
            EventKind::RollbackFailed
        } else {
            EventKind::PromotionFailed
        };
        let record = self.switch_event(kind, req, version, self.now());
        self.record_failure(record, ev, &e).await;
        e
    }

    /// A switch (to the preview, or back), with the gates of forward switches when `gates`.
    pub(super) async fn run_switch(
        &self,
        req: SwitchRequest,
        gates: bool,
    ) -> Result<PromotionRecord> {
        self.check_switch_input(&req)?;
        let repository = self
            .parts
            .config
            .repository(&req.environment, &req.artifact)?;
        let started = self.now();
        let mut ev = Evaluation::new(started, false);
        let target = match self.evaluate_switch(&req, &mut ev, gates).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                let e = Error::Conflict("the switch found nothing to switch to".into());
                return Err(self.fail_switch(&req, &ev, None, e).await);
            }
            Err(e) => return Err(self.fail_switch(&req, &ev, None, e).await),
        };
        let version = target.content.version.clone();
        let op = Uuid::new_v4();
        let expected = target.content.digest.clone();
        let begun = self
            .begin_blue_green(&req.environment, &req.artifact, None, |state| {
                // What the checks approved must still be the target.
                let now_target = if req.back {
                    state.slot(state.idle())
                } else {
                    state.preview().map(|(_, c)| c)
                };
                if now_target.map(|c| &c.digest) != Some(&expected) {
                    return Err(nothing_to_switch(&req, Some(state)));
                }
                let at = self.now();
                Ok(if req.back {
                    BlueGreenEvent::SwitchBack { id: op, at }
                } else {
                    BlueGreenEvent::Switch { id: op, at }
                })
            })
            .await;
        if let Err(e) = begun {
            return Err(self.fail_switch(&req, &ev, Some(&version), e).await);
        }
        let event = |kind, at| self.switch_event(kind, &req, Some(&version), at);
        let tail = Tail {
            environment: &req.environment,
            actor: &req.actor,
            override_lock: req.override_lock,
            event: &event,
            success: EventKind::Switched,
        };
        let live = target.live.clone();
        let finish = |done: &mut EventRecord, ev: &Evaluation, w: &Written| {
            done.id = op;
            done.gates = ev.gates.clone();
            let mut p = Switched::new(ev.id, target.slot, w.tags.clone());
            p.previous_slot = live.as_ref().map(|(s, _)| *s);
            p.previous_digest = live.as_ref().map(|(_, c)| c.digest.clone());
            p.previous_version = live.as_ref().map(|(_, c)| c.version.clone());
            p.back = req.back;
            p.confirmed_after_lost_reply = w.confirmed.clone();
            Payload::Switched(p)
        };
        let done = match self.run_tail(&mut ev, tail, finish).await {
            Ok(done) => done,
            Err(e) => {
                self.end_blue_green(&req.environment, &req.artifact, op, BlueGreenEvent::Abandon)
                    .await;
                return Err(self.fail_switch(&req, &ev, Some(&version), e).await);
            }
        };
        self.end_blue_green(
            &req.environment,
            &req.artifact,
            op,
            BlueGreenEvent::Switched,
        )
        .await;
        let reason = req.reason.clone().unwrap_or_default();
        if req.back {
            self.hold_after_rollback(&RollbackRequest {
                artifact: req.artifact.clone(),
                environment: req.environment.clone(),
                to_version: version.clone(),
                actor: req.actor.clone(),
                reason,
                override_lock: req.override_lock,
            })
            .await;
        }
        let warnings = ev
            .gates
            .iter()
            .filter(|g| g.status == GateStatus::Warned)
            .map(|g| format!("gate {}: {}", g.gate, g.message))
            .collect();
        Ok(PromotionRecord {
            id: ev.id,
            outcome: if req.back {
                Outcome::SwitchedBack
            } else {
                Outcome::Switched
            },
            artifact: req.artifact,
            version,
            digest: target.content.digest,
            from: None,
            to: req.environment,
            repository,
            actor: req.actor.id,
            reason: req.reason,
            gates: ev.gates,
            tags_written: done.tags,
            copy: None,
            lock_overridden: ev.lock_overridden,
            window_overridden: false,
            warnings,
            started,
            finished: done.finished,
            event_seq: done.stored.last().map(|e| e.seq),
        })
    }

    pub(super) async fn run_plan_switch(&self, req: SwitchRequest) -> Result<SwitchPlan> {
        self.check_switch_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        let target = self.evaluate_switch(&req, &mut ev, true).await?;
        let (live, target) = match target {
            Some(t) => (t.live, Some((t.slot, t.content))),
            None => (
                self.blue_green_release(&req.environment, &req.artifact)
                    .await?
                    .and_then(|(_, s)| s.live.and_then(|l| s.slot(l).map(|c| (l, c.clone())))),
                None,
            ),
        };
        Ok(SwitchPlan {
            environment: req.environment,
            artifact: req.artifact,
            back: req.back,
            live,
            target,
            tags: ev.tags,
            gates: ev.gates,
            lock: ev.lock,
            blockers: ev.blockers,
        })
    }

    /// Both slots of each artifact released by blue-green in `environment`.
    pub(super) async fn slot_statuses(&self, environment: &EnvName) -> Result<Vec<SlotStatus>> {
        let releases = self
            .parts
            .releases
            .list(
                &ReleaseFilter::default()
                    .environment(environment.clone())
                    .kind(ReleaseKind::BlueGreen),
            )
            .await?;
        let scheme = &self.settings().tag_scheme;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in releases {
            // The oldest release of an artifact is its state (see `blue_green_release`).
            if !seen.insert(r.artifact.clone()) {
                continue;
            }
            let state = decode::<BlueGreenMachine>(&r)?;
            let preview = state.preview().map(|(s, _)| s);
            for slot in [Slot::Blue, Slot::Green] {
                let content = state.slot(slot);
                out.push(SlotStatus {
                    artifact: r.artifact.clone(),
                    slot,
                    tag: scheme.slot_tag(environment, slot)?,
                    version: content.map(|c| c.version.clone()),
                    digest: content.map(|c| c.digest.clone()),
                    live: state.live == Some(slot),
                    preview: preview == Some(slot),
                    phase: state.phase,
                });
            }
        }
        out.sort_by(|a, b| (&a.artifact, a.slot).cmp(&(&b.artifact, b.slot)));
        Ok(out)
    }
}

/// The refusal of a switch with nothing to switch to.
fn nothing_to_switch(req: &SwitchRequest, state: Option<&BlueGreenState>) -> Error {
    let env = &req.environment;
    let reason = match (req.back, state) {
        (false, _) => format!(
            "no preview of {} is staged in {env}; promote a version into {env} first",
            req.artifact
        ),
        (true, Some(s)) if s.phase == BlueGreenPhase::Preview => format!(
            "a preview of {} is staged on the idle slot {env}-{}, so there is no previous slot to switch back to; switch to the preview, or use `rollback`",
            req.artifact,
            s.idle()
        ),
        (true, _) => format!(
            "{} has no previous slot in {env} to switch back to",
            req.artifact
        ),
    };
    Error::InvalidTransition {
        from: env.to_string(),
        to: env.to_string(),
        reason,
    }
}

fn under_way(release: &Release, op: &InFlight) -> Error {
    let what = match op {
        InFlight::Stage { slot, .. } => format!("a stage on slot {slot}"),
        InFlight::Switch { slot, .. } => format!("a switch to slot {slot}"),
    };
    Error::Conflict(format!(
        "{what} of {} in {} is under way (operation {}, since {}); try again when it is done",
        release.artifact,
        release.environment,
        op.id(),
        op.started().to_rfc3339()
    ))
}

#[async_trait]
impl BlueGreen for DefaultPromotionManager {
    async fn switch(&self, request: SwitchRequest) -> Result<PromotionRecord> {
        self.run_switch(request, true).await
    }

    async fn plan_switch(&self, request: SwitchRequest) -> Result<SwitchPlan> {
        self.run_plan_switch(request).await
    }

    async fn slots(&self, environment: &EnvName) -> Result<Vec<SlotStatus>> {
        self.parts.config.environment(environment)?;
        self.slot_statuses(environment).await
    }
}
