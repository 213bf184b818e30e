//! In-memory promotion with three gates and history, on one core (current-thread runtime).
//!
//! Run: `cargo bench -p floe-benches --bench promotion`
//! Measured (2 shared cores, load average 1.3 to 1.7), four pairs run in turn in one session:
//! 7.96, 7.93, 8.03 and 7.97 µs a promotion (about 125,000/s) against 10.91, 10.79, 10.80 and
//! 11.16 µs (91,700/s) for the code before the in-memory history kept each event once (shared
//! with the outbox), names, digests and manifests were shared behind `Arc`s, the registry fake
//! kept each tag with its manifest, sealing wrote times and plain strings directly, and tags
//! expected not to exist were looked up without building an error. `promote_loop` (set-up
//! subtracted): 123 allocations, 3.4 KB kept and 0.95 page faults a promotion against 218,
//! 6.5 KB and 1.92; callgrind 130.7k instructions against 164.6k. Earlier, with both cores
//! busy (load average 5.5): 16.4 to 18.5 µs against 29.9 to 33.4 µs for the code before gates
//! ran inside the promotion's task. See `examples/promote_loop.rs` to profile what remains.
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
