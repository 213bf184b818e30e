//! Committed history is the notification outbox.
//!
//! Notifiers are never called inside a lease or before the commit: the [`Dispatcher`] reads
//! committed events from the history after the fact and hands them to each notifier in order,
//! keeping a cursor per notifier (the last sequence number it acknowledged) in a
//! [`CursorStore`]. Delivery is at least once: a cursor moves only after the notifier
//! acknowledged the event, so a crash between delivery and cursor update delivers that event
//! again, with the same event id, for the consumer to deduplicate. A notifier that fails stops
//! its own queue until the next run; the others go on. Different notifiers are delivered to
//! concurrently; each one's events stay in history order.
//!
//! The events this process has just committed are handed to the dispatcher as the store
//! returned them ([`Dispatcher::committed`]); a run serves a notifier from them, without
//! reading them back, when they follow its cursor without a gap, and reads history for
//! everything else (events committed elsewhere, or before a gap).

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::Notifier;
use crate::error::Result;
use crate::history::{AuditEvent, HistoryQuery, HistoryStore, Order};

/// How many events one notifier is given per history read.
const BATCH: usize = 256;

/// How many just-committed events the dispatcher keeps for delivery without a history read;
/// older ones are read from history when their turn comes.
const RECENT: usize = 4 * BATCH;

/// Per-consumer delivery cursors: the sequence number of the last event each consumer
/// acknowledged.
///
/// # Contract
///
/// - `cursor` is 0 for a consumer never seen.
/// - `advance` moves a consumer's cursor from `from` to `to` only when it is `from` now
///   (compare and set) and `to > from`, returning whether it moved; a stale `from` moves
///   nothing. Durable stores keep cursors across processes and restarts.
#[async_trait]
pub trait CursorStore: Send + Sync + Debug + 'static {
    /// The consumer's cursor.
    async fn cursor(&self, consumer: &str) -> Result<u64>;
    /// Moves the consumer's cursor from `from` to `to`.
    async fn advance(&self, consumer: &str, from: u64, to: u64) -> Result<bool>;
}

/// Cursors held in memory, for one process and for tests. Clones share the cursors.
#[derive(Debug, Default, Clone)]
pub struct InMemoryCursors {
    /// foldhash: each delivered event looks its consumer up (SipHash showed in profiles).
    cursors: Arc<Mutex<HashMap<String, u64, foldhash::fast::RandomState>>>,
}

impl InMemoryCursors {
    /// No cursors yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CursorStore for InMemoryCursors {
    async fn cursor(&self, consumer: &str) -> Result<u64> {
        let cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cursors.get(consumer).copied().unwrap_or(0))
    }

    async fn advance(&self, consumer: &str, from: u64, to: u64) -> Result<bool> {
        if to <= from {
            return Ok(false);
        }
        let mut cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        // One lookup for a consumer seen before; its key is copied only the first time.
        match cursors.get_mut(consumer) {
            Some(current) if *current == from => *current = to,
            Some(_) => return Ok(false),
            None if from == 0 => {
                cursors.insert(consumer.to_string(), to);
            }
            None => return Ok(false),
        }
        Ok(true)
    }
}

/// What one delivery run did for one notifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The notifier's name (its cursor's key).
    pub notifier: String,
    /// Events delivered and acknowledged in this run.
    pub delivered: u64,
    /// The cursor after the run.
    pub cursor: u64,
    /// Why the notifier's queue stopped, when it did (retried on the next run).
    pub error: Option<String>,
}

/// Delivers committed history to notifiers, each from its own cursor.
#[derive(Debug)]
pub struct Dispatcher {
    history: Arc<dyn HistoryStore>,
    cursors: Arc<dyn CursorStore>,
    notifiers: Vec<Arc<dyn Notifier>>,
    /// The notifiers' cursor keys, in order (see [`Dispatcher::consumers`]).
    consumers: Vec<String>,
    /// One delivery at a time per process, so a queue is not delivered twice concurrently.
    running: tokio::sync::Mutex<()>,
    /// Whether a background run is scheduled and has not started yet (kicks coalesce).
    scheduled: std::sync::atomic::AtomicBool,
    timeout: Duration,
    /// Events this process committed lately, consecutive in sequence, oldest first, at most
    /// [`RECENT`]: the committed events as the store returned them.
    recent: Mutex<VecDeque<Arc<AuditEvent>>>,
}

impl Dispatcher {
    /// A dispatcher of `history` to `notifiers`, with cursors in `cursors`; each delivery of
    /// one event is limited to `timeout` (a notifier that hangs stops its queue).
    pub fn new(
        history: Arc<dyn HistoryStore>,
        cursors: Arc<dyn CursorStore>,
        notifiers: Vec<Arc<dyn Notifier>>,
        timeout: Duration,
    ) -> Self {
        let consumers = Self::consumers(&notifiers);
        Dispatcher {
            history,
            cursors,
            notifiers,
            consumers,
            running: tokio::sync::Mutex::new(()),
            scheduled: std::sync::atomic::AtomicBool::new(false),
            timeout,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Hands over events just committed, as [`HistoryStore::append_batch`] or
    /// [`HistoryStore::append_batch_shared`] returned them (consecutive, in order), so that
    /// delivery serves them without reading them back; shared events are kept as they are,
    /// not copied. Events older than the newest handed over are ignored; events that do not
    /// follow it replace what was kept. Nothing is kept when there are no notifiers.
    pub fn committed<E: Into<Arc<AuditEvent>>>(&self, events: impl IntoIterator<Item = E>) {
        if self.notifiers.is_empty() {
            return;
        }
        let mut recent = self.recent();
        for event in events {
            let event = event.into();
            match recent.back().map(|last| last.seq) {
                Some(last) if event.seq <= last => continue,
                Some(last) if event.seq != last + 1 => recent.clear(),
                _ => {}
            }
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(event);
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<AuditEvent>>> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to [`BATCH`] events after `cursor`: the kept ones when they continue the cursor
    /// without a gap, otherwise read from history; and whether history was read.
    async fn events_after(&self, cursor: u64) -> Result<(Vec<Arc<AuditEvent>>, bool)> {
        {
            let recent = self.recent();
            if let (Some(first), Some(last)) = (recent.front(), recent.back())
                && first.seq <= cursor + 1
                && last.seq > cursor
            {
                let skip = (cursor + 1 - first.seq) as usize;
                return Ok((
                    recent.iter().skip(skip).take(BATCH).cloned().collect(),
                    false,
                ));
            }
        }
        let read = self
            .history
            .query(&HistoryQuery {
                after_seq: Some(cursor),
                limit: Some(BATCH),
                order: Order::OldestFirst,
                ..Default::default()
            })
            .await?;
        Ok((read.into_iter().map(Arc::new).collect(), true))
    }

    /// Marks a background run as scheduled; `false` when one already is (then the caller
    /// starts none: the scheduled run will see the new events).
    pub fn schedule(&self) -> bool {
        !self
            .scheduled
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// A scheduled background run: clears the mark first, so events committed while it runs
    /// schedule another, then delivers.
    pub async fn deliver_scheduled(&self) -> Result<Vec<Delivery>> {
        self.scheduled
            .store(false, std::sync::atomic::Ordering::Release);
        self.deliver().await
    }

    /// Whether there is anyone to deliver to.
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }

    /// The notifiers' cursor keys, in order: `notifier.name()`, made unique by position when
    /// two notifiers share a name.
    fn consumers(notifiers: &[Arc<dyn Notifier>]) -> Vec<String> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        notifiers
            .iter()
            .map(|n| {
                let name = n.name().to_string();
                let count = seen.entry(name.clone()).or_insert(0);
                *count += 1;
                if *count == 1 {
                    name
                } else {
                    format!("{name}#{count}")
                }
            })
            .collect()
    }

    /// Delivers every committed event past each notifier's cursor, in order. Notifiers are
    /// served concurrently, each its own queue in history order, so a slow endpoint delays
    /// only itself. A notifier that fails or times out keeps its cursor at the last
    /// acknowledged event; its report says why. The reports are in notifier order.
    pub async fn deliver(&self) -> Result<Vec<Delivery>> {
        let _one_at_a_time = self.running.lock().await;
        let runs = self
            .notifiers
            .iter()
            .zip(&self.consumers)
            .map(|(notifier, consumer)| self.deliver_to(notifier.as_ref(), consumer.clone()));
        let reports: Result<Vec<Delivery>> =
            futures::future::join_all(runs).await.into_iter().collect();
        // Kept events every notifier has acknowledged are not needed any more.
        if let Ok(reports) = &reports
            && let Some(done) = reports.iter().map(|r| r.cursor).min()
        {
            let mut recent = self.recent();
            while recent.front().is_some_and(|e| e.seq <= done) {
                recent.pop_front();
            }
        }
        reports
    }

    async fn deliver_to(&self, notifier: &dyn Notifier, consumer: String) -> Result<Delivery> {
        let mut cursor = self.cursors.cursor(&consumer).await?;
        let mut report = Delivery {
            notifier: consumer,
            delivered: 0,
            cursor,
            error: None,
        };
        loop {
            let (events, read) = self.events_after(cursor).await?;
            if events.is_empty() {
                break;
            }
            // The cursor moves once per batch, past the events acknowledged: a crash before
            // it moves delivers them again, which at-least-once allows.
            let mut acknowledged = cursor;
            let mut failure = None;
            for event in &events {
                let sent = tokio::time::timeout(self.timeout, notifier.notify_shared(event)).await;
                let why = match sent {
                    Ok(Ok(())) => {
                        acknowledged = event.seq;
                        report.delivered += 1;
                        continue;
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {:?}", self.timeout),
                };
                tracing::warn!(notifier = %report.notifier, seq = event.seq, error = %why, "notification not delivered; retried on the next run");
                failure = Some(format!("event {}: {why}", event.seq));
                break;
            }
            if acknowledged != cursor
                && !self
                    .cursors
                    .advance(&report.notifier, cursor, acknowledged)
                    .await?
            {
                // Another process delivers this queue too; let it.
                report.cursor = self.cursors.cursor(&report.notifier).await?;
                return Ok(report);
            }
            cursor = acknowledged;
            if let Some(error) = failure {
                report.error = Some(error);
                report.cursor = cursor;
                return Ok(report);
            }
            // A short read from history was all there was; after kept events, history may
            // hold newer ones (committed elsewhere).
            if read && events.len() < BATCH {
                break;
            }
        }
        report.cursor = cursor;
        Ok(report)
    }
}
