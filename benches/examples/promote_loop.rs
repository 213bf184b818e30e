//! Promotes N fresh releases dev -> staging in memory with three gates, for profilers
//! (`valgrind --tool=callgrind`, `perf record`): the same work as the `promotion` benchmark,
//! with a fixed count so instruction counts compare between builds.
//!
//! Run: `cargo run --release -p floe-benches --example promote_loop -- 20000`

use std::sync::Arc;
use std::time::Instant;

use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::{EnvName, PromotionManager, PromotionRequest};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
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
        for i in 0..n {
            p.push_release("app", &format!("v{i}"), format!("content {i}").as_bytes())
                .await;
        }
        let actor = p.actor("ci");
        let start = Instant::now();
        for i in 0..n {
            manager
                .promote(
                    PromotionRequest::new("app", &format!("v{i}"), "dev", "staging", actor.clone())
                        .expect("request"),
                )
                .await
                .expect("promotion");
        }
        let took = start.elapsed();
        println!(
            "{n} promotions in {:.3} s: {:.0} per second",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    });
}
