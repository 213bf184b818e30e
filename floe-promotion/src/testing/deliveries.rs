//! Conformance suite of [`DeliveryLog`]: one public async function per sentence of its
//! contract. Run it with [`delivery_log_conformance!`](crate::delivery_log_conformance).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use crate::notify::{DeliveryLog, DeliveryOutcome, DeliveryQuery, DeliveryStatus};

/// An outcome for `webhook` and `seq`, failed after 4 attempts with a 503.
pub fn outcome(webhook: &str, seq: u64) -> DeliveryOutcome {
    DeliveryOutcome {
        webhook: webhook.to_string(),
        seq,
        event_id: Uuid::new_v4(),
        status: DeliveryStatus::Failed,
        attempts: 4,
        http_status: Some(503),
        error: Some("HTTP 503 Service Unavailable".into()),
        time: Utc
            .with_ymd_and_hms(2026, 1, 31, 12, 0, 0)
            .single()
            .expect("a valid time")
            + chrono::Duration::nanoseconds(123_456_789),
    }
}

/// `record` stores an outcome keyed by (`webhook`, `seq`); recording the same key again
/// replaces the earlier outcome.
pub async fn record_replaces_same_key(log: Arc<dyn DeliveryLog>) {
    let first = outcome("webhook:https://a.example:443/", 1);
    log.record(&first).await.expect("record");
    let mut again = first.clone();
    again.status = DeliveryStatus::Delivered;
    again.attempts = 1;
    again.http_status = Some(204);
    again.error = None;
    log.record(&again).await.expect("record again");
    let all = log.list(&DeliveryQuery::default()).await.expect("list");
    assert_eq!(all, vec![again.clone()]);
    assert_eq!(
        log.get(&first.webhook, 1).await.expect("get"),
        Some(again),
        "the redelivery's outcome counts"
    );
}

/// `list` filters by status and endpoint, ordered by `seq` then `webhook`, each outcome as
/// recorded (every field, the time to the nanosecond, absent fields absent).
pub async fn list_filters_and_orders(log: Arc<dyn DeliveryLog>) {
    let mut records = vec![
        outcome("webhook:b", 2),
        outcome("webhook:a", 2),
        outcome("webhook:a", 1),
        outcome("webhook:b", 10),
    ];
    records[1].status = DeliveryStatus::Delivered;
    records[1].http_status = None;
    records[1].error = None;
    records[1].attempts = 1;
    for r in &records {
        log.record(r).await.expect("record");
    }
    let all = log.list(&DeliveryQuery::default()).await.expect("list");
    let keys: Vec<(u64, &str)> = all.iter().map(|o| (o.seq, o.webhook.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (1, "webhook:a"),
            (2, "webhook:a"),
            (2, "webhook:b"),
            (10, "webhook:b")
        ]
    );
    assert_eq!(all[1], records[1], "read back exactly as recorded");
    assert_eq!(all[0], records[2]);
    let failed = log
        .list(&DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            ..Default::default()
        })
        .await
        .expect("failed");
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|o| o.status == DeliveryStatus::Failed));
    let b_failed = log
        .list(&DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            webhook: Some("webhook:b".into()),
        })
        .await
        .expect("b failed");
    assert_eq!(
        b_failed.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![2, 10]
    );
}

/// `get` returns `None` for a key never recorded.
pub async fn get_unknown_is_none(log: Arc<dyn DeliveryLog>) {
    assert_eq!(log.get("webhook:none", 7).await.expect("get"), None);
    log.record(&outcome("webhook:a", 7)).await.expect("record");
    assert_eq!(log.get("webhook:none", 7).await.expect("get"), None);
    assert_eq!(log.get("webhook:a", 8).await.expect("get"), None);
}

/// Concurrent `record`s of different keys are all kept; of the same key, exactly one is.
pub async fn concurrent_records(log: Arc<dyn DeliveryLog>) {
    let tasks: Vec<_> = (1..=16u64)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.record(&outcome("webhook:many", i)).await?;
                let mut same = outcome("webhook:one", 1);
                same.attempts = i as u32;
                log.record(&same).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("record");
    }
    let all = log.list(&DeliveryQuery::default()).await.expect("list");
    assert_eq!(
        all.iter().filter(|o| o.webhook == "webhook:many").count(),
        16
    );
    let one: Vec<_> = all.iter().filter(|o| o.webhook == "webhook:one").collect();
    assert_eq!(one.len(), 1);
    assert!((1..=16).contains(&one[0].attempts));
}

/// Runs the [`DeliveryLog`] conformance suite, one `#[tokio::test]` per case. `$setup` is an
/// expression (awaited) giving `(Arc<dyn DeliveryLog>, guard)`; the guard lives as long as
/// the case. Durability across processes is each durable backend's own test.
#[macro_export]
macro_rules! delivery_log_conformance {
    ($setup:expr) => {
        $crate::delivery_log_conformance!(@cases $setup;
            record_replaces_same_key,
            list_filters_and_orders,
            get_unknown_is_none,
            concurrent_records
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (log, guard) = $setup.await;
                $crate::testing::deliveries::$case(log).await;
                drop(guard);
            }
        )*
    };
}
