//! Shared set-up of the workspace's benchmarks (see `benches/`) and profiling examples.

use std::sync::Arc;

use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::{DefaultPromotionManager, EnvName, PromotionRequest, Promotions};

/// An in-memory pipeline dev → staging → prod whose staging has three passing gates, with
/// `releases` fresh releases `v0`, `v1`, ... of `app` pushed into dev.
pub async fn three_gate_pipeline(releases: u64) -> (TestPipeline, DefaultPromotionManager) {
    let p = TestPipeline::new(&["dev", "staging", "prod"]);
    let mut builder = p.builder();
    for name in ["tests", "policy", "scan"] {
        builder = builder.gate(
            EnvName::new("staging").expect("env"),
            Arc::new(gate_fn(name, |ctx| async move {
                Ok(GateOutcome::pass(format!("{} ok", ctx.digest.short())))
            })),
        );
    }
    let manager = builder.build().expect("manager");
    for i in 0..releases {
        p.push_release("app", &format!("v{i}"), format!("content {i}").as_bytes())
            .await;
    }
    (p, manager)
}

/// Promotes releases `v0` .. `v{n-1}` from dev to staging, one after the other, yielding to
/// the runtime between two promotions as an embedder's event loop would (the outbox's
/// background delivery runs there), then waits until the pipeline's notifier has received
/// every event, so that all the work of the outbox is counted.
pub async fn promote_all(p: &TestPipeline, manager: &DefaultPromotionManager, n: u64) {
    let actor = p.actor("ci");
    for i in 0..n {
        manager
            .promote(
                PromotionRequest::new("app", &format!("v{i}"), "dev", "staging", actor.clone())
                    .expect("request"),
            )
            .await
            .expect("promotion");
        tokio::task::yield_now().await;
    }
    let deliveries = manager
        .deliver_notifications()
        .await
        .expect("notification delivery");
    assert!(
        deliveries
            .iter()
            .all(|d| d.error.is_none() && d.cursor == 2 * n),
        "every promotion's two events reach the notifier: {deliveries:?}"
    );
}
