//! PostgreSQL backend benchmarks on a history of 1,000,000 events, beside the SQLite ones.
//!
//! Run: `cargo bench -p floe-promotion-postgres --bench postgres` (`FLOE_BENCH_EVENTS=N` for
//! another size). A throwaway server that fsyncs every commit is started
//! ([`TestPostgres::start_durable`]), or `FLOE_BENCH_POSTGRES=URL` names another one. The
//! history is built first (batched appends of 1,000 events, timed and printed), then
//! measured: the latest 50 events of one environment, the current version of every
//! environment, a full `verify`, a full JSON Lines export, and appends (one event per
//! transaction; and batches of 100). Figures are in the README. At 1,000,000 events (2 vCPU,
//! shared, the server on the same cores):
//!
//! - build in batches of 1,000: 35,700 events/s
//! - latest 50 of one environment: 400 µs
//! - current version of every environment: 8.3 ms
//! - full verify: 6.95 s (144,000 events/s)
//! - full JSON Lines export: 4.93 s
//! - durable append, one event per transaction: 1.06 ms; a batch of 100: 3.88 ms

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use floe_promotion::gate::{GateResult, GateStatus};
use floe_promotion::history::{
    EventKind, EventRecord, ExportFormat, HistoryExt, HistoryQuery, HistoryStore,
};
use floe_promotion::{Actor, ArtifactName, Digest, EnvName, Tag};
use floe_promotion_postgres::PostgresStore;
use floe_promotion_postgres::testing::TestPostgres;

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

fn benches(c: &mut Criterion) {
    let total: u64 = std::env::var("FLOE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    // A server that fsyncs every commit, like a production one; FLOE_BENCH_POSTGRES=URL
    // measures another server instead (the database is built only when empty).
    let server = std::env::var("FLOE_BENCH_POSTGRES")
        .is_err()
        .then(TestPostgres::start_durable);
    let url = match (&server, std::env::var("FLOE_BENCH_POSTGRES")) {
        (_, Ok(url)) => url,
        (Some(server), Err(_)) => rt.block_on(server.fresh_database()),
        (None, Err(_)) => unreachable!(),
    };
    let store = Arc::new(
        rt.block_on(PostgresStore::connect(&url))
            .unwrap_or_else(|e| panic!("connect: {e}")),
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
    let total = total.max(existing);
    eprintln!(
        "built {total} events in {:.1} s ({:.0} events/s in batches of 1000)",
        took.as_secs_f64(),
        (total.saturating_sub(existing)) as f64 / took.as_secs_f64(),
    );

    let prod = EnvName::new("prod-eu").unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("postgres_1m");
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

criterion_group!(postgres, benches);
criterion_main!(postgres);
