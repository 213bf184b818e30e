//! Automatic promotion and holds on in-memory parts with a controllable clock: one test per
//! sentence of the `AutoPromotions` contract.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floe_promotion::config::{
    ApprovalPolicy, ApprovalRule, ApprovalSeparation, AutoPromotion, FreezeWindow,
};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery, Payload};
use floe_promotion::orchestrate::{AutoAction, AutoOptions, AutoReport};
use floe_promotion::prelude::*;
use floe_promotion::release::InMemoryReleaseStore;
use floe_promotion::state::HoldKind;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

/// dev → staging → prod; staging takes from dev at once, prod from staging after `soak`.
fn pipeline(soak: Duration) -> TestPipeline {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.env_mut("staging").auto_promotion = Some(AutoPromotion::new(env("dev"), Duration::ZERO));
    p.env_mut("prod").auto_promotion = Some(AutoPromotion::new(env("staging"), soak));
    p
}

fn bot(p: &TestPipeline) -> AutoOptions {
    AutoOptions::new(p.actor("floe-auto"))
}

async fn pass(m: &DefaultPromotionManager, p: &TestPipeline) -> AutoReport {
    m.run_auto_promotions(&bot(p)).await.unwrap()
}

fn actions(report: &AutoReport, environment: &str) -> Vec<(AutoAction, Option<String>)> {
    report
        .decisions
        .iter()
        .filter(|d| d.environment.as_str() == environment)
        .map(|d| {
            (
                d.action,
                d.candidate.as_ref().map(|c| c.version.to_string()),
            )
        })
        .collect()
}

async fn running(p: &TestPipeline, environment: &str) -> Option<String> {
    let pointer = format!("latest-{environment}");
    let digest = p.tag_digest(environment, "app", &pointer).await?;
    for v in ["v1", "v2", "v3", "v4"] {
        if p.registry
            .resolve(&p.repo("dev", "app"), &Reference::Tag(Tag::new(v).unwrap()))
            .await
            .is_ok_and(|m| m.digest() == &digest)
        {
            return Some(v.to_string());
        }
    }
    None
}

async fn count(p: &TestPipeline, kind: EventKind) -> usize {
    p.event_kinds()
        .await
        .into_iter()
        .filter(|k| *k == kind)
        .count()
}

/// A release is pushed to dev and seen by a pass (discovered), then promoted to staging at
/// once (soak 0s).
async fn released(p: &TestPipeline, m: &DefaultPromotionManager, version: &str) {
    p.push_release("app", version, version.as_bytes()).await;
    // The artifact must be known to history once: a first manual promotion names it.
    if count(p, EventKind::PromotionSucceeded).await == 0 {
        m.promote(PromotionRequest::new("app", version, "dev", "staging", p.actor("ci")).unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn soak_not_met_then_met() {
    let p = pipeline(Duration::from_secs(3600));
    let m = p.manager();
    released(&p, &m, "v1").await;
    assert_eq!(running(&p, "staging").await.as_deref(), Some("v1"));

    p.clock.advance(chrono::Duration::minutes(59));
    let report = pass(&m, &p).await;
    assert_eq!(actions(&report, "prod"), [(AutoAction::NothingToDo, None)]);
    assert!(report.decisions[1].detail.contains("1h"), "{report:?}");
    assert_eq!(running(&p, "prod").await, None);

    p.clock.advance(chrono::Duration::minutes(1));
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))]
    );
    assert_eq!(running(&p, "prod").await.as_deref(), Some("v1"));
    let success = m
        .history(&HistoryQuery {
            environment: Some(env("prod")),
            kinds: vec![EventKind::PromotionSucceeded],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(success.len(), 1);
    assert_eq!(success[0].record.actor.id, "floe-auto");
    assert!(
        success[0]
            .record
            .reason
            .as_deref()
            .unwrap()
            .starts_with("automatic promotion: ran 1h in staging"),
        "{:?}",
        success[0].record.reason
    );

    let before = p.history.len();
    let again = pass(&m, &p).await;
    assert_eq!(actions(&again, "prod"), [(AutoAction::NothingToDo, None)]);
    assert_eq!(p.history.len(), before, "a re-run records nothing");
}

#[tokio::test]
async fn releases_pushed_to_the_first_environment_are_discovered_and_promoted() {
    let p = pipeline(Duration::from_secs(3600));
    let m = p.manager();
    released(&p, &m, "v1").await;
    p.push_release("app", "v2", b"two").await;
    p.push_release("app", "v10", b"ten").await;

    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "staging"),
        [(AutoAction::Promoted, Some("v10".into()))],
        "the newest release by natural order: v10 after v2"
    );
    let discovered = m
        .history(&HistoryQuery {
            kinds: vec![EventKind::ReleaseDiscovered],
            order: floe_promotion::history::Order::OldestFirst,
            ..Default::default()
        })
        .await
        .unwrap();
    let versions: Vec<_> = discovered
        .iter()
        .map(|e| e.record.version.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(versions, ["v1", "v2", "v10"], "each release once, in order");
    assert!(
        discovered
            .iter()
            .all(|e| e.record.environment.as_ref().unwrap().as_str() == "dev")
    );

    // Nothing new: a second pass records nothing (v2 is older than what staging runs).
    let before = p.history.len();
    let report = pass(&m, &p).await;
    assert_eq!(
        actions(&report, "staging"),
        [(AutoAction::NothingToDo, None)]
    );
    assert_eq!(p.history.len(), before);
}

#[tokio::test]
async fn a_newer_version_replaces_an_older_candidate() {
    let p = pipeline(Duration::from_secs(3600));
    let m = p.manager();
    released(&p, &m, "v1").await;
    p.clock.advance(chrono::Duration::minutes(90));
    // v2 arrives in staging before the pass: v1 soaked 90 min (its stay is over), v2 not yet.
    p.push_release("app", "v2", b"two").await;
    m.promote(PromotionRequest::new("app", "v2", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    p.clock.advance(chrono::Duration::minutes(10));
    let mut only_prod = bot(&p);
    only_prod.environment = Some(env("prod"));
    let report = m.run_auto_promotions(&only_prod).await.unwrap();
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))],
        "v1 ran 90 min without interruption"
    );
    p.clock.advance(chrono::Duration::minutes(50));
    let report = m.run_auto_promotions(&only_prod).await.unwrap();
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Promoted, Some("v2".into()))],
        "v2 has soaked an hour now and replaces v1"
    );
    assert_eq!(running(&p, "prod").await.as_deref(), Some("v2"));
}

#[tokio::test]
async fn versions_outside_the_pattern_are_never_candidates() {
    let mut p = pipeline(Duration::ZERO);
    p.env_mut("prod").auto_promotion.as_mut().unwrap().versions =
        Some(regex::Regex::new("^v[0-9]+$").unwrap());
    let m = p.manager();
    released(&p, &m, "v1").await;
    p.push_release("app", "v2-rc1", b"rc").await;
    m.promote(PromotionRequest::new("app", "v2-rc1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    let report = m
        .run_auto_promotions(&AutoOptions {
            environment: Some(env("prod")),
            ..bot(&p)
        })
        .await
        .unwrap();
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::Promoted, Some("v1".into()))],
        "v2-rc1 does not match; v1 does"
    );
}

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

#[tokio::test]
async fn a_dry_run_records_claims_and_writes_nothing() {
    let p = pipeline(Duration::ZERO);
    let m = p.manager();
    released(&p, &m, "v1").await;
    p.push_release("app", "v2", b"two").await;
    let before = p.history.len();
    let report = m
        .run_auto_promotions(&AutoOptions {
            dry_run: true,
            ..bot(&p)
        })
        .await
        .unwrap();
    assert_eq!(
        actions(&report, "staging"),
        [(AutoAction::WouldPromote, Some("v2".into()))]
    );
    assert_eq!(
        actions(&report, "prod"),
        [(AutoAction::WouldPromote, Some("v1".into()))]
    );
    assert_eq!(p.history.len(), before);
    assert_eq!(running(&p, "staging").await.as_deref(), Some("v1"));
    assert_eq!(running(&p, "prod").await, None);
}

#[tokio::test]
async fn a_stop_request_ends_the_pass_before_the_next_candidate() {
    let p = pipeline(Duration::ZERO);
    let m = p.manager();
    released(&p, &m, "v1").await;
    let stop = Arc::new(AtomicBool::new(true));
    let report = m
        .run_auto_promotions(&AutoOptions {
            stop: Some(stop),
            ..bot(&p)
        })
        .await
        .unwrap();
    assert!(report.stopped);
    assert!(report.decisions.is_empty());
    assert_eq!(running(&p, "prod").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_passes_promote_each_candidate_once() {
    for _ in 0..10 {
        let p = pipeline(Duration::ZERO);
        let releases = Arc::new(InMemoryReleaseStore::new());
        let build = || p.builder().releases(releases.clone()).build().unwrap();
        let (a, b) = (build(), build());
        released(&p, &a, "v1").await;
        let (oa, ob) = (bot(&p), bot(&p));
        let (ra, rb) = tokio::join!(a.run_auto_promotions(&oa), b.run_auto_promotions(&ob));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let promoted = ra.with_action(AutoAction::Promoted).count()
            + rb.with_action(AutoAction::Promoted).count();
        assert!(promoted >= 1, "{ra:?} {rb:?}");
        let prod_successes = m_history(&a, "prod").await;
        assert_eq!(prod_successes, 1, "{ra:?} {rb:?}");
        assert_eq!(running(&p, "prod").await.as_deref(), Some("v1"));
        assert_eq!(
            count(&p, EventKind::PromotionRequested).await,
            2,
            "dev→staging by hand, staging→prod once"
        );
        assert!(a.verify().await.unwrap().is_intact());
    }
}

async fn m_history(m: &DefaultPromotionManager, environment: &str) -> usize {
    m.history(&HistoryQuery {
        environment: Some(env(environment)),
        kinds: vec![EventKind::PromotionSucceeded],
        ..Default::default()
    })
    .await
    .unwrap()
    .len()
}

#[tokio::test]
async fn an_environment_without_auto_promote_is_refused_by_name() {
    let p = pipeline(Duration::ZERO);
    let m = p.manager();
    let err = m
        .run_auto_promotions(&AutoOptions {
            environment: Some(env("dev")),
            ..bot(&p)
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("has no auto_promote setting"),
        "{err}"
    );
}
