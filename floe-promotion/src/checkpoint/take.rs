//! Taking a checkpoint: check the chain up to the event, sign it, store it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Checkpoint, CheckpointStore, VerifiedCheckpoint};
use crate::attest::{KeyVerifier, Signer};
use crate::error::{Error, Result};
use crate::history::{AuditEvent, ChainVerifier, HistoryQuery, HistoryStore, Order, PAGE_SIZE};

/// What [`take_checkpoint`] or [`checkpoint_event`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenCheckpoint {
    /// The checkpoint now stored (a new one, or the one already there).
    #[serde(flatten)]
    pub checkpoint: VerifiedCheckpoint,
    /// Whether a new checkpoint was signed and stored; `false` when the store already held
    /// one at or beyond the event, which still matches the chain.
    pub created: bool,
}

/// The event at `seq`, if the history has it.
pub(super) async fn event_at(history: &dyn HistoryStore, seq: u64) -> Result<Option<AuditEvent>> {
    if seq == 0 {
        return Ok(None);
    }
    let found = history
        .query(&HistoryQuery {
            after_seq: Some(seq - 1),
            limit: Some(1),
            order: Order::OldestFirst,
            ..Default::default()
        })
        .await?;
    Ok(found.into_iter().next().filter(|e| e.seq == seq))
}

/// Signs the history's newest event as a checkpoint and stores it: see [`checkpoint_event`].
/// An empty history is [`Error::NotFound`]: there is nothing to checkpoint.
pub async fn take_checkpoint(
    history: &dyn HistoryStore,
    store: &dyn CheckpointStore,
    signer: &dyn Signer,
    key: &dyn KeyVerifier,
    time: DateTime<Utc>,
) -> Result<TakenCheckpoint> {
    let head = history
        .query(&HistoryQuery {
            limit: Some(1),
            order: Order::NewestFirst,
            ..Default::default()
        })
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("events to checkpoint: the audit trail is empty"))?;
    checkpoint_event(history, store, signer, key, &head, time).await
}

/// Signs `event` (sequence and hash) as a checkpoint taken at `time` and stores it in `store`.
///
/// The chain is checked first, so a checkpoint never certifies a broken one: from the
/// store's latest checkpoint when it verifies with `key` (the event it names must still have
/// its hash, and every event after it must link up to `event`), or the whole chain otherwise.
/// A break, or a latest checkpoint the chain no longer matches, is [`Error::Integrity`]. When
/// the store already holds a checkpoint at or beyond `event` that still matches, nothing is
/// signed and that one is returned (`created: false`). `key` must be `signer`'s public key.
pub async fn checkpoint_event(
    history: &dyn HistoryStore,
    store: &dyn CheckpointStore,
    signer: &dyn Signer,
    key: &dyn KeyVerifier,
    event: &AuditEvent,
    time: DateTime<Utc>,
) -> Result<TakenCheckpoint> {
    if key.fingerprint() != signer.fingerprint() {
        return Err(Error::invalid(
            "checkpoint key",
            key.fingerprint(),
            format!(
                "the verifying key is not the signing key {}",
                signer.fingerprint()
            ),
        ));
    }
    let trusted = match store.latest().await? {
        Some(stored) => match stored.open(key) {
            Ok(verified) => Some(verified),
            // Signed by an earlier key: check the whole chain instead of trusting it.
            Err(Error::Signature { message, .. }) => {
                tracing::info!(%message, "the latest checkpoint is not this key's; verifying the whole chain");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    match &trusted {
        Some(latest) => {
            let at = still_matches(history, latest).await?;
            if latest.checkpoint.sequence >= event.seq {
                return Ok(TakenCheckpoint {
                    checkpoint: latest.clone(),
                    created: false,
                });
            }
            verify_between(history, &at, event).await?;
        }
        None => {
            let report = history.verify().await?;
            if let Some(b) = report.first_break {
                return Err(Error::Integrity {
                    seq: b.seq,
                    problem: format!(
                        "{} (no checkpoint is signed over a broken chain)",
                        b.problem
                    ),
                });
            }
            match event_at(history, event.seq).await? {
                Some(e) if e.hash == event.hash => {}
                _ => {
                    return Err(Error::Integrity {
                        seq: event.seq,
                        problem: "the event to checkpoint is not in the verified chain".into(),
                    });
                }
            }
        }
    }
    let first = event_at(history, 1).await?;
    let checkpoint = Checkpoint {
        sequence: event.seq,
        head: event.hash.clone(),
        time,
        key: signer.fingerprint().to_string(),
        chain: first.map(|e| e.hash),
    };
    let envelope = checkpoint.sign(signer)?;
    let location = store.put(event.seq, &envelope).await?;
    Ok(TakenCheckpoint {
        checkpoint: VerifiedCheckpoint {
            checkpoint,
            location,
        },
        created: true,
    })
}

/// The event `checkpoint` names, when the chain still has it with the checkpointed hash;
/// otherwise [`Error::Integrity`] naming the checkpoint.
async fn still_matches(
    history: &dyn HistoryStore,
    checkpoint: &VerifiedCheckpoint,
) -> Result<AuditEvent> {
    let c = &checkpoint.checkpoint;
    let problem = match event_at(history, c.sequence).await? {
        Some(e) if e.hash == c.head => return Ok(e),
        Some(e) => format!(
            "checkpoint {} (taken {}, stored at {}) holds {} as this event's hash, but the chain now has {}: history was rewritten at or below it",
            c.sequence,
            c.time.to_rfc3339(),
            checkpoint.location,
            short(&c.head),
            short(&e.hash)
        ),
        None => format!(
            "checkpoint {} (taken {}, stored at {}) names this event, which the chain no longer has: events were removed",
            c.sequence,
            c.time.to_rfc3339(),
            checkpoint.location
        ),
    };
    Err(Error::Integrity {
        seq: c.sequence,
        problem,
    })
}

/// Checks that the events after `from` link up to `to`, with `to`'s hash.
async fn verify_between(
    history: &dyn HistoryStore,
    from: &AuditEvent,
    to: &AuditEvent,
) -> Result<()> {
    let mut verifier = ChainVerifier::resume(from);
    let mut after = from.seq;
    let mut last: Option<AuditEvent> = None;
    while after < to.seq {
        let limit = usize::try_from(to.seq - after)
            .unwrap_or(PAGE_SIZE)
            .min(PAGE_SIZE);
        let page = history
            .query(&HistoryQuery {
                after_seq: Some(after),
                limit: Some(limit),
                order: Order::OldestFirst,
                ..Default::default()
            })
            .await?;
        let Some(tail) = page.last() else {
            break;
        };
        after = tail.seq;
        for e in &page {
            verifier.push(e);
        }
        if verifier.broken() {
            break;
        }
        last = page.into_iter().last();
    }
    if let Some(b) = verifier.finish().first_break {
        return Err(Error::Integrity {
            seq: b.seq,
            problem: format!(
                "{} (no checkpoint is signed over a broken chain)",
                b.problem
            ),
        });
    }
    match last {
        Some(e) if e.seq == to.seq && e.hash == to.hash => Ok(()),
        _ => Err(Error::Integrity {
            seq: to.seq,
            problem: "the event to checkpoint is not in the chain after the latest checkpoint"
                .into(),
        }),
    }
}

/// The first 12 characters of a hash, for messages.
pub(super) fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
