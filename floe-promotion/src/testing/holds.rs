//! Conformance suite of [`HoldStore`]: one public async function per sentence of its
//! contract. Run it with [`hold_conformance!`](crate::hold_conformance).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::EnvName;
use crate::state::{Hold, HoldKind, HoldStore};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 7, 8, 9, 10)
        .single()
        .expect("valid date")
        + Duration::nanoseconds(250_000_001)
}

fn env(s: &str) -> EnvName {
    EnvName::new(s).expect("test environment names are valid")
}

fn hold(environment: &str, holder: &str, kind: HoldKind, minutes: i64) -> Hold {
    Hold {
        environment: env(environment),
        holder: holder.into(),
        kind,
        reason: format!("hold by {holder}: \"incident\" ✓"),
        placed: t0() + Duration::minutes(minutes),
    }
}

/// `place` stores a hold and returns `true` when its holder holds nothing there; a second
/// `place` by the same holder returns `false` and leaves the stored hold unchanged; another
/// holder's hold on the same environment is independent.
pub async fn place_once_per_holder(holds: Arc<dyn HoldStore>) {
    let first = hold("prod", "alice", HoldKind::Manual, 0);
    assert!(holds.place(first.clone()).await.expect("place"));
    let again = Hold {
        reason: "another reason".into(),
        kind: HoldKind::Rollback,
        ..hold("prod", "alice", HoldKind::Rollback, 5)
    };
    assert!(!holds.place(again).await.expect("place again"));
    assert_eq!(
        holds.holds(Some(&env("prod"))).await.expect("holds"),
        vec![first.clone()],
        "the first hold is kept exactly"
    );
    let bob = hold("prod", "bob", HoldKind::Manual, 1);
    assert!(holds.place(bob.clone()).await.expect("bob places"));
    assert_eq!(
        holds.holds(Some(&env("prod"))).await.expect("holds"),
        vec![first, bob]
    );
}

/// `release` removes the holder's hold and returns it; `None` when that holder held nothing
/// there; other holders' holds stay.
pub async fn release_only_the_holders(holds: Arc<dyn HoldStore>) {
    let alice = hold("prod", "alice", HoldKind::Manual, 0);
    let bob = hold("prod", "bob", HoldKind::Rollback, 1);
    let alice_staging = hold("staging", "alice", HoldKind::Manual, 2);
    for h in [&alice, &bob, &alice_staging] {
        assert!(holds.place(h.clone()).await.expect("place"));
    }
    assert_eq!(
        holds.release(&env("prod"), "alice").await.expect("release"),
        Some(alice.clone())
    );
    assert_eq!(
        holds.release(&env("prod"), "alice").await.expect("again"),
        None
    );
    assert_eq!(
        holds
            .release(&env("prod"), "carol")
            .await
            .expect("never held"),
        None
    );
    assert_eq!(
        holds.holds(None).await.expect("holds"),
        vec![bob, alice_staging]
    );
    assert!(
        holds.place(alice).await.expect("place after release"),
        "a released holder can hold again"
    );
}

/// `release_kind` removes every hold of that kind on the environment, returned in `holds`
/// order; other kinds and other environments stay.
pub async fn release_kind_only_that_kind(holds: Arc<dyn HoldStore>) {
    let r1 = hold("prod", "bob", HoldKind::Rollback, 3);
    let r2 = hold("prod", "alice", HoldKind::Rollback, 1);
    let manual = hold("prod", "carol", HoldKind::Manual, 2);
    let elsewhere = hold("staging", "dave", HoldKind::Rollback, 0);
    for h in [&r1, &r2, &manual, &elsewhere] {
        assert!(holds.place(h.clone()).await.expect("place"));
    }
    assert_eq!(
        holds
            .release_kind(&env("prod"), HoldKind::Rollback)
            .await
            .expect("release kind"),
        vec![r2, r1]
    );
    assert_eq!(
        holds.holds(None).await.expect("holds"),
        vec![manual, elsewhere]
    );
    assert!(
        holds
            .release_kind(&env("prod"), HoldKind::Rollback)
            .await
            .expect("nothing left")
            .is_empty()
    );
}

/// `holds` lists one environment's holds or all, sorted by environment, then placement time,
/// then holder; the stored fields come back unchanged.
pub async fn holds_sorted(holds: Arc<dyn HoldStore>) {
    assert!(holds.holds(None).await.expect("empty").is_empty());
    let list = [
        hold("staging", "zed", HoldKind::Manual, 0),
        hold("prod", "bob", HoldKind::Manual, 5),
        hold("prod", "alice", HoldKind::Rollback, 5),
        hold("prod", "carol", HoldKind::Manual, 1),
    ];
    for h in &list {
        assert!(holds.place(h.clone()).await.expect("place"));
    }
    let prod = holds.holds(Some(&env("prod"))).await.expect("prod");
    assert_eq!(
        prod,
        vec![list[3].clone(), list[2].clone(), list[1].clone()]
    );
    let all = holds.holds(None).await.expect("all");
    assert_eq!(
        all,
        vec![
            list[3].clone(),
            list[2].clone(),
            list[1].clone(),
            list[0].clone()
        ]
    );
    assert!(
        holds
            .holds(Some(&env("dev")))
            .await
            .expect("dev")
            .is_empty()
    );
}

/// Concurrent `place` calls by one holder: exactly one returns `true`.
pub async fn concurrent_place_one_winner(holds: Arc<dyn HoldStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let holds = holds.clone();
            tokio::spawn(async move {
                holds
                    .place(hold("prod", "alice", HoldKind::Manual, i))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task").expect("place") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(holds.holds(None).await.expect("holds").len(), 1);
}

/// Runs the [`HoldStore`] conformance suite, one `#[tokio::test]` per case. `$setup` is an
/// expression (awaited) giving `(Arc<dyn HoldStore>, guard)`; the guard lives as long as the
/// case.
#[macro_export]
macro_rules! hold_conformance {
    ($setup:expr) => {
        $crate::hold_conformance!(@cases $setup;
            place_once_per_holder,
            release_only_the_holders,
            release_kind_only_that_kind,
            holds_sorted,
            concurrent_place_one_winner
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (holds, guard) = $setup.await;
                $crate::testing::holds::$case(holds).await;
                drop(guard);
            }
        )*
    };
}
