//! Conformance suite of [`ReleaseStore`]: one public async function per sentence of the
//! trait's contract. Run it with [`release_conformance!`](crate::release_conformance).
//!
//! Each case gets a fresh, empty store. Version conflicts are expected to say
//! `expected version N` and `stored version M`, as [`version_conflict`] does.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::error::Error;
use crate::model::{ArtifactName, Digest, EnvName, Tag};
use crate::release::{
    Release, ReleaseFilter, ReleaseKind, ReleaseState, ReleaseStore, version_conflict,
};

/// Something that gives the store under test, and keeps whatever it needs alive (a temporary
/// directory) for as long as the case runs.
///
/// # Contract
///
/// - `releases` returns the same store every time it is called on one fixture, fresh (empty)
///   for each case.
pub trait ReleaseFixture: Send + 'static {
    /// The release store under test.
    fn releases(&self) -> Arc<dyn ReleaseStore>;
}

impl ReleaseFixture for Arc<dyn ReleaseStore> {
    fn releases(&self) -> Arc<dyn ReleaseStore> {
        self.clone()
    }
}

impl<G: Send + 'static> ReleaseFixture for (Arc<dyn ReleaseStore>, G) {
    fn releases(&self) -> Arc<dyn ReleaseStore> {
        self.0.clone()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 7, 8, 9, 10)
        .single()
        .expect("valid date")
        + Duration::nanoseconds(500_000_001)
}

fn release(kind: ReleaseKind, environment: &str, artifact: &str, status: &str) -> Release {
    Release::new(
        kind,
        EnvName::new(environment).expect("test environment names are valid"),
        ArtifactName::new(artifact).expect("test artifact names are valid"),
        Tag::new("v1.2.0").expect("valid tag"),
        Digest::of(format!("{environment}/{artifact}").as_bytes()),
        ReleaseState::new(status, json!({ "step": 0, "note": "created", "votes": [] })),
        t0(),
    )
}

fn approval(environment: &str) -> Release {
    release(ReleaseKind::Approval, environment, "app", "pending")
}

fn state(status: &str, step: u64) -> ReleaseState {
    ReleaseState::new(status, json!({ "step": step }))
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) -> String {
    match result {
        Err(Error::Conflict(message)) => message,
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::InvalidInput { .. }) => {}
        other => panic!("{what}: expected InvalidInput, got {other:?}"),
    }
}

/// `create` stores a new release at version 1 and returns it as stored.
pub async fn create_then_get(releases: Arc<dyn ReleaseStore>) {
    let r = approval("prod");
    let created = releases.create(r.clone()).await.expect("create");
    assert_eq!(created, r);
    assert_eq!(created.version, 1);
    assert_eq!(releases.get(r.id).await.expect("get"), r);
    for kind in [ReleaseKind::Canary, ReleaseKind::BlueGreen] {
        let other = release(kind, "prod", "app", "step-1");
        releases.create(other.clone()).await.expect("create");
        assert_eq!(releases.get(other.id).await.expect("get").kind, kind);
    }
}

/// Creating an id that exists is `Conflict`, and the stored release is unchanged.
pub async fn create_existing_id_conflicts(releases: Arc<dyn ReleaseStore>) {
    let r = approval("prod");
    releases.create(r.clone()).await.expect("create");
    let mut again = release(ReleaseKind::Canary, "staging", "other", "step-1");
    again.id = r.id;
    assert_conflict(releases.create(again).await, "same id");
    assert_eq!(releases.get(r.id).await.expect("get"), r, "unchanged");
    assert_eq!(
        releases
            .list(&ReleaseFilter::default())
            .await
            .expect("list")
            .len(),
        1
    );
}

/// `create` refuses a version other than 1 or an invalid status with `InvalidInput`, storing
/// nothing.
pub async fn create_refuses_invalid_release(releases: Arc<dyn ReleaseStore>) {
    let mut advanced = approval("prod");
    advanced.version = 7;
    assert_invalid(releases.create(advanced.clone()).await, "version 7");
    assert_not_found(releases.get(advanced.id).await, "nothing stored");
    for status in ["", "Pending", "two words", "a\nb", &"s".repeat(65)] {
        let bad = release(ReleaseKind::Approval, "prod", "app", status);
        assert_invalid(releases.create(bad.clone()).await, status);
        assert_not_found(releases.get(bad.id).await, "nothing stored");
    }
    assert!(
        releases
            .list(&ReleaseFilter::default())
            .await
            .expect("list")
            .is_empty()
    );
}

/// `get` returns the release as last stored, its state JSON unchanged; an unknown id is
/// `NotFound`.
pub async fn get_returns_last_stored(releases: Arc<dyn ReleaseStore>) {
    assert_not_found(releases.get(Uuid::new_v4()).await, "unknown id");
    let mut r = approval("prod");
    r.state = json!({
        "approvers": ["alice", "bob"],
        "quorum": { "rules": [{ "name": "leads", "required": 2 }] },
        "max": u64::MAX,
        "min": i64::MIN,
        "ratio": 1.5,
        "text": "\"quoted\" ✓ — \\ / \u{1F680}",
        "empty": {},
        "none": null,
    });
    releases.create(r.clone()).await.expect("create");
    assert_eq!(releases.get(r.id).await.expect("get").state, r.state);
    let next = ReleaseState::new("approved", json!([1, "two", { "three": [3] }, false]));
    let later = t0() + Duration::minutes(5);
    releases
        .update(r.id, 1, next.clone(), later)
        .await
        .expect("update");
    let got = releases.get(r.id).await.expect("get");
    assert_eq!(got.release_state(), next);
    assert_eq!(got.updated, later);
    assert_eq!(got.version, 2);
}

/// `list` returns the releases matching every field set in the filter, oldest first (by
/// creation time, then id).
pub async fn list_filters_and_orders(releases: Arc<dyn ReleaseStore>) {
    assert!(
        releases
            .list(&ReleaseFilter::default())
            .await
            .expect("list")
            .is_empty()
    );
    let specs = [
        (ReleaseKind::Approval, "prod", "app", "pending", 3),
        (ReleaseKind::Approval, "prod", "api", "pending", 1),
        (ReleaseKind::Approval, "staging", "app", "approved", 2),
        (ReleaseKind::Canary, "prod", "app", "step-1", 0),
        (ReleaseKind::BlueGreen, "prod", "app", "pending", 5),
        (ReleaseKind::Canary, "prod", "app", "step-1", 5),
        (ReleaseKind::Canary, "prod", "app", "step-1", 5),
    ];
    let mut all = Vec::new();
    for (kind, env, artifact, status, minutes) in specs {
        let mut r = release(kind, env, artifact, status);
        r.created = t0() + Duration::minutes(minutes);
        r.updated = r.created;
        all.push(releases.create(r).await.expect("create"));
    }
    // A later update does not move a release in the order.
    let first = all.iter().find(|r| r.kind == ReleaseKind::Canary).cloned();
    let first = first.expect("canary");
    let moved = releases
        .update(first.id, 1, state("step-1", 1), t0() + Duration::days(1))
        .await
        .expect("update");
    for r in &mut all {
        if r.id == moved.id {
            *r = moved.clone();
        }
    }
    all.sort_by_key(|r| (r.created, r.id));
    let expect = |f: &ReleaseFilter| -> Vec<Release> {
        all.iter().filter(|r| r.matches(f)).cloned().collect()
    };
    let prod = EnvName::new("prod").expect("env");
    let app = ArtifactName::new("app").expect("artifact");
    let filters = [
        ReleaseFilter::default(),
        ReleaseFilter::default().environment(prod.clone()),
        ReleaseFilter::default().artifact(app.clone()),
        ReleaseFilter::default()
            .environment(prod.clone())
            .artifact(app.clone()),
        ReleaseFilter::default().kind(ReleaseKind::Approval),
        ReleaseFilter::default().status("pending"),
        ReleaseFilter::default()
            .kind(ReleaseKind::Approval)
            .status("pending"),
        ReleaseFilter::default()
            .environment(prod.clone())
            .artifact(app.clone())
            .kind(ReleaseKind::Canary)
            .status("step-1"),
        ReleaseFilter::default().status("rolled-back"),
        ReleaseFilter::default().environment(EnvName::new("dev").expect("env")),
    ];
    let sizes = [7, 6, 6, 5, 3, 3, 2, 3, 0, 0];
    for (filter, size) in filters.iter().zip(sizes) {
        let listed = releases.list(filter).await.expect("list");
        assert_eq!(listed, expect(filter), "{filter:?}");
        assert_eq!(listed.len(), size, "{filter:?}");
    }
    // Two releases created at the same instant come in id order.
    let tied: Vec<Uuid> = releases
        .list(&ReleaseFilter::default().kind(ReleaseKind::Canary))
        .await
        .expect("list")
        .iter()
        .filter(|r| r.created == t0() + Duration::minutes(5))
        .map(|r| r.id)
        .collect();
    assert_eq!(tied.len(), 2);
    assert!(tied[0] < tied[1], "equal creation times are ordered by id");
}

/// `update` at the stored version stores the new status and state, one version higher,
/// updated `now`, keeps every other field, and returns the release as stored.
pub async fn update_compare_and_set(releases: Arc<dyn ReleaseStore>) {
    let r = releases.create(approval("prod")).await.expect("create");
    let mut current = r.clone();
    for step in 1..=5u64 {
        let now = t0() + Duration::minutes(step as i64);
        let next = releases
            .update(r.id, current.version, state("waiting", step), now)
            .await
            .expect("update");
        assert_eq!(next.version, current.version + 1, "one more");
        assert_eq!(next.status, "waiting");
        assert_eq!(next.state, json!({ "step": step }));
        assert_eq!(next.updated, now);
        assert_eq!(
            (
                next.id,
                next.kind,
                &next.environment,
                &next.artifact,
                &next.tag,
                &next.digest,
                next.created
            ),
            (
                r.id,
                r.kind,
                &r.environment,
                &r.artifact,
                &r.tag,
                &r.digest,
                r.created
            ),
            "identity kept"
        );
        assert_eq!(releases.get(r.id).await.expect("get"), next, "as stored");
        current = next;
    }
    assert_eq!(current.version, 6);
}

/// `update` with another expected version is `Conflict` naming both versions and changes
/// nothing; an unknown id is `NotFound`; an invalid status is `InvalidInput`.
pub async fn update_stale_version_conflicts(releases: Arc<dyn ReleaseStore>) {
    let r = releases.create(approval("prod")).await.expect("create");
    let v2 = releases
        .update(r.id, 1, state("approved", 1), t0())
        .await
        .expect("update");
    for expected in [0, 1, 3, u64::MAX] {
        let message = assert_conflict(
            releases
                .update(r.id, expected, state("rejected", 9), t0())
                .await,
            "stale",
        );
        assert!(
            message.contains(&format!("expected version {expected}"))
                && message.contains("stored version 2"),
            "names both versions: {message}"
        );
        assert_eq!(releases.get(r.id).await.expect("get"), v2, "unchanged");
    }
    assert_eq!(
        version_conflict(&v2, 1).to_string(),
        Error::Conflict(format!(
            "approval release {} of app in prod changed concurrently: expected version 1, \
             stored version 2 (status approved)",
            r.id
        ))
        .to_string()
    );
    assert_not_found(
        releases
            .update(Uuid::new_v4(), 1, state("approved", 1), t0())
            .await,
        "unknown id",
    );
    assert_invalid(
        releases
            .update(r.id, 2, state("Not A Status", 1), t0())
            .await,
        "invalid status",
    );
    assert_eq!(releases.get(r.id).await.expect("get"), v2, "unchanged");
}

/// Concurrent updates with the same expected version: exactly one wins and is what is
/// stored; the others get `Conflict`.
pub async fn concurrent_updates_one_winner(releases: Arc<dyn ReleaseStore>) {
    let r = releases.create(approval("prod")).await.expect("create");
    let tasks: Vec<_> = (0..12u64)
        .map(|i| {
            let releases = releases.clone();
            tokio::spawn(async move {
                releases
                    .update(r.id, 1, state("approved", i), t0() + Duration::seconds(1))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(won) => winners.push(won),
            Err(Error::Conflict(_)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one update wins");
    assert_eq!(winners[0].version, 2);
    assert_eq!(releases.get(r.id).await.expect("get"), winners[0]);
}

/// Callers that re-read and retry after a `Conflict` lose no update: every one lands once.
pub async fn retried_updates_lose_nothing(releases: Arc<dyn ReleaseStore>) {
    const WRITERS: u64 = 8;
    let mut r = approval("prod");
    r.state = json!({ "applied": [] });
    let r = releases.create(r).await.expect("create");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let releases = releases.clone();
            tokio::spawn(async move {
                let mut conflicts = 0;
                loop {
                    let current = releases.get(r.id).await.expect("get");
                    let mut applied: Vec<u64> =
                        serde_json::from_value(current.state["applied"].clone())
                            .expect("applied list");
                    applied.push(i);
                    let next = ReleaseState::new("waiting", json!({ "applied": applied }));
                    match releases.update(r.id, current.version, next, t0()).await {
                        Ok(_) => return conflicts,
                        Err(Error::Conflict(_)) => conflicts += 1,
                        Err(e) => panic!("unexpected error {e:?}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let last = releases.get(r.id).await.expect("get");
    assert_eq!(last.version, 1 + WRITERS, "one version per update");
    let applied: Vec<u64> =
        serde_json::from_value(last.state["applied"].clone()).expect("applied list");
    let distinct: BTreeSet<u64> = applied.iter().copied().collect();
    assert_eq!(applied.len() as u64, WRITERS, "no update lost or doubled");
    assert_eq!(distinct, (0..WRITERS).collect());
}

/// `record_effect` returns `true` the first time a key is recorded for a release and `false`
/// after; keys of different releases are independent; an unknown release is `NotFound`; an
/// invalid key is `InvalidInput`.
pub async fn record_effect_once(releases: Arc<dyn ReleaseStore>) {
    let a = releases.create(approval("prod")).await.expect("create");
    let b = releases.create(approval("staging")).await.expect("create");
    let key = "write-tags v1.2.0-prod @ version 3";
    assert!(releases.record_effect(a.id, key).await.expect("first"));
    assert!(!releases.record_effect(a.id, key).await.expect("again"));
    assert!(!releases.record_effect(a.id, key).await.expect("and again"));
    assert!(
        releases
            .record_effect(b.id, key)
            .await
            .expect("other release"),
        "keys are per release"
    );
    assert!(
        releases
            .record_effect(a.id, "append-event")
            .await
            .expect("other key")
    );
    assert_not_found(
        releases.record_effect(Uuid::new_v4(), key).await,
        "unknown release",
    );
    for bad in ["", "a\nb", "\u{1b}[2J", &"k".repeat(257)] {
        assert_invalid(releases.record_effect(a.id, bad).await, bad);
    }
    // Recording effects does not change the release.
    assert_eq!(releases.get(a.id).await.expect("get"), a);
    // Nor does updating the release forget them.
    releases
        .update(a.id, 1, state("approved", 1), t0())
        .await
        .expect("update");
    assert!(
        !releases
            .record_effect(a.id, key)
            .await
            .expect("after update")
    );
}

/// `effects` lists a release's keys, each once, in the order they were first recorded; an
/// unknown release is `NotFound`.
pub async fn effects_in_recording_order(releases: Arc<dyn ReleaseStore>) {
    let r = releases.create(approval("prod")).await.expect("create");
    assert!(releases.effects(r.id).await.expect("effects").is_empty());
    let keys = [
        "z-last-alphabetically",
        "a-first",
        "m-middle",
        "é-unicode ✓",
    ];
    for k in keys {
        releases.record_effect(r.id, k).await.expect("record");
        releases.record_effect(r.id, keys[0]).await.expect("repeat");
    }
    assert_eq!(releases.effects(r.id).await.expect("effects"), keys);
    assert_not_found(releases.effects(Uuid::new_v4()).await, "unknown release");
}

/// Concurrent `record_effect` of one key: exactly one caller gets `true`, and the key is
/// recorded once.
pub async fn concurrent_effect_recorded_once(releases: Arc<dyn ReleaseStore>) {
    let r = releases.create(approval("prod")).await.expect("create");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let releases = releases.clone();
            tokio::spawn(async move { releases.record_effect(r.id, "write-tags").await })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        if t.await.expect("task").expect("record") {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1, "exactly one caller records the effect");
    assert_eq!(
        releases.effects(r.id).await.expect("effects"),
        ["write-tags"]
    );
}

/// Runs the whole release-store conformance suite: one `#[tokio::test]` per case.
///
/// `$setup` is an `async` expression yielding a fresh [`ReleaseFixture`] per test: an
/// `Arc<dyn ReleaseStore>`, or a tuple of one and a guard kept alive during the case.
#[macro_export]
macro_rules! release_conformance {
    ($setup:expr) => {
        $crate::release_conformance!(@cases $setup;
            create_then_get,
            create_existing_id_conflicts,
            create_refuses_invalid_release,
            get_returns_last_stored,
            list_filters_and_orders,
            update_compare_and_set,
            update_stale_version_conflicts,
            concurrent_updates_one_winner,
            retried_updates_lose_nothing,
            record_effect_once,
            effects_in_recording_order,
            concurrent_effect_recorded_once
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $setup.await;
                let store = $crate::testing::release::ReleaseFixture::releases(&fixture);
                $crate::testing::release::$case(store).await;
                drop(fixture);
            }
        )*
    };
}
