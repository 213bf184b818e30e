//! Checkpoints taken automatically every N events, as an outbox consumer.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{CheckpointStore, checkpoint_event};
use crate::attest::{KeyVerifier, Signer};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::history::{AuditEvent, HistoryStore};
use crate::notify::Notifier;

/// The name (delivery cursor key) of [`CheckpointNotifier`].
pub const CHECKPOINT_NOTIFIER: &str = "checkpoints";

/// Loads the signing key and its public key when a checkpoint is first signed (decrypting a
/// key takes time, and commands that sign nothing need no password).
pub type CheckpointKeys =
    Arc<dyn Fn() -> Result<(Arc<dyn Signer>, Arc<dyn KeyVerifier>)> + Send + Sync>;

/// An outbox consumer ([`Notifier`] named [`CHECKPOINT_NOTIFIER`]) that checkpoints the chain
/// every `every` events: when it is handed an event at least `every` past the store's latest
/// checkpoint, it signs and stores that event ([`checkpoint_event`]).
///
/// Being an outbox consumer, it runs after the commit and never inside an operation; a
/// failure (the registry is down, the key's password is not set) leaves the event to the
/// next delivery run, so no checkpoint is lost, and never fails the operation.
pub struct CheckpointNotifier {
    history: Arc<dyn HistoryStore>,
    store: Arc<dyn CheckpointStore>,
    every: u64,
    keys: CheckpointKeys,
    clock: Arc<dyn Clock>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The latest checkpoint's sequence, once read from the store.
    last: Option<u64>,
    keys: Option<(Arc<dyn Signer>, Arc<dyn KeyVerifier>)>,
}

impl fmt::Debug for CheckpointNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointNotifier")
            .field("store", &self.store.describe())
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl CheckpointNotifier {
    /// Checkpoints of `history` into `store` every `every` events (at least 1), signed with
    /// the keys `keys` loads when first needed.
    pub fn new(
        history: Arc<dyn HistoryStore>,
        store: Arc<dyn CheckpointStore>,
        every: u64,
        keys: CheckpointKeys,
    ) -> Self {
        CheckpointNotifier {
            history,
            store,
            every: every.max(1),
            keys,
            clock: Arc::new(SystemClock),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The same, with checkpoint times read from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl Notifier for CheckpointNotifier {
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        let mut state = self.state.lock().await;
        let last = match state.last {
            Some(last) => last,
            None => {
                let last = self.store.latest().await?.map_or(0, |c| c.sequence);
                state.last = Some(last);
                last
            }
        };
        if event.seq < last.saturating_add(self.every) {
            return Ok(());
        }
        let (signer, key) = match &state.keys {
            Some(keys) => keys.clone(),
            None => {
                let keys = (self.keys)()?;
                state.keys = Some(keys.clone());
                keys
            }
        };
        let taken = checkpoint_event(
            self.history.as_ref(),
            self.store.as_ref(),
            signer.as_ref(),
            key.as_ref(),
            event,
            self.clock.now(),
        )
        .await?;
        tracing::info!(
            sequence = taken.checkpoint.checkpoint.sequence,
            location = %taken.checkpoint.location,
            created = taken.created,
            "audit checkpoint"
        );
        state.last = Some(taken.checkpoint.checkpoint.sequence.max(last));
        Ok(())
    }

    fn name(&self) -> &str {
        CHECKPOINT_NOTIFIER
    }
}
