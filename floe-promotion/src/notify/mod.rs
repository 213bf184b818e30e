//! Notifications of lifecycle events (promotions, rollbacks, locks, approvals).
//!
//! Committed history is the outbox ([`outbox`]): notifiers receive events after they are
//! committed, from a [`Dispatcher`] that keeps a cursor per notifier, never inside an
//! environment's lease. A failing or slow notifier never fails or delays an operation; its
//! queue waits for the next delivery run. Notifiers that report per-event outcomes (webhooks)
//! keep them in a [`DeliveryLog`] ([`deliveries`]).

pub mod deliveries;
pub mod outbox;

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::Result;
use crate::history::AuditEvent;

pub use deliveries::{
    DeliveryLog, DeliveryOutcome, DeliveryQuery, DeliveryStatus, InMemoryDeliveryLog,
};
pub use outbox::{CursorStore, Delivery, Dispatcher, InMemoryCursors};

/// Delivers lifecycle events somewhere (a log, a webhook, a chat).
///
/// # Contract
///
/// - `notify` receives committed events only, in history order, each at least once; an event
///   delivered again carries the same `record.id`, by which a consumer deduplicates.
/// - `notify` is never called by an operation: delivery runs apart from promotions and holds
///   no lease, so a slow, hung or failing notifier never delays or fails an operation; an
///   `Err` (or no answer in time) leaves the event to the next delivery run, and the
///   notifier's later events wait behind it.
/// - `notify` is never called for a dry run, which records nothing.
/// - `name` identifies the notifier's cursor: keep it stable across releases, or the notifier
///   starts again from the first event.
/// - `notify_shared` is how the dispatcher delivers: the same event as `notify` would
///   receive, held in an `Arc` that a notifier keeping events may keep instead of a copy. It
///   defaults to `notify`; an override behaves as `notify` in everything but that.
#[async_trait]
pub trait Notifier: Send + Sync + Debug + 'static {
    /// Delivers one event.
    async fn notify(&self, event: &AuditEvent) -> Result<()>;

    /// Delivers one event the dispatcher holds shared. Defaults to [`Notifier::notify`].
    async fn notify_shared(&self, event: &Arc<AuditEvent>) -> Result<()> {
        self.notify(event).await
    }

    /// The notifier's stable name (the key of its delivery cursor). Defaults to its type name.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }
}

/// Keeps every event it is given, for tests. Clones share the same list. Events delivered
/// shared ([`Notifier::notify_shared`]) are kept without a copy.
#[derive(Debug, Default, Clone)]
pub struct RecordingNotifier {
    events: Arc<Mutex<Vec<Arc<AuditEvent>>>>,
}

impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events received so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| AuditEvent::clone(e))
            .collect()
    }

    /// Forgets the events received so far.
    pub fn reset(&self) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(event.clone()));
        Ok(())
    }

    async fn notify_shared(&self, event: &Arc<AuditEvent>) -> Result<()> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(event));
        Ok(())
    }
}

/// Writes each event to the `tracing` log at INFO, target `floe::notify`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        let r = &event.record;
        tracing::info!(
            target: "floe::notify",
            seq = event.seq,
            kind = %r.kind,
            actor = %r.actor.id,
            artifact = r.artifact.as_ref().map(|a| a.as_str()),
            version = r.version.as_ref().map(|v| v.as_str()),
            digest = r.digest.as_ref().map(|d| d.as_str()),
            environment = r.environment.as_ref().map(|e| e.as_str()),
            "{} {}",
            r.kind,
            r.environment.as_ref().map(|e| e.as_str()).unwrap_or("")
        );
        Ok(())
    }
}
