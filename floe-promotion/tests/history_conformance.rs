//! The history conformance suite against the in-memory history, through `Arc<dyn _>`, and
//! tamper detection through [`InMemoryHistory::tamper`].

use std::sync::Arc;

use chrono::Duration;
use floe_promotion::InMemoryHistory;
use floe_promotion::history::{EventKind, HistoryQuery, HistoryStore, event_hash};
use floe_promotion::testing::history::{base_time, record, rich_record};

floe_promotion::history_conformance!(async {
    let store: Arc<dyn HistoryStore> = Arc::new(InMemoryHistory::new());
    store
});

/// A history of 10 events, for the tamper cases.
async fn ten() -> InMemoryHistory {
    let history = InMemoryHistory::new();
    let records = (0..10)
        .map(|i| {
            if i == 4 {
                rich_record(base_time())
            } else {
                record(
                    EventKind::PromotionSucceeded,
                    "prod",
                    "app",
                    &format!("v{i}"),
                    base_time() + Duration::seconds(i),
                )
            }
        })
        .collect();
    history.append_batch(records).await.expect("append");
    assert!(history.verify().await.expect("verify").is_intact());
    history
}

async fn first_break(history: &InMemoryHistory) -> (u64, String) {
    let report = history.verify().await.expect("verify");
    let b = report.first_break.expect("the tampering is detected");
    assert_eq!(report.head, None);
    (b.seq, b.problem)
}

#[tokio::test]
async fn tamper_changed_field_is_detected() {
    let history = ten().await;
    history.tamper(|events| events[4].record.reason = Some("nothing to see".into()));
    let (seq, problem) = first_break(&history).await;
    assert_eq!(seq, 5);
    assert!(problem.contains("changed"), "{problem}");
}

#[tokio::test]
async fn tamper_rehashed_event_breaks_the_next_link() {
    let history = ten().await;
    history.tamper(|events| {
        let e = &mut events[2];
        e.record.actor.id = "mallory".into();
        e.hash = event_hash(&e.prev_hash, e.seq, &e.record);
    });
    let (seq, problem) = first_break(&history).await;
    assert_eq!(seq, 4, "the next event no longer links");
    assert!(problem.contains("prev_hash"), "{problem}");
}

#[tokio::test]
async fn tamper_deleted_event_is_detected() {
    let history = ten().await;
    history.tamper(|events| {
        events.remove(6);
    });
    let (seq, problem) = first_break(&history).await;
    assert_eq!(seq, 7);
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn tamper_inserted_event_is_detected() {
    let history = ten().await;
    history.tamper(|events| {
        let mut forged = events[3].clone();
        forged.record.id = uuid::Uuid::new_v4();
        events.insert(4, forged);
    });
    let (seq, problem) = first_break(&history).await;
    assert_eq!(seq, 5);
    assert!(problem.contains("inserted"), "{problem}");
}

#[tokio::test]
async fn tamper_reordered_events_are_detected() {
    let history = ten().await;
    history.tamper(|events| events.swap(2, 7));
    let (seq, _) = first_break(&history).await;
    assert_eq!(seq, 3);
    // Swapping contents but keeping the sequence numbers in place is caught too.
    let history = ten().await;
    history.tamper(|events| {
        let (a, b) = (events[2].record.clone(), events[7].record.clone());
        events[2].record = b;
        events[7].record = a;
    });
    let (seq, problem) = first_break(&history).await;
    assert_eq!(seq, 3);
    assert!(problem.contains("changed"), "{problem}");
    // Queries still return what is stored: tampering is visible, not hidden.
    let all = history
        .query(&HistoryQuery::default())
        .await
        .expect("query");
    assert_eq!(all.len(), 10);
}
