use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::types::{
    EnvironmentStatus, Outcome, PlannedTag, PromotionPlan, PromotionRecord, PromotionRequest,
    RollbackRequest, TagAction,
};
use super::{PromotionManager, PromotionManagerBuilder};
use crate::clock::Clock;
use crate::config::{Environment, EnvironmentConfig};
use crate::error::{Error, Result};
use crate::gate::{GateContext, GateResult, GateStatus, PromotionGate, run_gates};
use crate::history::{
    AuditEvent, EventKind, EventRecord, HistoryQuery, HistoryStore, Order, VerifyReport,
};
use crate::model::text::check_free_text;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Reference, Repository, Tag};
use crate::notify::Notifier;
use crate::policy::{Check, CheckContext, Operation, Stage, authorize, run_checks};
use crate::registry::{ArtifactRegistry, CopyMode, CopyReport, Manifest};
use crate::state::{
    ApprovalStore, EnvLock, HolderProcess, Lease, LeaseHolder, Liveness, LockStore,
};

pub(super) struct Parts {
    pub(super) config: Arc<dyn EnvironmentConfig>,
    pub(super) registry: Arc<dyn ArtifactRegistry>,
    pub(super) history: Arc<dyn HistoryStore>,
    pub(super) locks: Arc<dyn LockStore>,
    pub(super) approvals: Arc<dyn ApprovalStore>,
    pub(super) notifiers: Vec<Arc<dyn Notifier>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) gates: HashMap<EnvName, Vec<Arc<dyn PromotionGate>>>,
    pub(super) lease_wait: std::time::Duration,
    pub(super) checks: Vec<Box<dyn Check>>,
}

/// The [`PromotionManager`] of the library, assembled from parts with
/// [`DefaultPromotionManager::builder`]. Cheap to clone.
#[derive(Clone)]
pub struct DefaultPromotionManager {
    parts: Arc<Parts>,
}

impl fmt::Debug for DefaultPromotionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        f.debug_struct("DefaultPromotionManager")
            .field("config", &p.config)
            .field("registry", &p.registry)
            .field("history", &p.history)
            .field("locks", &p.locks)
            .field("approvals", &p.approvals)
            .field("notifiers", &p.notifiers)
            .field("clock", &p.clock)
            .finish_non_exhaustive()
    }
}

/// What the checks of a promotion or rollback found; kept on failure so the failed event can
/// record the digest and gate results.
#[derive(Debug)]
struct Evaluation {
    id: Uuid,
    now: DateTime<Utc>,
    plan: bool,
    source: Option<Repository>,
    target: Option<Repository>,
    manifest: Option<Manifest>,
    gates: Vec<GateResult>,
    lock: Option<EnvLock>,
    lock_overridden: bool,
    tags: Vec<PlannedTag>,
    copy_mode: Option<CopyMode>,
    blockers: Vec<Error>,
}

impl Evaluation {
    fn new(now: DateTime<Utc>, plan: bool) -> Self {
        Evaluation {
            id: Uuid::new_v4(),
            now,
            plan,
            source: None,
            target: None,
            manifest: None,
            gates: vec![],
            lock: None,
            lock_overridden: false,
            tags: vec![],
            copy_mode: None,
            blockers: vec![],
        }
    }

    /// A refusal: the real run stops here; a plan notes it and goes on.
    fn block(&mut self, e: Error) -> Result<()> {
        if self.plan {
            self.blockers.push(e);
            Ok(())
        } else {
            Err(e)
        }
    }

    fn digest(&self) -> Option<&Digest> {
        self.manifest.as_ref().map(Manifest::digest)
    }

    fn into_plan(
        self,
        artifact: ArtifactName,
        version: Tag,
        from: Option<EnvName>,
        to: EnvName,
    ) -> Result<PromotionPlan> {
        let target = self
            .target
            .ok_or_else(|| Error::not_found(format!("repository of {artifact} in {to}")))?;
        Ok(PromotionPlan {
            digest: self.manifest.as_ref().map(|m| m.digest().clone()),
            artifact,
            version,
            from,
            to,
            source: self.source,
            target,
            copy_mode: self.copy_mode,
            tags: self.tags,
            gates: self.gates,
            lock: self.lock,
            blockers: self.blockers,
        })
    }
}

/// What [`DefaultPromotionManager::write`] did, under a lease the caller releases.
struct Written {
    /// The tags written, in order.
    tags: Vec<Tag>,
    /// What the copy moved, when the repositories differ.
    copy: Option<CopyReport>,
    /// The environment's promotion lease.
    lease: Lease,
    /// A lock found in force under the lease and passed with the request's override.
    lock: Option<EnvLock>,
    /// Tags whose write failed but that the registry holds all the same (a lost reply).
    confirmed: Vec<Tag>,
}

/// Refuses an actor or a reason that could forge output: control characters in the actor's
/// id or groups or in the reason (see [`check_free_text`]).
fn check_text_input(actor: &Actor, reason: Option<&str>) -> Result<()> {
    check_free_text("actor id", &actor.id)?;
    for group in &actor.groups {
        check_free_text("actor group", group)?;
    }
    if let Some(reason) = reason {
        check_free_text("reason", reason)?;
    }
    Ok(())
}

/// Tags as a comma-separated list, for event details.
fn tag_list(tags: &[Tag]) -> String {
    tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(",")
}

const SETS_CURRENT: [EventKind; 3] = [
    EventKind::PromotionSucceeded,
    EventKind::RollbackSucceeded,
    EventKind::Switched,
];

impl DefaultPromotionManager {
    /// A builder.
    pub fn builder() -> PromotionManagerBuilder {
        PromotionManagerBuilder::default()
    }

    pub(super) fn from_parts(parts: Parts) -> Self {
        DefaultPromotionManager {
            parts: Arc::new(parts),
        }
    }

    /// The environment configuration.
    pub fn config(&self) -> &Arc<dyn EnvironmentConfig> {
        &self.parts.config
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<dyn ArtifactRegistry> {
        &self.parts.registry
    }

    /// The audit history.
    pub fn history_store(&self) -> &Arc<dyn HistoryStore> {
        &self.parts.history
    }

    /// The approval store.
    pub fn approval_store(&self) -> &Arc<dyn ApprovalStore> {
        &self.parts.approvals
    }

    /// The gates of promotions into `environment`, in result order.
    pub fn gates(&self, environment: &EnvName) -> &[Arc<dyn PromotionGate>] {
        self.parts
            .gates
            .get(environment)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Resolves `artifact:version` as it is in `environment`: the release tag in the first
    /// environment, the environment tag elsewhere (which must agree with history). Returns the
    /// repository and the manifest.
    pub async fn resolve_in(
        &self,
        artifact: &ArtifactName,
        version: &Tag,
        environment: &EnvName,
    ) -> Result<(Repository, Manifest)> {
        let config = &self.parts.config;
        let env = config.environment(environment)?;
        let repo = config.repository(environment, artifact)?;
        let manifest = if config.position(environment)? == 0 {
            self.parts
                .registry
                .resolve(&repo, &Reference::Tag(version.clone()))
                .await?
        } else {
            self.resolve_promoted(artifact, version, env, &repo)
                .await?
                .0
        };
        Ok((repo, manifest))
    }

    /// Attaches evidence to the digest of `artifact:version` in `environment` and records an
    /// [`EventKind::EvidenceAttached`] event. Returns the artifact's digest and the evidence
    /// manifest's digest.
    pub async fn attest(
        &self,
        artifact: &ArtifactName,
        version: &Tag,
        environment: &EnvName,
        evidence: &crate::registry::Evidence,
        actor: &Actor,
    ) -> Result<(Digest, Digest)> {
        use crate::registry::RegistryExt;
        check_text_input(actor, None)?;
        if let Some(by) = &evidence.actor {
            check_free_text("evidence actor", by)?;
        }
        let (repo, manifest) = self.resolve_in(artifact, version, environment).await?;
        let attached = self
            .parts
            .registry
            .attach_evidence(&repo, manifest.digest(), evidence)
            .await?;
        let mut e = self.event(EventKind::EvidenceAttached, actor, self.now());
        e.artifact = Some(artifact.clone());
        e.version = Some(version.clone());
        e.digest = Some(manifest.digest().clone());
        e.environment = Some(environment.clone());
        e.details.insert("evidence".into(), attached.to_string());
        e.details.insert("kind".into(), evidence.kind.to_string());
        e.details
            .insert("status".into(), evidence.status.to_string());
        let mut warnings = Vec::new();
        self.record(vec![e], &mut warnings).await?;
        Ok((manifest.digest().clone(), attached))
    }

    fn now(&self) -> DateTime<Utc> {
        self.parts.clock.now()
    }

    fn settings(&self) -> &crate::config::PromotionSettings {
        self.parts.config.settings()
    }

    /// The latest event that made `version` of `artifact` current in `environment`.
    async fn arrival(
        &self,
        environment: &EnvName,
        artifact: &ArtifactName,
        version: &Tag,
    ) -> Result<Option<AuditEvent>> {
        Ok(self
            .parts
            .history
            .query(&HistoryQuery {
                environment: Some(environment.clone()),
                artifact: Some(artifact.clone()),
                version: Some(version.clone()),
                kinds: SETS_CURRENT.to_vec(),
                limit: Some(1),
                order: Order::NewestFirst,
                ..Default::default()
            })
            .await?
            .pop())
    }

    /// Resolves a tag, mapping "not found" to `None`.
    async fn tag_digest(&self, repo: &Repository, tag: &Tag) -> Result<Option<Manifest>> {
        match self
            .parts
            .registry
            .resolve(repo, &Reference::Tag(tag.clone()))
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn check_authorized(
        &self,
        env: &Environment,
        actor: &Actor,
        action: &'static str,
    ) -> Result<()> {
        authorize(env, actor, action).map_or(Ok(()), Err)
    }

    /// Plans the write of `tag` at `digest` in `repo`; `immutable` tags may not move.
    async fn plan_tag(
        &self,
        ev: &mut Evaluation,
        repo: &Repository,
        tag: Tag,
        digest: &Digest,
        immutable: bool,
    ) -> Result<()> {
        let current = self
            .tag_digest(repo, &tag)
            .await?
            .map(|m| m.digest().clone());
        let action = match &current {
            None => TagAction::Create,
            Some(d) if d == digest => TagAction::Unchanged,
            Some(d) if immutable => {
                return ev.block(Error::Immutability {
                    repository: repo.to_string(),
                    tag: tag.to_string(),
                    existing: d.clone(),
                    attempted: digest.clone(),
                });
            }
            Some(_) => TagAction::Move,
        };
        ev.tags.push(PlannedTag {
            tag,
            action,
            current,
        });
        Ok(())
    }

    /// Steps 1 to 5 of the promotion path. Stops at the first refusal unless planning.
    async fn evaluate_promotion(&self, req: &PromotionRequest, ev: &mut Evaluation) -> Result<()> {
        let config = &self.parts.config;
        let from_env = config.environment(&req.from)?;
        let to_env = config.environment(&req.to)?;
        let source = config.repository(&req.from, &req.artifact)?;
        let target = config.repository(&req.to, &req.artifact)?;
        ev.source = Some(source.clone());
        ev.target = Some(target.clone());

        // 1 and 2. The checks that need no digest: transition, sources, authorization,
        // policy, the lock.
        let lock = self.parts.locks.get_lock(&req.to, ev.now).await?;
        ev.lock_overridden = lock.is_some() && req.override_lock;
        ev.lock = lock.clone();
        let mut ctx = CheckContext {
            operation: Operation::Promote,
            config: config.as_ref(),
            history: self.parts.history.as_ref(),
            artifact: &req.artifact,
            version: &req.version,
            from: Some(&req.from),
            to: to_env,
            actor: &req.actor,
            override_lock: req.override_lock,
            lock: lock.as_ref(),
            now: ev.now,
            digest: None,
            arrival: None,
        };
        for e in run_checks(&self.parts.checks, Stage::Request, &ctx, ev.plan).await? {
            ev.block(e)?;
        }

        // 3. Resolve the digest once, in the source environment.
        let first = config.position(&req.from)? == 0;
        let resolved = if first {
            self.parts
                .registry
                .resolve(&source, &Reference::Tag(req.version.clone()))
                .await
                .map(|m| (m, None))
        } else {
            self.resolve_promoted(&req.artifact, &req.version, from_env, &source)
                .await
        };
        let (manifest, arrival) = match resolved {
            Ok(r) => r,
            Err(e) => {
                ev.block(e)?;
                return Ok(());
            }
        };
        let digest = manifest.digest().clone();
        ev.manifest = Some(manifest.clone());
        ev.copy_mode = Some(self.parts.registry.copy_mode(&source, &target));

        // The checks that need the digest and its history: separation of duties, soak.
        ctx.digest = Some(&digest);
        ctx.arrival = arrival.as_ref();
        for e in run_checks(&self.parts.checks, Stage::Resolved, &ctx, ev.plan).await? {
            ev.block(e)?;
        }

        // Immutable environment tag; pointer.
        let scheme = &self.settings().tag_scheme;
        let env_tag = scheme.environment_tag(&req.version, &req.to)?;
        let pointer = scheme.pointer_tag(&req.to)?;
        self.plan_tag(ev, &target, env_tag, &digest, true).await?;
        self.plan_tag(ev, &target, pointer, &digest, false).await?;

        // 4. Gates, concurrently, every one of them.
        let ctx = GateContext {
            artifact: req.artifact.clone(),
            version: req.version.clone(),
            digest,
            manifest,
            source,
            from: req.from.clone(),
            to: req.to.clone(),
            actor: req.actor.clone(),
            now: ev.now,
            registry: Arc::clone(&self.parts.registry),
            history: Arc::clone(&self.parts.history),
        };
        let timeout = to_env
            .gate_timeout
            .unwrap_or(self.settings().default_timeout);
        ev.gates = run_gates(self.gates(&req.to), &ctx, timeout).await;
        let failed: Vec<GateResult> = ev
            .gates
            .iter()
            .filter(|g| !g.status.allows())
            .cloned()
            .collect();
        if !failed.is_empty() {
            ev.block(Error::GateFailed { failed })?;
        }

        // 5. Approvals: environments with approval rules are refused by settings validation
        // until the approval workflow exists, so every environment here is auto-approved.
        Ok(())
    }

    /// Resolves a version in a later environment: its environment tag, which must agree with
    /// the digest history recorded.
    async fn resolve_promoted(
        &self,
        artifact: &ArtifactName,
        version: &Tag,
        env: &Environment,
        repo: &Repository,
    ) -> Result<(Manifest, Option<AuditEvent>)> {
        let arrival = self
            .arrival(&env.name, artifact, version)
            .await?
            .ok_or_else(|| Error::VersionNotPromoted {
                artifact: artifact.to_string(),
                version: version.to_string(),
                environment: env.name.clone(),
            })?;
        let recorded = arrival
            .record
            .digest
            .clone()
            .ok_or_else(|| Error::Integrity {
                seq: arrival.seq,
                problem: "a promotion event has no digest".into(),
            })?;
        let env_tag = self
            .settings()
            .tag_scheme
            .environment_tag(version, &env.name)?;
        let manifest = match self.tag_digest(repo, &env_tag).await? {
            Some(m) => m,
            None => {
                return Err(Error::not_found(format!(
                    "{repo}:{env_tag} (history says {artifact}:{version} was promoted to {} at {recorded})",
                    env.name
                )));
            }
        };
        if manifest.digest() != &recorded {
            return Err(Error::Conflict(format!(
                "{repo}:{env_tag} points at {} but history recorded {recorded} for {artifact}:{version} in {}",
                manifest.digest(),
                env.name
            )));
        }
        Ok((manifest, Some(arrival)))
    }

    fn event(&self, kind: EventKind, actor: &Actor, now: DateTime<Utc>) -> EventRecord {
        EventRecord::new(kind, actor.clone(), now)
    }

    /// Appends events, then sends them to every notifier; notifier failures become warnings.
    async fn record(
        &self,
        records: Vec<EventRecord>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<AuditEvent>> {
        let stored = self.parts.history.append_batch(records).await?;
        for event in &stored {
            for notifier in &self.parts.notifiers {
                if let Err(e) = notifier.notify(event).await {
                    tracing::warn!(kind = %event.record.kind, seq = event.seq, error = %e, "notifier failed");
                    warnings.push(format!(
                        "notification of event {} ({}) failed: {e}",
                        event.seq, event.record.kind
                    ));
                }
            }
        }
        Ok(stored)
    }

    /// Takes the environment's promotion lease, waiting (with backoff, in real time) while
    /// another promoter holds it, up to the builder's `lease_wait`; then [`Error::Busy`].
    async fn take_lease(&self, env: &EnvName, actor: &Actor, id: Uuid) -> Result<Lease> {
        let ttl = Duration::from_std(self.settings().lease_ttl).unwrap_or(Duration::minutes(15));
        let holder = LeaseHolder::this_process(format!("{} ({id})", actor.id));
        let deadline = tokio::time::Instant::now() + self.parts.lease_wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            match self
                .parts
                .locks
                .acquire_lease(env, &holder, ttl, self.now())
                .await
            {
                Err(Error::Busy { .. }) if tokio::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// Writes the planned tags (copying first when the repositories differ) under the
    /// environment's lease, which the caller releases after recording the outcome, so the
    /// order of outcome events is the order of the writes.
    ///
    /// Under the lease, what changed while the gates ran decides: the lock is checked again
    /// before the first write and again before the first tag moves (a lock taken meanwhile
    /// refuses the request unless it carries a break-glass override), and immutable tags are
    /// checked again. A tag write that fails is read back: a write the registry applied but
    /// whose reply was lost counts as written, so the record agrees with the registry.
    async fn write(
        &self,
        ev: &Evaluation,
        lease_env: &EnvName,
        actor: &Actor,
        immutable: &[&Tag],
        override_lock: bool,
    ) -> Result<Written> {
        let (Some(manifest), Some(source), Some(target)) =
            (ev.manifest.as_ref(), ev.source.as_ref(), ev.target.as_ref())
        else {
            return Err(Error::Conflict("nothing resolved to write".into()));
        };
        let lease = self.take_lease(lease_env, actor, ev.id).await?;
        let mut out = Written {
            tags: Vec::new(),
            copy: None,
            lease,
            lock: None,
            confirmed: Vec::new(),
        };
        let result = async {
            out.lock = self.recheck_lock(lease_env, override_lock).await?;
            // Another promoter may have written while we checked: look again under the lease.
            for planned in &ev.tags {
                if immutable.contains(&&planned.tag)
                    && let Some(m) = self.tag_digest(target, &planned.tag).await?
                    && m.digest() != manifest.digest()
                {
                    return Err(Error::Immutability {
                        repository: target.to_string(),
                        tag: planned.tag.to_string(),
                        existing: m.digest().clone(),
                        attempted: manifest.digest().clone(),
                    });
                }
            }
            if source != target {
                out.copy = Some(
                    self.parts
                        .registry
                        .copy(source, target, manifest.digest())
                        .await?,
                );
                // A copy can take long: a lock taken meanwhile still stops the tags.
                if let Some(lock) = self.recheck_lock(lease_env, override_lock).await? {
                    out.lock = Some(lock);
                }
            }
            for planned in ev.tags.iter().filter(|t| t.action != TagAction::Unchanged) {
                if self.put_tag(target, &planned.tag, manifest).await? {
                    out.confirmed.push(planned.tag.clone());
                }
                out.tags.push(planned.tag.clone());
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                self.release(&out.lease).await;
                Err(e)
            }
        }
    }

    /// The lock check of step 6, under the lease: a lock in force refuses the write unless
    /// the request overrides it; the lock that was overridden is returned.
    async fn recheck_lock(&self, env: &EnvName, override_lock: bool) -> Result<Option<EnvLock>> {
        match self.parts.locks.get_lock(env, self.now()).await? {
            Some(lock) if !override_lock => Err(Error::Locked {
                lock: Box::new(lock),
            }),
            other => Ok(other),
        }
    }

    /// Writes `tag` in `repo`. When the write fails, the tag is read back: `Ok(true)` when
    /// the registry holds the manifest there all the same (the reply was lost), the write's
    /// error when it does not (the tag is as it was) or cannot be read.
    async fn put_tag(&self, repo: &Repository, tag: &Tag, manifest: &Manifest) -> Result<bool> {
        let Err(e) = self
            .parts
            .registry
            .put_manifest(repo, Some(tag), manifest)
            .await
        else {
            return Ok(false);
        };
        match self.tag_digest(repo, tag).await {
            Ok(Some(m)) if m.digest() == manifest.digest() => {
                tracing::warn!(%repo, %tag, error = %e, "the tag write failed but the registry applied it");
                Ok(true)
            }
            Ok(_) => Err(e),
            Err(read) => Err(Error::Unavailable {
                registry: repo.to_string(),
                message: format!(
                    "writing {repo}:{tag} failed ({e}) and reading it back failed too ({read}): \
                     the tag may point at {} or at what it pointed at before",
                    manifest.digest()
                ),
            }),
        }
    }

    /// Gives the lease back; a failure only delays the next promoter until it expires.
    async fn release(&self, lease: &Lease) {
        if let Err(e) = self.parts.locks.release_lease(lease).await {
            tracing::warn!(environment = %lease.environment, error = %e, "could not release the promotion lease; it will expire");
        }
    }

    async fn record_failure(&self, mut record: EventRecord, ev: &Evaluation, error: &Error) {
        record.digest = ev.digest().cloned();
        record.gates = ev.gates.clone();
        record.details.insert("error".into(), error.to_string());
        let mut ignored = Vec::new();
        if let Err(e) = self.record(vec![record], &mut ignored).await {
            tracing::error!(error = %e, "could not record the failed event");
        }
    }

    /// Input that does not form a request at all (an unknown environment, an override without
    /// a reason) is refused before anything is recorded; every refusal of a well-formed
    /// request is recorded as a failed event.
    fn check_request_input(&self, req: &PromotionRequest) -> Result<()> {
        check_text_input(&req.actor, req.reason.as_deref())?;
        let config = &self.parts.config;
        config.environment(&req.from)?;
        config.environment(&req.to)?;
        if req.override_lock && req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(Error::invalid(
                "lock override",
                req.to.to_string(),
                "overriding a lock needs a reason",
            ));
        }
        Ok(())
    }

    /// Like [`Self::check_request_input`], for rollbacks: a known environment and a reason.
    fn check_rollback_input(&self, req: &RollbackRequest) -> Result<()> {
        check_text_input(&req.actor, Some(&req.reason))?;
        self.parts.config.environment(&req.environment)?;
        if req.reason.trim().is_empty() {
            return Err(Error::invalid(
                "rollback reason",
                "",
                "a rollback needs a reason",
            ));
        }
        Ok(())
    }

    async fn fail_promotion(&self, req: &PromotionRequest, ev: &Evaluation, e: Error) -> Error {
        let record = self.promotion_event(EventKind::PromotionFailed, req, self.now());
        self.record_failure(record, ev, &e).await;
        e
    }

    fn promotion_event(
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
    fn lock_overridden_event(
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

    /// The record of a lock passed with a break-glass override by a rollback.
    fn rollback_lock_overridden_event(
        &self,
        req: &RollbackRequest,
        ev: &Evaluation,
        lock: &EnvLock,
    ) -> EventRecord {
        let mut e = self.rollback_event(EventKind::LockOverridden, req, self.now());
        e.digest = ev.digest().cloned();
        e.details.insert("lock_owner".into(), lock.owner.clone());
        e.details.insert("lock_reason".into(), lock.reason.clone());
        e
    }

    fn rollback_event(
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

    /// Checks of a rollback. Stops at the first refusal unless planning.
    async fn evaluate_rollback(&self, req: &RollbackRequest, ev: &mut Evaluation) -> Result<()> {
        let config = &self.parts.config;
        let env = config.environment(&req.environment)?;
        let target = config.repository(&req.environment, &req.artifact)?;
        ev.source = Some(target.clone());
        ev.target = Some(target.clone());
        ev.copy_mode = Some(CopyMode::TagOnly);
        let lock = self.parts.locks.get_lock(&req.environment, ev.now).await?;
        ev.lock_overridden = lock.is_some() && req.override_lock;
        ev.lock = lock.clone();
        let ctx = CheckContext {
            operation: Operation::Rollback,
            config: config.as_ref(),
            history: self.parts.history.as_ref(),
            artifact: &req.artifact,
            version: &req.to_version,
            from: None,
            to: env,
            actor: &req.actor,
            override_lock: req.override_lock,
            lock: lock.as_ref(),
            now: ev.now,
            digest: None,
            arrival: None,
        };
        for e in run_checks(&self.parts.checks, Stage::Request, &ctx, ev.plan).await? {
            ev.block(e)?;
        }
        let arrival = match self
            .arrival(&req.environment, &req.artifact, &req.to_version)
            .await?
        {
            Some(a) => a,
            None => {
                ev.block(Error::VersionNotPromoted {
                    artifact: req.artifact.to_string(),
                    version: req.to_version.to_string(),
                    environment: req.environment.clone(),
                })?;
                return Ok(());
            }
        };
        let recorded = arrival
            .record
            .digest
            .clone()
            .ok_or_else(|| Error::Integrity {
                seq: arrival.seq,
                problem: "a promotion event has no digest".into(),
            })?;
        let current = self
            .parts
            .history
            .deployments(Some(&req.environment))
            .await?
            .into_iter()
            .find(|d| d.artifact == req.artifact);
        if current
            .as_ref()
            .is_some_and(|c| c.version == req.to_version && c.digest == recorded)
        {
            ev.block(Error::InvalidTransition {
                from: req.environment.to_string(),
                to: req.environment.to_string(),
                reason: format!(
                    "{}:{} is already the current version",
                    req.artifact, req.to_version
                ),
            })?;
        }
        let manifest = self
            .parts
            .registry
            .resolve(&target, &Reference::Digest(recorded.clone()))
            .await?;
        let scheme = &self.settings().tag_scheme;
        let env_tag = scheme.environment_tag(&req.to_version, &req.environment)?;
        if let Some(m) = self.tag_digest(&target, &env_tag).await?
            && m.digest() != &recorded
        {
            ev.block(Error::Conflict(format!(
                "{target}:{env_tag} points at {} but history recorded {recorded}",
                m.digest()
            )))?;
        }
        ev.manifest = Some(manifest);
        let existing: HashSet<Tag> = self
            .parts
            .registry
            .list_tags(&target)
            .await?
            .into_iter()
            .collect();
        let mut n = 1;
        let rollback_tag = loop {
            let t = scheme.rollback_tag(&req.to_version, &req.environment, n)?;
            if !existing.contains(&t) {
                break t;
            }
            n += 1;
        };
        self.plan_tag(ev, &target, rollback_tag, &recorded, true)
            .await?;
        self.plan_tag(
            ev,
            &target,
            scheme.pointer_tag(&req.environment)?,
            &recorded,
            false,
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl PromotionManager for DefaultPromotionManager {
    async fn promote(&self, req: PromotionRequest) -> Result<PromotionRecord> {
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

    async fn plan(&self, req: PromotionRequest) -> Result<PromotionPlan> {
        self.check_request_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        self.evaluate_promotion(&req, &mut ev).await?;
        ev.into_plan(req.artifact, req.version, Some(req.from), req.to)
    }

    async fn rollback(&self, req: RollbackRequest) -> Result<PromotionRecord> {
        let started = self.now();
        let mut ev = Evaluation::new(started, false);
        let mut warnings = Vec::new();
        self.check_rollback_input(&req)?;
        if let Err(e) = self.evaluate_rollback(&req, &mut ev).await {
            let record = self.rollback_event(EventKind::RollbackFailed, &req, self.now());
            self.record_failure(record, &ev, &e).await;
            return Err(e);
        }
        let mut events = Vec::new();
        if let (true, Some(lock)) = (ev.lock_overridden, &ev.lock) {
            events.push(self.rollback_lock_overridden_event(&req, &ev, lock));
        }
        let rollback_tag = ev.tags.first().map(|t| t.tag.clone());
        let immutable: Vec<&Tag> = rollback_tag.iter().collect();
        let w = match self
            .write(
                &ev,
                &req.environment,
                &req.actor,
                &immutable,
                req.override_lock,
            )
            .await
        {
            Ok(w) => w,
            Err(e) => {
                let record = self.rollback_event(EventKind::RollbackFailed, &req, self.now());
                self.record_failure(record, &ev, &e).await;
                return Err(e);
            }
        };
        if let (Some(lock), false) = (&w.lock, ev.lock_overridden) {
            ev.lock_overridden = true;
            events.push(self.rollback_lock_overridden_event(&req, &ev, lock));
        }
        let (written, lease) = (w.tags, w.lease);
        let repository = ev
            .target
            .clone()
            .ok_or_else(|| Error::Conflict("no target repository".into()))?;
        let finished = self.now();
        let digest = ev
            .digest()
            .cloned()
            .ok_or_else(|| Error::Conflict("no digest".into()))?;
        let mut done = self.rollback_event(EventKind::RollbackSucceeded, &req, finished);
        done.id = ev.id;
        done.digest = Some(digest.clone());
        done.details.insert("tags".into(), tag_list(&written));
        if !w.confirmed.is_empty() {
            done.details
                .insert("confirmed_after_lost_reply".into(), tag_list(&w.confirmed));
        }
        events.push(done);
        let stored = self.record(events, &mut warnings).await;
        self.release(&lease).await;
        let stored = stored?;
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
            tags_written: written,
            copy: None,
            lock_overridden: ev.lock_overridden,
            warnings,
            started,
            finished,
            event_seq: stored.last().map(|e| e.seq),
        })
    }

    async fn plan_rollback(&self, req: RollbackRequest) -> Result<PromotionPlan> {
        self.check_rollback_input(&req)?;
        let mut ev = Evaluation::new(self.now(), true);
        self.evaluate_rollback(&req, &mut ev).await?;
        let from = None;
        ev.into_plan(req.artifact, req.to_version, from, req.environment)
    }

    async fn lock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        expires_in: Option<Duration>,
    ) -> Result<EnvLock> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        if reason.trim().is_empty() {
            return Err(Error::invalid("lock reason", "", "a lock needs a reason"));
        }
        if let Some(d) = expires_in
            && d <= Duration::zero()
        {
            return Err(Error::invalid(
                "lock expiry",
                d.to_string(),
                "a lock's expiry must be in the future",
            ));
        }
        self.check_authorized(env, actor, "lock")?;
        let now = self.now();
        let lock = self
            .parts
            .locks
            .lock(
                EnvLock {
                    environment: environment.clone(),
                    owner: actor.id.clone(),
                    reason: reason.to_string(),
                    created: now,
                    expires: expires_in.map(|d| now + d),
                },
                now,
            )
            .await?;
        let mut e = self.event(EventKind::Locked, actor, now);
        e.environment = Some(environment.clone());
        e.reason = Some(reason.to_string());
        if let Some(x) = lock.expires {
            e.details.insert("expires".into(), x.to_rfc3339());
        }
        let mut warnings = Vec::new();
        self.record(vec![e], &mut warnings).await?;
        Ok(lock)
    }

    async fn unlock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<EnvLock> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, reason)?;
        self.check_authorized(env, actor, "unlock")?;
        let now = self.now();
        let lock = self
            .parts
            .locks
            .unlock(environment, now)
            .await?
            .ok_or_else(|| Error::not_found(format!("a lock on environment {environment}")))?;
        let mut e = self.event(EventKind::Unlocked, actor, now);
        e.environment = Some(environment.clone());
        e.reason = reason.map(str::to_string);
        e.details.insert("lock_owner".into(), lock.owner.clone());
        e.details.insert("lock_reason".into(), lock.reason.clone());
        let mut warnings = Vec::new();
        self.record(vec![e], &mut warnings).await?;
        Ok(lock)
    }

    async fn status(&self, environment: Option<&EnvName>) -> Result<Vec<EnvironmentStatus>> {
        if let Some(e) = environment {
            self.parts.config.environment(e)?;
        }
        let now = self.now();
        let mut out = Vec::new();
        for (position, env) in self.parts.config.environments().iter().enumerate() {
            if environment.is_some_and(|e| e != &env.name) {
                continue;
            }
            out.push(EnvironmentStatus {
                environment: env.name.clone(),
                position,
                deployments: self.parts.history.deployments(Some(&env.name)).await?,
                lock: self.parts.locks.get_lock(&env.name, now).await?,
            });
        }
        Ok(out)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        self.parts.history.query(query).await
    }

    async fn verify(&self) -> Result<VerifyReport> {
        self.parts.history.verify().await
    }

    async fn leases(&self) -> Result<Vec<Lease>> {
        self.parts.locks.leases(self.now()).await
    }

    async fn break_lease(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        force: bool,
    ) -> Result<Lease> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        if reason.trim().is_empty() {
            return Err(Error::invalid(
                "lease break reason",
                "",
                "breaking a lease needs a reason",
            ));
        }
        self.check_authorized(env, actor, "break the promotion lease of")?;
        let now = self.now();
        let lease = self
            .parts
            .locks
            .leases(now)
            .await?
            .into_iter()
            .find(|l| &l.environment == environment)
            .ok_or_else(|| {
                Error::not_found(format!("a promotion lease on environment {environment}"))
            })?;
        let liveness = lease
            .process
            .as_ref()
            .map_or(Liveness::Unknown, HolderProcess::liveness);
        if liveness == Liveness::Alive && !force {
            return Err(Error::Busy {
                environment: environment.clone(),
                holder: format!(
                    "{}, whose process {} is still running on this machine",
                    lease.holder,
                    lease.process.as_ref().map_or(0, |p| p.pid)
                ),
                until: lease.expires.to_rfc3339(),
            });
        }
        if !self.parts.locks.break_lease(&lease).await? {
            return Err(Error::Conflict(format!(
                "the promotion lease of {environment} changed hands while it was being broken; look again"
            )));
        }
        let mut e = self.event(EventKind::LeaseBroken, actor, now);
        e.environment = Some(environment.clone());
        e.reason = Some(reason.to_string());
        e.details.insert("holder".into(), lease.holder.clone());
        e.details
            .insert("expires".into(), lease.expires.to_rfc3339());
        if let Some(p) = &lease.process {
            e.details
                .insert("holder_process".into(), format!("{}:{}", p.host, p.pid));
        }
        e.details.insert(
            "holder_liveness".into(),
            match liveness {
                Liveness::Alive => "alive",
                Liveness::Gone => "gone",
                Liveness::Unknown => "unknown",
            }
            .into(),
        );
        if force {
            e.details.insert("override".into(), "true".into());
        }
        let mut warnings = Vec::new();
        self.record(vec![e], &mut warnings).await?;
        Ok(lease)
    }
}
