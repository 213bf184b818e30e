//! Conformance suite of [`RevocationStore`]: one public async function per sentence of its
//! contract. Run it with [`revocation_conformance!`](crate::revocation_conformance).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::{ArtifactName, Digest};
use crate::state::{Revocation, RevocationStore};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 7, 8, 9, 10)
        .single()
        .expect("valid date")
        + Duration::nanoseconds(750_000_001)
}

fn digest(c: char) -> Digest {
    Digest::new(format!("sha256:{}", c.to_string().repeat(64))).expect("valid digest")
}

fn revocation(c: char, minutes: i64) -> Revocation {
    Revocation {
        artifact: ArtifactName::new("app").expect("valid name"),
        digest: digest(c),
        reason: format!("CVE-{c}: \"critical\" ✓"),
        by: "sec".into(),
        at: t0() + Duration::minutes(minutes),
    }
}

/// `revoke` stores a revocation and returns `true`; revoking the digest again returns `false`
/// and leaves the stored one unchanged.
pub async fn revoke_once(store: Arc<dyn RevocationStore>) {
    let first = revocation('a', 0);
    assert!(store.revoke(first.clone()).await.expect("revoke"));
    let again = Revocation {
        reason: "another".into(),
        ..revocation('a', 5)
    };
    assert!(!store.revoke(again).await.expect("again"));
    assert_eq!(
        store.revocation(&digest('a')).await.expect("read"),
        Some(first)
    );
}

/// `unrevoke` removes and returns the revocation; `None` when the digest was not revoked.
pub async fn unrevoke_returns_it(store: Arc<dyn RevocationStore>) {
    let r = revocation('b', 0);
    assert!(store.revoke(r.clone()).await.expect("revoke"));
    assert_eq!(
        store.unrevoke(&digest('b')).await.expect("unrevoke"),
        Some(r)
    );
    assert_eq!(store.unrevoke(&digest('b')).await.expect("again"), None);
    assert_eq!(store.revocation(&digest('b')).await.expect("read"), None);
    assert!(
        store
            .revoke(revocation('b', 9))
            .await
            .expect("revoke again")
    );
}

/// `revocation` reads one digest's revocation as stored; `revocations` lists all, oldest
/// first, then by digest.
pub async fn revocations_sorted(store: Arc<dyn RevocationStore>) {
    assert!(store.revocations().await.expect("empty").is_empty());
    assert_eq!(store.revocation(&digest('f')).await.expect("none"), None);
    let list = [revocation('c', 5), revocation('b', 1), revocation('a', 5)];
    for r in &list {
        assert!(store.revoke(r.clone()).await.expect("revoke"));
    }
    assert_eq!(
        store.revocations().await.expect("list"),
        vec![list[1].clone(), list[2].clone(), list[0].clone()]
    );
}

/// Concurrent `revoke` calls of one digest: exactly one returns `true`.
pub async fn concurrent_revoke_one_winner(store: Arc<dyn RevocationStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.revoke(revocation('d', i)).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task").expect("revoke") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.revocations().await.expect("list").len(), 1);
}

/// Runs the [`RevocationStore`] conformance suite, one `#[tokio::test]` per case. `$setup` is
/// an expression (awaited) giving `(Arc<dyn RevocationStore>, guard)`.
#[macro_export]
macro_rules! revocation_conformance {
    ($setup:expr) => {
        $crate::revocation_conformance!(@cases $setup;
            revoke_once,
            unrevoke_returns_it,
            revocations_sorted,
            concurrent_revoke_one_winner
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $setup.await;
                $crate::testing::revocations::$case(store).await;
                drop(guard);
            }
        )*
    };
}
