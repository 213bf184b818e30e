//! Canary releases on in-memory parts with a controllable clock: one test per sentence of the
//! `Canaries` contract.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use floe_promotion::config::{CanaryStep, Strategy};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{CanaryAction, EventKind, HistoryQuery, Order, Payload};
use floe_promotion::manager::Outcome;
use floe_promotion::orchestrate::{AutoAction, AutoOptions};
use floe_promotion::prelude::*;
use floe_promotion::release::canary::CanaryPhase;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

/// dev → staging → prod; prod releases as a canary: 10 % for an hour, 50 % until advanced, 100.
fn pipeline() -> TestPipeline {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.env_mut("prod").strategy = Strategy::Canary {
        steps: vec![
            CanaryStep {
                weight: 10,
                pause: Some(Duration::from_secs(3600)),
            },
            CanaryStep {
                weight: 50,
                pause: None,
            },
            CanaryStep {
                weight: 100,
                pause: None,
            },
        ],
    };
    p
}

/// `version` pushed and promoted to staging by ci.
async fn in_staging(p: &TestPipeline, m: &DefaultPromotionManager, version: &str) -> Digest {
    p.push_release("app", version, version.as_bytes()).await;
    m.promote(PromotionRequest::new("app", version, "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    p.release_digest("app", version).await
}

fn to_prod(p: &TestPipeline, version: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, "staging", "prod", p.actor("rel")).unwrap()
}

async fn tag(p: &TestPipeline, tag: &str) -> Option<Digest> {
    p.tag_digest("prod", "app", tag).await
}

/// The `canary_step` events, oldest first: (step, weight, action).
async fn steps(m: &DefaultPromotionManager) -> Vec<(u32, u8, CanaryAction)> {
    m.history(&HistoryQuery {
        kinds: vec![EventKind::CanaryStep],
        order: Order::OldestFirst,
        ..Default::default()
    })
    .await
    .unwrap()
    .iter()
    .map(|e| match e.record.payload().unwrap() {
        Payload::CanaryStep(s) => (s.step, s.weight, s.action),
        other => panic!("{other:?}"),
    })
    .collect()
}

async fn current(m: &DefaultPromotionManager) -> Option<Digest> {
    m.status(Some(&env("prod")))
        .await
        .unwrap()
        .remove(0)
        .deployments
        .into_iter()
        .find(|d| d.artifact.as_str() == "app")
        .map(|d| d.digest)
}

/// v1 fully released in prod (through its canary), so v2 has a stable version to replace.
async fn v1_stable(p: &TestPipeline, m: &DefaultPromotionManager) -> Digest {
    let v1 = in_staging(p, m, "v1").await;
    m.promote(to_prod(p, "v1")).await.unwrap();
    m.advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    m.advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    assert_eq!(tag(p, "latest-prod").await, Some(v1.clone()));
    v1
}

#[tokio::test]
async fn a_promotion_starts_a_canary_and_advancing_to_100_moves_the_pointer() {
    let p = pipeline();
    let m = p.manager();
    let v1 = v1_stable(&p, &m).await;
    let v2 = in_staging(&p, &m, "v2").await;

    let record = m.promote(to_prod(&p, "v2")).await.unwrap();
    assert_eq!(record.outcome, Outcome::CanaryStarted);
    assert_eq!(
        record
            .tags_written
            .iter()
            .map(Tag::as_str)
            .collect::<Vec<_>>(),
        ["canary-prod"]
    );
    assert_eq!(tag(&p, "canary-prod").await, Some(v2.clone()));
    assert_eq!(
        tag(&p, "latest-prod").await,
        Some(v1.clone()),
        "the stable one stays"
    );
    assert_eq!(
        tag(&p, "v2-prod").await,
        None,
        "the environment tag waits for 100"
    );
    assert_eq!(
        current(&m).await,
        Some(v1.clone()),
        "history's current is the pointer"
    );

    let status = m.status(Some(&env("prod"))).await.unwrap().remove(0);
    let c = &status.canaries[0];
    assert_eq!((c.step, c.weight, c.phase), (1, 10, CanaryPhase::Running));
    assert_eq!(
        c.stable.as_ref().map(|s| s.digest.clone()),
        Some(v1.clone())
    );
    assert_eq!(c.due, Some(p.clock.now() + chrono::Duration::hours(1)));

    let c = m
        .advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    assert_eq!((c.step, c.weight), (2, 50));
    assert_eq!(tag(&p, "latest-prod").await, Some(v1.clone()));
    let c = m
        .advance_canary(
            &env("prod"),
            Some(&ArtifactName::new("app").unwrap()),
            &p.actor("rel"),
        )
        .await
        .unwrap();
    assert_eq!((c.weight, c.phase), (100, CanaryPhase::Completed));
    assert_eq!(tag(&p, "latest-prod").await, Some(v2.clone()));
    assert_eq!(tag(&p, "v2-prod").await, Some(v2.clone()));
    assert_eq!(current(&m).await, Some(v2.clone()));
    assert!(
        m.canaries(None).await.unwrap().is_empty(),
        "nothing runs any more"
    );
    let v2_steps: Vec<_> = steps(&m).await.into_iter().skip(3).collect();
    assert_eq!(
        v2_steps,
        [
            (1, 10, CanaryAction::Started),
            (2, 50, CanaryAction::Advanced),
            (3, 100, CanaryAction::Completed)
        ]
    );
    assert!(m.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn one_canary_at_a_time_per_environment_and_artifact() {
    let p = pipeline();
    let m = p.manager();
    in_staging(&p, &m, "v1").await;
    m.promote(to_prod(&p, "v1")).await.unwrap();
    in_staging(&p, &m, "v2").await;
    let plan = m.plan(to_prod(&p, "v2")).await.unwrap();
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.to_string().contains("a canary of app:v1 runs in prod")),
        "{:?}",
        plan.blockers
    );
    let err = m.promote(to_prod(&p, "v2")).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref s) if s.contains("advance or abort it first")),
        "{err}"
    );
    assert_eq!(m.canaries(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_gate_refuses_the_step_and_the_canary_stays() {
    let p = pipeline();
    let pass = Arc::new(AtomicBool::new(true));
    let gate = pass.clone();
    let m = p
        .builder()
        .gate(
            env("prod"),
            Arc::new(gate_fn("smoke", move |_| {
                let ok = gate.load(Ordering::SeqCst);
                async move {
                    Ok(if ok {
                        GateOutcome::pass("healthy")
                    } else {
                        GateOutcome::fail("error rate 7%")
                    })
                }
            })),
        )
        .build()
        .unwrap();
    in_staging(&p, &m, "v1").await;
    m.promote(to_prod(&p, "v1")).await.unwrap();
    pass.store(false, Ordering::SeqCst);
    let err = m
        .advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GateFailed { .. }), "{err}");
    let c = &m.canaries(None).await.unwrap()[0];
    assert_eq!((c.step, c.weight), (1, 10));
    assert_eq!(
        steps(&m).await.last(),
        Some(&(1, 10, CanaryAction::Blocked))
    );
    pass.store(true, Ordering::SeqCst);
    let c = m
        .advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    assert_eq!(c.weight, 50);
}

#[tokio::test]
async fn abort_puts_the_canary_tag_back_on_stable_and_leaves_the_pointer() {
    let p = pipeline();
    let m = p.manager();
    let v1 = v1_stable(&p, &m).await;
    in_staging(&p, &m, "v2").await;
    m.promote(to_prod(&p, "v2")).await.unwrap();
    m.advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    let err = m
        .abort_canary(&env("prod"), None, &p.actor("rel"), " ")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("aborting a canary needs a reason"),
        "{err}"
    );
    let c = m
        .abort_canary(&env("prod"), None, &p.actor("rel"), "latency up")
        .await
        .unwrap();
    assert_eq!((c.phase, c.weight), (CanaryPhase::Aborted, 0));
    assert_eq!(tag(&p, "canary-prod").await, Some(v1.clone()));
    assert_eq!(tag(&p, "latest-prod").await, Some(v1.clone()));
    assert_eq!(tag(&p, "v2-prod").await, None);
    assert_eq!(current(&m).await, Some(v1));
    assert_eq!(steps(&m).await.last(), Some(&(2, 0, CanaryAction::Aborted)));
    assert!(m.canaries(None).await.unwrap().is_empty());
    let err = m
        .advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    // The artifact can be promoted again.
    assert_eq!(
        m.promote(to_prod(&p, "v2")).await.unwrap().outcome,
        Outcome::CanaryStarted
    );
}

#[tokio::test]
async fn a_timed_pause_advances_when_automatic_promotion_runs_after_it() {
    let p = pipeline();
    let m = p.manager();
    in_staging(&p, &m, "v1").await;
    m.promote(to_prod(&p, "v1")).await.unwrap();
    let options = AutoOptions::new(p.actor("floe-bot"));
    p.clock.advance(chrono::Duration::minutes(59));
    let report = m.run_auto_promotions(&options).await.unwrap();
    assert!(report.decisions.is_empty(), "{report:?}");
    p.clock.advance(chrono::Duration::minutes(1));
    let report = m.run_auto_promotions(&options).await.unwrap();
    assert_eq!(report.decisions.len(), 1);
    assert_eq!(report.decisions[0].action, AutoAction::CanaryAdvanced);
    let c = &m.canaries(None).await.unwrap()[0];
    assert_eq!(
        (c.step, c.weight, c.due),
        (2, 50, None),
        "50 waits for an advance"
    );
    p.clock.advance(chrono::Duration::hours(5));
    assert!(
        m.run_auto_promotions(&options)
            .await
            .unwrap()
            .decisions
            .is_empty()
    );
    // A hold stops the timed advance too.
    let p2 = pipeline();
    let m2 = p2.manager();
    in_staging(&p2, &m2, "v1").await;
    m2.promote(to_prod(&p2, "v1")).await.unwrap();
    m2.hold(&env("prod"), &p2.actor("sec"), "incident")
        .await
        .unwrap();
    p2.clock.advance(chrono::Duration::hours(2));
    assert!(
        m2.run_auto_promotions(&AutoOptions::new(p2.actor("floe-bot")))
            .await
            .unwrap()
            .decisions
            .is_empty()
    );
    assert_eq!(m2.canaries(None).await.unwrap()[0].weight, 10);
}

#[tokio::test]
async fn a_rollback_aborts_the_running_canary_first() {
    let p = pipeline();
    let m = p.manager();
    let v1 = v1_stable(&p, &m).await;
    let v2 = in_staging(&p, &m, "v2").await;
    m.promote(to_prod(&p, "v2")).await.unwrap();
    m.advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    m.advance_canary(&env("prod"), None, &p.actor("rel"))
        .await
        .unwrap();
    assert_eq!(current(&m).await, Some(v2.clone()));
    in_staging(&p, &m, "v3").await;
    m.promote(to_prod(&p, "v3")).await.unwrap();
    m.rollback(RollbackRequest::new("app", "prod", "v1", p.actor("oncall"), "v2 leaks").unwrap())
        .await
        .unwrap();
    assert!(
        m.canaries(None).await.unwrap().is_empty(),
        "the v3 canary was aborted"
    );
    assert_eq!(
        tag(&p, "canary-prod").await,
        Some(v2),
        "back on the stable of its start"
    );
    assert_eq!(tag(&p, "latest-prod").await, Some(v1.clone()));
    assert_eq!(current(&m).await, Some(v1));
    let kinds = p.event_kinds().await;
    let n = kinds.len();
    assert_eq!(
        &kinds[n - 3..],
        [
            EventKind::CanaryStep,
            EventKind::RollbackSucceeded,
            EventKind::HoldPlaced
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_advances_move_one_step() {
    for _ in 0..5 {
        let p = pipeline();
        let m = p.manager();
        in_staging(&p, &m, "v1").await;
        m.promote(to_prod(&p, "v1")).await.unwrap();
        let spawn = |who: &str| {
            let (m, actor) = (m.clone(), p.actor(who));
            tokio::spawn(async move { m.advance_canary(&env("prod"), None, &actor).await })
        };
        let (a, b) = (spawn("a"), spawn("b"));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let ok = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
        assert!(ok >= 1);
        let moved = steps(&m)
            .await
            .into_iter()
            .filter(|s| matches!(s.2, CanaryAction::Advanced | CanaryAction::Completed))
            .count();
        assert_eq!(moved, ok, "each success is one step, and only one");
        let successes = m
            .history(&HistoryQuery {
                environment: Some(env("prod")),
                kinds: vec![EventKind::PromotionSucceeded],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            successes.len(),
            usize::from(ok == 2),
            "the pointer moves once, at 100"
        );
        if ok == 1 {
            let err = a.err().or(b.err()).unwrap();
            assert!(matches!(err, Error::Conflict(_)), "{err}");
        }
    }
}

#[tokio::test]
async fn a_dry_run_shows_the_canary_plan_and_writes_nothing() {
    let p = pipeline();
    let m = p.manager();
    in_staging(&p, &m, "v1").await;
    let before = p.history.len();
    let plan = m.plan(to_prod(&p, "v1")).await.unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    assert_eq!(
        plan.tags.iter().map(|t| t.tag.as_str()).collect::<Vec<_>>(),
        ["canary-prod"]
    );
    assert!(matches!(plan.strategy, Strategy::Canary { ref steps } if steps.len() == 3));
    assert_eq!(p.history.len(), before);
    assert_eq!(tag(&p, "canary-prod").await, None);
}
