//! History is the notification outbox: notifiers hear of committed events only, after the
//! commit and outside any lease, in order, at least once, each from its own cursor. A slow
//! notifier never slows a promotion; one that was down gets what it missed on the next run,
//! once per cursor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe_promotion::history::{AuditEvent, EventKind};
use floe_promotion::notify::{CursorStore, InMemoryCursors};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn req(p: &TestPipeline, version: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, "dev", "staging", p.actor("ci")).unwrap()
}

/// Sleeps before acknowledging each event.
#[derive(Debug, Clone)]
struct Sleepy(Duration, RecordingNotifier);

#[async_trait]
impl Notifier for Sleepy {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        tokio::time::sleep(self.0).await;
        self.1.notify(event).await
    }

    fn name(&self) -> &str {
        "sleepy"
    }
}

/// Fails while `down` is set, and on each event whose sequence number is in `fail`; records
/// what it acknowledges.
#[derive(Debug, Clone)]
struct Flaky {
    down: Arc<AtomicBool>,
    fail: Vec<u64>,
    got: Arc<Mutex<Vec<AuditEvent>>>,
}

#[async_trait]
impl Notifier for Flaky {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        if self.down.load(Ordering::SeqCst) || self.fail.contains(&event.seq) {
            return Err(Error::Unavailable {
                registry: "chat".into(),
                message: "connection refused".into(),
            });
        }
        self.got.lock().unwrap().push(event.clone());
        Ok(())
    }

    fn name(&self) -> &str {
        "flaky"
    }
}

fn flaky() -> Flaky {
    Flaky {
        down: Arc::default(),
        fail: Vec::new(),
        got: Arc::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_notifier_that_sleeps_ten_seconds_does_not_slow_a_promotion() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let slow = Sleepy(Duration::from_secs(10), RecordingNotifier::new());
    let m = p
        .builder()
        .notifier(Arc::new(slow.clone()))
        .build()
        .unwrap();
    // Time is paused: any wait on the notifier would show as virtual time passing.
    let start = tokio::time::Instant::now();
    let r = m.promote(req(&p, "v1")).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the promotion waited for the notifier: {:?}",
        start.elapsed()
    );
    assert_eq!(r.outcome, manager::Outcome::Promoted);
    assert!(
        slow.1.events().is_empty(),
        "nothing delivered before the commit"
    );
    // The background run delivers both events, ten seconds each, after the promotion.
    let report = m.deliver_notifications().await.unwrap();
    let sleepy = report.iter().find(|d| d.notifier == "sleepy").unwrap();
    assert_eq!(sleepy.cursor, 2, "{report:?}");
    let kinds: Vec<EventKind> = slow.1.events().iter().map(|e| e.record.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::PromotionRequested, EventKind::PromotionSucceeded]
    );
}

#[tokio::test]
async fn a_notifier_that_was_down_gets_what_it_missed_on_the_next_run_once() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let cursors = InMemoryCursors::new();
    let chat = flaky();
    chat.down.store(true, Ordering::SeqCst);
    let first_run = p
        .builder()
        .notifier(Arc::new(chat.clone()))
        .cursors(Arc::new(cursors.clone()))
        .build()
        .unwrap();
    first_run.promote(req(&p, "v1")).await.unwrap();
    let report = first_run.deliver_notifications().await.unwrap();
    let down = report.iter().find(|d| d.notifier == "flaky").unwrap();
    assert!(down.error.is_some(), "{report:?}");
    assert_eq!(cursors.cursor("flaky").await.unwrap(), 0);
    drop(first_run);

    // The next run (another manager on the same history and cursors, as a new process on the
    // same state file would be) delivers the missed events, then the new ones.
    chat.down.store(false, Ordering::SeqCst);
    let next_run = p
        .builder()
        .notifier(Arc::new(chat.clone()))
        .cursors(Arc::new(cursors.clone()))
        .build()
        .unwrap();
    next_run.promote(req(&p, "v2")).await.unwrap();
    next_run.deliver_notifications().await.unwrap();
    next_run.deliver_notifications().await.unwrap();
    let got = chat.got.lock().unwrap().clone();
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "every event once, in order");
    let mut ids: Vec<_> = got.iter().map(|e| e.record.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each event carries its own id");
    assert_eq!(cursors.cursor("flaky").await.unwrap(), 4);
}

#[tokio::test]
async fn events_committed_before_a_crash_are_delivered_by_the_next_run() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let cursors = InMemoryCursors::new();
    // A process that committed and died before delivering anything to the chat notifier.
    let crashed = p
        .builder()
        .cursors(Arc::new(cursors.clone()))
        .build()
        .unwrap();
    crashed.promote(req(&p, "v1")).await.unwrap();
    drop(crashed);
    let chat = flaky();
    let next = p
        .builder()
        .notifier(Arc::new(chat.clone()))
        .cursors(Arc::new(cursors.clone()))
        .build()
        .unwrap();
    let report = next.deliver_notifications().await.unwrap();
    let chat_report = report.iter().find(|d| d.notifier == "flaky").unwrap();
    assert_eq!(chat_report.cursor, 2, "{report:?}");
    assert_eq!(chat.got.lock().unwrap().len(), 2);
}

/// Never answers.
#[derive(Debug)]
struct Hung;

#[async_trait]
impl Notifier for Hung {
    async fn notify(&self, _: &AuditEvent) -> Result<()> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_notifier_holds_no_lease_and_blocks_no_promotion() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p
        .builder()
        .notifier(Arc::new(Hung))
        .lease_wait(Duration::from_secs(2))
        .build()
        .unwrap();
    for v in ["v1", "v2"] {
        // Each promotion takes the environment's lease; a delivery still hanging on the
        // previous one's events holds none, so the next gets in at once.
        let r = tokio::time::timeout(Duration::from_secs(5), m.promote(req(&p, v)))
            .await
            .expect("a hung notifier held up a promotion")
            .unwrap();
        assert_eq!(r.version.as_str(), v);
        assert!(p.state.leases(p.clock.now()).await.unwrap().is_empty());
    }
}

mockall::mock! {
    #[derive(Debug)]
    Cursors {}
    #[async_trait]
    impl CursorStore for Cursors {
        async fn cursor(&self, consumer: &str) -> Result<u64>;
        async fn advance(&self, consumer: &str, from: u64, to: u64) -> Result<bool>;
    }
}

/// The cursor moves once per delivery run, past every event acknowledged, not once per
/// event: a promotion's two events cost one cursor write. A notifier that fails part-way
/// has its cursor moved past what it acknowledged before the failure, and no further.
#[tokio::test]
async fn the_cursor_moves_once_per_run_past_the_events_acknowledged() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let mut cursors = MockCursors::new();
    cursors.expect_cursor().returning(|_| Ok(0));
    // The pipeline's own recording notifier has a cursor too: one write each.
    cursors
        .expect_advance()
        .withf(|_, from, to| *from == 0 && *to == 2)
        .times(2)
        .returning(|_, _, _| Ok(true));
    let chat = flaky();
    let manager = delivering_by_hand(&p, &chat, cursors);
    manager.promote(req(&p, "v1")).await.unwrap();
    let report = manager.deliver_notifications().await.unwrap();
    assert!(report.iter().all(|d| d.cursor == 2), "{report:?}");
    assert_eq!(seqs(&chat), [1, 2]);

    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let mut cursors = MockCursors::new();
    cursors.expect_cursor().returning(|_| Ok(0));
    cursors
        .expect_advance()
        .withf(|consumer, from, to| consumer == "flaky" && *from == 0 && *to == 3)
        .times(1)
        .returning(|_, _, _| Ok(true));
    cursors
        .expect_advance()
        .withf(|consumer, from, to| consumer != "flaky" && *from == 0 && *to == 4)
        .times(1)
        .returning(|_, _, _| Ok(true));
    let chat = Flaky {
        fail: vec![4],
        ..flaky()
    };
    let manager = delivering_by_hand(&p, &chat, cursors);
    manager.promote(req(&p, "v1")).await.unwrap();
    manager.promote(req(&p, "v2")).await.unwrap();
    let report = manager.deliver_notifications().await.unwrap();
    let failed = report.iter().find(|d| d.notifier == "flaky").unwrap();
    assert_eq!(failed.cursor, 3, "{report:?}");
    assert!(
        failed.error.as_deref().unwrap().starts_with("event 4"),
        "{report:?}"
    );
    assert_eq!(seqs(&chat), [1, 2, 3]);
}

/// A manager of `p` that delivers to `chat` when asked, with `cursors`.
fn delivering_by_hand(
    p: &TestPipeline,
    chat: &Flaky,
    cursors: MockCursors,
) -> DefaultPromotionManager {
    p.builder()
        .notifier(Arc::new(chat.clone()))
        .cursors(Arc::new(cursors))
        .manual_delivery()
        .build()
        .unwrap()
}

/// The sequence numbers `chat` acknowledged, in order.
fn seqs(chat: &Flaky) -> Vec<u64> {
    chat.got.lock().unwrap().iter().map(|e| e.seq).collect()
}
