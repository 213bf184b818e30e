//! Notifications of lifecycle events (promotions, rollbacks, locks, approvals).
//!
//! A failing notifier never fails the operation: the manager records the failure as a warning
//! on the operation's record and in the log.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::Result;
use crate::history::AuditEvent;

/// Delivers lifecycle events somewhere (a log, a webhook, a chat).
///
/// # Contract
///
/// - `notify` is called once per recorded lifecycle event, after the event is in the history.
/// - An `Err` from `notify` is reported as a warning on the operation; it never fails or
///   undoes the operation.
/// - `notify` is never called by a dry run.
#[async_trait]
pub trait Notifier: Send + Sync + Debug + 'static {
    /// Delivers one event.
    async fn notify(&self, event: &AuditEvent) -> Result<()>;
}

/// Keeps every event it is given, for tests. Clones share the same list.
#[derive(Debug, Default, Clone)]
pub struct RecordingNotifier {
    events: Arc<Mutex<Vec<AuditEvent>>>,
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
            .clone()
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
            .push(event.clone());
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
