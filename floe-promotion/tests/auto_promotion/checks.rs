//! What stands between a candidate and its promotion: an approval rule (one request across
//! runs), a blocking gate and a closed window.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floe_promotion::config::{ApprovalPolicy, ApprovalRule, ApprovalSeparation, FreezeWindow};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::EventKind;
use floe_promotion::orchestrate::AutoAction;
use floe_promotion::prelude::*;

use super::{actions, count, env, pass, pipeline, released, running};

#[tokio::test]
async fn an_approval_rule_creates_exactly_one_request_across_runs() {
    let mut p = pipeline(Duration::ZERO);
    p.env_mut("prod").approval = Some(ApprovalPolicy {
        rules: vec![ApprovalRule {
            name: "release".into(),
            required: 1,
            users: vec!["rel".into()],
            groups: vec![],
        }],
        timeout: Duration::from_secs(3600),
        separation: ApprovalSeparation::Requester,
        signers: None,
    });
    let m = p.manager();
    released(&p, &m, "v1").await;
    let first = pass(&m, &p).await;
    assert_eq!(
        actions(&first, "prod"),
        [(AutoAction::ApprovalRequested, Some("v1".into()))]
    );
    let id = first
        .decisions
        .iter()
        .find(|d| d.environment.as_str() == "prod")
        .unwrap()
        .approval
        .unwrap();
    let before = p.history.len();
    for _ in 0..3 {
        let again = pass(&m, &p).await;
        assert_eq!(
            actions(&again, "prod"),
            [(AutoAction::AwaitingApproval, Some("v1".into()))]
        );
        assert_eq!(
            again
                .decisions
                .iter()
                .find(|d| d.environment.as_str() == "prod")
                .unwrap()
                .approval,
            Some(id)
        );
    }
    assert_eq!(p.history.len(), before, "waiting passes record nothing");
    assert_eq!(count(&p, EventKind::ApprovalRequested).await, 1);
    assert_eq!(m.approvals(None, None).await.unwrap().len(), 1);

    m.approve(id, &p.actor("rel"), None).await.unwrap();
    assert_eq!(
        running(&p, "prod").await.as_deref(),
        Some("v1"),
        "the approval executed it"
    );
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::NothingToDo, None)]
    );

    // A rejected request stops automatic promotion of that digest.
    p.push_release("app", "v2", b"two").await;
    let report = pass(&m, &p).await;
    let d = report
        .decisions
        .iter()
        .find(|d| d.environment.as_str() == "prod")
        .unwrap();
    assert_eq!(d.action, AutoAction::ApprovalRequested);
    m.reject(d.approval.unwrap(), &p.actor("rel"), "not this week")
        .await
        .unwrap();
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::ApprovalClosed, Some("v2".into()))]
    );
    assert_eq!(count(&p, EventKind::ApprovalRequested).await, 2);
}

#[tokio::test]
async fn a_blocking_gate_leaves_the_candidate_for_later_and_records_nothing() {
    let p = pipeline(Duration::ZERO);
    let open = Arc::new(AtomicBool::new(false));
    let gate_open = open.clone();
    let m = p
        .builder()
        .gate(
            env("prod"),
            Arc::new(gate_fn("tests", move |_| {
                let open = gate_open.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    Ok(if open {
                        GateOutcome::pass("tests passed")
                    } else {
                        GateOutcome::fail("no test evidence yet")
                    })
                }
            })),
        )
        .build()
        .unwrap();
    released(&p, &m, "v1").await;
    pass(&m, &p).await;
    let before = p.history.len();
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Blocked, Some("v1".into()))]
    );
    assert!(
        report
            .decisions
            .iter()
            .any(|d| d.detail.contains("no test evidence yet")),
        "{report:?}"
    );
    assert_eq!(
        p.history.len(),
        before,
        "a blocked candidate records nothing"
    );
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))]
    );
}

#[tokio::test]
async fn a_closed_window_waits() {
    let mut p = pipeline(Duration::ZERO);
    let now = floe_promotion::testing::pipeline::start_time();
    p.env_mut("prod").freeze_windows = vec![FreezeWindow::Absolute {
        start: now,
        end: now + chrono::Duration::hours(2),
        reason: "year-end freeze".into(),
    }];
    let m = p.manager();
    released(&p, &m, "v1").await;
    let report = pass(&m, &p).await;
    assert_eq!(actions(&report, "prod"), [(AutoAction::WindowClosed, None)]);
    assert!(
        report
            .decisions
            .iter()
            .any(|d| d.detail.contains("year-end freeze"))
    );
    p.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        actions(&pass(&m, &p).await, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))]
    );
}
