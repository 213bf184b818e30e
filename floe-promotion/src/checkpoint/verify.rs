//! Verifying a history against signed checkpoints.

use serde::{Deserialize, Serialize};

use super::take::{event_at, short};
use super::{StoredCheckpoint, VerifiedCheckpoint};
use crate::attest::KeyVerifier;
use crate::error::{Error, Result};
use crate::history::{HistoryStore, VerifyReport};

/// The result of [`verify_checkpoints`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// The chain on its own ([`HistoryStore::verify`]).
    pub chain: VerifyReport,
    /// Checkpoints whose signature verified and that were compared with the chain.
    pub checked: u64,
    /// Of those, the ones the chain still matches.
    pub matched: u64,
    /// The checkpoint with the highest sequence.
    pub latest: Option<VerifiedCheckpoint>,
    /// The lowest checkpoint the chain no longer matches.
    pub mismatch: Option<CheckpointMismatch>,
}

impl CheckpointReport {
    /// Whether the chain verifies and contains every checkpointed head.
    pub fn is_intact(&self) -> bool {
        self.chain.is_intact() && self.mismatch.is_none()
    }
}

/// A checkpoint the history no longer matches: history was rewritten at or below it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMismatch {
    /// The checkpoint: its sequence, head, time, key and where it is stored.
    pub checkpoint: VerifiedCheckpoint,
    /// The hash the chain now has at that sequence; `None` when the event is gone.
    pub found: Option<String>,
    /// Events in the chain now.
    pub events: u64,
    /// The first event that differs from what was checkpointed: exactly this one when
    /// `exact`, otherwise the lowest that may (the one after the last checkpoint that still
    /// matches; every event up to the checkpoint is suspect).
    pub first_differing: u64,
    /// Whether `first_differing` is known exactly.
    pub exact: bool,
    /// The whole story, for people.
    pub problem: String,
}

/// Verifies `history` against signed checkpoints: every checkpoint's signature must verify
/// with `key` (else [`Error::Signature`] naming the checkpoint's location; an unreadable one
/// is [`Error::InvalidInput`]), the chain must verify on its own, and the event at each
/// checkpoint's sequence must exist with exactly the checkpointed hash (and event 1 with the
/// checkpointed chain hash). The report names the lowest checkpoint that fails and the first
/// event that differs, as closely as the checkpoints pin it. No checkpoint at all is
/// [`Error::NotFound`]: nothing would be proved.
pub async fn verify_checkpoints(
    history: &dyn HistoryStore,
    checkpoints: &[StoredCheckpoint],
    key: &dyn KeyVerifier,
) -> Result<CheckpointReport> {
    if checkpoints.is_empty() {
        return Err(Error::not_found(
            "signed checkpoints to verify against: there are none",
        ));
    }
    let mut opened = checkpoints
        .iter()
        .map(|c| c.open(key))
        .collect::<Result<Vec<_>>>()?;
    opened.sort_by_key(|c| c.checkpoint.sequence);
    let chain = history.verify().await?;
    let first = event_at(history, 1).await?;
    let events = match history
        .query(&crate::history::HistoryQuery {
            limit: Some(1),
            order: crate::history::Order::NewestFirst,
            ..Default::default()
        })
        .await?
        .pop()
    {
        Some(e) => e.seq,
        None => 0,
    };
    let mut report = CheckpointReport {
        chain,
        checked: opened.len() as u64,
        matched: 0,
        latest: opened.last().cloned(),
        mismatch: None,
    };
    let mut last_ok: Option<&VerifiedCheckpoint> = None;
    for v in &opened {
        let c = &v.checkpoint;
        let at = event_at(history, c.sequence).await?;
        let head_ok = at.as_ref().is_some_and(|e| e.hash == c.head);
        let chain_ok = match (&c.chain, &first) {
            (Some(expected), Some(e)) => e.hash == *expected,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if head_ok && chain_ok {
            report.matched += 1;
            last_ok = Some(v);
            continue;
        }
        if report.mismatch.is_some() {
            continue;
        }
        let below = last_ok.map_or(0, |l| l.checkpoint.sequence);
        let (first_differing, exact) = if !chain_ok {
            (1, true)
        } else if at.is_none() && below >= events {
            (events + 1, true)
        } else {
            (below + 1, below + 1 == c.sequence)
        };
        let taken = format!(
            "checkpoint {} (taken {}, stored at {})",
            c.sequence,
            c.time.to_rfc3339(),
            v.location
        );
        let what = match &at {
            _ if !chain_ok => format!(
                "{taken} was taken on a chain whose event 1 has the hash {}, but event 1 now has {}",
                short(c.chain.as_deref().unwrap_or("")),
                first
                    .as_ref()
                    .map_or("nothing (the chain is empty)", |e| short(&e.hash))
            ),
            Some(e) => format!(
                "{taken} holds {} as the hash of event {}, but the chain now has {} there",
                short(&c.head),
                c.sequence,
                short(&e.hash)
            ),
            None => format!(
                "{taken} names event {}, but the chain has only {events} events",
                c.sequence
            ),
        };
        let range = if exact {
            format!("the first event that differs is event {first_differing}")
        } else {
            format!(
                "the first event that differs is one of events {first_differing} to {}{}",
                c.sequence,
                match last_ok {
                    Some(l) => format!(" (checkpoint {} still matches)", l.checkpoint.sequence),
                    None => " (no earlier checkpoint pins it closer)".into(),
                }
            )
        };
        report.mismatch = Some(CheckpointMismatch {
            checkpoint: v.clone(),
            found: at.map(|e| e.hash),
            events,
            first_differing,
            exact,
            problem: format!("{what}: history was rewritten below the checkpoint; {range}"),
        });
    }
    Ok(report)
}
