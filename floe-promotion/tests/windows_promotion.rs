//! Promotion windows in the promotion path: a closed window refuses a promotion, a
//! break-glass override with a reason passes it and is recorded as `window_overridden`, a plan
//! lists the closed window as a blocker, and rollbacks are not held by windows.

use floe_promotion::config::{
    PromotionWindow, Recurrence, WindowKind, WindowSchedule, parse_timezone,
};
use floe_promotion::history::{EventKind, HistoryQuery, Payload, WindowOverridden};
use floe_promotion::testing::pipeline::{TestPipeline, start_time};
use floe_promotion::*;

fn req(version: &str, from: &str, to: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, from, to, Actor::new("ci").unwrap()).unwrap()
}

/// The pipeline's clock starts on Monday 2026-01-05 at 12:00 UTC (13:00 in Berlin): staging
/// denies Mondays 12:00 to 18:00 Berlin time.
fn pipeline() -> TestPipeline {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    let monday = Recurrence::new(
        "FREQ=WEEKLY;BYDAY=MO;BYHOUR=12",
        parse_timezone("Europe/Berlin").unwrap(),
        None,
        std::time::Duration::from_secs(6 * 3600),
    )
    .unwrap();
    p.env_mut("staging").windows = vec![PromotionWindow::new(
        WindowKind::Deny,
        WindowSchedule::recurring(monday),
        "monday maintenance",
    )];
    p
}

#[tokio::test]
async fn a_deny_window_refuses_and_an_override_passes_and_is_recorded() {
    let p = pipeline();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();

    let err = m.promote(req("v1", "dev", "staging")).await.unwrap_err();
    match &err {
        Error::PolicyViolation { rule, detail, .. } => {
            assert_eq!(*rule, "window");
            assert!(detail.contains("monday maintenance"), "{detail}");
            // 18:00 Berlin is 17:00 UTC.
            assert!(
                detail.contains("opens next at 2026-01-05T17:00:00+00:00"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging").await,
        None,
        "nothing moved"
    );

    // The plan lists the closed window among its blockers, and writes nothing.
    let plan = m.plan(req("v1", "dev", "staging")).await.unwrap();
    assert!(!plan.would_succeed());
    assert!(
        plan.blockers
            .iter()
            .any(|b| matches!(b, Error::PolicyViolation { rule: "window", .. })),
        "{:?}",
        plan.blockers
    );

    // An override needs a reason.
    let mut bare = req("v1", "dev", "staging");
    bare.override_window = true;
    let err = m.promote(bare).await.unwrap_err();
    assert!(err.to_string().contains("needs a reason"), "{err}");

    // Break-glass with a reason: promoted, and recorded.
    let record = m
        .promote(req("v1", "dev", "staging").override_window("hotfix for incident 42"))
        .await
        .unwrap();
    assert!(record.window_overridden);
    assert!(!record.lock_overridden);
    let events = p.history.query(&HistoryQuery::default()).await.unwrap();
    let overridden: Vec<_> = events
        .iter()
        .filter(|e| e.record.kind == EventKind::WindowOverridden)
        .collect();
    assert_eq!(overridden.len(), 1);
    let e = &overridden[0].record;
    assert_eq!(e.reason.as_deref(), Some("hotfix for incident 42"));
    assert_eq!(e.environment.as_ref().map(|e| e.as_str()), Some("staging"));
    assert!(e.digest.is_some());
    assert_eq!(
        e.payload().unwrap(),
        Payload::WindowOverridden(WindowOverridden::new(
            WindowKind::Deny,
            "monday maintenance",
            "hotfix for incident 42"
        ))
    );
    // The override comes before the success, in the same promotion.
    let kinds = p.event_kinds().await;
    let at = kinds
        .iter()
        .position(|k| *k == EventKind::WindowOverridden)
        .unwrap();
    assert_eq!(kinds[at + 1], EventKind::PromotionSucceeded);
    assert!(m.verify().await.unwrap().is_intact());

    // An override while the window is open records nothing extra.
    p.clock.advance(chrono::Duration::hours(5));
    assert_eq!(p.clock.now(), start_time() + chrono::Duration::hours(5));
    p.push_release("app", "v2", b"two").await;
    let record = m
        .promote(req("v2", "dev", "staging").override_window("not needed"))
        .await
        .unwrap();
    assert!(!record.window_overridden);
    let count = p
        .event_kinds()
        .await
        .iter()
        .filter(|k| **k == EventKind::WindowOverridden)
        .count();
    assert_eq!(count, 1);
}

/// Windows do not hold rollbacks: a rollback repairs the environment.
#[tokio::test]
async fn rollbacks_pass_closed_windows() {
    let p = pipeline();
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    p.clock.advance(chrono::Duration::hours(6));
    m.promote(req("v1", "dev", "staging")).await.unwrap();
    m.promote(req("v2", "dev", "staging")).await.unwrap();
    // Next Monday, inside the window.
    p.clock
        .advance(chrono::Duration::days(7) - chrono::Duration::hours(6));
    let err = m.promote(req("v1", "dev", "staging")).await.unwrap_err();
    assert!(err.to_string().contains("monday maintenance"), "{err}");
    let rb =
        RollbackRequest::new("app", "staging", "v1", Actor::new("ops").unwrap(), "bad v2").unwrap();
    let r = m.rollback(rb).await.unwrap();
    assert!(!r.window_overridden);
    assert!(!p.event_kinds().await.contains(&EventKind::WindowOverridden));
}
