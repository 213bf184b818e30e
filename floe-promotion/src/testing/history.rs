//! Conformance suite of [`HistoryStore`]: one public async function per sentence of the
//! trait's contract. Run it with [`history_conformance!`](crate::history_conformance).
//!
//! Each case gets a fresh, empty store. Tamper detection needs backend-specific editing, so it
//! is not part of this suite: each backend tests it with its own means (see
//! [`InMemoryHistory::tamper`](crate::InMemoryHistory::tamper)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::gate::{GateResult, GateStatus};
use crate::history::{
    AUDIT_FORMAT, AuditEvent, CSV_HEADER, Deployment, EventKind, EventRecord, ExportFormat,
    GENESIS_HASH, HistoryExt, HistoryQuery, HistoryStore, Order, canonical_json, check_content,
    content_hash, event_hash, verify_export,
};
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};

/// Something that gives the store under test, and keeps whatever it needs alive (a temporary
/// directory) for as long as the case runs.
///
/// # Contract
///
/// - `history` returns the same store every time it is called on one fixture, fresh (empty)
///   for each case.
pub trait HistoryFixture: Send + 'static {
    /// The store under test.
    fn history(&self) -> Arc<dyn HistoryStore>;
}

impl HistoryFixture for Arc<dyn HistoryStore> {
    fn history(&self) -> Arc<dyn HistoryStore> {
        self.clone()
    }
}

impl<G: Send + 'static> HistoryFixture for (Arc<dyn HistoryStore>, G) {
    fn history(&self) -> Arc<dyn HistoryStore> {
        self.0.clone()
    }
}

mod export;
mod query;
pub use export::*;
pub use query::*;

/// A fixed instant with a sub-millisecond part, so that backends storing coarser times show.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7)
        .single()
        .expect("valid date")
        + Duration::nanoseconds(123_456_789)
}

fn env(s: &str) -> EnvName {
    EnvName::new(s).expect("test environment names are valid")
}

fn art(s: &str) -> ArtifactName {
    ArtifactName::new(s).expect("test artifact names are valid")
}

fn tag(s: &str) -> Tag {
    Tag::new(s).expect("test tags are valid")
}

fn actor(s: &str) -> Actor {
    Actor::new(s).expect("test actors are valid")
}

/// The digest the suite uses for `version`.
pub fn digest_of(version: &str) -> Digest {
    Digest::of(version.as_bytes())
}

/// A record of `kind` about `artifact:version` in `environment` at `time`, with its digest.
pub fn record(
    kind: EventKind,
    environment: &str,
    artifact: &str,
    version: &str,
    time: DateTime<Utc>,
) -> EventRecord {
    let mut r = EventRecord::new(kind, actor("ci"), time);
    r.environment = Some(env(environment));
    r.artifact = Some(art(artifact));
    r.version = Some(tag(version));
    r.digest = Some(digest_of(version));
    r
}

/// A record with every field set, including text that needs escaping in JSON and CSV.
pub fn rich_record(time: DateTime<Utc>) -> EventRecord {
    let mut r = record(
        EventKind::PromotionSucceeded,
        "prod",
        "team/app",
        "v1.2.3",
        time,
    );
    r.actor = actor("alice").with_groups(["release", "ops"]);
    r.from = Some(env("staging"));
    r.reason = Some("ship \"it\", now;\nline two — ünïcödé ✓".into());
    r.gates = vec![
        GateResult {
            gate: "signature".into(),
            status: GateStatus::Passed,
            message: "verified by key \"a\"".into(),
            duration_ms: 12,
        },
        GateResult {
            gate: "scan".into(),
            status: GateStatus::Warned,
            message: "1 low, 0 high".into(),
            duration_ms: 3400,
        },
    ];
    r.details = BTreeMap::from([
        ("tags".into(), "v1.2.3-prod,latest-prod".into()),
        ("copied_blobs".into(), "3".into()),
        ("note".into(), "comma, quote \" and\ttab".into()),
    ]);
    r
}

async fn append_one(store: &dyn HistoryStore, r: EventRecord) -> AuditEvent {
    store.append(r).await.expect("append")
}

async fn all(store: &dyn HistoryStore) -> Vec<AuditEvent> {
    store
        .query(&HistoryQuery::default())
        .await
        .expect("query all")
}

fn seqs(events: &[AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn assert_chain(events: &[AuditEvent]) {
    let mut prev = GENESIS_HASH.to_string();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            i as u64 + 1,
            "sequence numbers are consecutive from 1"
        );
        assert_eq!(
            e.prev_hash, prev,
            "event {} links to its predecessor",
            e.seq
        );
        assert_eq!(
            e.hash,
            event_hash(&e.prev_hash, e.seq, &e.record),
            "event {} hash is SHA-256(prev_hash ‖ canonical JSON)",
            e.seq
        );
        prev = e.hash.clone();
    }
}

/// A small mixed history used by the query cases: 12 events over two environments, two
/// artifacts, three versions, several kinds, one second apart.
async fn seed(store: &dyn HistoryStore) -> Vec<AuditEvent> {
    let t = base_time();
    let plan = [
        (EventKind::PromotionRequested, "staging", "app", "v1"),
        (EventKind::PromotionSucceeded, "staging", "app", "v1"),
        (EventKind::PromotionRequested, "staging", "api", "v1"),
        (EventKind::PromotionFailed, "staging", "api", "v1"),
        (EventKind::PromotionSucceeded, "prod", "app", "v1"),
        (EventKind::Locked, "prod", "app", "v2"),
        (EventKind::PromotionSucceeded, "staging", "app", "v2"),
        (EventKind::Unlocked, "prod", "app", "v2"),
        (EventKind::RollbackSucceeded, "staging", "app", "v1"),
        (EventKind::PromotionSucceeded, "staging", "api", "v3"),
        (EventKind::ApprovalRequested, "prod", "api", "v3"),
        (EventKind::Switched, "prod", "api", "v3"),
    ];
    let records = plan
        .iter()
        .enumerate()
        .map(|(i, (k, e, a, v))| record(*k, e, a, v, t + Duration::seconds(i as i64)))
        .collect();
    store.append_batch(records).await.expect("seed")
}

fn expect_filtered(all: &[AuditEvent], keep: impl Fn(&AuditEvent) -> bool) -> Vec<AuditEvent> {
    all.iter().filter(|e| keep(e)).cloned().collect()
}

/// `append_batch` assigns consecutive sequence numbers from 1, across batches.
pub async fn append_assigns_consecutive_seqs(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let first = append_one(
        store.as_ref(),
        record(EventKind::PromotionRequested, "dev", "app", "v1", t),
    )
    .await;
    assert_eq!(first.seq, 1);
    let batch = store
        .append_batch(
            (0..5)
                .map(|i| {
                    record(
                        EventKind::CanaryStep,
                        "dev",
                        "app",
                        "v1",
                        t + Duration::seconds(i),
                    )
                })
                .collect(),
        )
        .await
        .expect("batch");
    assert_eq!(seqs(&batch), vec![2, 3, 4, 5, 6]);
    let last = append_one(
        store.as_ref(),
        record(EventKind::PromotionSucceeded, "dev", "app", "v1", t),
    )
    .await;
    assert_eq!(last.seq, 7);
    assert_eq!(
        seqs(&all(store.as_ref()).await),
        (1..=7).collect::<Vec<_>>()
    );
}

/// Each event is chained to the previous one: the first to [`GENESIS_HASH`], and
/// `hash = event_hash(prev_hash, seq, record)`; the stored record is the one appended.
pub async fn append_links_hashes(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let records: Vec<_> = (0..4)
        .map(|i| rich_record(t + Duration::milliseconds(i)))
        .collect();
    let mut stored = store
        .append_batch(records[..2].to_vec())
        .await
        .expect("first batch");
    stored.extend(
        store
            .append_batch(records[2..].to_vec())
            .await
            .expect("second"),
    );
    assert_eq!(stored[0].prev_hash, GENESIS_HASH);
    assert_chain(&stored);
    for (s, r) in stored.iter().zip(&records) {
        assert_eq!(&s.record, r, "the stored record is the appended one");
    }
    assert_eq!(all(store.as_ref()).await, stored);
}

/// `append_batch_shared` appends exactly as `append_batch` does and returns the same events
/// (shared): they continue the chain, hold the records appended, and every query returns them;
/// an empty batch stores nothing and consumes no sequence number.
pub async fn append_shared_is_append_batch(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let mut stored = store
        .append_batch(vec![rich_record(t)])
        .await
        .expect("plain batch");
    let records = vec![
        rich_record(t + Duration::milliseconds(1)),
        record(EventKind::Locked, "prod", "app", "v1", t),
    ];
    let shared = store
        .append_batch_shared(records.clone())
        .await
        .expect("shared batch");
    assert_eq!(
        shared.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3],
        "a shared batch continues the sequence"
    );
    for (s, r) in shared.iter().zip(&records) {
        assert_eq!(&s.record, r, "the shared event holds the appended record");
    }
    assert!(
        store
            .append_batch_shared(vec![])
            .await
            .expect("empty")
            .is_empty()
    );
    stored.extend(shared.iter().map(|e| AuditEvent::clone(e)));
    assert_chain(&stored);
    assert_eq!(
        all(store.as_ref()).await,
        stored,
        "queries return the shared events as they were returned"
    );
    let next = append_one(
        store.as_ref(),
        record(EventKind::Unlocked, "prod", "app", "v1", t),
    )
    .await;
    assert_eq!(
        next.seq, 4,
        "an empty shared batch consumes no sequence number"
    );
    assert_eq!(next.prev_hash, stored[2].hash);
}

/// The stored bytes of an event are the bytes its hash covers: a new event is stored in the
/// current format as `canonical_json(seq, record)`, every query returns those bytes with
/// `hash = SHA-256(prev_hash ‖ content)` and the fields the bytes hold, and a JSON Lines export
/// carries them: each line reads back with the same bytes.
pub async fn stored_bytes_are_hashed(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let appended = store
        .append_batch(vec![
            rich_record(t),
            record(EventKind::Locked, "prod", "app", "v1", t),
        ])
        .await
        .expect("append");
    let queried = all(store.as_ref()).await;
    assert_eq!(queried, appended, "queries return the events as appended");
    for e in &queried {
        assert_eq!(
            e.format, AUDIT_FORMAT,
            "event {} is in the current format",
            e.seq
        );
        assert_eq!(
            e.content.as_bytes(),
            canonical_json(e.seq, &e.record),
            "event {} stores its canonical JSON",
            e.seq
        );
        assert_eq!(
            e.hash,
            content_hash(&e.prev_hash, e.content.as_bytes()),
            "event {}'s hash covers its stored bytes",
            e.seq
        );
        assert_eq!(
            check_content(e.content.as_bytes()),
            Ok((e.seq, e.format, e.record.clone())),
            "event {}'s stored bytes hold its fields",
            e.seq
        );
    }
    let mut out = Vec::new();
    store
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    let lines: Vec<&str> = std::str::from_utf8(&out).expect("utf-8").lines().collect();
    assert_eq!(lines.len(), queried.len());
    for (line, e) in lines.iter().zip(&queried) {
        assert!(
            line.starts_with(&e.content[..e.content.len() - 1]),
            "the exported line carries the stored bytes: {line}"
        );
        let back: AuditEvent = serde_json::from_str(line).expect("line reads back");
        assert_eq!(&back, e, "the line reads back with the same bytes");
    }
}

/// An empty batch stores nothing and returns nothing.
pub async fn append_empty_batch(store: Arc<dyn HistoryStore>) {
    assert!(store.append_batch(vec![]).await.expect("empty").is_empty());
    assert!(all(store.as_ref()).await.is_empty());
    let e = append_one(
        store.as_ref(),
        record(EventKind::Locked, "dev", "app", "v1", base_time()),
    )
    .await;
    assert_eq!(e.seq, 1, "an empty batch consumes no sequence number");
    assert!(store.append_batch(vec![]).await.expect("empty").is_empty());
    assert_eq!(all(store.as_ref()).await.len(), 1);
}

/// A batch is atomic: readers see all of its events or none, with consecutive sequence numbers
/// even while other batches are appended concurrently.
pub async fn append_batch_is_atomic(store: Arc<dyn HistoryStore>) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 15;
    const SIZE: usize = 5;
    let done = Arc::new(AtomicBool::new(false));
    let check = |events: &[AuditEvent]| {
        let mut by_batch: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for e in events {
            by_batch
                .entry(e.record.details["batch"].clone())
                .or_default()
                .push((e.seq, e.record.details["i"].clone()));
        }
        for (batch, members) in by_batch {
            assert_eq!(
                members.len(),
                SIZE,
                "batch {batch} seen partly: {members:?}"
            );
            for (k, (seq, i)) in members.iter().enumerate() {
                assert_eq!(*seq, members[0].0 + k as u64, "batch {batch} is contiguous");
                assert_eq!(i, &k.to_string(), "batch {batch} keeps its order");
            }
        }
    };
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) || reads == 0 {
                let events = store.query(&HistoryQuery::default()).await.expect("read");
                check(&events);
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let batch = (0..SIZE)
                        .map(|i| {
                            let mut r = record(
                                EventKind::CanaryStep,
                                "dev",
                                "app",
                                "v1",
                                base_time() + Duration::seconds(i as i64),
                            );
                            r.details.insert("batch".into(), format!("{w}-{b}"));
                            r.details.insert("i".into(), i.to_string());
                            r
                        })
                        .collect();
                    let stored = store.append_batch(batch).await.expect("append batch");
                    assert_eq!(stored.len(), SIZE);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer task");
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.await.expect("reader task") > 0);
    let events = all(store.as_ref()).await;
    assert_eq!(events.len(), WRITERS * BATCHES * SIZE);
    check(&events);
    assert_chain(&events);
}

/// Concurrent appends from many tasks never fork the chain: every acknowledged event is stored
/// exactly once and the chain verifies.
pub async fn concurrent_appends_form_one_chain(store: Arc<dyn HistoryStore>) {
    const TASKS: usize = 16;
    const EACH: usize = 12;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..EACH {
                    let mut r = record(
                        EventKind::PromotionRequested,
                        "dev",
                        "app",
                        "v1",
                        base_time(),
                    );
                    r.details.insert("task".into(), format!("{t}-{i}"));
                    let records = if i % 4 == 3 {
                        vec![r.clone(), {
                            let mut r2 = r;
                            r2.id = uuid::Uuid::new_v4();
                            r2
                        }]
                    } else {
                        vec![r]
                    };
                    for e in store
                        .append_batch(records)
                        .await
                        .expect("concurrent append")
                    {
                        acked.push((e.record.id, e.seq));
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("append task"));
    }
    let events = all(store.as_ref()).await;
    assert_eq!(
        events.len(),
        acked.len(),
        "every acknowledged event, no more"
    );
    assert_chain(&events);
    let stored: HashMap<_, _> = events.iter().map(|e| (e.record.id, e.seq)).collect();
    assert_eq!(stored.len(), events.len(), "no event stored twice");
    for (id, seq) in acked {
        assert_eq!(
            stored.get(&id),
            Some(&seq),
            "acknowledged event {id} at {seq}"
        );
    }
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, events.len() as u64);
}

/// An event, once appended, is returned unchanged by every later query.
pub async fn events_are_immutable(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let first = append_one(store.as_ref(), rich_record(t)).await;
    let mut unicode = rich_record(t + Duration::nanoseconds(1));
    unicode
        .details
        .insert("emoji".into(), "🚀 \u{0} \u{7f}".into());
    let second = append_one(store.as_ref(), unicode).await;
    let before = all(store.as_ref()).await;
    assert_eq!(before, vec![first.clone(), second.clone()]);
    for i in 0..10 {
        append_one(
            store.as_ref(),
            record(
                EventKind::CanaryStep,
                "prod",
                "team/app",
                "v9",
                t + Duration::seconds(i),
            ),
        )
        .await;
    }
    let after = all(store.as_ref()).await;
    assert_eq!(&after[..2], &before[..]);
    let by_env = store
        .query(&HistoryQuery {
            environment: Some(env("prod")),
            version: Some(tag("v1.2.3")),
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(by_env, before);
    let newest = store
        .query(&HistoryQuery {
            before_seq: Some(3),
            order: Order::NewestFirst,
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(newest, vec![second, first]);
}

/// Runs the whole history conformance suite: one `#[tokio::test]` per case.
///
/// `$setup` is an `async` expression yielding a fresh [`HistoryFixture`] per test: an
/// `Arc<dyn HistoryStore>`, or a tuple of it and a guard kept alive during the case.
///
/// ```ignore
/// floe_promotion::history_conformance!(async {
///     let store: Arc<dyn HistoryStore> = Arc::new(InMemoryHistory::new());
///     store
/// });
/// ```
#[macro_export]
macro_rules! history_conformance {
    ($setup:expr) => {
        $crate::history_conformance!(@cases $setup;
            append_assigns_consecutive_seqs,
            append_links_hashes,
            append_shared_is_append_batch,
            stored_bytes_are_hashed,
            append_empty_batch,
            append_batch_is_atomic,
            concurrent_appends_form_one_chain,
            events_are_immutable,
            query_by_environment,
            query_by_artifact,
            query_by_version,
            query_by_digest,
            query_by_kinds,
            query_time_bounds,
            query_seq_cursors,
            query_limit_and_order,
            query_combined_filters,
            deployments_latest_per_environment_and_artifact,
            deployments_sorted_and_filtered,
            deployments_ignore_other_kinds,
            verify_intact_chain,
            verify_empty_chain,
            export_jsonl_is_verifiable,
            export_csv_has_header_and_rows,
            export_filtered_and_limited,
            export_spans_pages
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $setup.await;
                let store = $crate::testing::history::HistoryFixture::history(&fixture);
                $crate::testing::history::$case(store).await;
                drop(fixture);
            }
        )*
    };
}
