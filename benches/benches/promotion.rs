//! In-memory promotion with three gates and history, on one core (current-thread runtime).
//!
//! Run: `cargo bench -p floe-benches --bench promotion`
//! Measured (2 shared cores, both busy with other builds, load average 5.5), three pairs run
//! in turn in one session: 16.4, 18.5 and 17.8 µs a promotion (about 56,000/s) against 29.9,
//! 33.4 and 29.9 µs (33,500/s) for the code before gates ran inside the promotion's task and
//! the outbox delivered the events it was handed. On a quiet machine the code before took
//! 21.1 µs (47,450/s). The target of 100,000/s is still missed: see
//! `examples/promote_loop.rs` to profile what remains.
//!
//! Each measured promotion resolves the digest, checks the transition, lock, immutability and
//! pointer tags, runs three passing gates concurrently, takes and releases the lease, writes
//! two tags and appends two hash-chained events; it yields to the runtime afterwards, where
//! the outbox delivers its two events to the pipeline's recording notifier in the
//! background, and the last events are delivered before the clock stops. Releases are pushed
//! outside the timing.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use floe_benches::{promote_all, three_gate_pipeline};

fn promotion(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("in_memory");
    group.throughput(Throughput::Elements(1));
    group.bench_function("promote_three_gates", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (p, manager) = three_gate_pipeline(iters).await;
                let start = Instant::now();
                promote_all(&p, &manager, iters).await;
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = promotion
}
criterion_main!(benches);
