//! Holds: manual and rollback holds stop automatic promotion until released, who may place and
//! release them, and which holds a manual promotion releases.

use std::time::Duration;

use floe_promotion::history::{EventKind, HistoryQuery, Payload};
use floe_promotion::orchestrate::AutoAction;
use floe_promotion::prelude::*;
use floe_promotion::state::HoldKind;
use floe_promotion::*;

use super::{actions, env, pass, pipeline, released, running};

#[tokio::test]
async fn a_held_environment_is_skipped_until_every_holder_released() {
    let p = pipeline(Duration::ZERO);
    let m = p.manager();
    released(&p, &m, "v1").await;
    m.hold(&env("prod"), &p.actor("sec"), "pen test")
        .await
        .unwrap();
    m.hold(&env("prod"), &p.actor("ops"), "db migration")
        .await
        .unwrap();
    let err = m
        .hold(&env("prod"), &p.actor("ops"), "twice")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("ops already holds prod")),
        "{err}"
    );

    let report = pass(&m, &p).await;
    assert_eq!(actions(&report, "prod"), [(AutoAction::Held, None)]);
    let held = &report
        .decisions
        .iter()
        .find(|d| d.environment.as_str() == "prod")
        .unwrap()
        .detail;
    assert!(
        held.contains("sec (manual hold: pen test)") && held.contains("ops"),
        "{held}"
    );
    assert_eq!(running(&p, "prod").await, None);

    let statuses = m.status(Some(&env("prod"))).await.unwrap();
    assert_eq!(statuses[0].holds.len(), 2, "status shows the holds");

    m.release_hold(&env("prod"), &p.actor("sec"), None, "done")
        .await
        .unwrap();
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::Held, None)]
    );
    let err = m
        .release_hold(&env("prod"), &p.actor("sec"), None, "again")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    m.release_hold(
        &env("prod"),
        &p.actor("lead"),
        Some("ops"),
        "migration finished",
    )
    .await
    .unwrap();
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))]
    );

    let events = m
        .history(&HistoryQuery {
            kinds: vec![EventKind::HoldPlaced, EventKind::HoldReleased],
            order: floe_promotion::history::Order::OldestFirst,
            ..Default::default()
        })
        .await
        .unwrap();
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            let holder = match e.record.payload().unwrap() {
                Payload::HoldPlaced(h) | Payload::HoldReleased(h) => h.holder,
                other => panic!("{other:?}"),
            };
            (e.record.kind, e.record.actor.id.clone(), holder)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::HoldPlaced, "sec".into(), "sec".into()),
            (EventKind::HoldPlaced, "ops".into(), "ops".into()),
            (EventKind::HoldReleased, "sec".into(), "sec".into()),
            (EventKind::HoldReleased, "lead".into(), "ops".into()),
        ]
    );
}

#[tokio::test]
async fn holds_need_a_reason_and_authorization() {
    let mut p = pipeline(Duration::ZERO);
    p.env_mut("prod").authorization.allowed_groups = vec!["release".into()];
    let m = p.manager();
    for blank in ["", "  "] {
        let err = m
            .hold(&env("prod"), &p.actor("ops"), blank)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("a hold needs a reason"), "{err}");
    }
    let err = m
        .hold(&env("prod"), &p.actor("ops"), "why not")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    let releaser = Actor::new("rel").unwrap().with_groups(["release"]);
    m.hold(&env("prod"), &releaser, "freeze").await.unwrap();
    let err = m
        .release_hold(&env("prod"), &releaser, None, " ")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("releasing a hold needs a reason"),
        "{err}"
    );
    assert_eq!(m.holds(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rollback_holds_and_its_version_is_never_promoted_again() {
    let p = pipeline(Duration::ZERO);
    let m = p.manager();
    released(&p, &m, "v1").await;
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))]
    );
    p.push_release("app", "v2", b"two").await;
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "staging"),
        [(AutoAction::Promoted, Some("v2".into()))]
    );
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Promoted, Some("v2".into()))],
        "one pass goes down the line: staging first, then prod (soak 0s)"
    );

    m.rollback(
        RollbackRequest::new("app", "prod", "v1", p.actor("oncall"), "v2 leaks memory").unwrap(),
    )
    .await
    .unwrap();
    let holds = m.holds(Some(&env("prod"))).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(
        (holds[0].holder.as_str(), holds[0].kind),
        ("oncall", HoldKind::Rollback)
    );
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::Held, None)]
    );

    m.release_hold(&env("prod"), &p.actor("oncall"), None, "v1 is stable")
        .await
        .unwrap();
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::NothingToDo, None)],
        "v2 was rolled back in prod: never again automatically"
    );
    assert_eq!(running(&p, "prod").await.as_deref(), Some("v1"));

    // A newer version moves on as usual.
    p.push_release("app", "v3", b"three").await;
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Promoted, Some("v3".into()))]
    );
}

#[tokio::test]
async fn a_manual_promotion_releases_rollback_holds_but_not_manual_ones() {
    let p = pipeline(Duration::ZERO);
    let m = p.manager();
    released(&p, &m, "v1").await;
    pass(&m, &p).await;
    p.push_release("app", "v2", b"two").await;
    pass(&m, &p).await;
    pass(&m, &p).await;
    m.rollback(RollbackRequest::new("app", "prod", "v1", p.actor("oncall"), "bad").unwrap())
        .await
        .unwrap();
    m.hold(&env("prod"), &p.actor("sec"), "audit")
        .await
        .unwrap();
    p.push_release("app", "v3", b"three").await;
    pass(&m, &p).await;
    m.promote(PromotionRequest::new("app", "v3", "staging", "prod", p.actor("rel")).unwrap())
        .await
        .unwrap();
    let holds = m.holds(Some(&env("prod"))).await.unwrap();
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert_eq!(
        (holds[0].holder.as_str(), holds[0].kind),
        ("sec", HoldKind::Manual)
    );
    let released = m
        .history(&HistoryQuery {
            kinds: vec![EventKind::HoldReleased],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].record.actor.id, "rel");
    assert!(
        released[0]
            .record
            .reason
            .as_deref()
            .unwrap()
            .contains("manual promotion of app:v3")
    );
}
