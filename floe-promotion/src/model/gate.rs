//! What gates answer and what is recorded of them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The verdict of one gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// The check passed.
    Passed,
    /// The check passed with a warning (e.g. signature enforcement `warn`).
    Warned,
    /// The check failed.
    Failed,
    /// The gate did not answer in time.
    TimedOut,
    /// The gate could not evaluate (an error or a panic).
    Error,
}

impl GateStatus {
    /// Whether the promotion may proceed.
    pub fn allows(self) -> bool {
        matches!(self, GateStatus::Passed | GateStatus::Warned)
    }
}

impl fmt::Display for GateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateStatus::Passed => "passed",
            GateStatus::Warned => "warned",
            GateStatus::Failed => "failed",
            GateStatus::TimedOut => "timed out",
            GateStatus::Error => "error",
        })
    }
}

/// What a gate returns when it could evaluate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOutcome {
    /// Passed, warned or failed.
    pub status: GateStatus,
    /// A one-line explanation.
    pub message: String,
}

impl GateOutcome {
    /// A passing outcome.
    pub fn pass(message: impl Into<String>) -> Self {
        GateOutcome {
            status: GateStatus::Passed,
            message: message.into(),
        }
    }

    /// A failing outcome.
    pub fn fail(message: impl Into<String>) -> Self {
        GateOutcome {
            status: GateStatus::Failed,
            message: message.into(),
        }
    }

    /// A passing outcome that carries a warning.
    pub fn warn(message: impl Into<String>) -> Self {
        GateOutcome {
            status: GateStatus::Warned,
            message: message.into(),
        }
    }
}

/// The recorded result of one gate in one promotion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate's name.
    pub gate: String,
    /// Its verdict.
    pub status: GateStatus,
    /// Its explanation.
    pub message: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}
