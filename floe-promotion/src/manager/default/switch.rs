//! Blue-green switches: the checks that decide what a switch moves to, the switch itself (the
//! pointer moves to the other slot through the common tail) and its dry run.

use crate::history::Switched;
use crate::manager::{SwitchPlan, SwitchRequest};
use crate::release::blue_green::{
    BlueGreenEvent, BlueGreenPhase, BlueGreenState, Slot, SlotContent,
};

use super::blue_green::under_way;
use super::*;

/// What a switch moves to, as its checks found it.
struct SwitchTarget {
    /// The slot the pointer is on, and what it holds.
    live: Option<(Slot, SlotContent)>,
    /// The slot the pointer moves to, and what it holds.
    slot: Slot,
    content: SlotContent,
}

impl DefaultPromotionManager {
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
        let pointer = scheme.pointer_tag(&req.environment)?;
        self.plan_tags(
            ev,
            &repo,
            [(env_tag, true), (pointer, false)],
            &content.digest,
        )
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
            ev.gates_ran(run_gates(self.gates(&req.environment), &ctx, timeout).await)?;
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
            event_seq: done.event_seq,
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
