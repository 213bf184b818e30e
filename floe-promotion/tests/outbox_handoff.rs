//! The events a manager commits are handed to its outbox, which delivers them without reading
//! them back; events committed by another process (another manager on the same history) are
//! read from history. Either way each notifier gets every committed event once, in history
//! order, the same event whether it keeps the shared one (`notify_shared`) or a copy
//! (`notify`).

use std::sync::{Arc, Mutex};

use floe_promotion::history::{AuditEvent, HistoryQuery, HistoryStore};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

/// Keeps a copy of each event through `notify` only (the default `notify_shared`).
#[derive(Debug, Clone, Default)]
struct Copying(Arc<Mutex<Vec<AuditEvent>>>);

#[async_trait]
impl Notifier for Copying {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }

    fn name(&self) -> &str {
        "copying"
    }
}

async fn promote(m: &DefaultPromotionManager, p: &TestPipeline, version: &str) {
    let req = PromotionRequest::new("app", version, "dev", "staging", p.actor("ci")).unwrap();
    m.promote(req).await.unwrap();
}

async fn all_events(p: &TestPipeline) -> Vec<AuditEvent> {
    p.history.query(&HistoryQuery::default()).await.unwrap()
}

fn seqs(events: &[AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn events_committed_here_and_elsewhere_reach_each_notifier_once_in_order() {
    let p = TestPipeline::new(&["dev", "staging"]);
    for v in ["v1", "v2", "v3", "v4", "v5"] {
        p.push_release("app", v, v.as_bytes()).await;
    }
    let copying = Copying::default();
    let here = p
        .builder()
        .notifier(Arc::new(copying.clone()))
        .manual_delivery()
        .build()
        .unwrap();
    // Another process on the same history: its events are never handed to `here`.
    let elsewhere = p.builder().manual_delivery().build().unwrap();

    promote(&here, &p, "v1").await;
    promote(&elsewhere, &p, "v2").await;
    promote(&here, &p, "v3").await;
    let runs = here.deliver_notifications().await.unwrap();
    assert!(
        runs.iter().all(|r| r.error.is_none() && r.cursor == 6),
        "{runs:?}"
    );
    assert_eq!(seqs(&p.notifier.events()), (1..=6).collect::<Vec<_>>());

    // Kept events first, then newer ones only history has.
    promote(&here, &p, "v4").await;
    promote(&elsewhere, &p, "v5").await;
    let runs = here.deliver_notifications().await.unwrap();
    assert!(
        runs.iter().all(|r| r.delivered == 4 && r.cursor == 10),
        "{runs:?}"
    );

    let history = all_events(&p).await;
    assert_eq!(seqs(&history), (1..=10).collect::<Vec<_>>());
    assert_eq!(p.notifier.events(), history, "the shared events");
    assert_eq!(*copying.0.lock().unwrap(), history, "the copied events");

    // Nothing is delivered twice.
    let runs = here.deliver_notifications().await.unwrap();
    assert!(runs.iter().all(|r| r.delivered == 0), "{runs:?}");
    assert_eq!(p.notifier.events().len(), 10);
}
