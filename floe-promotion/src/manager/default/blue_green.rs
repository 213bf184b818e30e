//! Blue-green releases: two slot tags per environment, a new version staged on the idle one
//! (the preview), and a switch that moves the pointer. The state of each (environment,
//! artifact) is a [`BlueGreenMachine`] release; every write goes through the common tail.

use crate::history::PreviewStaged;
use crate::manager::{BlueGreen, SlotStatus, SwitchPlan, SwitchRequest};
use crate::release::blue_green::{
    BlueGreenEvent, BlueGreenMachine, BlueGreenState, InFlight, Slot, SlotContent,
};
use crate::release::machine::{advance, decode, encode};
use crate::release::{Release, ReleaseFilter, ReleaseKind};

use super::*;

/// How often a compare-and-set of a blue-green release is retried when another process moved
/// it.
const CAS_TRIES: usize = 8;

impl DefaultPromotionManager {
    /// The blue-green release of `artifact` in `env`, if one exists: the oldest (two first
    /// stages racing may each create one; the oldest is the one every process uses).
    pub(super) async fn blue_green_release(
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
    pub(super) async fn settle_blue_green(
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
    pub(super) async fn begin_blue_green(
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
    pub(super) async fn end_blue_green(
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
            event_seq: done.event_seq,
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

pub(super) fn under_way(release: &Release, op: &InFlight) -> Error {
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
