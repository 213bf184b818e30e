//! What the manager reports beside a promotion: plans that write nothing, history queries, and
//! notifications delivered from the outbox.

use std::sync::Arc;

use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::manager::{Outcome, TagAction};
use floe_promotion::testing::fakes::FailingNotifier;
use floe_promotion::*;

use super::{env, req, three};

#[tokio::test]
async fn a_failing_notifier_never_fails_the_operation_and_keeps_its_events() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .notifier(Arc::new(FailingNotifier))
        .build()
        .unwrap();
    let r = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(r.outcome, Outcome::Promoted);
    // Notifiers run after the commit, from the outbox; the operation knows nothing of them.
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let report = m.deliver_notifications().await.unwrap();
    let recording = report.iter().find(|d| d.error.is_none()).unwrap();
    assert_eq!(recording.cursor, 2, "{report:?}");
    let failing = report.iter().find(|d| d.error.is_some()).unwrap();
    assert_eq!(failing.cursor, 0, "the failed event is kept: {report:?}");
    assert!(
        failing.error.as_ref().unwrap().contains("event 1"),
        "{report:?}"
    );
    // The recording notifier got both events once, whatever the failing one did.
    m.deliver_notifications().await.unwrap();
    assert_eq!(p.notifier.events().len(), 2);
}

#[tokio::test]
async fn plan_reports_every_blocker_without_writing() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("no", |_| async { Ok(GateOutcome::fail("nope")) })),
        )
        .build()
        .unwrap();
    let ops = Actor::new("ops").unwrap();
    m.lock(&env("staging"), &ops, "incident", None)
        .await
        .unwrap();
    let events_before = p.history.len();
    let plan = m.plan(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert!(!plan.would_succeed());
    assert!(matches!(plan.blockers[0], Error::Locked { .. }));
    assert!(matches!(plan.blockers[1], Error::GateFailed { .. }));
    assert_eq!(plan.tags.len(), 2);
    assert!(plan.tags.iter().all(|t| t.action == TagAction::Create));
    assert_eq!(p.history.len(), events_before);
    assert!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .is_none()
    );

    m.unlock(&env("staging"), &ops, None).await.unwrap();
    let ok = p
        .manager()
        .plan(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap();
    assert!(ok.would_succeed());
    assert_eq!(ok.copy_mode, Some(registry::CopyMode::TagOnly));
}

#[tokio::test]
async fn history_queries_through_the_manager() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let events = m
        .history(&HistoryQuery {
            environment: Some(env("staging")),
            kinds: vec![EventKind::PromotionSucceeded],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].record.details["tags"],
        "v1-staging,latest-staging"
    );
}
