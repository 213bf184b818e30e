//! In-memory promotion with three gates and history, on one core (current-thread runtime).
//!
//! Run: `cargo bench -p floe-benches --bench promotion`
//! Measured (2 shared cores): 37.9 µs a promotion, 26,400 promotions/s, with the outbox
//! delivering each promotion's two events to the pipeline's recording notifier in the
//! background; 29.4 µs (34,000/s) with delivery left to an explicit run. Before audit format 2
//! (RFC 8785 hashing), the outbox and typed payloads it was 16.8 µs (59,600/s): the target of
//! 50,000/s is missed for now.
//!
//! Each measured promotion resolves the digest, checks the transition, lock, immutability and
//! pointer tags, runs three passing gates concurrently, takes and releases the lease, writes
//! two tags and appends two hash-chained events. Releases are pushed outside the timing.

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
