//! Automatic promotion and holds on in-memory parts with a controllable clock: one test per
//! sentence of the `AutoPromotions` contract.

use std::time::Duration;

use floe_promotion::config::AutoPromotion;
use floe_promotion::history::EventKind;
use floe_promotion::orchestrate::{AutoAction, AutoOptions, AutoReport};
use floe_promotion::prelude::*;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

mod candidates;
mod checks;
mod holds;
mod passes;

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
