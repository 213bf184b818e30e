//! One pass of automatic promotion: per environment with `auto_promote`, per artifact, its
//! candidate through the normal promotion path.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::*;
use crate::config::AutoPromotion;
use crate::orchestrate::auto::claim_id;
use crate::orchestrate::{
    AutoAction, AutoDecision, AutoOptions, AutoReport, Candidate, Source, candidates, natural_order,
};
use crate::release::approval::{ApprovalMachine, ApprovalState, Phase};
use crate::release::machine::decode;
use crate::release::{Release, ReleaseFilter, ReleaseKind, ReleaseState};

/// What the claim of one candidate stores.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ClaimState {
    /// The actor of the pass that holds (or last held) the claim.
    by: String,
}

/// The claim states, as release status names.
const CLAIMED: &str = "claimed";
const PROMOTED: &str = "promoted";
const AWAITING_APPROVAL: &str = "awaiting_approval";
const FAILED: &str = "failed";

/// The outcome of claiming a candidate.
enum Claim {
    /// This pass holds the claim.
    Mine(Release),
    /// Another pass holds it, or it was promoted automatically already.
    Taken(AutoAction, String),
}

impl DefaultPromotionManager {
    pub(super) async fn run_auto(&self, options: &AutoOptions) -> Result<AutoReport> {
        check_text_input(&options.actor, None)?;
        if let Some(name) = &options.environment {
            let env = self.parts.config.environment(name)?;
            if env.auto_promotion.is_none() {
                return Err(Error::invalid(
                    "environment",
                    name.as_str(),
                    "has no auto_promote setting",
                ));
            }
        }
        let mut report = AutoReport::default();
        for env in self.parts.config.environments() {
            if options.environment.as_ref().is_some_and(|e| e != &env.name) {
                continue;
            }
            if options.stopping() {
                report.stopped = true;
                break;
            }
            if let Strategy::Canary { .. } = env.strategy {
                report
                    .decisions
                    .extend(self.auto_canaries(env, options).await?);
            }
            let Some(rule) = &env.auto_promotion else {
                continue;
            };
            let (decisions, stopped) = self.auto_environment(env, rule, options).await?;
            report.decisions.extend(decisions);
            if stopped {
                report.stopped = true;
                break;
            }
        }
        Ok(report)
    }

    /// The decisions for one environment; `true` when the pass was asked to stop.
    async fn auto_environment(
        &self,
        env: &Environment,
        rule: &AutoPromotion,
        options: &AutoOptions,
    ) -> Result<(Vec<AutoDecision>, bool)> {
        let whole = |action, detail: String| {
            Ok((
                vec![AutoDecision::environment(
                    &env.name, &rule.from, action, detail,
                )],
                false,
            ))
        };
        let holds = self.parts.holds.holds(Some(&env.name)).await?;
        if !holds.is_empty() {
            let who = holds
                .iter()
                .map(|h| format!("{} ({} hold: {})", h.holder, h.kind, h.reason))
                .collect::<Vec<_>>()
                .join("; ");
            return whole(AutoAction::Held, format!("held by {who}"));
        }
        let now = self.now();
        if let crate::config::WindowState::Closed {
            reason,
            kind,
            until,
        } = env.window_state(now)
        {
            let opens = until.map_or_else(
                || "it opens within no foreseeable time".to_string(),
                |t| format!("it opens next at {}", t.to_rfc3339()),
            );
            return whole(
                AutoAction::WindowClosed,
                format!("the promotion window is closed ({kind}: {reason}); {opens}"),
            );
        }
        let first = self.parts.config.position(&rule.from)? == 0;
        let source_events = if first {
            self.discover_releases(&rule.from, options).await?
        } else {
            self.current_events(&rule.from).await?
        };
        let source = if first {
            Source::Releases(&source_events)
        } else {
            Source::Pointer(&source_events)
        };
        let target = self.current_events(&env.name).await?;
        let revoked: HashSet<Digest> = self
            .parts
            .revocations
            .revocations()
            .await?
            .into_iter()
            .map(|r| r.digest)
            .collect();
        let found = candidates(rule, source, &target, &revoked, now);
        if found.is_empty() {
            return whole(
                AutoAction::NothingToDo,
                format!(
                    "no version in {} has run there for {} and is newer than what {} runs",
                    rule.from,
                    humantime::format_duration(rule.soak),
                    env.name
                ),
            );
        }
        let mut out = Vec::new();
        for candidate in &found {
            if options.stopping() {
                return Ok((out, true));
            }
            out.push(self.auto_candidate(env, rule, candidate, options).await?);
        }
        Ok((out, false))
    }

    /// Advances the canaries of a canary environment whose timed pause elapsed, unless the
    /// environment is held or its window is closed (a dry run only says which are due).
    async fn auto_canaries(
        &self,
        env: &Environment,
        options: &AutoOptions,
    ) -> Result<Vec<AutoDecision>> {
        let now = self.now();
        if !self.parts.holds.holds(Some(&env.name)).await?.is_empty()
            || !env.window_state(now).is_open()
        {
            return Ok(Vec::new());
        }
        let candidate = |c: &crate::manager::CanaryView| Candidate {
            artifact: c.artifact.clone(),
            version: c.version.clone(),
            digest: c.digest.clone(),
            since: c.step_started,
            soaked: (now - c.step_started).to_std().unwrap_or_default(),
        };
        if options.dry_run {
            return Ok(self
                .run_canaries(Some(&env.name))
                .await?
                .into_iter()
                .filter(|c| c.due.is_some_and(|d| now >= d))
                .map(|c| {
                    AutoDecision::candidate(
                        &env.name,
                        &c.from,
                        &candidate(&c),
                        AutoAction::CanaryAdvanced,
                        format!(
                            "would advance the canary of {}:{} from step {} ({}%)",
                            c.artifact, c.version, c.step, c.weight
                        ),
                    )
                })
                .collect());
        }
        let mut out = Vec::new();
        for (before, result) in self.advance_due_canaries(&env.name, &options.actor).await? {
            out.push(match result {
                Ok(after) => AutoDecision::candidate(
                    &env.name,
                    &before.from,
                    &candidate(&before),
                    AutoAction::CanaryAdvanced,
                    format!(
                        "canary of {}:{}: step {} ({}%) -> step {} ({}%, {})",
                        before.artifact,
                        before.version,
                        before.step,
                        before.weight,
                        after.step,
                        after.weight,
                        after.phase
                    ),
                ),
                Err(e) => failed(
                    AutoDecision::candidate(
                        &env.name,
                        &before.from,
                        &candidate(&before),
                        AutoAction::Blocked,
                        format!(
                            "canary of {}:{} stays at step {}: {e}",
                            before.artifact, before.version, before.step
                        ),
                    ),
                    e,
                ),
            });
        }
        Ok(out)
    }

    /// The events that made a version current in `environment`, oldest first.
    async fn current_events(&self, environment: &EnvName) -> Result<Vec<AuditEvent>> {
        self.parts
            .history
            .query(&HistoryQuery {
                environment: Some(environment.clone()),
                kinds: SETS_CURRENT.to_vec(),
                order: Order::OldestFirst,
                ..Default::default()
            })
            .await
    }

    /// The releases of the first environment `from`, as `release_discovered` events oldest
    /// first: those recorded before, and a new one for each release tag seen for the first
    /// time now (recorded, except in a dry run), in natural order per artifact. The artifacts
    /// looked at are those history names: running somewhere, discovered, or with evidence.
    async fn discover_releases(
        &self,
        from: &EnvName,
        options: &AutoOptions,
    ) -> Result<Vec<AuditEvent>> {
        let history = &self.parts.history;
        let mut known = history
            .query(&HistoryQuery {
                environment: Some(from.clone()),
                kinds: vec![EventKind::ReleaseDiscovered],
                order: Order::OldestFirst,
                ..Default::default()
            })
            .await?;
        let seen: HashSet<(ArtifactName, Tag)> = known
            .iter()
            .filter_map(|e| Some((e.record.artifact.clone()?, e.record.version.clone()?)))
            .collect();
        let mut artifacts: std::collections::BTreeSet<ArtifactName> = history
            .deployments(None)
            .await?
            .into_iter()
            .map(|d| d.artifact)
            .collect();
        artifacts.extend(seen.iter().map(|(a, _)| a.clone()));
        let evidence = history
            .query(&HistoryQuery {
                environment: Some(from.clone()),
                kinds: vec![EventKind::EvidenceAttached, EventKind::PromotionRequested],
                ..Default::default()
            })
            .await?;
        artifacts.extend(evidence.into_iter().filter_map(|e| e.record.artifact));
        let envs: Vec<EnvName> = self
            .parts
            .config
            .environments()
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let scheme = &self.settings().tag_scheme;
        let mut fresh = Vec::new();
        for artifact in artifacts {
            let repo = self.parts.config.repository(from, &artifact)?;
            let tags = match self.parts.registry.list_tags(&repo).await {
                Ok(tags) => tags,
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let mut new: Vec<Tag> = tags
                .into_iter()
                .filter(|t| scheme.is_release_tag(t, &envs))
                .filter(|t| !seen.contains(&(artifact.clone(), t.clone())))
                .collect();
            new.sort_by(|a, b| natural_order(a.as_str(), b.as_str()));
            for tag in new {
                let Some(manifest) = self.tag_digest(&repo, &tag).await? else {
                    continue;
                };
                let mut e = self.event(EventKind::ReleaseDiscovered, &options.actor, self.now());
                e.environment = Some(from.clone());
                e.artifact = Some(artifact.clone());
                e.version = Some(tag);
                e.digest = Some(manifest.digest().clone());
                e.reason = Some("release tag first seen by automatic promotion".into());
                fresh.push(e);
            }
        }
        if fresh.is_empty() {
            return Ok(known);
        }
        if options.dry_run {
            // Not recorded: stand-ins after every stored event, in the same order.
            let after = known.last().map_or(0, |e| e.seq) + (1 << 40);
            known.extend(
                fresh
                    .into_iter()
                    .enumerate()
                    .map(|(i, record)| AuditEvent::seal(after + i as u64, record, String::new())),
            );
            return Ok(known);
        }
        known.extend(self.record_stored(fresh).await?);
        Ok(known)
    }

    async fn auto_candidate(
        &self,
        env: &Environment,
        rule: &AutoPromotion,
        c: &Candidate,
        options: &AutoOptions,
    ) -> Result<AutoDecision> {
        let decide = |action, detail: String| {
            AutoDecision::candidate(&env.name, &rule.from, c, action, detail)
        };
        let what = format!("{}:{}", c.artifact, c.version);
        if env.approval.is_some()
            && let Some((id, phase)) = self.latest_approval(&env.name, c).await?
        {
            match phase {
                Phase::Pending => {
                    let mut d = decide(
                        AutoAction::AwaitingApproval,
                        format!("{what} waits for approval request {id}"),
                    );
                    d.approval = Some(id);
                    return Ok(d);
                }
                Phase::Rejected | Phase::Expired => {
                    let mut d = decide(
                        AutoAction::ApprovalClosed,
                        format!(
                            "approval request {id} for {what} was {phase}; it is not promoted automatically (promote it by hand to ask again)"
                        ),
                    );
                    d.approval = Some(id);
                    return Ok(d);
                }
                // Approved or interrupted: `promote` executes the open request. Executed: the
                // target ran it and moved on; the candidate rules decide.
                Phase::Approved | Phase::Executing | Phase::Executed => {}
            }
        }
        let req = PromotionRequest {
            artifact: c.artifact.clone(),
            version: c.version.clone(),
            from: rule.from.clone(),
            to: env.name.clone(),
            actor: options.actor.clone(),
            reason: Some(format!(
                "automatic promotion: ran {} in {} (soak {})",
                humantime::format_duration(c.soaked),
                rule.from,
                humantime::format_duration(rule.soak)
            )),
            override_lock: false,
            automatic: true,
            override_window: false,
        };
        let plan = match self.run_plan(req.clone()).await {
            Ok(plan) => plan,
            Err(e) => return Ok(failed(decide(AutoAction::Blocked, e.to_string()), e)),
        };
        if !plan.blockers.is_empty() {
            let why = plan
                .blockers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(decide(AutoAction::Blocked, why));
        }
        if options.dry_run {
            let detail = match &plan.approval {
                Some(a) => match a.open_request {
                    Some(id) => format!("would promote {what} through approval request {id}"),
                    None => format!("would ask for approval to promote {what}"),
                },
                None => format!("would promote {what}"),
            };
            return Ok(decide(AutoAction::WouldPromote, detail));
        }
        let claim = match self.claim(env, c, &options.actor).await? {
            Claim::Mine(release) => release,
            Claim::Taken(action, detail) => return Ok(decide(action, detail)),
        };
        let result = self.run_promote(req).await;
        let (status, decision) = match result {
            Ok(record) => {
                let mut d = decide(
                    AutoAction::Promoted,
                    format!("promoted {what} from {} into {}", rule.from, env.name),
                );
                d.event_seq = record.event_seq;
                (PROMOTED, d)
            }
            Err(Error::ApprovalPending { request_id, needed }) => {
                let mut d = decide(
                    AutoAction::ApprovalRequested,
                    format!("{what} needs {needed} more approval(s): request {request_id}"),
                );
                d.approval = request_id.parse().ok();
                (AWAITING_APPROVAL, d)
            }
            Err(e) => (FAILED, failed(decide(AutoAction::Failed, e.to_string()), e)),
        };
        self.settle_claim(&claim, status, &options.actor).await;
        Ok(decision)
    }

    /// The newest approval request for the candidate's digest, and its phase (a pending
    /// request past its expiry counts as expired).
    async fn latest_approval(
        &self,
        environment: &EnvName,
        c: &Candidate,
    ) -> Result<Option<(Uuid, Phase)>> {
        let releases = self
            .parts
            .releases
            .list(
                &ReleaseFilter::default()
                    .environment(environment.clone())
                    .artifact(c.artifact.clone())
                    .kind(ReleaseKind::Approval),
            )
            .await?;
        let Some(r) = releases.into_iter().rev().find(|r| r.digest == c.digest) else {
            return Ok(None);
        };
        let state: ApprovalState = decode::<ApprovalMachine>(&r)?;
        let phase = match state.phase {
            Phase::Pending if self.now() >= state.ticket.expires => Phase::Expired,
            p => p,
        };
        Ok(Some((r.id, phase)))
    }

    /// Claims the automatic promotion of a candidate in the release store, so that one pass
    /// promotes it when several run at once. A claim left by a pass that failed, or that
    /// stopped for approval, or that died (no update for longer than a lease and a gate
    /// timeout), is taken over by compare-and-set.
    async fn claim(&self, env: &Environment, c: &Candidate, actor: &Actor) -> Result<Claim> {
        let now = self.now();
        let id = claim_id(&env.name, &c.artifact, &c.digest);
        let state = ReleaseState::encode(
            CLAIMED,
            &ClaimState {
                by: actor.id.clone(),
            },
        )?;
        let mut release = Release::new(
            ReleaseKind::AutoPromotion,
            env.name.clone(),
            c.artifact.clone(),
            c.version.clone(),
            c.digest.clone(),
            state.clone(),
            now,
        );
        release.id = id;
        match self.parts.releases.create(release).await {
            Ok(r) => return Ok(Claim::Mine(r)),
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let existing = self.parts.releases.get(id).await?;
        let by = existing
            .decode_state::<ClaimState>()
            .map(|s| s.by)
            .unwrap_or_default();
        let settings = self.settings();
        let stale = chrono::Duration::from_std(settings.lease_ttl + settings.default_timeout)
            .unwrap_or(chrono::Duration::hours(1));
        match existing.status.as_str() {
            PROMOTED => {
                return Ok(Claim::Taken(
                    AutoAction::NothingToDo,
                    format!(
                        "{}:{} was promoted automatically into {} already ({}, by {by})",
                        c.artifact,
                        c.version,
                        env.name,
                        existing.updated.to_rfc3339()
                    ),
                ));
            }
            CLAIMED if now - existing.updated < stale => {
                return Ok(Claim::Taken(
                    AutoAction::ClaimedElsewhere,
                    format!(
                        "{by} is promoting {}:{} into {} (claimed {})",
                        c.artifact,
                        c.version,
                        env.name,
                        existing.updated.to_rfc3339()
                    ),
                ));
            }
            _ => {}
        }
        match self
            .parts
            .releases
            .update(id, existing.version, state, now)
            .await
        {
            Ok(r) => Ok(Claim::Mine(r)),
            Err(Error::Conflict(_)) => Ok(Claim::Taken(
                AutoAction::ClaimedElsewhere,
                format!(
                    "another pass claimed {}:{} for {} just now",
                    c.artifact, c.version, env.name
                ),
            )),
            Err(e) => Err(e),
        }
    }

    /// Records how a claimed promotion ended. A failure to record is logged: the promotion's
    /// own events are the record, and a claim left `claimed` is taken over once stale.
    async fn settle_claim(&self, claim: &Release, status: &str, actor: &Actor) {
        let settled = async {
            let state = ReleaseState::encode(
                status,
                &ClaimState {
                    by: actor.id.clone(),
                },
            )?;
            self.parts
                .releases
                .update(claim.id, claim.version, state, self.now())
                .await
        };
        if let Err(e) = settled.await {
            tracing::warn!(claim = %claim.id, status, error = %e, "the outcome of an automatic promotion was not stored on its claim");
        }
    }
}

/// `decision` carrying `error`.
fn failed(mut decision: AutoDecision, error: Error) -> AutoDecision {
    decision.error = Some(Arc::new(error));
    decision
}

#[async_trait]
impl AutoPromotions for DefaultPromotionManager {
    async fn run_auto_promotions(&self, options: &AutoOptions) -> Result<AutoReport> {
        self.run_auto(options).await
    }

    async fn hold(&self, environment: &EnvName, actor: &Actor, reason: &str) -> Result<Hold> {
        self.run_hold(environment, actor, reason).await
    }

    async fn release_hold(
        &self,
        environment: &EnvName,
        actor: &Actor,
        holder: Option<&str>,
        reason: &str,
    ) -> Result<Hold> {
        self.run_release_hold(environment, actor, holder, reason)
            .await
    }

    async fn holds(&self, environment: Option<&EnvName>) -> Result<Vec<Hold>> {
        if let Some(e) = environment {
            self.parts.config.environment(e)?;
        }
        self.parts.holds.holds(environment).await
    }
}
