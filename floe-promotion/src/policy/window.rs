//! No promotion while the target's promotion windows are closed (an active deny window, or
//! outside every allow window; see
//! [`Environment::window_state`](crate::config::Environment::window_state)), unless the
//! request is a break-glass override (which needs a reason, checked with the request's input,
//! and is recorded as `window_overridden`).
//!
//! Windows do not apply to rollbacks: a rollback repairs an environment, and a window that
//! kept the repair out would keep the broken version in (Kargo lets rollbacks through too).

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::config::WindowState;
use crate::error::{Error, Result};

/// Promotion into the target is open at the evaluation time, or the request overrides a
/// closed window.
#[derive(Debug, Clone, Copy)]
pub struct WindowOpen;

#[async_trait]
impl Check for WindowOpen {
    fn name(&self) -> &'static str {
        "window"
    }

    fn stage(&self) -> Stage {
        Stage::Request
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        if ctx.override_window {
            return Ok(None);
        }
        Ok(match ctx.to.window_state(ctx.now) {
            WindowState::Open => None,
            WindowState::Closed {
                reason,
                kind,
                until,
            } => Some(Error::PolicyViolation {
                environment: ctx.to.name.clone(),
                rule: "window",
                detail: format!(
                    "promotion window closed ({kind} window): {reason}; {}; a break-glass override with a reason passes it",
                    match until {
                        Some(t) => format!("opens next at {}", t.to_rfc3339()),
                        None => format!(
                            "does not open within the next {} days",
                            crate::config::NEXT_OPEN_HORIZON_DAYS
                        ),
                    }
                ),
            }),
        })
    }
}
