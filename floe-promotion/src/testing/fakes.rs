//! Test doubles that behave like real parts, with knobs for failure.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::history::AuditEvent;
use crate::notify::Notifier;

/// A notifier that always fails, to show that notification failures never fail an operation.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingNotifier;

#[async_trait]
impl Notifier for FailingNotifier {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        Err(Error::Unavailable {
            registry: "notifier".into(),
            message: format!("cannot deliver event {}", event.seq),
        })
    }
}
