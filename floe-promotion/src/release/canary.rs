//! The canary machine: a new digest on `canary-<env>` at a traffic weight per step, advanced
//! step by step (by hand, or by itself once a timed pause elapsed), completed at 100 (the
//! pointer moves) or aborted (the pointer stays on the stable version).
//!
//! ```text
//! running --advance--> running      (to the next step below 100)
//! running --advance--> completing   (to the step at 100: the pointer is being moved)
//! running --abort----> aborted
//! completing --finish--> completed
//! completing --block---> running    (the move failed; the step before 100 stays)
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::machine::{MachineName, StateMachine, Step, Transition};
use crate::config::CanaryStep;
use crate::error::{Error, Result};
use crate::model::{Digest, EnvName, Tag};

/// The phase of a canary, stored as its release's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryPhase {
    /// At a step below 100.
    Running,
    /// The last step was reached; the pointer is being moved.
    Completing,
    /// The pointer moved; the canary ended.
    Completed,
    /// Ended without moving the pointer.
    Aborted,
}

impl MachineName for CanaryPhase {
    fn as_str(self) -> &'static str {
        match self {
            CanaryPhase::Running => "running",
            CanaryPhase::Completing => "completing",
            CanaryPhase::Completed => "completed",
            CanaryPhase::Aborted => "aborted",
        }
    }
}

impl fmt::Display for CanaryPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CanaryPhase {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [
            CanaryPhase::Running,
            CanaryPhase::Completing,
            CanaryPhase::Completed,
            CanaryPhase::Aborted,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| {
            Error::invalid(
                "canary phase",
                s,
                "expected running, completing, completed or aborted",
            )
        })
    }
}

/// The version a canary replaces: what the pointer showed when it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stable {
    /// Its version.
    pub version: Tag,
    /// Its digest.
    pub digest: Digest,
}

/// A canary's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryState {
    /// Where it is.
    pub phase: CanaryPhase,
    /// The steps, from the environment's strategy when it started.
    pub steps: Vec<CanaryStep>,
    /// The index of the current step.
    pub step: usize,
    /// When the current step began.
    pub step_started: DateTime<Utc>,
    /// The environment the version came from.
    pub from: EnvName,
    /// The version under test.
    pub version: Tag,
    /// Its digest (on `canary-<env>`).
    pub digest: Digest,
    /// What the pointer showed when the canary started, if anything.
    pub stable: Option<Stable>,
    /// Who started it.
    pub started_by: String,
    /// When it started.
    pub started: DateTime<Utc>,
}

impl CanaryState {
    /// A canary at its first step.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        steps: Vec<CanaryStep>,
        from: EnvName,
        version: Tag,
        digest: Digest,
        stable: Option<Stable>,
        started_by: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        CanaryState {
            phase: CanaryPhase::Running,
            steps,
            step: 0,
            step_started: now,
            from,
            version,
            digest,
            stable,
            started_by: started_by.into(),
            started: now,
        }
    }

    /// The current weight, in percent (0 once aborted, 100 once completing or completed).
    pub fn weight(&self) -> u8 {
        match self.phase {
            CanaryPhase::Aborted => 0,
            CanaryPhase::Completing | CanaryPhase::Completed => 100,
            CanaryPhase::Running => self.steps.get(self.step).map_or(0, |s| s.weight),
        }
    }

    /// When the current step advances by itself: its start plus its pause; `None` while it
    /// waits for an explicit advance, or once the canary is not running.
    pub fn due(&self) -> Option<DateTime<Utc>> {
        if self.phase != CanaryPhase::Running {
            return None;
        }
        let pause = self.steps.get(self.step)?.pause?;
        Some(self.step_started + chrono::Duration::from_std(pause).ok()?)
    }

    /// Whether a timed pause has elapsed at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.due().is_some_and(|d| now >= d)
    }
}

/// What happens to a canary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanaryEvent {
    /// Move to the next step (the gates passed), at this time.
    Advance(DateTime<Utc>),
    /// End it without moving the pointer.
    Abort,
    /// The pointer moved.
    Finish,
    /// Moving the pointer failed; stay at the step before 100.
    Block,
}

/// The names of [`CanaryEvent`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CanaryEventName {
    /// [`CanaryEvent::Advance`].
    Advance,
    /// [`CanaryEvent::Abort`].
    Abort,
    /// [`CanaryEvent::Finish`].
    Finish,
    /// [`CanaryEvent::Block`].
    Block,
}

impl MachineName for CanaryEventName {
    fn as_str(self) -> &'static str {
        match self {
            CanaryEventName::Advance => "advance",
            CanaryEventName::Abort => "abort",
            CanaryEventName::Finish => "finish",
            CanaryEventName::Block => "block",
        }
    }
}

/// What the manager does after a step is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanaryEffect {
    /// Record the new weight (a `canary_step` event) for deployers and notifiers.
    Weight(u8),
    /// Write the environment tag and move the pointer to the canary's digest.
    MovePointer,
    /// Put `canary-<env>` back on the stable digest.
    RestoreStable,
}

/// The canary state machine.
#[derive(Debug)]
pub struct CanaryMachine;

impl StateMachine for CanaryMachine {
    const NAME: &'static str = "canary";
    type State = CanaryState;
    type Event = CanaryEvent;
    type Effect = CanaryEffect;
    type StateName = CanaryPhase;
    type EventName = CanaryEventName;
    const TRANSITIONS: &'static [Transition<Self>] = &[
        (
            CanaryPhase::Running,
            CanaryEventName::Advance,
            CanaryPhase::Running,
        ),
        (
            CanaryPhase::Running,
            CanaryEventName::Advance,
            CanaryPhase::Completing,
        ),
        (
            CanaryPhase::Running,
            CanaryEventName::Abort,
            CanaryPhase::Aborted,
        ),
        (
            CanaryPhase::Completing,
            CanaryEventName::Finish,
            CanaryPhase::Completed,
        ),
        (
            CanaryPhase::Completing,
            CanaryEventName::Block,
            CanaryPhase::Running,
        ),
    ];

    fn state_name(state: &CanaryState) -> CanaryPhase {
        state.phase
    }

    fn event_name(event: &CanaryEvent) -> CanaryEventName {
        match event {
            CanaryEvent::Advance(_) => CanaryEventName::Advance,
            CanaryEvent::Abort => CanaryEventName::Abort,
            CanaryEvent::Finish => CanaryEventName::Finish,
            CanaryEvent::Block => CanaryEventName::Block,
        }
    }

    fn on_event(
        state: &CanaryState,
        event: CanaryEvent,
    ) -> Result<Step<CanaryState, CanaryEffect>> {
        let mut next = state.clone();
        Ok(match event {
            CanaryEvent::Advance(now) => {
                let to = state.step + 1;
                let Some(step) = state.steps.get(to) else {
                    return Err(Error::Conflict(format!(
                        "canary of {}: no step after step {} of {}",
                        state.version,
                        state.step + 1,
                        state.steps.len()
                    )));
                };
                next.step = to;
                next.step_started = now;
                if step.weight >= 100 {
                    next.phase = CanaryPhase::Completing;
                    Step::to(next).with_effect(CanaryEffect::MovePointer)
                } else {
                    Step::to(next).with_effect(CanaryEffect::Weight(step.weight))
                }
            }
            CanaryEvent::Abort => {
                next.phase = CanaryPhase::Aborted;
                Step::to(next).with_effect(CanaryEffect::RestoreStable)
            }
            CanaryEvent::Finish => {
                next.phase = CanaryPhase::Completed;
                Step::to(next)
            }
            CanaryEvent::Block => {
                next.phase = CanaryPhase::Running;
                next.step = state.step.saturating_sub(1);
                Step::to(next)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::release::machine::TransitionCoverage;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_614_400, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn canary() -> CanaryState {
        CanaryState::new(
            vec![
                CanaryStep {
                    weight: 10,
                    pause: Some(Duration::from_secs(3600)),
                },
                CanaryStep {
                    weight: 50,
                    pause: None,
                },
                CanaryStep {
                    weight: 100,
                    pause: None,
                },
            ],
            EnvName::new("staging").unwrap(),
            Tag::new("v2").unwrap(),
            Digest::new(format!("sha256:{}", "b".repeat(64))).unwrap(),
            None,
            "ci",
            t(0),
        )
    }

    fn to_completion(c: &mut TransitionCoverage<CanaryMachine>) {
        let s = canary();
        assert_eq!(s.weight(), 10);
        assert_eq!(s.due(), Some(t(60)));
        assert!(!s.is_due(t(59)) && s.is_due(t(60)));
        let s1 = c.advance(&s, CanaryEvent::Advance(t(60))).unwrap();
        assert_eq!(s1.effects, [CanaryEffect::Weight(50)]);
        assert_eq!(
            (s1.state.weight(), s1.state.due()),
            (50, None),
            "50 waits for advance"
        );
        let s2 = c.advance(&s1.state, CanaryEvent::Advance(t(90))).unwrap();
        assert_eq!(s2.state.phase, CanaryPhase::Completing);
        assert_eq!(s2.effects, [CanaryEffect::MovePointer]);
        let done = c.advance(&s2.state, CanaryEvent::Finish).unwrap();
        assert_eq!(done.state.phase, CanaryPhase::Completed);
        assert_eq!(done.state.weight(), 100);
        for e in [CanaryEvent::Advance(t(99)), CanaryEvent::Abort] {
            assert!(
                c.advance(&done.state, e).is_err(),
                "a completed canary is over"
            );
        }
    }

    fn a_blocked_move_goes_back_a_step(c: &mut TransitionCoverage<CanaryMachine>) {
        let s = canary();
        let s1 = c.advance(&s, CanaryEvent::Advance(t(60))).unwrap();
        let s2 = c.advance(&s1.state, CanaryEvent::Advance(t(61))).unwrap();
        let back = c.advance(&s2.state, CanaryEvent::Block).unwrap();
        assert_eq!(back.state.phase, CanaryPhase::Running);
        assert_eq!(back.state.weight(), 50);
        assert!(
            c.advance(&s2.state, CanaryEvent::Abort).is_err(),
            "no abort while the pointer moves"
        );
    }

    fn abort(c: &mut TransitionCoverage<CanaryMachine>) {
        let s = canary();
        let aborted = c.advance(&s, CanaryEvent::Abort).unwrap();
        assert_eq!(aborted.state.phase, CanaryPhase::Aborted);
        assert_eq!(aborted.effects, [CanaryEffect::RestoreStable]);
        assert_eq!(aborted.state.weight(), 0);
        assert!(
            c.advance(&aborted.state, CanaryEvent::Advance(t(1)))
                .is_err()
        );
        assert!(c.advance(&aborted.state, CanaryEvent::Finish).is_err());
    }

    crate::transition_coverage!(CanaryMachine; to_completion, a_blocked_move_goes_back_a_step, abort);

    #[test]
    fn the_state_round_trips_as_json() {
        let s = canary();
        let back: CanaryState = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            "completing".parse::<CanaryPhase>().unwrap(),
            CanaryPhase::Completing
        );
        assert!("done".parse::<CanaryPhase>().is_err());
    }
}
