//! A ready-made in-memory pipeline for tests of the promotion path and of embedders' gates.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::ManualClock;
use crate::config::{Environment, EnvironmentConfig, InMemoryConfig, PromotionSettings};
use crate::error::Result;
use crate::gate::GateContext;
use crate::history::InMemoryHistory;
use crate::manager::{DefaultPromotionManager, PromotionManagerBuilder};
use crate::model::{Actor, ArtifactName, Digest, EnvName, Reference, Repository, Tag};
use crate::notify::RecordingNotifier;
use crate::registry::{ArtifactRegistry, InMemoryRegistry, Manifest};
use crate::state::InMemoryState;

/// In-memory parts wired together: registry, history, state, a manual clock and a recording
/// notifier. Settings can be changed before [`TestPipeline::builder`] is called.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use floe_promotion::testing::pipeline::TestPipeline;
/// use floe_promotion::{Promotions, PromotionRequest};
/// let p = TestPipeline::new(&["dev", "staging"]);
/// p.push_release("app", "v1", b"one").await;
/// let manager = p.manager();
/// manager.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
///     .await
///     .unwrap();
/// assert_eq!(p.tag_digest("staging", "app", "latest-staging").await, Some(p.release_digest("app", "v1").await));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TestPipeline {
    /// The registry.
    pub registry: InMemoryRegistry,
    /// The history.
    pub history: InMemoryHistory,
    /// Locks, leases and holds.
    pub state: InMemoryState,
    /// The clock, starting at 2026-01-05T12:00:00Z (a Monday).
    pub clock: ManualClock,
    /// Receives every notification.
    pub notifier: RecordingNotifier,
    /// The settings; every environment shares the repository namespace `mem/floe`.
    pub settings: PromotionSettings,
}

/// The pipeline clock's starting time.
pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl TestPipeline {
    /// A pipeline with these environments in order.
    pub fn new(environments: &[&str]) -> Self {
        let envs = environments
            .iter()
            .map(|n| Environment::new(EnvName::new(*n).expect("valid environment name")))
            .collect();
        TestPipeline {
            registry: InMemoryRegistry::new(),
            history: InMemoryHistory::new(),
            state: InMemoryState::new(),
            clock: ManualClock::new(start_time()),
            notifier: RecordingNotifier::new(),
            settings: PromotionSettings::new(envs)
                .with_registry(Repository::new("mem/floe").expect("valid repository")),
        }
    }

    /// The settings of one environment, to change them.
    pub fn env_mut(&mut self, name: &str) -> &mut Environment {
        self.settings
            .environments
            .iter_mut()
            .find(|e| e.name.as_str() == name)
            .expect("environment exists")
    }

    /// A builder wired with every part of the pipeline.
    pub fn builder(&self) -> PromotionManagerBuilder {
        DefaultPromotionManager::builder()
            .config(Arc::new(
                InMemoryConfig::new(self.settings.clone()).expect("valid settings"),
            ))
            .registry(Arc::new(self.registry.clone()))
            .history(Arc::new(self.history.clone()))
            .locks(Arc::new(self.state.clone()))
            .holds(Arc::new(self.state.clone()))
            .revocations(Arc::new(self.state.clone()))
            .clock(Arc::new(self.clock.clone()))
            .notifier(Arc::new(self.notifier.clone()))
    }

    /// The manager with no extra gates.
    pub fn manager(&self) -> DefaultPromotionManager {
        self.builder().build().expect("manager builds")
    }

    /// An actor.
    pub fn actor(&self, id: &str) -> Actor {
        Actor::new(id).expect("valid actor")
    }

    /// Where `artifact` lives in `env`.
    pub fn repo(&self, env: &str, artifact: &str) -> Repository {
        InMemoryConfig::new(self.settings.clone())
            .expect("valid settings")
            .repository(
                &EnvName::new(env).expect("valid env"),
                &ArtifactName::new(artifact).expect("valid artifact"),
            )
            .expect("repository")
    }

    /// Pushes a release `artifact:version` into the first environment, as CI would.
    pub async fn push_release(&self, artifact: &str, version: &str, content: &[u8]) -> Manifest {
        let first = self.settings.environments[0].name.to_string();
        self.registry
            .push_image(
                &self.repo(&first, artifact),
                &Tag::new(version).expect("valid tag"),
                &[content],
            )
            .await
            .expect("push")
    }

    /// The digest of a release tag in the first environment.
    pub async fn release_digest(&self, artifact: &str, version: &str) -> Digest {
        let first = self.settings.environments[0].name.to_string();
        self.tag_digest(&first, artifact, version)
            .await
            .expect("release exists")
    }

    /// The context a gate sees when `artifact:version` (a release in the first environment)
    /// is promoted from `from` to `to` by `actor`: for unit tests of gates.
    pub async fn gate_context(
        &self,
        artifact: &str,
        version: &str,
        from: &str,
        to: &str,
        actor: &str,
    ) -> GateContext {
        let first = self.settings.environments[0].name.to_string();
        let source = self.repo(&first, artifact);
        let manifest = self
            .registry
            .resolve(
                &source,
                &Reference::Tag(Tag::new(version).expect("valid tag")),
            )
            .await
            .expect("the release exists");
        GateContext {
            artifact: ArtifactName::new(artifact).expect("valid artifact"),
            version: Tag::new(version).expect("valid tag"),
            digest: manifest.digest().clone(),
            manifest,
            source,
            from: EnvName::new(from).expect("valid env"),
            to: EnvName::new(to).expect("valid env"),
            actor: self.actor(actor),
            now: crate::Clock::now(&self.clock),
            registry: Arc::new(self.registry.clone()),
            history: Arc::new(self.history.clone()),
        }
    }

    /// What `tag` resolves to in `env`'s repository of `artifact`, if it exists.
    pub async fn tag_digest(&self, env: &str, artifact: &str, tag: &str) -> Option<Digest> {
        self.try_tag_digest(env, artifact, tag).await.ok()
    }

    async fn try_tag_digest(&self, env: &str, artifact: &str, tag: &str) -> Result<Digest> {
        let m = self
            .registry
            .resolve(&self.repo(env, artifact), &Reference::Tag(Tag::new(tag)?))
            .await?;
        Ok(m.digest().clone())
    }

    /// The kinds of every recorded event, oldest first.
    pub async fn event_kinds(&self) -> Vec<crate::history::EventKind> {
        use crate::history::{HistoryQuery, HistoryStore};
        self.history
            .query(&HistoryQuery::default())
            .await
            .map(|events| events.into_iter().map(|e| e.record.kind).collect())
            .unwrap_or_default()
    }
}
