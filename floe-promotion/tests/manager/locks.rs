//! Locks and leases: a lock blocks until it is lifted, overridden or expired; concurrent
//! promoters into one environment serialise; a held lease makes a promoter wait, then give up.

use std::time::Duration;

use floe_promotion::history::EventKind;
use floe_promotion::manager::Outcome;
use floe_promotion::state::LeaseHolder;
use floe_promotion::*;

use super::{env, req, three};

#[tokio::test]
async fn locks_block_until_unlocked_or_overridden() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    let ops = Actor::new("ops").unwrap();
    m.lock(&env("staging"), &ops, "incident 42", None)
        .await
        .unwrap();
    let err = m
        .lock(&env("staging"), &ops, "again", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("incident 42"));
    assert!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .is_none()
    );

    let err = m
        .promote(PromotionRequest {
            override_lock: true,
            ..req("v1", "dev", "staging", "ci")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { .. }),
        "override without reason: {err}"
    );

    let r = m
        .promote(req("v1", "dev", "staging", "ci").override_lock("hotfix for incident 42"))
        .await
        .unwrap();
    assert!(r.lock_overridden);
    assert!(p.event_kinds().await.contains(&EventKind::LockOverridden));

    m.unlock(&env("staging"), &ops, Some("resolved"))
        .await
        .unwrap();
    m.promote(req("v2", "dev", "staging", "ci")).await.unwrap();
    let err = m.unlock(&env("staging"), &ops, None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn locks_expire() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let ops = Actor::new("ops").unwrap();
    m.lock(
        &env("staging"),
        &ops,
        "deploy window",
        Some(chrono::Duration::minutes(30)),
    )
    .await
    .unwrap();
    assert!(m.promote(req("v1", "dev", "staging", "ci")).await.is_err());
    p.clock.advance(chrono::Duration::minutes(31));
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let status = m.status(Some(&env("staging"))).await.unwrap();
    assert!(status[0].lock.is_none());
}

#[tokio::test]
async fn lock_needs_a_reason_and_a_future_expiry() {
    let p = three();
    let m = p.manager();
    let ops = Actor::new("ops").unwrap();
    assert!(matches!(
        m.lock(&env("prod"), &ops, " ", None).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        m.lock(&env("prod"), &ops, "x", Some(chrono::Duration::seconds(-1)))
            .await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_promoters_into_one_environment_serialise() {
    let p = three();
    let mut digests = Vec::new();
    for i in 0..8 {
        digests.push(
            p.push_release("app", &format!("v{i}"), format!("c{i}").as_bytes())
                .await
                .digest()
                .clone(),
        );
    }
    let m = p.manager();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                m.promote(req(&format!("v{i}"), "dev", "staging", "ci"))
                    .await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.outcome, Outcome::Promoted);
    }
    // Every promotion wrote its own environment tag; the pointer holds the last one recorded.
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(
            p.tag_digest("staging", "app", &format!("v{i}-staging"))
                .await
                .as_ref(),
            Some(d)
        );
    }
    let last = m.status(Some(&env("staging"))).await.unwrap()[0].deployments[0]
        .digest
        .clone();
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging").await,
        Some(last)
    );
    assert!(m.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_held_lease_makes_a_promoter_wait_then_give_up() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .lease_wait(Duration::from_millis(200))
        .build()
        .unwrap();
    let held = p
        .state
        .acquire_lease(
            &env("staging"),
            &LeaseHolder::named("another promoter"),
            chrono::Duration::minutes(5),
            p.clock.now(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "it did not wait"
    );
    p.state.release_lease(&held).await.unwrap();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
}
