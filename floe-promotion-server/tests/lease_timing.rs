//! `LeaseTiming` forwards every call: the lock and lease conformance suite passes through it,
//! and a lease granted after a refusal is observed as a wait.

use std::sync::Arc;

use floe_promotion::state::LeaseHolder;
use floe_promotion::{EnvName, InMemoryState, LockStore};
use floe_promotion_server::{LeaseTiming, Metrics};

floe_promotion::state_conformance!(async {
    let locks: Arc<dyn LockStore> = Arc::new(LeaseTiming::new(
        Arc::new(InMemoryState::new()),
        Metrics::new(),
    ));
    (locks, ())
});

#[tokio::test]
async fn a_lease_granted_after_refusals_is_observed_as_a_wait() {
    let metrics = Metrics::new();
    let store = LeaseTiming::new(Arc::new(InMemoryState::new()), metrics.clone());
    let env = EnvName::new("prod").unwrap();
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::minutes(1);
    let first = store
        .acquire_lease(&env, &LeaseHolder::named("a"), ttl, now)
        .await
        .unwrap();
    let second = LeaseHolder::named("b");
    assert!(store.acquire_lease(&env, &second, ttl, now).await.is_err());
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    store.release_lease(&first).await.unwrap();
    store.acquire_lease(&env, &second, ttl, now).await.unwrap();
    let text = metrics.render();
    assert!(
        text.contains("floe_lease_wait_seconds_count{environment=\"prod\"} 2"),
        "{text}"
    );
    // One wait of at least 30 ms, one of none: the sum is at least 0.03 s.
    let sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("floe_lease_wait_seconds_sum{environment=\"prod\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sum >= 0.03, "{text}");
}
