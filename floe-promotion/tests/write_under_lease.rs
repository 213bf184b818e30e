//! Step 6 and 7 of the promotion path under faults and races: what changed while the gates ran
//! or the blobs were copied decides (a lock taken meanwhile refuses the write unless the
//! request overrides it), and a tag write whose reply was lost is read back so that history
//! agrees with the registry.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::manager::Outcome;
use floe_promotion::registry::{CopyMode, CopyReport, Descriptor, Manifest};
use floe_promotion::state::{EnvLock, LeaseHolder, LockStore};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn req(version: &str, from: &str, to: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, from, to, Actor::new("ci").unwrap()).unwrap()
}

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

/// Locks `environment` in `state` as `floe lock` would from another process.
async fn lock_from_elsewhere(p: &TestPipeline, environment: &str) {
    let now = p.clock.now();
    p.state
        .lock(
            EnvLock {
                environment: env(environment),
                owner: "ops".into(),
                reason: "incident 7".into(),
                created: now,
                expires: None,
            },
            now,
        )
        .await
        .unwrap();
}

/// A registry that forwards to the pipeline's in-memory registry, with faults:
/// - `lock_on_copy`: a lock on `staging` is taken while the blobs are copied;
/// - `lose_reply`: writes of tags containing this text are applied, but the caller is told
///   the registry did not answer;
/// - `refuse`: writes of tags containing this text are not applied and fail;
/// - `unreadable`: after a lost reply, reading the tag back fails too.
#[derive(Debug, Clone)]
struct Faulty {
    inner: InMemoryRegistry,
    pipeline: Arc<Mutex<Option<TestPipeline>>>,
    lock_on_copy: Arc<AtomicBool>,
    lose_reply: Arc<Mutex<Option<String>>>,
    refuse: Arc<Mutex<Option<String>>>,
    unreadable: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
}

impl Faulty {
    fn new(p: &TestPipeline) -> Self {
        Faulty {
            inner: p.registry.clone(),
            pipeline: Arc::new(Mutex::new(Some(p.clone()))),
            lock_on_copy: Arc::default(),
            lose_reply: Arc::default(),
            refuse: Arc::default(),
            unreadable: Arc::default(),
            lost: Arc::default(),
        }
    }

    fn matches(slot: &Mutex<Option<String>>, tag: Option<&Tag>) -> bool {
        let needle = slot.lock().unwrap().clone();
        matches!((needle, tag), (Some(n), Some(t)) if t.as_str().contains(&n))
    }
}

fn unavailable(what: &str) -> Error {
    Error::Unavailable {
        registry: "mem".into(),
        message: format!("{what}: connection reset before the reply"),
    }
}

#[async_trait]
impl ArtifactRegistry for Faulty {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        if self.unreadable.load(Ordering::SeqCst) && self.lost.load(Ordering::SeqCst) > 0 {
            return Err(unavailable("reading a manifest"));
        }
        self.inner.resolve(repo, reference).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        if Self::matches(&self.refuse, tag) {
            return Err(unavailable("writing a manifest"));
        }
        self.inner.put_manifest(repo, tag, manifest).await?;
        if Self::matches(&self.lose_reply, tag) {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err(unavailable("writing a manifest"));
        }
        Ok(())
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        self.inner.push_blob(repo, data).await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        self.inner.fetch_blob(repo, digest, max_bytes).await
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        let report = self.inner.copy(src, dst, digest).await?;
        if self.lock_on_copy.load(Ordering::SeqCst) {
            let p = self.pipeline.lock().unwrap().clone().unwrap();
            lock_from_elsewhere(&p, "staging").await;
        }
        Ok(report)
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        self.inner.list_tags(repo).await
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.inner.referrers(repo, subject).await
    }

    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        self.inner.copy_mode(src, dst)
    }
}

/// A gate that locks the target while it runs, as `floe lock staging` from another shell
/// during a slow gate would.
fn locking_gate(p: &TestPipeline) -> Arc<dyn PromotionGate> {
    let p = p.clone();
    Arc::new(gate_fn("slow-check", move |_ctx| {
        let p = p.clone();
        async move {
            lock_from_elsewhere(&p, "staging").await;
            Ok(GateOutcome::pass("checked"))
        }
    }))
}

#[tokio::test]
async fn a_lock_taken_while_the_gates_run_refuses_the_write() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .gate(env("staging"), locking_gate(&p))
        .build()
        .unwrap();
    let err = m.promote(req("v1", "dev", "staging")).await.unwrap_err();
    match &err {
        Error::Locked { lock } => assert_eq!(lock.reason, "incident 7"),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(p.tag_digest("staging", "app", "latest-staging").await, None);
    assert_eq!(p.tag_digest("staging", "app", "v1-staging").await, None);
    assert_eq!(
        p.event_kinds().await,
        [EventKind::PromotionRequested, EventKind::PromotionFailed]
    );
    assert!(
        m.status(Some(&env("staging"))).await.unwrap()[0]
            .deployments
            .is_empty()
    );
}

#[tokio::test]
async fn a_lock_taken_while_the_gates_run_is_passed_only_with_an_override_and_recorded() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let pushed = p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .gate(env("staging"), locking_gate(&p))
        .build()
        .unwrap();
    let r = m
        .promote(req("v1", "dev", "staging").override_lock("hotfix for incident 7"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Promoted);
    assert!(r.lock_overridden);
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(pushed.digest())
    );
    assert_eq!(
        p.event_kinds().await,
        [
            EventKind::PromotionRequested,
            EventKind::LockOverridden,
            EventKind::PromotionSucceeded
        ]
    );
    let events = p.history.query(&HistoryQuery::default()).await.unwrap();
    assert_eq!(events[1].record.details["lock_owner"], "ops");
    assert_eq!(events[1].record.details["lock_reason"], "incident 7");
}

#[tokio::test]
async fn a_lock_taken_while_the_blobs_are_copied_stops_the_tags() {
    let mut p = TestPipeline::new(&["dev", "staging"]);
    // Its own repository, so the promotion copies.
    p.env_mut("staging").repository = Some(Repository::new("mem/other").unwrap());
    p.push_release("app", "v1", b"one").await;
    let faulty = Faulty::new(&p);
    faulty.lock_on_copy.store(true, Ordering::SeqCst);
    let m = p.builder().registry(Arc::new(faulty)).build().unwrap();
    let err = m.promote(req("v1", "dev", "staging")).await.unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert_eq!(p.tag_digest("staging", "app", "latest-staging").await, None);
    assert_eq!(
        p.event_kinds().await,
        [EventKind::PromotionRequested, EventKind::PromotionFailed]
    );
}

#[tokio::test]
async fn a_lock_taken_while_a_rollback_waits_refuses_it() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging")).await.unwrap();
    m.promote(req("v2", "dev", "staging")).await.unwrap();
    // The lock arrives between the rollback's checks and its write: the lease is held by
    // someone else while the lock is taken, so the rollback waits, then must look again.
    let holder = p
        .state
        .acquire_lease(
            &env("staging"),
            &LeaseHolder::named("another promoter"),
            chrono::Duration::minutes(5),
            p.clock.now(),
        )
        .await
        .unwrap();
    let rollback = {
        let m = m.clone();
        tokio::spawn(async move {
            m.rollback(RollbackRequest::new(
                "app",
                "staging",
                "v1",
                Actor::new("ops").unwrap(),
                "bad release",
            )?)
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    lock_from_elsewhere(&p, "staging").await;
    p.state.release_lease(&holder).await.unwrap();
    let err = rollback.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging").await,
        Some(p.release_digest("app", "v2").await)
    );
    assert_eq!(
        p.event_kinds().await.last(),
        Some(&EventKind::RollbackFailed),
        "the refusal is recorded"
    );
}

#[tokio::test]
async fn a_pointer_write_applied_but_unanswered_is_recorded_as_a_success() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let pushed = p.push_release("app", "v1", b"one").await;
    let faulty = Faulty::new(&p);
    *faulty.lose_reply.lock().unwrap() = Some("latest-".into());
    let m = p
        .builder()
        .registry(Arc::new(faulty.clone()))
        .build()
        .unwrap();
    let r = m.promote(req("v1", "dev", "staging")).await.unwrap();
    assert_eq!(faulty.lost.load(Ordering::SeqCst), 1, "the fault fired");
    assert_eq!(r.outcome, Outcome::Promoted);
    let pointer = p.tag_digest("staging", "app", "latest-staging").await;
    assert_eq!(pointer.as_ref(), Some(pushed.digest()));
    // History and status agree with the registry.
    let status = m.status(Some(&env("staging"))).await.unwrap();
    assert_eq!(&status[0].deployments[0].digest, pushed.digest());
    let events = p.history.query(&HistoryQuery::default()).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.record.kind, EventKind::PromotionSucceeded);
    assert_eq!(
        last.record.details["confirmed_after_lost_reply"],
        "latest-staging"
    );
}

#[tokio::test]
async fn a_pointer_write_that_did_not_happen_is_a_failure_with_the_pointer_unchanged() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let v1 = p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let faulty = Faulty::new(&p);
    let m = p
        .builder()
        .registry(Arc::new(faulty.clone()))
        .build()
        .unwrap();
    m.promote(req("v1", "dev", "staging")).await.unwrap();
    *faulty.refuse.lock().unwrap() = Some("latest-".into());
    let err = m.promote(req("v2", "dev", "staging")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(v1.digest())
    );
    let status = m.status(Some(&env("staging"))).await.unwrap();
    assert_eq!(&status[0].deployments[0].digest, v1.digest());
    assert_eq!(
        p.event_kinds().await.last(),
        Some(&EventKind::PromotionFailed)
    );
}

#[tokio::test]
async fn a_lost_reply_that_cannot_be_read_back_fails_and_says_the_pointer_is_uncertain() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let faulty = Faulty::new(&p);
    *faulty.lose_reply.lock().unwrap() = Some("latest-".into());
    faulty.unreadable.store(true, Ordering::SeqCst);
    let m = p
        .builder()
        .registry(Arc::new(faulty.clone()))
        .build()
        .unwrap();
    let err = m.promote(req("v1", "dev", "staging")).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(text.contains("reading it back failed"), "{text}");
    assert!(text.contains("latest-staging"), "{text}");
    assert_eq!(
        p.event_kinds().await.last(),
        Some(&EventKind::PromotionFailed)
    );
}

#[tokio::test]
async fn a_rollback_pointer_write_applied_but_unanswered_is_recorded_as_a_success() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let v1 = p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let faulty = Faulty::new(&p);
    let m = p
        .builder()
        .registry(Arc::new(faulty.clone()))
        .build()
        .unwrap();
    m.promote(req("v1", "dev", "staging")).await.unwrap();
    m.promote(req("v2", "dev", "staging")).await.unwrap();
    *faulty.lose_reply.lock().unwrap() = Some("latest-".into());
    let r = m
        .rollback(
            RollbackRequest::new("app", "staging", "v1", Actor::new("ops").unwrap(), "bad")
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::RolledBack);
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(v1.digest())
    );
    let status = m.status(Some(&env("staging"))).await.unwrap();
    assert_eq!(&status[0].deployments[0].digest, v1.digest());
}
