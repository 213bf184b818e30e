//! Which release a pass promotes, and when: soak, releases discovered in the first environment,
//! a newer version replacing an older candidate, and versions outside the pattern.

use std::time::Duration;

use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::orchestrate::{AutoAction, AutoOptions};
use floe_promotion::prelude::*;
use floe_promotion::*;

use super::{actions, bot, env, pass, pipeline, released, running};

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
