//! Promotes N fresh releases dev -> staging in memory with three gates, for profilers
//! (`valgrind --tool=callgrind`, `perf record`): the same work as the `promotion` benchmark,
//! with a fixed count so instruction counts compare between builds.
//!
//! Run: `cargo run --release -p floe-benches --example promote_loop -- 20000`
//!
//! With `setup` after the count, it builds the pipeline and pushes the releases but promotes
//! nothing: the instructions of a promotion are then `(run(N) - run(N setup)) / N`, e.g.
//! `valgrind --tool=callgrind target/release/examples/promote_loop 2000` and the same with
//! `2000 setup`. The history is not torn down at the end (in either mode), so the difference
//! holds the promotions and the delivery of their events to the notifier, nothing else.

use std::time::Instant;

use floe_benches::{promote_all, three_gate_pipeline};
use floe_promotion::{PromotionRequest, Promotions};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let setup_only = args.next().as_deref() == Some("setup");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (p, manager) = three_gate_pipeline(n).await;
        // What each call moves into its box: the state of the whole promotion.
        let request =
            PromotionRequest::new("app", "v0", "dev", "staging", p.actor("ci")).expect("request");
        let future = manager.promote(request);
        println!(
            "a promotion's future: {} bytes",
            std::mem::size_of_val(&*future)
        );
        drop(future);
        if setup_only {
            println!("{n} releases pushed, none promoted");
            // Not dropped, in either mode: tearing the history down is no promotion's work.
            std::mem::forget((p, manager));
            return;
        }
        let start = Instant::now();
        promote_all(&p, &manager, n).await;
        let took = start.elapsed();
        println!(
            "{n} promotions in {:.3} s: {:.0} per second",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
        std::mem::forget((p, manager));
    });
}
