//! Approval workflows on the release engine: requests as [`ApprovalMachine`] releases in the
//! [`ReleaseStore`](crate::release::ReleaseStore), votes as events, execution through the
//! common tail.

use crate::error::Error;
use crate::model::{SignedVote, VoteDecision, VoteSignature};
use crate::policy::signed_vote::signed_voter;
use crate::release::approval::{
    ApprovalEffect, ApprovalEvent, ApprovalMachine, ApprovalState, ApprovalTicket, Phase, Vote,
};
use crate::release::machine::{advance, decode, encode};
use crate::release::{Release, ReleaseFilter, ReleaseKind};

use super::*;

/// How often a compare-and-set of a request is retried when another process moved it.
const CAS_TRIES: usize = 8;

/// Who casts a vote: an actor as the caller names it, or a signature whose key names them.
#[derive(Clone, Copy, Debug)]
pub(super) enum Voter<'a> {
    /// The caller's actor (environments without `approval.signers`).
    Claimed(&'a Actor),
    /// A signed vote (environments with `approval.signers`).
    Signed(&'a VoteSignature),
}

impl DefaultPromotionManager {
    /// The open request (pending, approved or executing) for this promotion's digest, if any.
    async fn open_request(
        &self,
        to: &EnvName,
        artifact: &ArtifactName,
        digest: &Digest,
    ) -> Result<Option<(Release, ApprovalState)>> {
        let releases = self
            .parts
            .releases
            .list(
                &ReleaseFilter::default()
                    .environment(to.clone())
                    .artifact(artifact.clone())
                    .kind(ReleaseKind::Approval),
            )
            .await?;
        for r in releases.into_iter().rev() {
            if &r.digest != digest {
                continue;
            }
            let state: ApprovalState = decode::<ApprovalMachine>(&r)?;
            if matches!(
                state.phase,
                Phase::Pending | Phase::Approved | Phase::Executing
            ) && self.now() < state.ticket.expires
            {
                return Ok(Some((r, state)));
            }
        }
        Ok(None)
    }

    /// Step 5 of the promotion path: the checks and gates passed and the target needs
    /// approval. Returns the pending error (a new or the open request), or runs an approved
    /// request for the same digest.
    pub(super) async fn wait_for_approval(
        &self,
        req: &PromotionRequest,
        ev: &Evaluation,
        policy: &ApprovalPolicy,
    ) -> Result<PromotionRecord> {
        let digest = ev
            .digest()
            .cloned()
            .ok_or_else(|| Error::Conflict("no digest to approve".into()))?;
        if let Some((release, state)) = self.open_request(&req.to, &req.artifact, &digest).await? {
            return match state.phase {
                Phase::Pending => Err(pending(release.id, &state)),
                _ => self.execute_request(release.id, &req.actor).await,
            };
        }
        let now = self.now();
        let promoters = match &policy.separation {
            ApprovalSeparation::Promoters => {
                self.promoters(&req.from, &req.artifact, &digest).await?
            }
            ApprovalSeparation::Requester => Vec::new(),
        };
        let ticket = ApprovalTicket {
            artifact: req.artifact.clone(),
            version: req.version.clone(),
            digest: digest.clone(),
            from: req.from.clone(),
            to: req.to.clone(),
            requested_by: req.actor.clone(),
            reason: req.reason.clone(),
            rules: policy.rules.clone(),
            separation: policy.separation,
            promoters,
            gates: ev.gates.clone(),
            created: now,
            expires: now + Duration::from_std(policy.timeout).unwrap_or(Duration::days(1)),
        };
        let state = ApprovalState::new(ticket);
        let release = self
            .parts
            .releases
            .create(Release::new(
                ReleaseKind::Approval,
                req.to.clone(),
                req.artifact.clone(),
                req.version.clone(),
                digest.clone(),
                encode::<ApprovalMachine>(&state)?,
                now,
            ))
            .await?;
        let mut e = self.promotion_event(EventKind::ApprovalRequested, req, now);
        e.digest = Some(digest);
        e.gates = ev.gates.clone();
        e.set_payload(Payload::ApprovalRequested(ApprovalRequested::new(
            release.id,
            state.ticket.expires,
            state.who_may_approve(),
        )));
        self.record(vec![e]).await?;
        Err(pending(release.id, &state))
    }

    /// Who made `digest` of `artifact` current in `env`, per history.
    async fn promoters(
        &self,
        env: &EnvName,
        artifact: &ArtifactName,
        digest: &Digest,
    ) -> Result<Vec<String>> {
        let events = self
            .parts
            .history
            .query(&HistoryQuery {
                environment: Some(env.clone()),
                artifact: Some(artifact.clone()),
                digest: Some(digest.clone()),
                kinds: SETS_CURRENT.to_vec(),
                ..Default::default()
            })
            .await?;
        let mut who: Vec<String> = events.into_iter().map(|e| e.record.actor.id).collect();
        who.sort();
        who.dedup();
        Ok(who)
    }

    /// What `plan` shows of the approval a real run would wait for.
    pub(super) async fn plan_approval(
        &self,
        req: &PromotionRequest,
        ev: &Evaluation,
    ) -> Result<Option<PlannedApproval>> {
        let Some(policy) = &self.parts.config.environment(&req.to)?.approval else {
            return Ok(None);
        };
        let open_request = match ev.digest() {
            Some(d) => self
                .open_request(&req.to, &req.artifact, d)
                .await?
                .map(|(r, _)| r.id),
            None => None,
        };
        Ok(Some(PlannedApproval {
            rules: policy.rules.clone(),
            separation: policy.separation,
            timeout_seconds: policy.timeout.as_secs(),
            open_request,
        }))
    }

    /// Reads a request, recording its expiry when it is due: the release and its state.
    async fn current_request(&self, id: Uuid) -> Result<(Release, ApprovalState)> {
        for _ in 0..CAS_TRIES {
            let release = self.parts.releases.get(id).await?;
            if release.kind != ReleaseKind::Approval {
                return Err(Error::not_found(format!("approval request {id}")));
            }
            let state = decode::<ApprovalMachine>(&release)?;
            let now = self.now();
            let due = now >= state.ticket.expires
                && matches!(state.phase, Phase::Pending | Phase::Approved);
            if !due {
                return Ok((release, state));
            }
            let step = advance::<ApprovalMachine>(&state, ApprovalEvent::Expire(now))?;
            match self.store_step(&release, &step.state).await {
                Ok(stored) => {
                    if step.effects.contains(&ApprovalEffect::RecordExpiry) {
                        let mut e =
                            self.approval_event(EventKind::ApprovalExpired, &step.state, now);
                        e.actor = Actor::new("floe").unwrap_or_else(|_| e.actor.clone());
                        e.set_payload(Payload::ApprovalExpired(ApprovalExpired::new(id)));
                        self.record(vec![e]).await?;
                    }
                    return Ok((stored, step.state));
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(busy_request(id))
    }

    async fn store_step(&self, release: &Release, state: &ApprovalState) -> Result<Release> {
        self.parts
            .releases
            .update(
                release.id,
                release.version,
                encode::<ApprovalMachine>(state)?,
                self.now(),
            )
            .await
    }

    fn approval_event(
        &self,
        kind: EventKind,
        state: &ApprovalState,
        now: DateTime<Utc>,
    ) -> EventRecord {
        let t = &state.ticket;
        let mut e = self.event(kind, &t.requested_by, now);
        e.artifact = Some(t.artifact.clone());
        e.version = Some(t.version.clone());
        e.digest = Some(t.digest.clone());
        e.from = Some(t.from.clone());
        e.environment = Some(t.to.clone());
        e
    }

    /// The voter's identity and the signature to record: the claimed actor where the
    /// environment takes no signed votes, else the principal of a valid signature over this
    /// request's vote message with the manifest's groups.
    fn voter(
        &self,
        id: Uuid,
        state: &ApprovalState,
        voter: Voter<'_>,
        decision: VoteDecision,
    ) -> Result<(Actor, Option<SignedVote>)> {
        let env = &state.ticket.to;
        let signers = self
            .parts
            .config
            .environment(env)
            .ok()
            .and_then(|e| e.approval.as_ref())
            .and_then(|p| p.signers.clone());
        let refuse = |reason: String| Error::VoteSignature {
            request_id: id.to_string(),
            reason,
        };
        match (voter, signers) {
            (Voter::Claimed(actor), None) => Ok((actor.clone(), None)),
            (Voter::Claimed(_), Some(signers)) => Err(refuse(format!(
                "environment {env} requires signed votes: sign the vote with a key listed in {} (floe {} ID --sign-with KEY)",
                crate::Excerpt::path(signers.file()),
                decision
            ))),
            (Voter::Signed(_), None) => Err(refuse(format!(
                "environment {env} takes no signed votes (its approval has no `signers`); vote as an actor instead"
            ))),
            (Voter::Signed(signature), Some(signers)) => {
                let message = state.ticket.vote_message(id, decision);
                let (actor, signed) = signed_voter(
                    id,
                    &signers,
                    self.parts.config.settings(),
                    &message,
                    signature,
                )?;
                Ok((actor, Some(signed)))
            }
        }
    }

    /// A vote: validated by the machine, stored by compare-and-set, recorded. Returns the
    /// state after it, whether it asks for execution, and who voted.
    async fn vote(
        &self,
        id: Uuid,
        voter: Voter<'_>,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<(ApprovalState, bool, Actor)> {
        if let Voter::Claimed(actor) = voter {
            check_text_input(actor, comment)?;
        }
        let decision = if approve {
            VoteDecision::Approve
        } else {
            VoteDecision::Reject
        };
        for _ in 0..CAS_TRIES {
            let (release, state) = self.current_request(id).await?;
            closed(id, &state)?;
            let (actor, signature) = self.voter(id, &state, voter, decision)?;
            let actor = &actor;
            check_text_input(actor, comment)?;
            if state.phase != Phase::Pending {
                return Err(Error::Conflict(format!(
                    "approval request {id} is {} already; run it with `execute` rather than voting again",
                    state.phase
                )));
            }
            let now = self.now();
            let vote = Vote {
                actor: actor.clone(),
                approve,
                comment: comment.map(str::to_string),
                time: now,
                signature: signature.clone(),
            };
            let event = if approve {
                ApprovalEvent::Approve(vote)
            } else {
                ApprovalEvent::Reject(vote)
            };
            let step = advance::<ApprovalMachine>(&state, event).map_err(|e| match e {
                Error::ApprovalClosed { state, .. } => Error::ApprovalClosed {
                    request_id: id.to_string(),
                    state,
                },
                other => other,
            })?;
            match self.store_step(&release, &step.state).await {
                Ok(_) => {
                    let mut e = self.approval_event(EventKind::ApprovalDecided, &step.state, now);
                    e.actor = actor.clone();
                    e.reason = comment.map(str::to_string);
                    let decision = if approve {
                        Decision::Approved
                    } else {
                        Decision::Rejected
                    };
                    let mut payload = ApprovalDecided::new(id, decision, step.state.phase);
                    if let Some(signed) = signature {
                        payload = payload.with_signature(signed);
                    }
                    e.set_payload(Payload::ApprovalDecided(payload));
                    self.record(vec![e]).await?;
                    let execute = step.effects.contains(&ApprovalEffect::Execute);
                    return Ok((step.state, execute, actor.clone()));
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(busy_request(id))
    }

    /// Runs an approved request (or resumes one a dead process left executing), exactly once.
    pub(super) async fn execute_request(&self, id: Uuid, by: &Actor) -> Result<PromotionRecord> {
        let (release, state) = self.current_request(id).await?;
        closed(id, &state)?;
        let release = match state.phase {
            Phase::Pending => return Err(pending(id, &state)),
            Phase::Approved => {
                let step = advance::<ApprovalMachine>(&state, ApprovalEvent::Start)?;
                self.store_step(&release, &step.state)
                    .await
                    .map_err(|e| match e {
                        Error::Conflict(_) => busy_request(id),
                        other => other,
                    })?
            }
            // Executing: another process started and died (or runs now: the lease decides).
            _ => release,
        };
        let t = state.ticket.clone();
        let req = PromotionRequest {
            artifact: t.artifact.clone(),
            version: t.version.clone(),
            from: t.from.clone(),
            to: t.to.clone(),
            actor: t.requested_by.clone(),
            reason: t.reason.clone(),
            override_lock: false,
            automatic: false,
            override_window: false,
        };
        let result = self.run_approved(&req, id, by, &t.digest).await;
        // Finish or give the request back, whatever happened, by compare-and-set.
        let event = if result.is_ok() {
            ApprovalEvent::Finish
        } else {
            ApprovalEvent::Block
        };
        let current = self.parts.releases.get(id).await?;
        let now_state = decode::<ApprovalMachine>(&current)?;
        if now_state.phase == Phase::Executing {
            let step = advance::<ApprovalMachine>(&now_state, event)?;
            if let Err(e) = self.store_step(&current, &step.state).await {
                tracing::warn!(approval = %id, error = %e, "could not store the outcome of an approved promotion; the next execute completes it");
            }
        }
        let _ = release;
        result
    }

    /// The promotion of an approved request: the checks and gates again on the approved
    /// digest, then the common tail; a promotion this request already recorded is not run
    /// again.
    async fn run_approved(
        &self,
        req: &PromotionRequest,
        id: Uuid,
        by: &Actor,
        approved: &Digest,
    ) -> Result<PromotionRecord> {
        if let Some(done) = self.recorded_execution(id).await? {
            return Ok(done);
        }
        let started = self.now();
        let mut ev = Evaluation::new(started, false);
        ev.id = id;
        if let Err(e) = self.evaluate_promotion(req, &mut ev).await {
            return Err(self.fail_promotion(req, &ev, e).await);
        }
        if ev.digest() != Some(approved) {
            let e = Error::Conflict(format!(
                "{}:{} in {} is {} now, but approval request {id} approved {approved}",
                req.artifact,
                req.version,
                req.from,
                ev.digest().map(Digest::as_str).unwrap_or("nothing")
            ));
            return Err(self.fail_promotion(req, &ev, e).await);
        }
        let record = self
            .finish_promotion(req, ev, started, Some((id, by)))
            .await?;
        Ok(record)
    }

    /// The promotion a request already recorded (a process died after recording it but
    /// before marking the request executed).
    async fn recorded_execution(&self, id: Uuid) -> Result<Option<PromotionRecord>> {
        let (_, state) = self.current_request(id).await?;
        let t = &state.ticket;
        let done = self
            .parts
            .history
            .query(&HistoryQuery {
                environment: Some(t.to.clone()),
                artifact: Some(t.artifact.clone()),
                digest: Some(t.digest.clone()),
                kinds: vec![EventKind::PromotionSucceeded],
                order: Order::NewestFirst,
                ..Default::default()
            })
            .await?
            .into_iter()
            .find(|e| {
                matches!(e.record.payload(), Ok(Payload::PromotionSucceeded(p)) if p.approval == Some(id))
            });
        Ok(done.map(|e| PromotionRecord {
            id,
            outcome: Outcome::Promoted,
            artifact: t.artifact.clone(),
            version: t.version.clone(),
            digest: t.digest.clone(),
            from: Some(t.from.clone()),
            to: t.to.clone(),
            repository: self
                .parts
                .config
                .repository(&t.to, &t.artifact)
                .unwrap_or_else(|_| Repository::new("unknown").expect("valid")),
            actor: t.requested_by.id.clone(),
            reason: t.reason.clone(),
            gates: e.record.gates.clone(),
            tags_written: Vec::new(),
            copy: None,
            lock_overridden: false,
            window_overridden: false,
            warnings: vec![format!(
                "approval request {id} was executed already (event {})",
                e.seq
            )],
            started: e.record.time,
            finished: e.record.time,
            event_seq: Some(e.seq),
        }))
    }

    fn view(&self, id: Uuid, state: &ApprovalState) -> ApprovalView {
        let q = state.quorum();
        let status = if self.now() >= state.ticket.expires
            && matches!(state.phase, Phase::Pending | Phase::Approved)
        {
            Phase::Expired
        } else {
            state.phase
        };
        ApprovalView {
            id,
            status,
            ticket: state.ticket.clone(),
            votes: state.votes.clone(),
            assigned: q.assigned,
            missing: q.missing,
        }
    }

    pub(super) async fn run_approvals(
        &self,
        environment: Option<&EnvName>,
        status: Option<Phase>,
    ) -> Result<Vec<ApprovalView>> {
        let mut filter = ReleaseFilter::default().kind(ReleaseKind::Approval);
        if let Some(env) = environment {
            self.parts.config.environment(env)?;
            filter = filter.environment(env.clone());
        }
        let mut out = Vec::new();
        for r in self.parts.releases.list(&filter).await? {
            let state = decode::<ApprovalMachine>(&r)?;
            let view = self.view(r.id, &state);
            if status.is_none_or(|s| s == view.status) {
                out.push(view);
            }
        }
        Ok(out)
    }

    pub(super) async fn run_approve(
        &self,
        id: Uuid,
        voter: Voter<'_>,
        comment: Option<&str>,
    ) -> Result<ApprovalOutcome> {
        let (state, execute, actor) = self.vote(id, voter, true, comment).await?;
        let actor = &actor;
        let mut outcome = ApprovalOutcome {
            request: self.view(id, &state),
            executed: None,
            execution_blocked: None,
        };
        if execute {
            match self.execute_request(id, actor).await {
                Ok(record) => outcome.executed = Some(record),
                Err(e) => outcome.execution_blocked = Some(e.to_string()),
            }
            let (_, now) = self.current_request(id).await?;
            outcome.request = self.view(id, &now);
        }
        Ok(outcome)
    }

    pub(super) async fn run_reject(
        &self,
        id: Uuid,
        voter: Voter<'_>,
        reason: &str,
    ) -> Result<ApprovalView> {
        require_reason(Reasoned::Rejection, Some(reason))?;
        let (state, _, _) = self.vote(id, voter, false, Some(reason)).await?;
        Ok(self.view(id, &state))
    }

    pub(super) async fn run_execute(&self, id: Uuid, actor: &Actor) -> Result<PromotionRecord> {
        check_text_input(actor, None)?;
        self.execute_request(id, actor).await
    }
}

/// The pending refusal of a request.
fn pending(id: Uuid, state: &ApprovalState) -> Error {
    Error::ApprovalPending {
        request_id: id.to_string(),
        needed: state.quorum().missing.iter().map(|(_, n)| n).sum(),
    }
}

/// Refuses anything but a pending, approved or executing request.
fn closed(id: Uuid, state: &ApprovalState) -> Result<()> {
    let what = match state.phase {
        Phase::Rejected => {
            let by = state
                .votes
                .iter()
                .rev()
                .find(|v| !v.approve)
                .map(|v| {
                    format!(
                        " by {}: {}",
                        v.actor.id,
                        v.comment.as_deref().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            format!("was rejected{by}")
        }
        Phase::Expired => format!("expired at {}", state.ticket.expires.to_rfc3339()),
        Phase::Executed => "was executed already".to_string(),
        _ => return Ok(()),
    };
    Err(Error::ApprovalClosed {
        request_id: id.to_string(),
        state: what,
    })
}

fn busy_request(id: Uuid) -> Error {
    Error::Conflict(format!(
        "approval request {id} kept changing while being updated; try again"
    ))
}
