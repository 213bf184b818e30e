//! Input rules every operation shares: free text that cannot forge output, and the operations
//! that need a reason (a lock, a break-glass override, a rollback, breaking a lease). Checked
//! here and nowhere else, before anything is recorded.

use crate::error::{Error, Result};
use crate::model::Actor;
use crate::model::text::check_free_text;

/// Refuses an actor or a reason that could forge output: control characters in the actor's
/// id or groups or in the reason (see [`check_free_text`]).
pub fn check_text_input(actor: &Actor, reason: Option<&str>) -> Result<()> {
    check_free_text("actor id", &actor.id)?;
    for group in &actor.groups {
        check_free_text("actor group", group)?;
    }
    if let Some(reason) = reason {
        check_free_text("reason", reason)?;
    }
    Ok(())
}

/// An operation that must say why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reasoned {
    /// Locking an environment.
    Lock,
    /// Passing a lock with a break-glass override.
    LockOverride,
    /// Promoting in a closed promotion window with a break-glass override.
    WindowOverride,
    /// Rolling an environment back.
    Rollback,
    /// Breaking another promoter's lease.
    LeaseBreak,
    /// Rejecting an approval request.
    Rejection,
    /// Holding automatic promotion into an environment.
    Hold,
    /// Releasing a hold.
    HoldRelease,
    /// Aborting a canary.
    CanaryAbort,
    /// Revoking a digest, or lifting a revocation.
    Revocation,
    /// Switching a blue-green environment back to its previous slot.
    SwitchBack,
}

/// Refuses `operation` without a reason (missing or blank).
pub fn require_reason(operation: Reasoned, reason: Option<&str>) -> Result<()> {
    if reason.is_some_and(|r| !r.trim().is_empty()) {
        return Ok(());
    }
    let (what, needs) = match operation {
        Reasoned::Lock => ("lock reason", "a lock needs a reason"),
        Reasoned::LockOverride => ("lock override", "overriding a lock needs a reason"),
        Reasoned::WindowOverride => (
            "window override",
            "overriding a closed promotion window needs a reason",
        ),
        Reasoned::Rollback => ("rollback reason", "a rollback needs a reason"),
        Reasoned::LeaseBreak => ("lease break reason", "breaking a lease needs a reason"),
        Reasoned::Rejection => ("rejection reason", "a rejection needs a reason"),
        Reasoned::Hold => ("hold reason", "a hold needs a reason"),
        Reasoned::HoldRelease => ("hold release reason", "releasing a hold needs a reason"),
        Reasoned::CanaryAbort => ("canary abort reason", "aborting a canary needs a reason"),
        Reasoned::Revocation => (
            "revocation reason",
            "revoking a digest or lifting a revocation needs a reason",
        ),
        Reasoned::SwitchBack => (
            "switch back reason",
            "switching back to the previous slot needs a reason",
        ),
    };
    Err(Error::invalid(what, reason.unwrap_or_default(), needs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reasoned_operation_refuses_a_missing_or_blank_reason() {
        for op in [
            Reasoned::Lock,
            Reasoned::LockOverride,
            Reasoned::WindowOverride,
            Reasoned::Rollback,
            Reasoned::LeaseBreak,
            Reasoned::Rejection,
            Reasoned::Hold,
            Reasoned::HoldRelease,
            Reasoned::CanaryAbort,
            Reasoned::Revocation,
            Reasoned::SwitchBack,
        ] {
            for missing in [None, Some(""), Some("  \u{3000}")] {
                let err = require_reason(op, missing).unwrap_err();
                assert!(err.to_string().contains("needs a reason"), "{op:?}: {err}");
            }
            require_reason(op, Some("incident 42")).unwrap();
        }
    }
}
