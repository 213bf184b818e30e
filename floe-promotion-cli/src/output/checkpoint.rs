//! What `floe audit checkpoint` and `floe audit verify --checkpoints` print.

use std::fmt::Write as _;

use floe_promotion::checkpoint::{
    CheckpointMismatch, CheckpointReport, TakenCheckpoint, VerifiedCheckpoint,
};
use serde::{Deserialize, Serialize};

/// The checkpoints part of `floe audit verify --checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointsOutput {
    /// Where the checkpoints were read: a file, `oci://HOST/PATH` or `oci-layout:DIR`.
    pub source: String,
    /// The key they were verified with (`sha256:<hex>` of the public key).
    pub key: String,
    /// Checkpoints whose signature verified.
    pub checked: u64,
    /// Of those, the ones the chain still holds.
    pub matched: u64,
    /// The checkpoint with the highest sequence.
    pub latest: Option<VerifiedCheckpoint>,
    /// The lowest checkpoint the chain no longer holds: history was rewritten below it.
    pub mismatch: Option<CheckpointMismatch>,
}

impl CheckpointsOutput {
    /// The printable form of a report.
    pub fn of(report: &CheckpointReport, source: String, key: String) -> Self {
        CheckpointsOutput {
            source,
            key,
            checked: report.checked,
            matched: report.matched,
            latest: report.latest.clone(),
            mismatch: report.mismatch.clone(),
        }
    }
}

/// The text lines of the checkpoints part of a verification.
pub(super) fn checkpoints_text(out: &mut String, c: &CheckpointsOutput) {
    match &c.mismatch {
        Some(m) => {
            let _ = writeln!(
                out,
                "audit chain REWRITTEN below a signed checkpoint: {}",
                m.problem
            );
        }
        None => {
            let _ = writeln!(
                out,
                "holds every checkpointed head: {} signed checkpoints in {} (key {}){}",
                c.checked,
                c.source,
                c.key,
                c.latest
                    .as_ref()
                    .map(|l| format!(
                        ", the latest at event {} taken {}",
                        l.checkpoint.sequence,
                        l.checkpoint.time.to_rfc3339()
                    ))
                    .unwrap_or_default()
            );
        }
    }
}

/// The text of `floe audit checkpoint`.
pub(super) fn taken_text(out: &mut String, t: &TakenCheckpoint) {
    let c = &t.checkpoint.checkpoint;
    if t.created {
        let _ = writeln!(
            out,
            "checkpoint of event {} (head {}) signed by {} at {}, stored at {}",
            c.sequence,
            c.head,
            c.key,
            c.time.to_rfc3339(),
            t.checkpoint.location
        );
    } else {
        let _ = writeln!(
            out,
            "event {} is already checkpointed (head {}, taken {}) at {}; nothing signed",
            c.sequence,
            c.head,
            c.time.to_rfc3339(),
            t.checkpoint.location
        );
    }
}
