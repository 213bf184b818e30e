use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::types::{
    ApprovalOutcome, ApprovalView, EnvironmentStatus, Outcome, PlannedApproval, PlannedTag,
    PromotionPlan, PromotionRecord, PromotionRequest, RollbackRequest, TagAction,
};
use super::{Administration, Approvals, AutoPromotions, PromotionManagerBuilder, Promotions};
use crate::clock::Clock;
use crate::config::{
    ApprovalPolicy, ApprovalSeparation, CanaryStep, Environment, EnvironmentConfig, Strategy,
    WindowState,
};
use crate::error::{Error, Result};
use crate::gate::{
    GateContext, GateResult, GateStatus, PromotionGate, run_gates, run_gates_shared,
};
use crate::history::{
    ApprovalDecided, ApprovalExpired, ApprovalRequested, AuditEvent, Decision, EventKind,
    EventRecord, EvidenceAttached, Failed, HistoryQuery, HistoryStore, HostProcess, LeaseBroken,
    LockDetails, Locked, Order, Payload, PromotionSucceeded, RollbackSucceeded, VerifyReport,
    WindowOverridden,
};
use crate::model::{Actor, ArtifactName, Dependency, Digest, EnvName, Reference, Repository, Tag};
use crate::notify::{Delivery, Dispatcher};
use crate::policy::input::{Reasoned, check_text_input, require_reason};
use crate::policy::{Check, CheckContext, Operation, Stage, Subject, authorize, run_checks};
use crate::registry::{ArtifactRegistry, CopyMode, CopyReport, Manifest};
use crate::release::ReleaseStore;
use crate::state::{
    EnvLock, Hold, HoldKind, HoldStore, HolderProcess, Lease, LeaseHolder, Liveness, LockStore,
};

mod admin;
mod approvals;
mod auto;
mod blue_green;
mod canary;
mod dependencies;
mod evaluate;
mod execute;
mod holds;
mod promote;
mod revocations;
mod rollback;
mod switch;

use evaluate::Evaluation;
use execute::{Tail, Written};

pub(in crate::manager) struct Parts {
    pub(in crate::manager) config: Arc<dyn EnvironmentConfig>,
    pub(in crate::manager) registry: Arc<dyn ArtifactRegistry>,
    pub(in crate::manager) history: Arc<dyn HistoryStore>,
    pub(in crate::manager) locks: Arc<dyn LockStore>,
    pub(in crate::manager) holds: Arc<dyn HoldStore>,
    pub(in crate::manager) revocations: Arc<dyn crate::state::RevocationStore>,
    pub(in crate::manager) dispatcher: Arc<Dispatcher>,
    pub(in crate::manager) releases: Arc<dyn ReleaseStore>,
    pub(in crate::manager) background_delivery: bool,
    pub(in crate::manager) clock: Arc<dyn Clock>,
    pub(in crate::manager) gates: HashMap<EnvName, Vec<Arc<dyn PromotionGate>>>,
    pub(in crate::manager) lease_wait: std::time::Duration,
    pub(in crate::manager) checks: Vec<Box<dyn Check>>,
}

/// The [`PromotionManager`](crate::PromotionManager) of the library, assembled from parts with
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
            .field("dispatcher", &p.dispatcher)
            .field("clock", &p.clock)
            .finish_non_exhaustive()
    }
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

    pub(in crate::manager) fn from_parts(parts: Parts) -> Self {
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

    /// The release store (approval requests).
    pub fn release_store(&self) -> &Arc<dyn ReleaseStore> {
        &self.parts.releases
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
        self.parts.registry.resolve_tag(repo, tag).await
    }

    fn check_authorized(
        &self,
        env: &Environment,
        actor: &Actor,
        action: &'static str,
    ) -> Result<()> {
        authorize(env, actor, action).map_or(Ok(()), Err)
    }

    fn event(&self, kind: EventKind, actor: &Actor, now: DateTime<Utc>) -> EventRecord {
        EventRecord::new(kind, actor.clone(), now)
    }

    /// Appends events (one commit). Notifiers hear of them afterwards, from the outbox: the
    /// stored events are handed to it and a delivery run starts in the background. Under a
    /// lease, use [`Self::record_in_lease`]; for the stored events, [`Self::record_stored`].
    async fn record(&self, records: Vec<EventRecord>) -> Result<()> {
        let stored = self.record_in_lease(records).await?;
        self.parts.dispatcher.committed(stored);
        self.kick_notifications();
        Ok(())
    }

    /// [`Self::record`], returning the stored events (the outbox reads them from history).
    async fn record_stored(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
        let stored = self.parts.history.append_batch(records).await?;
        self.kick_notifications();
        Ok(stored)
    }

    /// Appends events without starting a delivery run: the caller holds a lease and starts
    /// one after releasing it, so no notifier ever runs inside a lease. The stored events are
    /// returned shared, to be handed to the outbox without a copy.
    async fn record_in_lease(&self, records: Vec<EventRecord>) -> Result<Vec<Arc<AuditEvent>>> {
        self.parts.history.append_batch_shared(records).await
    }

    /// Starts a delivery run in the background when there are notifiers and a runtime.
    fn kick_notifications(&self) {
        if self.parts.dispatcher.is_empty() || !self.parts.background_delivery {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && self.parts.dispatcher.schedule()
        {
            let dispatcher = Arc::clone(&self.parts.dispatcher);
            runtime.spawn(async move {
                if let Err(e) = dispatcher.deliver_scheduled().await {
                    tracing::warn!(error = %e, "notification delivery failed; retried on the next run");
                }
            });
        }
    }

    /// Delivers every committed event the notifiers have not acknowledged yet, and waits for
    /// it: each notifier from its cursor, in order. A notifier that fails keeps its events for
    /// the next run; the report says why. Embedders call it before exiting, or on a timer.
    pub async fn deliver_notifications(&self) -> Result<Vec<Delivery>> {
        self.parts.dispatcher.deliver().await
    }
}

#[async_trait]
impl Promotions for DefaultPromotionManager {
    async fn promote(&self, req: PromotionRequest) -> Result<PromotionRecord> {
        // Not through `run_promote`: every level of `async fn` is one more move of the whole
        // promotion's state when it starts.
        self.run_promote_in(req, None).await
    }

    async fn plan(&self, req: PromotionRequest) -> Result<PromotionPlan> {
        self.run_plan(req).await
    }

    async fn rollback(&self, req: RollbackRequest) -> Result<PromotionRecord> {
        self.run_rollback(req).await
    }

    async fn plan_rollback(&self, req: RollbackRequest) -> Result<PromotionPlan> {
        self.run_plan_rollback(req).await
    }
}

#[async_trait]
impl Administration for DefaultPromotionManager {
    async fn lock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        expires_in: Option<Duration>,
    ) -> Result<EnvLock> {
        self.run_lock(environment, actor, reason, expires_in).await
    }

    async fn unlock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<EnvLock> {
        self.run_unlock(environment, actor, reason).await
    }

    async fn status(&self, environment: Option<&EnvName>) -> Result<Vec<EnvironmentStatus>> {
        self.run_status(environment).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        self.run_history(query).await
    }

    async fn verify(&self) -> Result<VerifyReport> {
        self.run_verify().await
    }

    async fn leases(&self) -> Result<Vec<Lease>> {
        self.run_leases().await
    }

    async fn break_lease(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        force: bool,
    ) -> Result<Lease> {
        self.run_break_lease(environment, actor, reason, force)
            .await
    }
}

#[async_trait]
impl Approvals for DefaultPromotionManager {
    async fn approvals(
        &self,
        environment: Option<&EnvName>,
        status: Option<crate::release::approval::Phase>,
    ) -> Result<Vec<ApprovalView>> {
        self.run_approvals(environment, status).await
    }

    async fn approve(
        &self,
        id: Uuid,
        actor: &Actor,
        comment: Option<&str>,
    ) -> Result<ApprovalOutcome> {
        self.run_approve(id, approvals::Voter::Claimed(actor), comment)
            .await
    }

    async fn reject(&self, id: Uuid, actor: &Actor, reason: &str) -> Result<ApprovalView> {
        self.run_reject(id, approvals::Voter::Claimed(actor), reason)
            .await
    }

    async fn approve_signed(
        &self,
        id: Uuid,
        signature: &crate::model::VoteSignature,
        comment: Option<&str>,
    ) -> Result<ApprovalOutcome> {
        self.run_approve(id, approvals::Voter::Signed(signature), comment)
            .await
    }

    async fn reject_signed(
        &self,
        id: Uuid,
        signature: &crate::model::VoteSignature,
        reason: &str,
    ) -> Result<ApprovalView> {
        self.run_reject(id, approvals::Voter::Signed(signature), reason)
            .await
    }

    async fn execute(&self, id: Uuid, actor: &Actor) -> Result<PromotionRecord> {
        self.run_execute(id, actor).await
    }
}
