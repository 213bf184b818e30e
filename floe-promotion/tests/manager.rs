//! The promotion path of `DefaultPromotionManager`, one test per rule of its contract and per
//! refusal, on in-memory parts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use floe_promotion::config::{Authorization, FreezeWindow, Weekday};
use floe_promotion::gate::{GateOutcome, GateStatus, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::manager::{Outcome, TagAction};
use floe_promotion::registry::{Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::state::LeaseHolder;
use floe_promotion::testing::fakes::FailingNotifier;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn req(version: &str, from: &str, to: &str, actor: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, from, to, Actor::new(actor).unwrap()).unwrap()
}

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

fn three() -> TestPipeline {
    TestPipeline::new(&["dev", "staging", "prod"])
}

#[tokio::test]
async fn promotes_through_every_environment_with_one_digest() {
    let p = three();
    let pushed = p.push_release("app", "v1.0.0", b"one").await;
    let m = p.manager();
    let r = m
        .promote(req("v1.0.0", "dev", "staging", "ci"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Promoted);
    assert_eq!(&r.digest, pushed.digest());
    assert_eq!(
        r.tags_written.iter().map(Tag::as_str).collect::<Vec<_>>(),
        ["v1.0.0-staging", "latest-staging"]
    );
    m.promote(req("v1.0.0", "staging", "prod", "release"))
        .await
        .unwrap();
    for (e, t) in [
        ("dev", "v1.0.0"),
        ("staging", "v1.0.0-staging"),
        ("staging", "latest-staging"),
        ("prod", "v1.0.0-prod"),
        ("prod", "latest-prod"),
    ] {
        assert_eq!(
            p.tag_digest(e, "app", t).await.as_ref(),
            Some(pushed.digest()),
            "{e}:{t}"
        );
    }
    assert_eq!(
        p.event_kinds().await,
        [
            EventKind::PromotionRequested,
            EventKind::PromotionSucceeded,
            EventKind::PromotionRequested,
            EventKind::PromotionSucceeded
        ]
    );
    let status = m.status(None).await.unwrap();
    assert_eq!(status.len(), 3);
    assert!(status[0].deployments.is_empty());
    assert_eq!(status[2].deployments[0].version.as_str(), "v1.0.0");
    assert_eq!(status[2].deployments[0].by, "release");
    assert!(m.verify().await.unwrap().is_intact());
    m.deliver_notifications().await.unwrap();
    assert_eq!(p.notifier.events().len(), 4);
}

#[tokio::test]
async fn same_digest_again_is_a_no_op() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let again = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyPromoted);
    assert!(again.tags_written.is_empty());
}

#[tokio::test]
async fn another_digest_under_an_env_tag_is_an_immutability_error() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    // CI re-pushes v1 with other content: the staging tag may not move.
    let other = p.push_release("app", "v1", b"two").await;
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Immutability { .. }), "{err}");
    assert_ne!(
        p.tag_digest("staging", "app", "v1-staging").await.as_ref(),
        Some(other.digest())
    );
    assert_ne!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(other.digest())
    );
    assert_eq!(
        p.event_kinds().await.last(),
        Some(&EventKind::PromotionFailed)
    );
}

#[tokio::test]
async fn refuses_backwards_skipping_and_same_environment() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    for (from, to, needle) in [
        ("dev", "prod", "skip staging"),
        ("staging", "dev", "forward only"),
        ("dev", "dev", "same environment"),
    ] {
        let err = m.promote(req("v1", from, to, "ci")).await.unwrap_err();
        match &err {
            Error::InvalidTransition { reason, .. } => assert!(reason.contains(needle), "{err}"),
            other => panic!("{from}->{to}: {other}"),
        }
    }
    assert!(p.tag_digest("prod", "app", "latest-prod").await.is_none());
    assert_eq!(
        p.event_kinds()
            .await
            .iter()
            .filter(|k| **k == EventKind::PromotionFailed)
            .count(),
        3
    );
}

#[tokio::test]
async fn skipping_is_allowed_when_the_settings_say_so() {
    let mut p = three();
    p.settings.allow_skip = true;
    p.push_release("app", "v1", b"one").await;
    p.manager()
        .promote(req("v1", "dev", "prod", "ci"))
        .await
        .unwrap();
    assert!(p.tag_digest("prod", "app", "v1-prod").await.is_some());
}

#[tokio::test]
async fn unknown_environment_is_not_found() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v1", "dev", "qa", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("qa"));
    assert!(
        p.history.is_empty(),
        "input that names no environment is not recorded"
    );
}

#[tokio::test]
async fn version_missing_in_source_is_not_found() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v9", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn later_environment_needs_the_version_promoted_there() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v1", "staging", "prod", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionNotPromoted { .. }), "{err}");
}

#[tokio::test]
async fn env_tag_that_disagrees_with_history_is_refused() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    // Someone moves v1-staging behind the library's back.
    let intruder = p
        .registry
        .push_image(
            &p.repo("staging", "app"),
            &Tag::new("v1-staging").unwrap(),
            &[b"x"],
        )
        .await
        .unwrap();
    let err = m
        .promote(req("v1", "staging", "prod", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains(&intruder.digest().to_string()));
}

#[tokio::test]
async fn authorization_lists_operators_and_groups() {
    let mut p = three();
    p.env_mut("staging").authorization = Authorization {
        allowed_groups: vec!["release".into()],
        allowed_operators: vec!["alice".into()],
        separation_of_duties: false,
    };
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "mallory"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    m.promote(req("v1", "dev", "staging", "alice"))
        .await
        .unwrap();
    let mut in_group = req("v2", "dev", "staging", "bob");
    in_group.actor = in_group.actor.with_groups(["release"]);
    m.promote(in_group).await.unwrap();
}

#[tokio::test]
async fn separation_of_duties_refuses_the_same_operator() {
    let mut p = three();
    p.env_mut("prod").authorization.separation_of_duties = true;
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "alice"))
        .await
        .unwrap();
    let err = m
        .promote(req("v1", "staging", "prod", "alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SeparationOfDuties { .. }), "{err}");
    m.promote(req("v1", "staging", "prod", "bob"))
        .await
        .unwrap();
}

#[tokio::test]
async fn version_pattern_and_allowed_sources() {
    let mut p = three();
    p.settings.allow_skip = true;
    p.env_mut("staging").policy.version_pattern =
        Some(regex::Regex::new(r"^v\d+\.\d+\.\d+$").unwrap());
    p.env_mut("prod").policy.allowed_sources = vec![env("staging")];
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v1.0.0", b"two").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PolicyViolation {
                rule: "version_pattern",
                ..
            }
        ),
        "{err}"
    );
    let err = m
        .promote(req("v1.0.0", "dev", "prod", "ci"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PolicyViolation {
                rule: "allowed_sources",
                ..
            }
        ),
        "{err}"
    );
    m.promote(req("v1.0.0", "dev", "staging", "ci"))
        .await
        .unwrap();
}

#[tokio::test]
async fn freeze_windows_absolute_and_weekly() {
    let mut p = three();
    let start: DateTime<Utc> = p.clock.now();
    p.env_mut("staging").freeze_windows = vec![FreezeWindow::Absolute {
        start,
        end: start + chrono::Duration::hours(1),
        reason: "release freeze".into(),
    }];
    // The pipeline starts on a Monday at 12:00.
    p.env_mut("prod").freeze_windows = vec![FreezeWindow::Weekly {
        days: vec![Weekday::Mon],
        start: NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
        reason: "monday change board".into(),
    }];
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("release freeze"), "{err}");
    p.clock.advance(chrono::Duration::minutes(61));
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let err = m
        .promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("monday change board"), "{err}");
    p.clock.advance(chrono::Duration::hours(1));
    m.promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap();
}

#[tokio::test]
async fn minimum_soak_uses_the_clock() {
    let mut p = three();
    p.env_mut("prod").policy.minimum_soak = Some(Duration::from_secs(24 * 3600));
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    p.clock.advance(chrono::Duration::hours(23));
    let err = m
        .promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PolicyViolation {
                rule: "minimum_soak",
                ..
            }
        ),
        "{err}"
    );
    p.clock.advance(chrono::Duration::hours(1));
    m.promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap();
}

#[tokio::test]
async fn minimum_soak_fails_closed_without_an_arrival_record() {
    let mut p = three();
    p.env_mut("staging").policy.minimum_soak = Some(Duration::from_secs(60));
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be measured"), "{err}");
}

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

#[tokio::test]
async fn a_failing_gate_blocks_and_leaves_the_target_untouched() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("always-no", |_| async {
                Ok(GateOutcome::fail("nope"))
            })),
        )
        .gate_for_all(Arc::new(gate_fn("always-yes", |_| async {
            Ok(GateOutcome::pass("fine"))
        })))
        .build()
        .unwrap();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    match &err {
        Error::GateFailed { failed } => {
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].gate, "always-no");
        }
        other => panic!("{other}"),
    }
    assert!(
        p.registry
            .list_tags(&p.repo("staging", "app"))
            .await
            .unwrap()
            .len()
            == 1
    );
    let failed = p
        .history
        .query(&HistoryQuery {
            kinds: vec![EventKind::PromotionFailed],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        failed[0].record.gates.len(),
        2,
        "every gate result is recorded"
    );
}

#[tokio::test]
async fn gate_errors_panics_and_timeouts_fail_closed() {
    let mut p = three();
    p.env_mut("staging").gate_timeout = Some(Duration::from_millis(100));
    p.push_release("app", "v1", b"one").await;
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("errs", |_| async {
                Err(Error::not_found("the test report"))
            })),
        )
        .gate(
            env("staging"),
            Arc::new(gate_fn("panics", |_| async {
                let v: Vec<u8> = Vec::new();
                Ok(GateOutcome::pass(format!("{}", v[1])))
            })),
        )
        .gate(
            env("staging"),
            Arc::new(gate_fn("hangs", |_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(GateOutcome::pass("late"))
            })),
        )
        .build()
        .unwrap();
    let plan = m.plan(req("v1", "dev", "staging", "ci")).await.unwrap();
    let statuses: Vec<GateStatus> = plan.gates.iter().map(|g| g.status).collect();
    assert_eq!(
        statuses,
        [GateStatus::Error, GateStatus::Error, GateStatus::TimedOut]
    );
    assert!(plan.gates[1].message.contains("panicked"));
    assert!(matches!(
        m.promote(req("v1", "dev", "staging", "ci")).await,
        Err(Error::GateFailed { .. })
    ));
}

#[tokio::test]
async fn gates_run_concurrently() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    // Each gate waits for the other: they only finish if they run at the same time.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut b = p.builder();
    for name in ["left", "right"] {
        let barrier = barrier.clone();
        b = b.gate(
            env("staging"),
            Arc::new(gate_fn(name, move |_| {
                let barrier = barrier.clone();
                async move {
                    barrier.wait().await;
                    Ok(GateOutcome::pass("met"))
                }
            })),
        );
    }
    let m = b.build().unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        m.promote(req("v1", "dev", "staging", "ci")),
    )
    .await
    .expect("gates deadlocked: they did not run concurrently")
    .unwrap();
    assert_eq!(r.gates.len(), 2);
}

#[tokio::test]
async fn the_digest_is_resolved_once_even_if_the_source_tag_moves() {
    let p = three();
    let original = p.push_release("app", "v1", b"one").await;
    let registry = p.registry.clone();
    let dev = p.repo("dev", "app");
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("moves-the-tag", move |ctx| {
                let registry = registry.clone();
                let dev = dev.clone();
                async move {
                    registry
                        .push_image(&dev, &Tag::new("v1").unwrap(), &[b"evil"])
                        .await?;
                    Ok(GateOutcome::pass(format!("checked {}", ctx.digest)))
                }
            })),
        )
        .build()
        .unwrap();
    let r = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(&r.digest, original.digest());
    assert_eq!(
        p.tag_digest("staging", "app", "v1-staging").await.as_ref(),
        Some(original.digest())
    );
    assert_ne!(
        p.tag_digest("dev", "app", "v1").await.as_ref(),
        Some(original.digest())
    );
}

#[tokio::test]
async fn tests_gate_reads_evidence_on_the_digest() {
    let mut p = three();
    p.env_mut("staging").gates.tests = true;
    let m1 = p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no tests evidence"), "{err}");
    let evidence = |status| Evidence {
        kind: EvidenceKind::Tests,
        status,
        environment: Some(env("dev")),
        created: p.clock.now(),
        actor: Some("ci".into()),
        details: serde_json::Value::Null,
    };
    p.registry
        .attach_evidence(
            &p.repo("dev", "app"),
            m1.digest(),
            &evidence(EvidenceStatus::Failed),
        )
        .await
        .unwrap();
    assert!(m.promote(req("v1", "dev", "staging", "ci")).await.is_err());
    p.clock.advance(chrono::Duration::seconds(1));
    let mut passed = evidence(EvidenceStatus::Passed);
    passed.created = p.clock.now();
    p.registry
        .attach_evidence(&p.repo("dev", "app"), m1.digest(), &passed)
        .await
        .unwrap();
    let r = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(r.gates[0].gate, "tests");
    assert_eq!(r.gates[0].status, GateStatus::Passed);
}

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
async fn separate_repositories_are_copied_by_mount() {
    let mut p = three();
    p.env_mut("staging").repository = Some(Repository::new("mem/staging").unwrap());
    p.env_mut("prod").repository = Some(Repository::new("mem/prod").unwrap());
    let pushed = p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let uploads = p.registry.blob_uploads();
    let r = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let copy = r.copy.expect("a copy was needed");
    assert_eq!(copy.blobs_mounted, 2);
    assert_eq!(p.registry.blob_uploads(), uploads, "no blob bytes uploaded");
    assert_eq!(r.repository.as_str(), "mem/staging/app");
    m.promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap();
    assert_eq!(
        p.tag_digest("prod", "app", "latest-prod").await.as_ref(),
        Some(pushed.digest())
    );
}

#[tokio::test]
async fn signature_enforcement_needs_a_verifier() {
    let mut p = three();
    p.settings.signature_enforcement = gate::SignatureEnforcement::Enforce;
    let err = p.builder().build().unwrap_err();
    assert!(err.to_string().contains("no signature verifier"), "{err}");
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
