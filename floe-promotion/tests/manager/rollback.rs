//! Rollback: the pointer moves back and rollback tags are written; what a rollback refuses.

use floe_promotion::history::EventKind;
use floe_promotion::manager::Outcome;
use floe_promotion::*;

use super::{env, req, three};

#[tokio::test]
async fn rollback_moves_the_pointer_and_writes_rollback_tags() {
    let p = three();
    let v1 = p.push_release("app", "v1", b"one").await;
    let v2 = p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    m.promote(req("v2", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(v2.digest())
    );
    let ops = Actor::new("ops").unwrap();
    let rb =
        |v: &str| RollbackRequest::new("app", "staging", v, ops.clone(), "bad release").unwrap();
    let r = m.rollback(rb("v1")).await.unwrap();
    assert_eq!(r.outcome, Outcome::RolledBack);
    assert_eq!(r.tags_written[0].as_str(), "v1-staging-rollback-1");
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(v1.digest())
    );
    // Already current.
    let err = m.rollback(rb("v1")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
    // Forward again, then back again: the counter goes up.
    m.rollback(rb("v2")).await.unwrap();
    let r = m.rollback(rb("v1")).await.unwrap();
    assert_eq!(r.tags_written[0].as_str(), "v1-staging-rollback-2");
    let d = m.status(Some(&env("staging"))).await.unwrap();
    assert_eq!(d[0].deployments[0].kind, EventKind::RollbackSucceeded);
    assert!(m.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn rollback_refusals() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let ops = Actor::new("ops").unwrap();
    let err = m
        .rollback(RollbackRequest::new("app", "staging", "v0", ops.clone(), "why").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionNotPromoted { .. }), "{err}");
    let err = m
        .rollback(RollbackRequest::new("app", "staging", "v1", ops.clone(), "  ").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    p.push_release("app", "v2", b"two").await;
    m.promote(req("v2", "dev", "staging", "ci")).await.unwrap();
    m.lock(&env("staging"), &ops, "freeze", None).await.unwrap();
    let err = m
        .rollback(RollbackRequest::new("app", "staging", "v1", ops.clone(), "bad").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    let mut over = RollbackRequest::new("app", "staging", "v1", ops, "break glass").unwrap();
    over.override_lock = true;
    let r = m.rollback(over).await.unwrap();
    assert!(r.lock_overridden);
    // The version never promoted and the lock are recorded refusals; a rollback without a
    // reason is not a request at all and leaves no trace.
    assert_eq!(
        p.event_kinds()
            .await
            .iter()
            .filter(|k| **k == EventKind::RollbackFailed)
            .count(),
        2
    );
}
