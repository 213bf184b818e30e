//! What `floe auto` prints: one pass of automatic promotion, decision by decision.

use floe_promotion::EnvName;
use floe_promotion::orchestrate::{AutoAction, AutoReport, Candidate};
use serde::{Deserialize, Serialize};

use crate::exit;

/// One pass of automatic promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoOutput {
    /// Whether it only planned.
    pub dry_run: bool,
    /// Whether it stopped early on request.
    pub stopped: bool,
    /// Its decisions, in environment order.
    pub decisions: Vec<AutoDecisionOutput>,
}

/// One decision of a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoDecisionOutput {
    /// The target environment.
    pub environment: EnvName,
    /// Where candidates come from.
    pub from: EnvName,
    /// What was decided.
    pub action: AutoAction,
    /// The candidate, when the decision is about one.
    pub candidate: Option<Candidate>,
    /// Why, in words.
    pub detail: String,
    /// The approval request created or open.
    pub approval: Option<uuid::Uuid>,
    /// The success event, when promoted.
    pub event_seq: Option<u64>,
    /// The exit code of a failed promotion's error.
    pub exit_code: Option<u8>,
}

impl AutoOutput {
    /// The printable form of a pass's report.
    pub fn of(report: AutoReport, dry_run: bool) -> Self {
        AutoOutput {
            dry_run,
            stopped: report.stopped,
            decisions: report
                .decisions
                .into_iter()
                .map(|d| AutoDecisionOutput {
                    exit_code: d.error.as_deref().map(exit::code),
                    environment: d.environment,
                    from: d.from,
                    action: d.action,
                    candidate: d.candidate,
                    detail: d.detail,
                    approval: d.approval,
                    event_seq: d.event_seq,
                })
                .collect(),
        }
    }
}
