//! What `floe approvals verify` prints: each signed approval vote of the audit trail checked
//! again against its environment's allowed_signers file.

use std::fmt::Write as _;

use floe_promotion::model::text::printable as safe;
use serde::{Deserialize, Serialize};

/// The result of `floe approvals verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteSignaturesOutput {
    /// What was read: the state file or database.
    pub source: String,
    /// Signed votes whose signature verifies for the recorded vote.
    pub verified: Vec<VoteCheck>,
    /// Signed votes that do not verify, each with why.
    pub failed: Vec<VoteCheck>,
    /// Unsigned votes into environments whose approval now has `signers` (recorded before
    /// signatures were required, or by a process that did not require them).
    pub unsigned: Vec<VoteCheck>,
}

/// One `approval_decided` event checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteCheck {
    /// The event's sequence number.
    pub seq: u64,
    /// The event's id.
    pub event: uuid::Uuid,
    /// The approval request.
    pub request: Option<String>,
    /// The environment.
    pub environment: Option<String>,
    /// The recorded voter.
    pub actor: String,
    /// Why it failed, for a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl VoteSignaturesOutput {
    /// The text form.
    pub(super) fn text(&self, out: &mut String) {
        for c in &self.failed {
            let _ = writeln!(
                out,
                "FAILED event {} ({}): vote of {} on request {} into {}: {}",
                c.seq,
                c.event,
                safe(&c.actor),
                c.request.as_deref().unwrap_or("?"),
                c.environment.as_deref().unwrap_or("?"),
                safe(c.problem.as_deref().unwrap_or_default())
            );
        }
        for c in &self.unsigned {
            let _ = writeln!(
                out,
                "unsigned: event {} ({}): vote of {} on request {} into {}",
                c.seq,
                c.event,
                safe(&c.actor),
                c.request.as_deref().unwrap_or("?"),
                c.environment.as_deref().unwrap_or("?")
            );
        }
        let _ = writeln!(
            out,
            "{} signed approval votes verified, {} failed, {} unsigned where signatures are now required ({})",
            self.verified.len(),
            self.failed.len(),
            self.unsigned.len(),
            self.source
        );
    }
}
