//! A stale promotion lease has a way out: `leases` lists the leases in force and
//! `break_lease` removes one, audited, refused while the holder's process is provably alive on
//! this machine unless the request is a break-glass override.

use floe_promotion::config::Authorization;
use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::registry::{CopyReport, Descriptor, Manifest};
use floe_promotion::state::{HolderProcess, Lease, LeaseHolder, Liveness};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

mod common;
use common::MockLocks;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

/// A process that ran on this machine and exited.
fn exited_process() -> HolderProcess {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let me = HolderProcess::current().unwrap();
    HolderProcess {
        host: me.host,
        pid,
        start_ticks: None,
    }
}

async fn hold(p: &TestPipeline, holder: LeaseHolder) -> floe_promotion::state::Lease {
    p.state
        .acquire_lease(
            &env("staging"),
            &holder,
            chrono::Duration::minutes(15),
            p.clock.now(),
        )
        .await
        .unwrap()
}

async fn last_event(p: &TestPipeline) -> floe_promotion::history::AuditEvent {
    p.history
        .query(&HistoryQuery::default())
        .await
        .unwrap()
        .pop()
        .unwrap()
}

#[tokio::test]
async fn a_lease_left_by_a_dead_promoter_is_broken_and_recorded() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .lease_wait(std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    let dead = LeaseHolder {
        name: "ci (killed)".into(),
        process: Some(exited_process()),
    };
    let stale = hold(&p, dead).await;
    assert_eq!(m.leases().await.unwrap(), vec![stale.clone()]);
    let req = || PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap();

    let broken = m
        .break_lease(
            &env("staging"),
            &p.actor("ops"),
            "promoter was killed",
            false,
        )
        .await
        .unwrap();
    assert_eq!(broken, stale);
    assert!(m.leases().await.unwrap().is_empty());
    let e = last_event(&p).await;
    assert_eq!(e.record.kind, EventKind::LeaseBroken);
    assert_eq!(e.record.actor.id, "ops");
    assert_eq!(e.record.reason.as_deref(), Some("promoter was killed"));
    assert_eq!(e.record.details["holder"], "ci (killed)");
    assert_eq!(e.record.details["holder_liveness"], "gone");
    assert!(!e.record.details.contains_key("override"));
    m.promote(req()).await.unwrap();
}

/// The next promoter takes over a lease whose holder ran on this machine and is gone (a
/// promoter killed mid-promotion), recording who broke it and why; a lease whose holder may
/// still run (here, or on another machine) keeps it out until `lease_wait` runs out.
#[tokio::test]
async fn a_promoter_takes_over_a_lease_whose_holder_is_gone_and_only_that() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .lease_wait(std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    let req = || PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap();

    let mut elsewhere = HolderProcess::current().unwrap();
    elsewhere.host.push_str("-other-machine");
    for holder in [
        LeaseHolder::this_process("ci (running)"),
        LeaseHolder {
            name: "ci (elsewhere)".into(),
            process: Some(elsewhere),
        },
        LeaseHolder::named("old client"),
    ] {
        let held = hold(&p, holder).await;
        let busy = m.promote(req()).await.unwrap_err();
        assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
        assert_eq!(m.leases().await.unwrap(), vec![held.clone()], "still held");
        assert!(p.state.break_lease(&held).await.unwrap());
    }
    let before = p.history.query(&HistoryQuery::default()).await.unwrap();
    assert!(
        before
            .iter()
            .all(|e| e.record.kind != EventKind::LeaseBroken),
        "nothing was taken over: {before:?}"
    );

    let dead = hold(
        &p,
        LeaseHolder {
            name: "ci (killed)".into(),
            process: Some(exited_process()),
        },
    )
    .await;
    let record = m.promote(req()).await.unwrap();
    assert_eq!(record.outcome, floe_promotion::manager::Outcome::Promoted);
    assert!(
        m.leases().await.unwrap().is_empty(),
        "released after the promotion"
    );
    let events = p.history.query(&HistoryQuery::default()).await.unwrap();
    let broken = events
        .iter()
        .find(|e| e.record.kind == EventKind::LeaseBroken)
        .expect("the takeover is recorded");
    assert_eq!(broken.record.actor.id, "ci");
    assert_eq!(broken.record.details["holder"], "ci (killed)");
    assert_eq!(broken.record.details["holder_liveness"], "gone");
    let reason = broken.record.reason.as_deref().unwrap();
    assert!(reason.starts_with("taken over"), "{reason}");
    assert!(
        reason.contains(&dead.process.unwrap().pid.to_string()),
        "{reason}"
    );
    let succeeded = events
        .iter()
        .position(|e| e.record.kind == EventKind::PromotionSucceeded)
        .unwrap();
    assert!(
        events
            .iter()
            .position(|e| e.record.kind == EventKind::LeaseBroken)
            .unwrap()
            < succeeded
    );
}

#[tokio::test]
async fn a_lease_whose_holder_is_alive_here_is_refused_without_an_override() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let m = p.manager();
    let held = hold(&p, LeaseHolder::this_process("ci (running)")).await;
    assert_eq!(
        held.process.as_ref().map(HolderProcess::liveness),
        Some(Liveness::Alive)
    );
    let err = m
        .break_lease(&env("staging"), &p.actor("ops"), "looks stuck", false)
        .await
        .unwrap_err();
    match &err {
        Error::Busy { holder, .. } => {
            assert!(holder.contains("still running on this machine"), "{err}")
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(m.leases().await.unwrap(), vec![held.clone()]);
    let before = p.history.query(&HistoryQuery::default()).await.unwrap();
    assert!(before.is_empty(), "a refusal records nothing: {before:?}");

    m.break_lease(&env("staging"), &p.actor("ops"), "break-glass", true)
        .await
        .unwrap();
    assert!(m.leases().await.unwrap().is_empty());
    let e = last_event(&p).await;
    assert_eq!(e.record.kind, EventKind::LeaseBroken);
    assert_eq!(e.record.details["override"], "true");
    assert_eq!(e.record.details["holder_liveness"], "alive");
}

#[tokio::test]
async fn a_lease_from_another_machine_or_without_a_process_can_be_broken() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let m = p.manager();
    let mut elsewhere = HolderProcess::current().unwrap();
    elsewhere.host.push_str("-other-machine");
    hold(
        &p,
        LeaseHolder {
            name: "ci".into(),
            process: Some(elsewhere),
        },
    )
    .await;
    m.break_lease(&env("staging"), &p.actor("ops"), "host is gone", false)
        .await
        .unwrap();
    assert_eq!(
        last_event(&p).await.record.details["holder_liveness"],
        "unknown"
    );
    hold(&p, LeaseHolder::named("old client")).await;
    m.break_lease(&env("staging"), &p.actor("ops"), "old client died", false)
        .await
        .unwrap();
    assert!(m.leases().await.unwrap().is_empty());
}

#[tokio::test]
async fn breaking_needs_a_reason_a_lease_and_authorization() {
    let mut p = TestPipeline::new(&["dev", "staging"]);
    p.env_mut("staging").authorization = Authorization {
        allowed_operators: vec!["ops".into()],
        ..Authorization::default()
    };
    let m = p.manager();
    let err = m
        .break_lease(&env("staging"), &p.actor("ops"), "nothing held", false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    hold(&p, LeaseHolder::named("gone")).await;
    let err = m
        .break_lease(&env("staging"), &p.actor("ops"), "  ", false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = m
        .break_lease(&env("staging"), &p.actor("mallory"), "mine now", false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let err = m
        .break_lease(&env("nowhere"), &p.actor("ops"), "x", false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(m.leases().await.unwrap().len(), 1, "still held");
    assert!(
        p.history
            .query(&HistoryQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A registry that, at each tag write (under the promotion lease), notes the leases in force;
/// and at each read, what was read and how many leases were in force.
#[derive(Debug, Clone)]
struct LeaseWatcher {
    inner: InMemoryRegistry,
    state: floe_promotion::InMemoryState,
    clock: ManualClock,
    seen: std::sync::Arc<std::sync::Mutex<Vec<floe_promotion::state::Lease>>>,
    reads: std::sync::Arc<std::sync::Mutex<Vec<(String, usize)>>>,
}

impl LeaseWatcher {
    fn of(p: &TestPipeline) -> Self {
        LeaseWatcher {
            inner: p.registry.clone(),
            state: p.state.clone(),
            clock: p.clock.clone(),
            seen: Default::default(),
            reads: Default::default(),
        }
    }

    /// The reads of `reference`, each with the number of leases in force then.
    fn reads_of(&self, reference: &str) -> Vec<usize> {
        let reads = self.reads.lock().unwrap();
        reads
            .iter()
            .filter(|(r, _)| r == reference)
            .map(|(_, n)| *n)
            .collect()
    }
}

#[async_trait]
impl ArtifactRegistry for LeaseWatcher {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        let leases = self.state.leases(self.clock.now()).await?;
        self.reads
            .lock()
            .unwrap()
            .push((reference.to_string(), leases.len()));
        self.inner.resolve(repo, reference).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        let leases = self.state.leases(self.clock.now()).await?;
        self.seen.lock().unwrap().extend(leases);
        self.inner.put_manifest(repo, tag, manifest).await
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        self.inner.push_blob(repo, data).await
    }

    async fn fetch_blob(&self, repo: &Repository, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        self.inner.fetch_blob(repo, digest, max).await
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        self.inner.copy(src, dst, digest).await
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        self.inner.list_tags(repo).await
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.inner.referrers(repo, subject).await
    }
}

#[tokio::test]
async fn promotions_record_their_process_in_the_lease() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let watcher = LeaseWatcher::of(&p);
    let m = p
        .builder()
        .registry(std::sync::Arc::new(watcher.clone()))
        .build()
        .unwrap();
    m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    let seen = watcher.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        2,
        "one lease seen at each of the two tag writes: {seen:?}"
    );
    assert_eq!(seen[0], seen[1]);
    assert!(seen[0].holder.starts_with("ci ("), "{}", seen[0].holder);
    assert_eq!(seen[0].process, HolderProcess::current());
    assert!(
        m.leases().await.unwrap().is_empty(),
        "released after the promotion"
    );
}

/// Promotes `app:v1` from dev to staging through `watcher`, with `gate` on staging if given;
/// checks that no lease is left.
async fn promote_watched(
    p: &TestPipeline,
    watcher: &LeaseWatcher,
    gate: Option<std::sync::Arc<dyn PromotionGate>>,
) {
    let mut builder = p.builder().registry(std::sync::Arc::new(watcher.clone()));
    if let Some(gate) = gate {
        builder = builder.gate(env("staging"), gate);
    }
    let m = builder.build().unwrap();
    m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    assert!(m.leases().await.unwrap().is_empty(), "released");
}

/// Into an environment without gates, approval or release strategy nothing slow runs before
/// the writes: the lease is taken first, every read of the target's tags is made under it,
/// and the environment tag is read once. With a gate, the gate runs outside any lease, and
/// the environment tag is read again under the lease taken after it.
#[tokio::test]
async fn the_lease_covers_a_promotion_without_gates_and_follows_the_gates_otherwise() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let watcher = LeaseWatcher::of(&p);
    promote_watched(&p, &watcher, None).await;
    assert_eq!(
        watcher.reads_of(":v1-staging"),
        [1],
        "read once, under the lease"
    );
    assert_eq!(watcher.reads_of(":latest-staging"), [1]);

    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let watcher = LeaseWatcher::of(&p);
    let in_gate = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let gate = {
        let (state, clock, in_gate) = (p.state.clone(), p.clock.clone(), in_gate.clone());
        floe_promotion::gate::gate_fn("watch", move |_ctx| {
            let (state, clock, in_gate) = (state.clone(), clock.clone(), in_gate.clone());
            async move {
                let leases = state.leases(clock.now()).await?;
                in_gate.lock().unwrap().push(leases.len());
                Ok(floe_promotion::gate::GateOutcome::pass("watched"))
            }
        })
    };
    promote_watched(&p, &watcher, Some(std::sync::Arc::new(gate))).await;
    assert_eq!(
        *in_gate.lock().unwrap(),
        [0],
        "the gate ran outside any lease"
    );
    assert_eq!(
        watcher.reads_of(":v1-staging"),
        [0, 1],
        "read while checking, then again under the lease"
    );
}

/// A lease taken before the checks is given back when the promotion fails before any write:
/// a version missing from the source, and a locked target, leave no lease behind.
#[tokio::test]
async fn a_lease_taken_first_is_given_back_when_the_checks_refuse() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let m = p.manager();
    let missing = m
        .promote(PromotionRequest::new("app", "v9", "dev", "staging", p.actor("ci")).unwrap())
        .await;
    assert!(missing.is_err(), "{missing:?}");
    assert!(m.leases().await.unwrap().is_empty(), "released");

    p.push_release("app", "v1", b"one").await;
    m.lock(&env("staging"), &p.actor("ops"), "incident", None)
        .await
        .unwrap();
    let locked = m
        .promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await;
    assert!(matches!(locked, Err(Error::Locked { .. })), "{locked:?}");
    assert!(m.leases().await.unwrap().is_empty(), "released");
}

/// The lock of step 6 is read under the lease, once: into an environment without gates the
/// evaluation's read is made under the lease taken first, and is not repeated before the
/// writes; with a gate, the lock is read while checking and again under the lease taken after
/// the gate. The mock asserts the number of reads and notes whether a lease was held at each.
#[tokio::test]
async fn the_lock_is_read_under_the_lease_once_without_gates_and_again_after_gates() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    for (with_gate, expected) in [(false, vec![1]), (true, vec![0, 1])] {
        let p = TestPipeline::new(&["dev", "staging"]);
        p.push_release("app", "v1", b"one").await;
        let held = Arc::new(AtomicUsize::new(0));
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut locks = MockLocks::new();
        locks.expect_acquire_lease().times(1).returning({
            let held = held.clone();
            move |environment, holder, ttl, now| {
                held.fetch_add(1, Ordering::SeqCst);
                Ok(Lease {
                    environment: environment.clone(),
                    holder: holder.name.clone(),
                    token: uuid::Uuid::new_v4(),
                    acquired: now,
                    expires: now + ttl,
                    process: holder.process.clone(),
                })
            }
        });
        locks.expect_release_lease().times(1).returning({
            let held = held.clone();
            move |_| {
                held.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        });
        locks.expect_get_lock().times(expected.len()).returning({
            let reads = reads.clone();
            move |_, _| {
                reads.lock().unwrap().push(held.load(Ordering::SeqCst));
                Ok(None)
            }
        });
        let mut builder = p.builder().locks(Arc::new(locks));
        if with_gate {
            let gate = floe_promotion::gate::gate_fn("pass", |_ctx| async {
                Ok(floe_promotion::gate::GateOutcome::pass("passed"))
            });
            builder = builder.gate(env("staging"), Arc::new(gate));
        }
        let m = builder.build().unwrap();
        m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
            .await
            .unwrap();
        assert_eq!(
            *reads.lock().unwrap(),
            expected,
            "leases held at each read of the lock (with a gate: {with_gate})"
        );
    }
}
