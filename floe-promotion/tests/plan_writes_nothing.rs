//! `plan` (dry run) never writes: mocks assert that no tag, blob, copy, history event,
//! approval, lock, lease or notification is written, while reads answer like a real pipeline.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{
    AuditEvent, Deployment, EventKind, EventRecord, HistoryQuery, HistoryStore, InMemoryHistory,
};
use floe_promotion::registry::{ArtifactRegistry, CopyReport, Descriptor, Manifest};
use floe_promotion::release::{Release, ReleaseFilter, ReleaseState};
use floe_promotion::state::EnvLock;
use floe_promotion::*;
use mockall::mock;
use uuid::Uuid;

mod common;
use common::MockLocks;

// The traits take `Option<&T>` arguments, which mockall cannot mock directly: the mocks
// take owned values and thin forwarders implement the traits.
mock! {
    #[derive(Debug)]
    pub Registry {
        fn resolve(&self, repo: Repository, reference: Reference) -> Result<Manifest>;
        fn put_manifest(&self, repo: Repository, tag: Option<Tag>, digest: Digest) -> Result<()>;
        fn push_blob(&self, repo: Repository, len: usize) -> Result<Digest>;
        fn fetch_blob(&self, repo: Repository, digest: Digest, max_bytes: u64) -> Result<Vec<u8>>;
        fn copy(&self, src: Repository, dst: Repository, digest: Digest) -> Result<CopyReport>;
        fn list_tags(&self, repo: Repository) -> Result<Vec<Tag>>;
        fn referrers(&self, repo: Repository, subject: Digest) -> Result<Vec<Descriptor>>;
    }
}

#[derive(Debug)]
struct RegistrySpy(MockRegistry);

#[async_trait]
impl ArtifactRegistry for RegistrySpy {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        self.0.resolve(repo.clone(), reference.clone())
    }
    async fn put_manifest(&self, repo: &Repository, tag: Option<&Tag>, m: &Manifest) -> Result<()> {
        self.0
            .put_manifest(repo.clone(), tag.cloned(), m.digest().clone())
    }
    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        self.0.push_blob(repo.clone(), data.len())
    }
    async fn fetch_blob(&self, repo: &Repository, d: &Digest, max: u64) -> Result<Vec<u8>> {
        self.0.fetch_blob(repo.clone(), d.clone(), max)
    }
    async fn copy(&self, src: &Repository, dst: &Repository, d: &Digest) -> Result<CopyReport> {
        self.0.copy(src.clone(), dst.clone(), d.clone())
    }
    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        self.0.list_tags(repo.clone())
    }
    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.0.referrers(repo.clone(), subject.clone())
    }
}

mock! {
    #[derive(Debug)]
    pub History {
        fn append_batch(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>>;
        fn query(&self, query: HistoryQuery) -> Result<Vec<AuditEvent>>;
        fn deployments(&self, environment: Option<EnvName>) -> Result<Vec<Deployment>>;
    }
}

#[derive(Debug)]
struct HistorySpy(MockHistory);

#[async_trait]
impl HistoryStore for HistorySpy {
    async fn append_batch(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
        self.0.append_batch(records)
    }
    async fn query(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        self.0.query(query.clone())
    }
    async fn deployments(&self, environment: Option<&EnvName>) -> Result<Vec<Deployment>> {
        self.0.deployments(environment.cloned())
    }
}

mock! {
    #[derive(Debug)]
    pub Releases {}
    #[async_trait]
    impl ReleaseStore for Releases {
        async fn create(&self, release: Release) -> Result<Release>;
        async fn get(&self, id: Uuid) -> Result<Release>;
        async fn list(&self, filter: &ReleaseFilter) -> Result<Vec<Release>>;
        async fn update(&self, id: Uuid, expected_version: u64, state: ReleaseState, now: DateTime<Utc>) -> Result<Release>;
        async fn record_effect(&self, id: Uuid, key: &str) -> Result<bool>;
        async fn effects(&self, id: Uuid) -> Result<Vec<String>>;
    }
}

mock! {
    #[derive(Debug)]
    pub Notify {}
    #[async_trait]
    impl Notifier for Notify {
        async fn notify(&self, event: &AuditEvent) -> Result<()>;
    }
}

/// A manifest the mocked registry resolves, and the history a real pipeline would have after
/// promoting it into staging.
async fn fixture() -> (Manifest, Vec<AuditEvent>) {
    let real = InMemoryRegistry::new();
    let m = real
        .push_image(
            &Repository::new("mem/floe/app").unwrap(),
            &Tag::new("v1").unwrap(),
            &[b"x"],
        )
        .await
        .unwrap();
    let history = InMemoryHistory::new();
    let mut arrival = EventRecord::new(
        EventKind::PromotionSucceeded,
        Actor::new("ci").unwrap(),
        Utc::now() - chrono::Duration::days(2),
    );
    arrival.artifact = Some(ArtifactName::new("app").unwrap());
    arrival.version = Some(Tag::new("v1").unwrap());
    arrival.digest = Some(m.digest().clone());
    arrival.from = Some(EnvName::new("dev").unwrap());
    arrival.environment = Some(EnvName::new("staging").unwrap());
    let events = history.append_batch(vec![arrival]).await.unwrap();
    (m, events)
}

fn read_only_registry(manifest: Manifest) -> MockRegistry {
    let mut r = MockRegistry::new();
    r.expect_resolve()
        .returning(move |_, reference| match reference {
            // The source's release and environment tags resolve; the target has nothing yet.
            Reference::Tag(t) if t.as_str() == "v1" || t.as_str() == "v1-staging" => {
                Ok(manifest.clone())
            }
            Reference::Digest(d) if &d == manifest.digest() => Ok(manifest.clone()),
            other => Err(Error::not_found(format!("{other}"))),
        });
    r.expect_list_tags().returning(|_| Ok(vec![]));
    r.expect_referrers().returning(|_, _| Ok(vec![]));
    r.expect_fetch_blob()
        .returning(|_, d, _| Err(Error::not_found(d.to_string())));
    r.expect_put_manifest().never();
    r.expect_push_blob().never();
    r.expect_copy().never();
    r
}

fn read_only_history(events: Vec<AuditEvent>) -> MockHistory {
    let mut h = MockHistory::new();
    h.expect_query().returning(move |q| {
        let mut v: Vec<AuditEvent> = events.iter().filter(|e| q.matches(e)).cloned().collect();
        if q.order == floe_promotion::history::Order::NewestFirst {
            v.reverse();
        }
        if let Some(limit) = q.limit {
            v.truncate(limit);
        }
        Ok(v)
    });
    h.expect_deployments().returning(|_| Ok(vec![]));
    h.expect_append_batch().never();
    h
}

fn no_writes_locks(locked: bool) -> MockLocks {
    let mut l = MockLocks::new();
    l.expect_get_lock().returning(move |env, now| {
        Ok(locked.then(|| EnvLock {
            environment: env.clone(),
            owner: "ops".into(),
            reason: "incident".into(),
            created: now,
            expires: None,
        }))
    });
    l.expect_lock().never();
    l.expect_unlock().never();
    l.expect_acquire_lease().never();
    l.expect_release_lease().never();
    l.expect_break_lease().never();
    l
}

/// Release state (approval requests) may be read, never written.
fn no_release_writes() -> MockReleases {
    let mut r = MockReleases::new();
    r.expect_list().returning(|_| Ok(vec![]));
    r.expect_create().never();
    r.expect_update().never();
    r.expect_record_effect().never();
    r
}

fn silent_notifier() -> MockNotify {
    let mut n = MockNotify::new();
    n.expect_notify().never();
    n
}

fn manager(
    manifest: Manifest,
    events: Vec<AuditEvent>,
    locked: bool,
    gate_passes: bool,
) -> DefaultPromotionManager {
    let envs = ["dev", "staging", "prod"].map(|n| Environment::new(EnvName::new(n).unwrap()));
    let config = InMemoryConfig::new(
        PromotionSettings::new(envs.to_vec()).with_registry(Repository::new("mem/floe").unwrap()),
    )
    .unwrap();
    DefaultPromotionManager::builder()
        .config(Arc::new(config))
        .registry(Arc::new(RegistrySpy(read_only_registry(manifest))))
        .history(Arc::new(HistorySpy(read_only_history(events))))
        .locks(Arc::new(no_writes_locks(locked)))
        .releases(Arc::new(no_release_writes()))
        .notifier(Arc::new(silent_notifier()))
        .gate_for_all(Arc::new(gate_fn("verdict", move |_| async move {
            Ok(if gate_passes {
                GateOutcome::pass("ok")
            } else {
                GateOutcome::fail("no")
            })
        })))
        .build()
        .unwrap()
}

#[tokio::test]
async fn plan_of_a_passing_promotion_writes_nothing() {
    let (m, events) = fixture().await;
    let plan = manager(m.clone(), events, false, true)
        .plan(
            PromotionRequest::new("app", "v1", "dev", "staging", Actor::new("ci").unwrap())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(plan.would_succeed(), "{:?}", plan.blockers);
    assert_eq!(plan.digest.as_ref(), Some(m.digest()));
    assert_eq!(plan.tags.len(), 2);
}

#[tokio::test]
async fn plan_of_a_blocked_promotion_writes_nothing() {
    let (m, events) = fixture().await;
    let plan = manager(m, events, true, false)
        .plan(
            PromotionRequest::new("app", "v1", "staging", "prod", Actor::new("ops").unwrap())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(plan.blockers.len(), 2, "{:?}", plan.blockers);
    assert!(matches!(plan.blockers[0], Error::Locked { .. }));
    assert!(matches!(plan.blockers[1], Error::GateFailed { .. }));
}

#[tokio::test]
async fn plan_of_a_rollback_writes_nothing() {
    let (m, events) = fixture().await;
    let plan = manager(m.clone(), events, true, true)
        .plan_rollback(
            RollbackRequest::new("app", "staging", "v1", Actor::new("ops").unwrap(), "revert")
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(plan.digest.as_ref(), Some(m.digest()));
    let tags: Vec<&str> = plan.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["v1-staging-rollback-1", "latest-staging"]);
    assert!(
        matches!(plan.blockers[..], [Error::Locked { .. }]),
        "{:?}",
        plan.blockers
    );
}
