//! SQLite backend benchmarks on a history of 1,000,000 events.
//!
//! Run: `cargo bench -p floe-promotion-sqlite --bench sqlite` (`FLOE_BENCH_EVENTS=N` for
//! another size; `FLOE_BENCH_10M=1` adds the latest 50 events of one environment in a history
//! of 10,000,000 events, a file of about 10 GB). The database is built first (batched appends
//! of 1,000 events, timed and printed) and kept under the target directory, so later runs
//! start at once (the append benchmarks add to it); then measured: the latest 50 events of
//! one environment, the current version of every environment, a full `verify`, a full JSON
//! Lines export, and appends (durable, one event per transaction; and batches of 100). The
//! figures are recorded in the crate's README. An earlier run (2 vCPU, shared, 1,000,000
//! events, 992 MB file):
//!
//! - build in batches of 1,000: 10,650 events/s
//! - append, durable, one per transaction: 294 µs (3,400 events/s)
//! - append, batch of 100: 9.2 ms (10,860 events/s)
//! - latest 50 of one environment: 168 µs
//! - current version of every environment (1,600 pairs): 5.1 ms
//! - full verify: 1.26 s
//! - full JSON Lines export: 1.10 s
//!
//! Audit format 2 (RFC 8785, stored bytes checked canonical and parsed in full by `verify`),
//! measured at 100,000 events (`FLOE_BENCH_EVENTS=100000`, same machine, one run after the
//! other): full verify 169 ms before, 315 ms after (590,000 → 318,000 events/s; the checker
//! thread now parses every event and checks its canonical form); full JSON Lines export
//! 86 ms before, 103 ms after. The 1,000,000-event figures above are from before format 2.
//!
//! `verify` on worker threads, one per core, reading format-2 fields in place; this bench's
//! `verify_full_chain` at 100,000 events, the previous build and this one run in turn on the
//! same file, with another process using part of the 2 shared vCPUs (load average 2.3–3.3):
//! 275 ms and 315 ms before, 257 ms and 202 ms after. With the second core free (timed
//! separately, medians of 15 runs): 313 ms → 146 ms at 100,000 events (686,000 events/s),
//! 3.30 s → 1.37 s at 1,000,000 events; with it busy, about 1.2× (1,000,000 events: 2.62 s).
//! See the crate's README.
//!
//! Export and verify profiled with `perf record -g` (1,000,000 events, both vCPUs busy with
//! other builds, load average 10–14, previous build and this one run in turn): the export's
//! check that `prev_hash` and `hash` are hex digits was 42% of its CPU, byte by byte with an
//! early exit; checking every byte lets it be vectorised, and the export went from
//! 1.49–1.54 s to 0.70–0.83 s. `verify` spends 2.59 s of CPU (2.75 s before comparing the
//! indexed columns without decoding them): SHA-256 about 9%, the core's canonical-form check
//! and event parse (`check_content_fields`) about 46%, reading rows from SQLite the rest.
//! The latest 50 events come off `events_by_environment` backwards (no sort, no scan);
//! most of their time is parsing the events and the allocations that makes.
//!
//! Profiled again (`perf record -g`, 1,000,000 events), the canonical-form check and the serde
//! parse of each event were two passes over its bytes; the core now matches the layout its
//! writer produces in one pass (`floe-promotion/src/history/layout.rs`), reading the fields
//! `verify` needs, or the whole record for a query, and leaves any other bytes to the general
//! readers (tests show it accepts only what they accept, with the same result). The previous
//! build and this one run in turn on the same file, load average 3.6–4.3 on the 2 shared vCPUs:
//! `verify_full_chain` 2.42 s → 1.30 s, and 2.45 → 1.32 CPU-seconds per verify (`perf stat`,
//! task-clock over the calls counted by a uprobe); `latest_50_of_one_environment`
//! 151 µs and 183 µs → 97 µs and 96 µs. At load average 6–7, two rounds: verify 3.37 s and
//! 3.31 s → 1.63 s and 1.54 s (2.39 → 1.13–1.25 CPU-seconds), latest 50 157 µs and 188 µs →
//! 135 µs and 127 µs. SHA-256 is now 23% of verify's CPU, reading the rows
//! from SQLite about a third, the content checks most of the rest. Reading the file through a
//! memory map (`PRAGMA mmap_size`) for the scan was tried and measured 1.48 CPU-seconds per
//! verify against 1.32 without (page faults and unmapping cost more than the copies saved).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use floe_promotion::gate::{GateResult, GateStatus};
use floe_promotion::history::{
    EventKind, EventRecord, ExportFormat, HistoryExt, HistoryQuery, HistoryStore,
};
use floe_promotion::{Actor, ArtifactName, Digest, EnvName, Tag};
use floe_promotion_sqlite::SqliteStore;

const ENVIRONMENTS: [&str; 8] = [
    "dev", "qa", "staging", "perf", "canary", "prod-eu", "prod-us", "prod-ap",
];
const ARTIFACTS: usize = 40;
const KINDS: [EventKind; 6] = [
    EventKind::PromotionRequested,
    EventKind::PromotionSucceeded,
    EventKind::PromotionFailed,
    EventKind::ApprovalRequested,
    EventKind::RollbackSucceeded,
    EventKind::CanaryStep,
];

/// A realistic event: about 600 bytes of canonical JSON.
fn event(i: u64) -> EventRecord {
    let kind = KINDS[(i % KINDS.len() as u64) as usize];
    let env = ENVIRONMENTS[((i / 7) % ENVIRONMENTS.len() as u64) as usize];
    let artifact = format!(
        "team-{}/service-{}",
        (i / 3) % 5,
        (i / 11) % ARTIFACTS as u64
    );
    let version = format!("v1.{}.{}", (i / 1000) % 100, i % 1000);
    let time = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::milliseconds(i as i64 * 1500);
    let mut r = EventRecord::new(
        kind,
        Actor::new(format!("ci-runner-{}", i % 17))
            .unwrap_or_else(|_| unreachable!())
            .with_groups(["ci"]),
        time,
    );
    r.environment = EnvName::new(env).ok();
    r.from = EnvName::new("dev").ok();
    r.artifact = ArtifactName::new(artifact).ok();
    r.version = Tag::new(version.clone()).ok();
    r.digest = Some(Digest::of(version.as_bytes()));
    if matches!(
        kind,
        EventKind::PromotionSucceeded | EventKind::PromotionFailed
    ) {
        r.gates = vec![GateResult {
            gate: "signature".into(),
            status: GateStatus::Passed,
            message: "verified with the release key".into(),
            duration_ms: 42,
        }];
    }
    r.details.insert("tags".into(), format!("{version}-{env}"));
    r.details.insert("copied_blobs".into(), "3".into());
    r
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// Opens the benchmark database of `total` events, building (or completing) it first.
///
/// The file is kept under the target directory between runs (`FLOE_BENCH_DB` names another
/// path), so only the first run builds it.
fn database(rt: &tokio::runtime::Runtime, total: u64, path: &Path) -> (Arc<SqliteStore>, u64) {
    let store = Arc::new(
        rt.block_on(SqliteStore::open(path))
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
    );
    let started = Instant::now();
    let existing = rt
        .block_on(store.query(&HistoryQuery {
            limit: Some(1),
            order: floe_promotion::history::Order::NewestFirst,
            ..Default::default()
        }))
        .unwrap_or_else(|e| panic!("query: {e}"))
        .first()
        .map_or(0, |e| e.seq);
    rt.block_on(async {
        let mut i = existing;
        while i < total {
            let n = 1000.min(total - i);
            store
                .append_batch((i..i + n).map(event).collect())
                .await
                .unwrap_or_else(|e| panic!("append: {e}"));
            i += n;
        }
    });
    let took = started.elapsed();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let built = total.saturating_sub(existing);
    let total = total.max(existing);
    if built > 0 {
        eprintln!(
            "built {built} events in {:.1} s ({:.0} events/s in batches of 1000)",
            took.as_secs_f64(),
            built as f64 / took.as_secs_f64(),
        );
    }
    eprintln!(
        "{}: {total} events, {} MB",
        path.display(),
        size / 1_000_000
    );
    (store, total)
}

/// Where the database of `total` events is kept: the path in the environment variable `var`,
/// or a file under the target directory.
fn database_path(var: &str, total: u64) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sqlite-bench-{total}.db"))
    })
}

fn benches(c: &mut Criterion) {
    let total: u64 = std::env::var("FLOE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    let (store, total) = database(&rt, total, &database_path("FLOE_BENCH_DB", total));

    let prod = EnvName::new("prod-eu").unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("sqlite_1m");
    group.bench_function("latest_50_of_one_environment", |b| {
        b.to_async(&rt).iter(|| async {
            let events = store
                .latest(&prod, 50)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(events.len(), 50);
        })
    });
    group.bench_function("current_version_of_every_environment", |b| {
        b.to_async(&rt).iter(|| async {
            let d = store
                .deployments(None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!d.is_empty());
        })
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(total));
    group.bench_function("verify_full_chain", |b| {
        b.to_async(&rt).iter(|| async {
            let report = store.verify().await.unwrap_or_else(|e| panic!("{e}"));
            assert!(report.is_intact());
            assert_eq!(report.events, total);
        })
    });
    group.bench_function("export_jsonl_full", |b| {
        b.to_async(&rt).iter(|| async {
            let mut sink = std::io::sink();
            let n = store
                .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut sink)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(n, total);
        })
    });
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    let mut next = total;
    group.bench_function("append_durable_one_per_transaction", |b| {
        b.to_async(&rt).iter_batched(
            || {
                next += 1;
                event(next)
            },
            |r| async {
                store.append(r).await.unwrap_or_else(|e| panic!("{e}"));
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("append_batch_of_100", |b| {
        b.to_async(&rt).iter_batched(
            || {
                next += 100;
                (next - 100..next).map(event).collect::<Vec<_>>()
            },
            |batch| async {
                store
                    .append_batch(batch)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The latest 50 events of one environment in a history of 10,000,000 events, only with
/// `FLOE_BENCH_10M=1`: the file takes about 10 GB and a long time to build (it is kept under
/// the target directory, `FLOE_BENCH_10M_DB` names another path).
fn benches_10m(c: &mut Criterion) {
    if std::env::var_os("FLOE_BENCH_10M").is_none_or(|v| v != "1") {
        return;
    }
    let total = 10_000_000;
    let path = database_path("FLOE_BENCH_10M_DB", total);
    let rt = runtime();
    let (store, _) = database(&rt, total, &path);
    let prod = EnvName::new("prod-eu").unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("sqlite_10m");
    group.bench_function("latest_50_of_one_environment", |b| {
        b.to_async(&rt).iter(|| async {
            let events = store
                .latest(&prod, 50)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(events.len(), 50);
        })
    });
    group.finish();
}

criterion_group!(sqlite, benches, benches_10m);
criterion_main!(sqlite);
