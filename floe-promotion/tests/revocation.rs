//! Revocation on in-memory parts: one test per sentence of the `Revocations` contract.

use std::time::Duration;

use floe_promotion::config::AutoPromotion;
use floe_promotion::history::{EventKind, HistoryQuery, Order};
use floe_promotion::orchestrate::{AutoAction, AutoOptions};
use floe_promotion::prelude::*;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

fn app() -> ArtifactName {
    ArtifactName::new("app").unwrap()
}

fn req(version: &str, from: &str, to: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, from, to, Actor::new("ci").unwrap()).unwrap()
}

#[tokio::test]
async fn a_revoked_digest_enters_no_environment_until_unrevoked() {
    let p = TestPipeline::new(&["dev", "staging", "prod"]);
    let m = p.manager();
    p.push_release("app", "v1", b"one").await;
    let v1 = p.release_digest("app", "v1").await;
    m.promote(req("v1", "dev", "staging")).await.unwrap();

    for blank in ["", "  "] {
        let err = m
            .revoke(&app(), &v1, &p.actor("sec"), blank)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("needs a reason"), "{err}");
    }
    let r = m
        .revoke(&app(), &v1, &p.actor("sec"), "CVE-2026-1")
        .await
        .unwrap();
    assert_eq!((r.by.as_str(), r.reason.as_str()), ("sec", "CVE-2026-1"));
    let err = m
        .revoke(&app(), &v1, &p.actor("ops"), "again")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref s) if s.contains("revoked already (by sec")),
        "{err}"
    );

    // Refused into every environment, and the plan says why.
    let err = m.promote(req("v1", "staging", "prod")).await.unwrap_err();
    assert!(
        matches!(err, Error::Revoked { ref by, .. } if by == "sec"),
        "{err}"
    );
    let plan = m.plan(req("v1", "staging", "prod")).await.unwrap();
    assert!(
        plan.blockers
            .iter()
            .any(|b| matches!(b, Error::Revoked { .. }))
    );
    assert_eq!(p.tag_digest("prod", "app", "latest-prod").await, None);

    // Status flags the environment still running it.
    let status = m.status(None).await.unwrap();
    let flagged: Vec<_> = status
        .iter()
        .filter(|s| !s.revoked.is_empty())
        .map(|s| s.environment.to_string())
        .collect();
    assert_eq!(flagged, ["staging"]);

    // Lifted: it moves again.
    let err = m.unrevoke(&v1, &p.actor("sec"), "").await.unwrap_err();
    assert!(err.to_string().contains("needs a reason"), "{err}");
    m.unrevoke(&v1, &p.actor("sec"), "fixed upstream")
        .await
        .unwrap();
    let err = m.unrevoke(&v1, &p.actor("sec"), "twice").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    m.promote(req("v1", "staging", "prod")).await.unwrap();

    let events = m
        .history(&HistoryQuery {
            kinds: vec![EventKind::Revoked, EventKind::Unrevoked],
            order: Order::OldestFirst,
            ..Default::default()
        })
        .await
        .unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.record.kind,
                e.record.digest.clone(),
                e.record.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                EventKind::Revoked,
                Some(v1.clone()),
                Some("CVE-2026-1".into())
            ),
            (
                EventKind::Unrevoked,
                Some(v1),
                Some("fixed upstream".into())
            ),
        ]
    );
}

#[tokio::test]
async fn a_rollback_never_targets_a_revoked_digest() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let m = p.manager();
    for v in ["v1", "v2"] {
        p.push_release("app", v, v.as_bytes()).await;
        m.promote(req(v, "dev", "staging")).await.unwrap();
    }
    let v1 = p.release_digest("app", "v1").await;
    m.revoke(&app(), &v1, &p.actor("sec"), "bad build")
        .await
        .unwrap();
    let rollback = || {
        RollbackRequest::new(
            "app",
            "staging",
            "v1",
            Actor::new("oncall").unwrap(),
            "v2 broke",
        )
        .unwrap()
    };
    let err = m.rollback(rollback()).await.unwrap_err();
    assert!(matches!(err, Error::Revoked { .. }), "{err}");
    assert!(
        m.plan_rollback(rollback())
            .await
            .unwrap()
            .blockers
            .iter()
            .any(|b| matches!(b, Error::Revoked { .. }))
    );
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging").await,
        Some(p.release_digest("app", "v2").await)
    );
}

#[tokio::test]
async fn automatic_promotion_never_picks_a_revoked_digest() {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.env_mut("prod").auto_promotion = Some(AutoPromotion::new(env("staging"), Duration::ZERO));
    let m = p.manager();
    p.push_release("app", "v1", b"one").await;
    m.promote(req("v1", "dev", "staging")).await.unwrap();
    let v1 = p.release_digest("app", "v1").await;
    m.revoke(&app(), &v1, &p.actor("sec"), "CVE").await.unwrap();
    let before = p.history.len();
    let report = m
        .run_auto_promotions(&AutoOptions::new(p.actor("floe-bot")))
        .await
        .unwrap();
    assert_eq!(
        report.decisions[0].action,
        AutoAction::NothingToDo,
        "{report:?}"
    );
    assert_eq!(p.history.len(), before, "nothing recorded");
    m.unrevoke(&v1, &p.actor("sec"), "false alarm")
        .await
        .unwrap();
    let report = m
        .run_auto_promotions(&AutoOptions::new(p.actor("floe-bot")))
        .await
        .unwrap();
    assert_eq!(
        report.decisions[0].action,
        AutoAction::Promoted,
        "{report:?}"
    );
}
