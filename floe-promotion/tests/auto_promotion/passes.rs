//! How a pass runs: a dry run writes nothing, a stop request ends it, concurrent passes promote
//! each candidate once, and an environment without the setting is refused by name.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::orchestrate::{AutoAction, AutoOptions};
use floe_promotion::prelude::*;
use floe_promotion::release::InMemoryReleaseStore;
use floe_promotion::*;

use super::{actions, bot, count, env, pipeline, released, running};

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
