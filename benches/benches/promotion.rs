//! In-memory promotion with three gates and history, on one core (current-thread runtime).
//!
//! Run: `cargo bench -p floe-benches --bench promotion`
//! Measured (2 shared cores, both busy with other builds, load average 13): 52.6 and 61.7 µs
//! a promotion (19,000 and 16,200/s), against 114.4 and 108.9 µs for the code before the
//! direct format-2 writer, run in turn in the same session; with the outbox delivering each
//! promotion's two events to the pipeline's recording notifier in the background. On a quiet
//! machine the code before took 36.5 µs (27,400/s). The target of 100,000/s is missed for now:
//! see `examples/promote_loop.rs` to profile what remains.
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
