//! Promotes N fresh releases dev -> staging in memory with three gates, for profilers
//! (`valgrind --tool=callgrind`, `perf record`): the same work as the `promotion` benchmark,
//! with a fixed count so instruction counts compare between builds.
//!
//! Run: `cargo run --release -p floe-benches --example promote_loop -- 20000`

use std::time::Instant;

use floe_benches::{promote_all, three_gate_pipeline};

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
        let (p, manager) = three_gate_pipeline(n).await;
        let start = Instant::now();
        promote_all(&p, &manager, n).await;
        let took = start.elapsed();
        println!(
            "{n} promotions in {:.3} s: {:.0} per second",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    });
}
