//! Blue-green releases on in-memory parts with a controllable clock: one test per sentence of
//! the `BlueGreen` contract and per refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use floe_promotion::config::{ApprovalPolicy, ApprovalRule, ApprovalSeparation, Strategy};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery, Payload};
use floe_promotion::manager::{Outcome, SwitchRequest};
use floe_promotion::prelude::*;
use floe_promotion::release::blue_green::{
    BlueGreenEvent, BlueGreenMachine, BlueGreenPhase, BlueGreenState, Slot,
};
use floe_promotion::release::machine::{advance, decode, encode};
use floe_promotion::release::{ReleaseFilter, ReleaseKind};
use floe_promotion::state::HoldKind;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use uuid::Uuid;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

/// dev → staging, staging releases by blue-green.
fn pipeline(auto_switch: bool) -> TestPipeline {
    let mut p = TestPipeline::new(&["dev", "staging"]);
    p.env_mut("staging").strategy = Strategy::BlueGreen { auto_switch };
    p
}

fn promote(p: &TestPipeline, version: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, "dev", "staging", p.actor("ci")).unwrap()
}

fn switch(p: &TestPipeline) -> SwitchRequest {
    SwitchRequest::new("staging", "app", p.actor("ops")).unwrap()
}

async fn pointer(p: &TestPipeline) -> Option<Digest> {
    p.tag_digest("staging", "app", "latest-staging").await
}

/// History's current version of app in staging, which must always equal the pointer.
async fn current(m: &DefaultPromotionManager) -> Option<Digest> {
    m.history_store()
        .deployments(Some(&env("staging")))
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.artifact.as_str() == "app")
        .map(|d| d.digest)
}

async fn assert_pointer_is_current(p: &TestPipeline, m: &DefaultPromotionManager) {
    assert_eq!(
        pointer(p).await,
        current(m).await,
        "pointer and history agree"
    );
}

async fn count(p: &TestPipeline, kind: EventKind) -> usize {
    p.event_kinds().await.iter().filter(|k| **k == kind).count()
}

async fn state(m: &DefaultPromotionManager) -> BlueGreenState {
    let releases = m
        .release_store()
        .list(
            &ReleaseFilter::default()
                .environment(env("staging"))
                .kind(ReleaseKind::BlueGreen),
        )
        .await
        .unwrap();
    decode::<BlueGreenMachine>(&releases[0]).unwrap()
}

async fn switched_payloads(m: &DefaultPromotionManager) -> Vec<floe_promotion::history::Switched> {
    m.history_store()
        .query(&HistoryQuery {
            kinds: vec![EventKind::Switched],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.record.payload().unwrap() {
            Payload::Switched(s) => s,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn stage_switch_stage_switch_and_back() {
    let p = pipeline(false);
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let v2 = p.push_release("app", "v2", b"two").await.digest().clone();
    let m = p.manager();

    // Promote stages on the idle slot (blue first); the pointer does not move.
    let staged = m.promote(promote(&p, "v1")).await.unwrap();
    assert_eq!(staged.outcome, Outcome::Staged);
    let written: Vec<&str> = staged.tags_written.iter().map(Tag::as_str).collect();
    assert_eq!(written, ["v1-staging", "staging-blue"]);
    assert_eq!(
        p.tag_digest("staging", "app", "staging-blue").await,
        Some(v1.clone())
    );
    assert_eq!(pointer(&p).await, None);
    assert_pointer_is_current(&p, &m).await;
    assert_eq!(count(&p, EventKind::PreviewStaged).await, 1);
    let slots = m.slots(&env("staging")).await.unwrap();
    assert_eq!(slots.len(), 2);
    assert!(slots[0].preview && !slots[0].live && slots[0].slot == Slot::Blue);
    assert_eq!(slots[0].digest.as_ref(), Some(&v1));
    assert_eq!(slots[1].digest, None);

    // Switch moves the pointer.
    let s = m.switch(switch(&p)).await.unwrap();
    assert_eq!(s.outcome, Outcome::Switched);
    assert_eq!(s.version.as_str(), "v1");
    assert_eq!(pointer(&p).await, Some(v1.clone()));
    assert_pointer_is_current(&p, &m).await;

    // v2 goes to green; the pointer stays on v1.
    let staged = m.promote(promote(&p, "v2")).await.unwrap();
    assert!(
        staged
            .tags_written
            .iter()
            .any(|t| t.as_str() == "staging-green")
    );
    assert_eq!(
        p.tag_digest("staging", "app", "staging-green").await,
        Some(v2.clone())
    );
    assert_eq!(pointer(&p).await, Some(v1.clone()));
    assert_pointer_is_current(&p, &m).await;
    let status = m.status(Some(&env("staging"))).await.unwrap();
    let slots = &status[0].slots;
    assert!(slots[0].live && slots[0].version.as_ref().unwrap().as_str() == "v1");
    assert!(slots[1].preview && slots[1].version.as_ref().unwrap().as_str() == "v2");

    m.switch(switch(&p)).await.unwrap();
    assert_eq!(pointer(&p).await, Some(v2.clone()));
    assert_pointer_is_current(&p, &m).await;
    assert_eq!(state(&m).await.live, Some(Slot::Green));

    // Back needs a reason, runs at once, records `switched` with `back`, holds auto-promotion.
    let e = m
        .switch(SwitchRequest {
            back: true,
            ..switch(&p)
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    let back = m.switch(switch(&p).back("v2 is slow")).await.unwrap();
    assert_eq!(back.outcome, Outcome::SwitchedBack);
    assert_eq!(pointer(&p).await, Some(v1.clone()));
    assert_pointer_is_current(&p, &m).await;
    let payloads = switched_payloads(&m).await;
    assert_eq!(payloads.len(), 3);
    let last = &payloads[2];
    assert!(last.back);
    assert_eq!(
        (last.slot, last.previous_slot),
        (Slot::Blue, Some(Slot::Green))
    );
    assert_eq!(last.previous_digest.as_ref(), Some(&v2));
    let holds = m.holds(Some(&env("staging"))).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].kind, HoldKind::Rollback);
    // The audit chain holds.
    assert!(m.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_second_promotion_replaces_the_preview() {
    let p = pipeline(false);
    p.push_release("app", "v1", b"one").await;
    let v2 = p.push_release("app", "v2", b"two").await.digest().clone();
    let v3 = p.push_release("app", "v3", b"three").await.digest().clone();
    let m = p.manager();
    m.promote(promote(&p, "v1")).await.unwrap();
    m.switch(switch(&p)).await.unwrap();
    m.promote(promote(&p, "v2")).await.unwrap();
    m.promote(promote(&p, "v3")).await.unwrap();
    assert_eq!(
        p.tag_digest("staging", "app", "staging-green").await,
        Some(v3.clone())
    );
    let staged = m
        .history_store()
        .query(&HistoryQuery {
            kinds: vec![EventKind::PreviewStaged],
            ..Default::default()
        })
        .await
        .unwrap();
    match staged.last().unwrap().record.payload().unwrap() {
        Payload::PreviewStaged(s) => {
            assert_eq!(s.slot, Slot::Green);
            assert_eq!(s.replaced, Some(v2));
        }
        other => panic!("{other:?}"),
    }
    m.switch(switch(&p)).await.unwrap();
    assert_eq!(pointer(&p).await, Some(v3));
    assert_pointer_is_current(&p, &m).await;
}

#[tokio::test]
async fn switching_with_nothing_staged_is_refused() {
    let p = pipeline(false);
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let e = m.switch(switch(&p)).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidTransition { reason, .. } if reason.contains("no preview of app is staged")),
        "{e}"
    );
    let e = m.switch(switch(&p).back("undo")).await.unwrap_err();
    assert!(matches!(e, Error::InvalidTransition { .. }), "{e}");
    m.promote(promote(&p, "v1")).await.unwrap();
    // A preview is staged: back is refused (the idle slot holds the preview).
    let e = m.switch(switch(&p).back("undo")).await.unwrap_err();
    assert!(e.to_string().contains("preview"), "{e}");
    m.switch(switch(&p)).await.unwrap();
    // The preview was consumed: a second switch is refused, and back has nothing to go to.
    let e = m.switch(switch(&p)).await.unwrap_err();
    assert!(matches!(e, Error::InvalidTransition { .. }), "{e}");
    let e = m.switch(switch(&p).back("undo")).await.unwrap_err();
    assert!(e.to_string().contains("no previous slot"), "{e}");
    // Each refusal of an accepted request is recorded.
    assert_eq!(count(&p, EventKind::PromotionFailed).await, 2);
    assert_eq!(count(&p, EventKind::RollbackFailed).await, 3);
    // An environment that is not blue-green has nothing to switch.
    let e = m
        .switch(SwitchRequest::new("dev", "app", p.actor("ops")).unwrap())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("does not release by blue-green"),
        "{e}"
    );
}

#[tokio::test]
async fn a_failing_gate_refuses_the_switch() {
    let p = pipeline(false);
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let fail = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fail);
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("smoke", move |_| {
                let fail = flag.load(Ordering::SeqCst);
                async move {
                    Ok(if fail {
                        GateOutcome::fail("smoke test red")
                    } else {
                        GateOutcome::pass("green")
                    })
                }
            })),
        )
        .build()
        .unwrap();
    m.promote(promote(&p, "v1")).await.unwrap();
    fail.store(true, Ordering::SeqCst);
    let plan = m.plan_switch(switch(&p)).await.unwrap();
    assert!(!plan.would_succeed());
    assert_eq!(plan.gates.len(), 1);
    let e = m.switch(switch(&p)).await.unwrap_err();
    assert!(matches!(e, Error::GateFailed { .. }), "{e}");
    assert_eq!(pointer(&p).await, None);
    assert_eq!(state(&m).await.phase, BlueGreenPhase::Preview);
    fail.store(false, Ordering::SeqCst);
    let s = m.switch(switch(&p)).await.unwrap();
    assert_eq!(s.gates.len(), 1, "the gates ran again on the switch");
    assert_eq!(pointer(&p).await, Some(v1));
}

#[tokio::test]
async fn of_concurrent_switches_one_wins() {
    let p = pipeline(false);
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let m = p.manager();
    m.promote(promote(&p, "v1")).await.unwrap();
    let (a, b, c) = tokio::join!(
        m.switch(switch(&p)),
        m.switch(switch(&p)),
        m.switch(switch(&p))
    );
    let results = [a, b, c];
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(
                e,
                Error::Conflict(_) | Error::InvalidTransition { .. } | Error::Busy { .. }
            ),
            "{e}"
        );
    }
    assert_eq!(pointer(&p).await, Some(v1));
    assert_eq!(count(&p, EventKind::Switched).await, 1);
    assert_pointer_is_current(&p, &m).await;
}

#[tokio::test]
async fn the_approval_of_the_promotion_covers_the_switch() {
    let mut p = pipeline(false);
    p.env_mut("staging").approval = Some(ApprovalPolicy {
        rules: vec![ApprovalRule {
            name: "release".into(),
            required: 1,
            users: vec!["ann".into()],
            groups: vec![],
        }],
        timeout: Duration::from_secs(3600),
        separation: ApprovalSeparation::Requester,
        signers: None,
    });
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let m = p.manager();
    let id = match m.promote(promote(&p, "v1")).await.unwrap_err() {
        Error::ApprovalPending { request_id, .. } => request_id.parse::<Uuid>().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(p.tag_digest("staging", "app", "staging-blue").await, None);
    let e = m.switch(switch(&p)).await.unwrap_err();
    assert!(matches!(e, Error::InvalidTransition { .. }), "{e}");
    let outcome = m.approve(id, &p.actor("ann"), None).await.unwrap();
    let executed = outcome.executed.expect("the approved promotion ran");
    assert_eq!(executed.outcome, Outcome::Staged);
    assert_eq!(pointer(&p).await, None);
    // No new approval request for the switch.
    let s = m.switch(switch(&p)).await.unwrap();
    assert_eq!(s.outcome, Outcome::Switched);
    assert_eq!(pointer(&p).await, Some(v1));
    assert_eq!(count(&p, EventKind::ApprovalRequested).await, 1);
    let staged = m
        .history_store()
        .query(&HistoryQuery {
            kinds: vec![EventKind::PreviewStaged],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        matches!(staged[0].record.payload().unwrap(), Payload::PreviewStaged(s) if s.approval == Some(id))
    );
}

#[tokio::test]
async fn auto_switch_switches_at_once() {
    let p = pipeline(true);
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let v2 = p.push_release("app", "v2", b"two").await.digest().clone();
    let m = p.manager();
    let r = m.promote(promote(&p, "v1")).await.unwrap();
    assert_eq!(r.outcome, Outcome::Switched);
    let tags: Vec<&str> = r.tags_written.iter().map(Tag::as_str).collect();
    assert_eq!(tags, ["v1-staging", "staging-blue", "latest-staging"]);
    assert_eq!(pointer(&p).await, Some(v1));
    m.promote(promote(&p, "v2")).await.unwrap();
    assert_eq!(pointer(&p).await, Some(v2.clone()));
    assert_eq!(
        p.tag_digest("staging", "app", "staging-green").await,
        Some(v2)
    );
    assert_eq!(count(&p, EventKind::PreviewStaged).await, 2);
    assert_eq!(count(&p, EventKind::Switched).await, 2);
    assert_pointer_is_current(&p, &m).await;
}

#[tokio::test]
async fn dry_runs_write_nothing() {
    let p = pipeline(false);
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let plan = m.plan(promote(&p, "v1")).await.unwrap();
    assert_eq!(plan.preview_slot, Some(Slot::Blue));
    let tags: Vec<&str> = plan.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["v1-staging", "staging-blue"]);
    let plan = m.plan_switch(switch(&p)).await.unwrap();
    assert!(!plan.would_succeed());
    let before = p.event_kinds().await;
    assert_eq!(p.tag_digest("staging", "app", "staging-blue").await, None);
    assert!(
        m.release_store()
            .list(&ReleaseFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    m.promote(promote(&p, "v1")).await.unwrap();
    let kinds = p.event_kinds().await.len();
    let plan = m.plan_switch(switch(&p)).await.unwrap();
    assert!(plan.would_succeed(), "{:?}", plan.blockers);
    assert_eq!(plan.target.as_ref().map(|(s, _)| *s), Some(Slot::Blue));
    let tags: Vec<&str> = plan.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["v1-staging", "latest-staging"]);
    let plan = m.plan(promote(&p, "v1")).await.unwrap();
    assert_eq!(
        plan.preview_slot,
        Some(Slot::Blue),
        "a new promotion replaces the preview"
    );
    assert_eq!(p.event_kinds().await.len(), kinds);
    assert_eq!(pointer(&p).await, None);
    assert_eq!(state(&m).await.phase, BlueGreenPhase::Preview);
    assert!(before.len() < kinds);
}

#[tokio::test]
async fn a_lock_refuses_the_switch_unless_overridden() {
    let p = pipeline(false);
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let m = p.manager();
    m.promote(promote(&p, "v1")).await.unwrap();
    m.lock(&env("staging"), &p.actor("ops"), "incident", None)
        .await
        .unwrap();
    let e = m.switch(switch(&p)).await.unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert_eq!(state(&m).await.phase, BlueGreenPhase::Preview);
    let s = m.switch(switch(&p).override_lock("hotfix")).await.unwrap();
    assert!(s.lock_overridden);
    assert_eq!(pointer(&p).await, Some(v1));
    assert_eq!(count(&p, EventKind::LockOverridden).await, 1);
}

#[tokio::test]
async fn an_operation_left_by_a_dead_process_is_settled() {
    let p = pipeline(false);
    let v1 = p.push_release("app", "v1", b"one").await.digest().clone();
    let m = p.manager();
    m.promote(promote(&p, "v1")).await.unwrap();
    // A process moved the release to `switching` and died before writing anything.
    let releases = m
        .release_store()
        .list(&ReleaseFilter::default().kind(ReleaseKind::BlueGreen))
        .await
        .unwrap();
    let r = &releases[0];
    let s = decode::<BlueGreenMachine>(r).unwrap();
    let step = advance::<BlueGreenMachine>(
        &s,
        BlueGreenEvent::Switch {
            id: Uuid::new_v4(),
            at: Clock::now(&p.clock),
        },
    )
    .unwrap();
    m.release_store()
        .update(
            r.id,
            r.version,
            encode::<BlueGreenMachine>(&step.state).unwrap(),
            Clock::now(&p.clock),
        )
        .await
        .unwrap();
    let e = m.switch(switch(&p)).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("under way")),
        "{e}"
    );
    // After a lease's time the operation is abandoned and the switch goes ahead.
    p.clock.advance(chrono::Duration::minutes(16));
    m.switch(switch(&p)).await.unwrap();
    assert_eq!(pointer(&p).await, Some(v1));
    assert_eq!(state(&m).await.phase, BlueGreenPhase::Live);
}

#[tokio::test]
async fn a_rollback_is_a_switch_back_in_a_blue_green_environment() {
    let p = pipeline(false);
    let m = p.manager();
    for v in ["v1", "v2"] {
        p.push_release("app", v, v.as_bytes()).await;
        m.promote(promote(&p, v)).await.unwrap();
        m.switch(switch(&p)).await.unwrap();
    }
    let before = p.history.len();
    let err = m
        .rollback(RollbackRequest::new("app", "staging", "v1", p.actor("ops"), "v2 broke").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidTransition { ref reason, .. } if reason.contains("switch --back")),
        "{err}"
    );
    assert_eq!(p.history.len(), before, "nothing recorded");
    assert!(
        m.plan_rollback(
            RollbackRequest::new("app", "staging", "v1", p.actor("ops"), "v2 broke").unwrap()
        )
        .await
        .is_err()
    );
    assert_eq!(pointer(&p).await, Some(p.release_digest("app", "v2").await));
    let mut back = switch(&p);
    back.back = true;
    back.reason = Some("v2 broke".into());
    m.switch(back).await.unwrap();
    assert_eq!(pointer(&p).await, Some(p.release_digest("app", "v1").await));
    assert_pointer_is_current(&p, &m).await;
}
