//! Gates: failing, erroring, panicking and hanging gates fail closed, gates run concurrently,
//! the tests gate reads evidence on the digest, and signature enforcement needs a verifier.

use std::sync::Arc;
use std::time::Duration;

use floe_promotion::gate::{GateOutcome, GateStatus, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::registry::{Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::*;

use super::{env, req, three};

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
async fn signature_enforcement_needs_a_verifier() {
    let mut p = three();
    p.settings.signature_enforcement = gate::SignatureEnforcement::Enforce;
    let err = p.builder().build().unwrap_err();
    assert!(err.to_string().contains("no signature verifier"), "{err}");
}
