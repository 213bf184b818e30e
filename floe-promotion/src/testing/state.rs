//! Conformance suite of [`LockStore`]: one public async function per
//! sentence of the traits' contracts. Run it with
//! [`state_conformance!`](crate::state_conformance).
//!
//! Each case gets fresh, empty stores. Stores take the current time as an argument, so the
//! cases move time by passing later instants.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::error::Error;
use crate::model::EnvName;
use crate::state::{EnvLock, HolderProcess, Lease, LeaseHolder, LockStore};

/// Something that gives the store under test, and keeps whatever it needs alive (a
/// temporary directory) for as long as the case runs.
///
/// # Contract
///
/// - `locks` returns the same store every time it is called on one fixture, fresh (empty)
///   for each case.
pub trait StateFixture: Send + 'static {
    /// The lock store under test.
    fn locks(&self) -> Arc<dyn LockStore>;
}

impl<G: Send + 'static> StateFixture for (Arc<dyn LockStore>, G) {
    fn locks(&self) -> Arc<dyn LockStore> {
        self.0.clone()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 7, 8, 9, 10)
        .single()
        .expect("valid date")
        + Duration::nanoseconds(500_000_001)
}

fn env(s: &str) -> EnvName {
    EnvName::new(s).expect("test environment names are valid")
}

fn env_lock(environment: &str, owner: &str, expires: Option<DateTime<Utc>>) -> EnvLock {
    EnvLock {
        environment: env(environment),
        owner: owner.into(),
        reason: format!("freeze by {owner}: \"release\" ✓"),
        created: t0(),
        expires,
    }
}

fn assert_locked<T: std::fmt::Debug>(result: Result<T, Error>, in_force: &EnvLock) {
    match result {
        Err(Error::Locked { lock }) => assert_eq!(&*lock, in_force, "names the lock in force"),
        other => panic!("expected Locked, got {other:?}"),
    }
}

fn assert_busy(result: Result<Lease, Error>, holder: &Lease) {
    match result {
        Err(Error::Busy {
            environment,
            holder: who,
            until: _,
        }) => {
            assert_eq!(environment, holder.environment);
            assert_eq!(who, holder.holder);
        }
        other => panic!("expected Busy, got {other:?}"),
    }
}

/// `lock` stores a lock on an unlocked environment; a second lock fails with `Locked` naming
/// the lock in force, and leaves it unchanged.
pub async fn lock_then_locked(locks: Arc<dyn LockStore>) {
    let first = env_lock("prod", "alice", None);
    assert_eq!(locks.lock(first.clone(), t0()).await.expect("lock"), first);
    assert_eq!(
        locks.get_lock(&env("prod"), t0()).await.expect("get"),
        Some(first.clone())
    );
    let second = env_lock("prod", "bob", Some(t0() + Duration::hours(1)));
    assert_locked(locks.lock(second, t0() + Duration::days(365)).await, &first);
    assert_eq!(
        locks.get_lock(&env("prod"), t0()).await.expect("get"),
        Some(first),
        "the lock in force is unchanged"
    );
    // Another environment is independent.
    let staging = env_lock("staging", "bob", None);
    locks
        .lock(staging.clone(), t0())
        .await
        .expect("other environment");
}

/// An expired lock counts as absent: it is not returned, and a new lock replaces it.
pub async fn expired_lock_is_replaced(locks: Arc<dyn LockStore>) {
    let expires = t0() + Duration::minutes(10);
    let old = env_lock("prod", "alice", Some(expires));
    locks.lock(old.clone(), t0()).await.expect("lock");
    let just_before = expires - Duration::nanoseconds(1);
    assert_eq!(
        locks
            .get_lock(&env("prod"), just_before)
            .await
            .expect("get"),
        Some(old.clone())
    );
    let blocked = env_lock("prod", "bob", None);
    assert_locked(locks.lock(blocked, just_before).await, &old);
    assert_eq!(
        locks.get_lock(&env("prod"), expires).await.expect("get"),
        None,
        "expired at its instant"
    );
    assert!(locks.locks(expires).await.expect("locks").is_empty());
    let new = env_lock("prod", "bob", Some(expires + Duration::hours(1)));
    assert_eq!(
        locks.lock(new.clone(), expires).await.expect("replace"),
        new
    );
    assert_eq!(
        locks.get_lock(&env("prod"), expires).await.expect("get"),
        Some(new)
    );
}

/// `unlock` removes the lock and returns it when active, and returns `None` for an unlocked
/// environment or an expired lock.
pub async fn unlock_returns_active_lock(locks: Arc<dyn LockStore>) {
    assert_eq!(
        locks.unlock(&env("prod"), t0()).await.expect("unlock"),
        None
    );
    let lock = env_lock("prod", "alice", None);
    locks.lock(lock.clone(), t0()).await.expect("lock");
    assert_eq!(
        locks.unlock(&env("prod"), t0()).await.expect("unlock"),
        Some(lock.clone())
    );
    assert_eq!(locks.get_lock(&env("prod"), t0()).await.expect("get"), None);
    assert_eq!(
        locks
            .unlock(&env("prod"), t0())
            .await
            .expect("unlock again"),
        None
    );
    // Locking again works after unlock.
    locks.lock(lock, t0()).await.expect("relock");
    let expiring = env_lock("qa", "bob", Some(t0() + Duration::seconds(1)));
    locks.lock(expiring.clone(), t0()).await.expect("lock qa");
    assert_eq!(
        locks
            .unlock(&env("qa"), t0() + Duration::seconds(2))
            .await
            .expect("unlock expired"),
        None
    );
    assert_eq!(
        locks.get_lock(&env("qa"), t0()).await.expect("get"),
        None,
        "the expired lock was removed"
    );
}

/// `get_lock` never returns an expired lock; `locks` lists the active locks sorted by
/// environment.
pub async fn locks_lists_active_sorted(locks: Arc<dyn LockStore>) {
    assert!(locks.locks(t0()).await.expect("locks").is_empty());
    let later = t0() + Duration::hours(2);
    let all = [
        env_lock("staging", "a", None),
        env_lock("dev", "b", Some(t0() + Duration::hours(1))),
        env_lock("prod", "c", Some(t0() + Duration::hours(3))),
        env_lock("Prod-eu", "d", None),
        env_lock("qa", "e", Some(t0() + Duration::minutes(1))),
    ];
    for l in &all {
        locks.lock(l.clone(), t0()).await.expect("lock");
    }
    let now = locks.locks(t0()).await.expect("locks");
    let names: Vec<_> = now.iter().map(|l| l.environment.as_str()).collect();
    assert_eq!(names, vec!["Prod-eu", "dev", "prod", "qa", "staging"]);
    let then = locks.locks(later).await.expect("locks later");
    let names: Vec<_> = then.iter().map(|l| l.environment.as_str()).collect();
    assert_eq!(names, vec!["Prod-eu", "prod", "staging"]);
    assert_eq!(then[1], all[2]);
    assert_eq!(locks.get_lock(&env("dev"), later).await.expect("get"), None);
    assert_eq!(
        locks.get_lock(&env("nowhere"), t0()).await.expect("get"),
        None
    );
}

/// Concurrent `lock` calls on one environment: exactly one wins, the others see `Locked`.
pub async fn concurrent_locks_one_winner(locks: Arc<dyn LockStore>) {
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let locks = locks.clone();
            tokio::spawn(async move {
                locks
                    .lock(env_lock("prod", &format!("owner{i}"), None), t0())
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(l) => winners.push(l),
            Err(Error::Locked { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one lock wins");
    assert_eq!(
        locks.get_lock(&env("prod"), t0()).await.expect("get"),
        Some(winners.remove(0))
    );
}

/// `acquire_lease` grants one holder at a time: a second acquisition is `Busy` naming the
/// holder; other environments are independent; concurrent acquisitions have one winner.
pub async fn lease_is_exclusive(locks: Arc<dyn LockStore>) {
    let ttl = Duration::minutes(5);
    let a = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("promoter-a"), ttl, t0())
        .await
        .expect("a");
    assert_eq!(a.environment, env("prod"));
    assert_eq!(a.holder, "promoter-a");
    assert_eq!(a.acquired, t0());
    assert_eq!(a.expires, t0() + ttl);
    assert_busy(
        locks
            .acquire_lease(
                &env("prod"),
                &LeaseHolder::named("promoter-b"),
                ttl,
                t0() + Duration::minutes(4),
            )
            .await,
        &a,
    );
    let other = locks
        .acquire_lease(
            &env("staging"),
            &LeaseHolder::named("promoter-b"),
            ttl,
            t0(),
        )
        .await
        .expect("other environment");
    assert_ne!(other.token, a.token);

    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let locks = locks.clone();
            tokio::spawn(async move {
                locks
                    .acquire_lease(&env("qa"), &LeaseHolder::named(format!("p{i}")), ttl, t0())
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => winners += 1,
            Err(Error::Busy { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners, 1, "exactly one concurrent acquisition wins");
}

/// An expired lease is handed over: a new holder may take it at or after its expiry.
pub async fn lease_expiry_handover(locks: Arc<dyn LockStore>) {
    let ttl = Duration::seconds(30);
    let a = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("crashed"), ttl, t0())
        .await
        .expect("a");
    assert_busy(
        locks
            .acquire_lease(
                &env("prod"),
                &LeaseHolder::named("b"),
                ttl,
                a.expires - Duration::nanoseconds(1),
            )
            .await,
        &a,
    );
    let b = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("b"), ttl, a.expires)
        .await
        .expect("handover at expiry");
    assert_eq!(b.holder, "b");
    assert_ne!(b.token, a.token);
    assert_busy(
        locks
            .acquire_lease(
                &env("prod"),
                &LeaseHolder::named("c"),
                ttl,
                a.expires + Duration::seconds(1),
            )
            .await,
        &b,
    );
}

/// `release_lease` frees the lease for its holder only: a stale holder's release after
/// expiry and handover leaves the new holder's lease alone.
pub async fn release_only_by_holder(locks: Arc<dyn LockStore>) {
    let ttl = Duration::seconds(30);
    let a = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("a"), ttl, t0())
        .await
        .expect("a");
    locks.release_lease(&a).await.expect("release");
    let b = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("b"), ttl, t0())
        .await
        .expect("after release");
    // A forged lease with the same environment and holder but another token frees nothing.
    let forged = Lease {
        token: Uuid::new_v4(),
        ..b.clone()
    };
    locks.release_lease(&forged).await.expect("release forged");
    assert_busy(
        locks
            .acquire_lease(&env("prod"), &LeaseHolder::named("c"), ttl, t0())
            .await,
        &b,
    );
    // b expires, c takes over; b's late release leaves c's lease alone.
    let c = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("c"), ttl, b.expires)
        .await
        .expect("handover");
    locks.release_lease(&b).await.expect("stale release");
    assert_busy(
        locks
            .acquire_lease(&env("prod"), &LeaseHolder::named("d"), ttl, b.expires)
            .await,
        &c,
    );
    locks.release_lease(&c).await.expect("release c");
    locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("d"), ttl, b.expires)
        .await
        .expect("free again");
    // Releasing twice, or a lease never held, is harmless.
    locks.release_lease(&c).await.expect("double release");
}

/// `acquire_lease` stores the holder's name and process in the lease it returns, and `leases`
/// returns them as stored.
pub async fn lease_keeps_its_holder_process(locks: Arc<dyn LockStore>) {
    let holder = LeaseHolder {
        name: "ci (1234)".into(),
        process: Some(HolderProcess {
            host: "build-7".into(),
            pid: 4242,
            start_ticks: Some(987_654),
        }),
    };
    let lease = locks
        .acquire_lease(&env("prod"), &holder, Duration::minutes(5), t0())
        .await
        .expect("lease");
    assert_eq!(lease.holder, holder.name);
    assert_eq!(lease.process, holder.process);
    assert_eq!(locks.leases(t0()).await.expect("leases"), vec![lease]);
    let anonymous = locks
        .acquire_lease(
            &env("qa"),
            &LeaseHolder::named("x"),
            Duration::minutes(5),
            t0(),
        )
        .await
        .expect("lease");
    assert_eq!(anonymous.process, None);
}

/// `leases` lists every unexpired lease sorted by environment, never an expired or released
/// one.
pub async fn leases_lists_unexpired_sorted(locks: Arc<dyn LockStore>) {
    assert!(locks.leases(t0()).await.expect("leases").is_empty());
    let mut taken = Vec::new();
    for (name, minutes) in [("staging", 10), ("dev", 10), ("prod", 1), ("qa", 10)] {
        taken.push(
            locks
                .acquire_lease(
                    &env(name),
                    &LeaseHolder::named(name),
                    Duration::minutes(minutes),
                    t0(),
                )
                .await
                .expect("lease"),
        );
    }
    let qa = taken.pop().expect("qa");
    locks.release_lease(&qa).await.expect("release");
    let listed: Vec<String> = locks
        .leases(t0() + Duration::minutes(1))
        .await
        .expect("leases")
        .into_iter()
        .map(|l| l.environment.to_string())
        .collect();
    assert_eq!(listed, ["dev", "staging"], "prod expired, qa released");
    let at_start: Vec<String> = locks
        .leases(t0())
        .await
        .expect("leases")
        .into_iter()
        .map(|l| l.environment.to_string())
        .collect();
    assert_eq!(at_start, ["dev", "prod", "staging"]);
}

/// `break_lease` removes the given lease, expired or not, only while it is still the
/// environment's lease, says whether it did, and frees the environment.
pub async fn break_lease_removes_only_that_lease(locks: Arc<dyn LockStore>) {
    let ttl = Duration::minutes(15);
    let stale = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("killed"), ttl, t0())
        .await
        .expect("lease");
    // A copy with another token breaks nothing.
    let forged = Lease {
        token: Uuid::new_v4(),
        ..stale.clone()
    };
    assert!(!locks.break_lease(&forged).await.expect("break forged"));
    assert_busy(
        locks
            .acquire_lease(&env("prod"), &LeaseHolder::named("b"), ttl, t0())
            .await,
        &stale,
    );
    assert!(locks.break_lease(&stale).await.expect("break"));
    assert!(locks.leases(t0()).await.expect("leases").is_empty());
    let next = locks
        .acquire_lease(&env("prod"), &LeaseHolder::named("b"), ttl, t0())
        .await
        .expect("free after the break");
    // The broken lease again: already gone, and the new holder's lease stays.
    assert!(!locks.break_lease(&stale).await.expect("break again"));
    assert_eq!(
        locks.leases(t0()).await.expect("leases"),
        vec![next.clone()]
    );
    // An expired lease can be broken too.
    assert!(locks.break_lease(&next).await.expect("break next"));
    let expiring = locks
        .acquire_lease(
            &env("prod"),
            &LeaseHolder::named("c"),
            Duration::seconds(1),
            t0(),
        )
        .await
        .expect("lease");
    assert!(locks.break_lease(&expiring).await.expect("break expired"));
}

/// Runs the whole state conformance suite: one `#[tokio::test]` per case.
///
/// `$setup` is an `async` expression yielding a fresh [`StateFixture`] per test: a tuple of an
/// `Arc<dyn LockStore>` and a guard kept alive during the case (`()` when there is none).
#[macro_export]
macro_rules! state_conformance {
    ($setup:expr) => {
        $crate::state_conformance!(@cases $setup; locks;
            lock_then_locked,
            expired_lock_is_replaced,
            unlock_returns_active_lock,
            locks_lists_active_sorted,
            concurrent_locks_one_winner,
            lease_is_exclusive,
            lease_expiry_handover,
            release_only_by_holder,
            lease_keeps_its_holder_process,
            leases_lists_unexpired_sorted,
            break_lease_removes_only_that_lease
        );
    };
    (@cases $setup:expr; $store:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $setup.await;
                let store = $crate::testing::state::StateFixture::$store(&fixture);
                $crate::testing::state::$case(store).await;
                drop(fixture);
            }
        )*
    };
}
