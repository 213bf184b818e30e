//! Blue-green releases of one artifact in one environment as a state machine.
//!
//! An environment with `strategy: blue_green` keeps two slot tags per artifact,
//! `<env>-blue` and `<env>-green`. The pointer (`latest-<env>`) is on the live slot; a
//! promotion stages its digest on the other, idle slot (the preview) without moving the
//! pointer; a switch moves the pointer to the preview, and the slot that was live becomes the
//! idle one; a switch back moves the pointer to the idle slot again (the instant rollback).
//!
//! Staging and switching are two steps each, so that a process killed in between is resumed:
//! the machine first enters `staging` or `switching` (naming the operation), the tags are
//! written and the outcome recorded by the common tail, then `staged` or `switched` ends the
//! operation; `abandon` gives up an operation that was refused under the lease (a lock, an
//! immutable tag) or whose process died, and returns to the phase it started from.
//!
//! | from | event | to | effect |
//! |---|---|---|---|
//! | empty, live, preview | stage | staging | write the slot tag, record `preview_staged` |
//! | staging | staged | preview | |
//! | staging | abandon | empty, live, preview | |
//! | preview | switch | switching | move the pointer, record `switched` |
//! | live | switch_back | switching | move the pointer, record `switched` (back) |
//! | switching | switched | live | |
//! | switching | abandon | live, preview | |
//!
//! A stage in `preview` replaces the preview (it stages on the same idle slot). `switch` needs
//! a preview; `switch_back` needs a live slot and an idle slot that holds a version, and no
//! staged preview (the idle slot holds the preview then, not the version that ran before).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::machine::{MachineName, StateMachine, Step, Transition};
use crate::error::{Error, Result};
use crate::model::{Digest, EnvName, Tag};

/// One of the two slots of a blue-green environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// The `<env>-blue` slot (the first one staged).
    Blue,
    /// The `<env>-green` slot.
    Green,
}

impl Slot {
    /// `blue` or `green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Slot {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "blue" => Ok(Slot::Blue),
            "green" => Ok(Slot::Green),
            _ => Err(Error::invalid("slot", s, "blue or green")),
        }
    }
}

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotContent {
    /// The version staged there.
    pub version: Tag,
    /// Its digest.
    pub digest: Digest,
    /// The environment it was promoted from.
    pub from: EnvName,
    /// When it was staged.
    pub staged: DateTime<Utc>,
    /// Who staged it.
    pub by: String,
}

/// Where a blue-green release stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlueGreenPhase {
    /// Nothing staged yet.
    Empty,
    /// A stage is writing its tags.
    Staging,
    /// A preview waits on the idle slot for a switch.
    Preview,
    /// A switch is moving the pointer.
    Switching,
    /// The pointer is on the live slot; no preview is staged.
    Live,
}

impl MachineName for BlueGreenPhase {
    fn as_str(self) -> &'static str {
        match self {
            BlueGreenPhase::Empty => "empty",
            BlueGreenPhase::Staging => "staging",
            BlueGreenPhase::Preview => "preview",
            BlueGreenPhase::Switching => "switching",
            BlueGreenPhase::Live => "live",
        }
    }
}

impl fmt::Display for BlueGreenPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation under way in `staging` or `switching`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InFlight {
    /// Staging `content` on `slot`.
    Stage {
        /// The operation's id (the id of its outcome event).
        id: Uuid,
        /// The slot written.
        slot: Slot,
        /// What it stages.
        content: SlotContent,
        /// When it started.
        started: DateTime<Utc>,
        /// The phase it started from, where `abandon` returns.
        previous: BlueGreenPhase,
    },
    /// Moving the pointer to `slot`.
    Switch {
        /// The operation's id (the id of its outcome event).
        id: Uuid,
        /// The slot that becomes live.
        slot: Slot,
        /// Whether it is a switch back (the instant rollback).
        back: bool,
        /// When it started.
        started: DateTime<Utc>,
        /// The phase it started from, where `abandon` returns.
        previous: BlueGreenPhase,
    },
}

impl InFlight {
    /// The operation's id.
    pub fn id(&self) -> Uuid {
        match self {
            InFlight::Stage { id, .. } | InFlight::Switch { id, .. } => *id,
        }
    }

    /// When it started.
    pub fn started(&self) -> DateTime<Utc> {
        match self {
            InFlight::Stage { started, .. } | InFlight::Switch { started, .. } => *started,
        }
    }
}

/// The state of the blue-green release of one artifact in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenState {
    /// Where it stands.
    pub phase: BlueGreenPhase,
    /// The slot the pointer is on, once a switch happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Slot>,
    /// What `<env>-blue` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue: Option<SlotContent>,
    /// What `<env>-green` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<SlotContent>,
    /// The operation under way (in `staging` and `switching`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

impl Default for BlueGreenState {
    fn default() -> Self {
        Self::new()
    }
}

impl BlueGreenState {
    /// Nothing staged, nothing live.
    pub fn new() -> Self {
        BlueGreenState {
            phase: BlueGreenPhase::Empty,
            live: None,
            blue: None,
            green: None,
            in_flight: None,
        }
    }

    /// What `slot` holds.
    pub fn slot(&self, slot: Slot) -> Option<&SlotContent> {
        match slot {
            Slot::Blue => self.blue.as_ref(),
            Slot::Green => self.green.as_ref(),
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Option<SlotContent> {
        match slot {
            Slot::Blue => &mut self.blue,
            Slot::Green => &mut self.green,
        }
    }

    /// The idle slot: the one the pointer is not on (blue before the first switch). A stage
    /// writes there; in `preview` it holds the preview.
    pub fn idle(&self) -> Slot {
        self.live.map_or(Slot::Blue, Slot::other)
    }

    /// The staged preview and its slot, in `preview`.
    pub fn preview(&self) -> Option<(Slot, &SlotContent)> {
        if self.phase != BlueGreenPhase::Preview {
            return None;
        }
        let idle = self.idle();
        self.slot(idle).map(|c| (idle, c))
    }
}

/// An input of the blue-green machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlueGreenEvent {
    /// Stage `content` on the idle slot, as operation `id`, at `at`.
    Stage {
        /// The operation's id.
        id: Uuid,
        /// What to stage.
        content: SlotContent,
        /// When.
        at: DateTime<Utc>,
    },
    /// The stage wrote its tags and recorded `preview_staged`.
    Staged,
    /// Move the pointer to the preview, as operation `id`, at `at`.
    Switch {
        /// The operation's id.
        id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Move the pointer back to the idle slot, as operation `id`, at `at`.
    SwitchBack {
        /// The operation's id.
        id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The switch moved the pointer and recorded `switched`.
    Switched,
    /// The operation under way was refused or its process died: back to where it started.
    Abandon,
}

/// The names of the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlueGreenEventName {
    /// [`BlueGreenEvent::Stage`].
    Stage,
    /// [`BlueGreenEvent::Staged`].
    Staged,
    /// [`BlueGreenEvent::Switch`].
    Switch,
    /// [`BlueGreenEvent::SwitchBack`].
    SwitchBack,
    /// [`BlueGreenEvent::Switched`].
    Switched,
    /// [`BlueGreenEvent::Abandon`].
    Abandon,
}

impl MachineName for BlueGreenEventName {
    fn as_str(self) -> &'static str {
        match self {
            BlueGreenEventName::Stage => "stage",
            BlueGreenEventName::Staged => "staged",
            BlueGreenEventName::Switch => "switch",
            BlueGreenEventName::SwitchBack => "switch_back",
            BlueGreenEventName::Switched => "switched",
            BlueGreenEventName::Abandon => "abandon",
        }
    }
}

/// What the layer that applies the machine must do after storing a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlueGreenEffect {
    /// Write the environment tag and `<env>-<slot>` at the staged digest, and record
    /// `preview_staged` (the common tail), as the operation's id.
    WriteSlot(Slot),
    /// Move the pointer to `<env>-<slot>`'s digest and record `switched` (the common tail), as
    /// the operation's id.
    MovePointer(Slot),
}

/// The blue-green machine.
#[derive(Debug)]
pub struct BlueGreenMachine;

use BlueGreenEventName as E;
use BlueGreenPhase as P;

impl StateMachine for BlueGreenMachine {
    const NAME: &'static str = "blue-green";
    type State = BlueGreenState;
    type Event = BlueGreenEvent;
    type Effect = BlueGreenEffect;
    type StateName = BlueGreenPhase;
    type EventName = BlueGreenEventName;
    const TRANSITIONS: &'static [Transition<Self>] = &[
        (P::Empty, E::Stage, P::Staging),
        (P::Live, E::Stage, P::Staging),
        (P::Preview, E::Stage, P::Staging),
        (P::Staging, E::Staged, P::Preview),
        (P::Staging, E::Abandon, P::Empty),
        (P::Staging, E::Abandon, P::Live),
        (P::Staging, E::Abandon, P::Preview),
        (P::Preview, E::Switch, P::Switching),
        (P::Live, E::SwitchBack, P::Switching),
        (P::Switching, E::Switched, P::Live),
        (P::Switching, E::Abandon, P::Live),
        (P::Switching, E::Abandon, P::Preview),
    ];

    fn state_name(state: &BlueGreenState) -> BlueGreenPhase {
        state.phase
    }

    fn event_name(event: &BlueGreenEvent) -> BlueGreenEventName {
        match event {
            BlueGreenEvent::Stage { .. } => E::Stage,
            BlueGreenEvent::Staged => E::Staged,
            BlueGreenEvent::Switch { .. } => E::Switch,
            BlueGreenEvent::SwitchBack { .. } => E::SwitchBack,
            BlueGreenEvent::Switched => E::Switched,
            BlueGreenEvent::Abandon => E::Abandon,
        }
    }

    fn on_event(
        state: &BlueGreenState,
        event: BlueGreenEvent,
    ) -> Result<Step<BlueGreenState, BlueGreenEffect>> {
        let mut next = state.clone();
        let in_flight = || {
            state.in_flight.clone().ok_or_else(|| {
                Error::Conflict(format!(
                    "blue-green machine: state {} names no operation under way",
                    state.phase
                ))
            })
        };
        Ok(match event {
            BlueGreenEvent::Stage { id, content, at } => {
                let slot = state.idle();
                next.phase = P::Staging;
                next.in_flight = Some(InFlight::Stage {
                    id,
                    slot,
                    content,
                    started: at,
                    previous: state.phase,
                });
                Step::to(next).with_effect(BlueGreenEffect::WriteSlot(slot))
            }
            BlueGreenEvent::Staged => match in_flight()? {
                InFlight::Stage { slot, content, .. } => {
                    *next.slot_mut(slot) = Some(content);
                    next.phase = P::Preview;
                    next.in_flight = None;
                    Step::to(next)
                }
                other => return Err(wrong_operation(&other, "staged")),
            },
            BlueGreenEvent::Switch { id, at } => {
                let Some((slot, _)) = state.preview() else {
                    return Err(Error::Conflict(
                        "blue-green machine: no preview is staged".into(),
                    ));
                };
                next.phase = P::Switching;
                next.in_flight = Some(InFlight::Switch {
                    id,
                    slot,
                    back: false,
                    started: at,
                    previous: state.phase,
                });
                Step::to(next).with_effect(BlueGreenEffect::MovePointer(slot))
            }
            BlueGreenEvent::SwitchBack { id, at } => {
                let slot = state.idle();
                if state.live.is_none() || state.slot(slot).is_none() {
                    return Err(Error::Conflict(format!(
                        "blue-green machine: the idle slot {slot} holds no version to switch back to"
                    )));
                }
                next.phase = P::Switching;
                next.in_flight = Some(InFlight::Switch {
                    id,
                    slot,
                    back: true,
                    started: at,
                    previous: state.phase,
                });
                Step::to(next).with_effect(BlueGreenEffect::MovePointer(slot))
            }
            BlueGreenEvent::Switched => match in_flight()? {
                InFlight::Switch { slot, .. } => {
                    next.live = Some(slot);
                    next.phase = P::Live;
                    next.in_flight = None;
                    Step::to(next)
                }
                other => return Err(wrong_operation(&other, "switched")),
            },
            BlueGreenEvent::Abandon => {
                let (InFlight::Stage { previous, .. } | InFlight::Switch { previous, .. }) =
                    in_flight()?;
                next.phase = previous;
                next.in_flight = None;
                Step::to(next)
            }
        })
    }
}

fn wrong_operation(op: &InFlight, event: &str) -> Error {
    Error::Conflict(format!(
        "blue-green machine: event {event} does not end the operation under way ({op:?})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::machine::TransitionCoverage;

    type C = TransitionCoverage<BlueGreenMachine>;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(minutes)
    }

    fn content(version: &str) -> SlotContent {
        SlotContent {
            version: Tag::new(version).unwrap(),
            digest: Digest::of(version.as_bytes()),
            from: EnvName::new("staging").unwrap(),
            staged: t(0),
            by: "ci".into(),
        }
    }

    fn stage(c: &mut C, s: &BlueGreenState, version: &str) -> BlueGreenState {
        let step = c
            .advance(
                s,
                BlueGreenEvent::Stage {
                    id: Uuid::new_v4(),
                    content: content(version),
                    at: t(1),
                },
            )
            .unwrap();
        assert_eq!(step.state.phase, P::Staging);
        assert_eq!(step.effects, [BlueGreenEffect::WriteSlot(s.idle())]);
        let done = c.advance(&step.state, BlueGreenEvent::Staged).unwrap();
        assert!(done.effects.is_empty());
        done.state
    }

    fn switch(c: &mut C, s: &BlueGreenState, back: bool) -> BlueGreenState {
        let id = Uuid::new_v4();
        let event = if back {
            BlueGreenEvent::SwitchBack { id, at: t(2) }
        } else {
            BlueGreenEvent::Switch { id, at: t(2) }
        };
        let step = c.advance(s, event).unwrap();
        assert_eq!(step.effects, [BlueGreenEffect::MovePointer(s.idle())]);
        c.advance(&step.state, BlueGreenEvent::Switched)
            .unwrap()
            .state
    }

    fn stage_switch_and_back(c: &mut C) {
        let empty = BlueGreenState::new();
        let one = stage(c, &empty, "v1");
        assert_eq!(
            one.preview().map(|(s, c)| (s, c.version.as_str())),
            Some((Slot::Blue, "v1"))
        );
        let live = switch(c, &one, false);
        assert_eq!((live.phase, live.live), (P::Live, Some(Slot::Blue)));
        assert!(live.preview().is_none());
        let two = stage(c, &live, "v2");
        assert_eq!(two.idle(), Slot::Green);
        assert_eq!(two.green.as_ref().unwrap().version.as_str(), "v2");
        let on_two = switch(c, &two, false);
        assert_eq!(on_two.live, Some(Slot::Green));
        let back = switch(c, &on_two, true);
        assert_eq!(back.live, Some(Slot::Blue));
        assert_eq!(back.slot(Slot::Green).unwrap().version.as_str(), "v2");
        // A stage now replaces what the idle slot held (v2).
        let three = stage(c, &back, "v3");
        assert_eq!(three.preview().unwrap().0, Slot::Green);
        // And another stage replaces the preview on the same slot.
        let four = stage(c, &three, "v4");
        assert_eq!(four.preview().unwrap().1.version.as_str(), "v4");
        assert_eq!(four.blue.as_ref().unwrap().version.as_str(), "v1");
    }

    fn refusals(c: &mut C) {
        let empty = BlueGreenState::new();
        let at = t(0);
        for e in [
            BlueGreenEvent::Switch {
                id: Uuid::new_v4(),
                at,
            },
            BlueGreenEvent::SwitchBack {
                id: Uuid::new_v4(),
                at,
            },
            BlueGreenEvent::Staged,
            BlueGreenEvent::Switched,
            BlueGreenEvent::Abandon,
        ] {
            let err = c.advance(&empty, e).unwrap_err();
            assert!(matches!(err, Error::Conflict(_)), "{err}");
        }
        // A switch back before any switch, or with a preview staged, is refused.
        let preview = stage(c, &empty, "v1");
        let err = c
            .advance(
                &preview,
                BlueGreenEvent::SwitchBack {
                    id: Uuid::new_v4(),
                    at,
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("in state preview"), "{err}");
        // Live on blue with an empty green slot: nothing to switch back to.
        let live = switch(c, &preview, false);
        let err = c
            .advance(
                &live,
                BlueGreenEvent::SwitchBack {
                    id: Uuid::new_v4(),
                    at,
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("holds no version"), "{err}");
        // Live without a preview: a forward switch is not allowed.
        assert!(
            c.advance(
                &live,
                BlueGreenEvent::Switch {
                    id: Uuid::new_v4(),
                    at
                }
            )
            .is_err()
        );
        // During an operation nothing else starts.
        let staging = c
            .advance(
                &live,
                BlueGreenEvent::Stage {
                    id: Uuid::new_v4(),
                    content: content("v2"),
                    at,
                },
            )
            .unwrap()
            .state;
        assert!(
            c.advance(
                &staging,
                BlueGreenEvent::Stage {
                    id: Uuid::new_v4(),
                    content: content("v3"),
                    at
                }
            )
            .is_err()
        );
        assert!(c.advance(&staging, BlueGreenEvent::Switched).is_err());
    }

    fn abandoned_operations_return(c: &mut C) {
        let empty = BlueGreenState::new();
        let at = t(0);
        let stage_from = |c: &mut C, s: &BlueGreenState| {
            c.advance(
                s,
                BlueGreenEvent::Stage {
                    id: Uuid::new_v4(),
                    content: content("vx"),
                    at,
                },
            )
            .unwrap()
            .state
        };
        let s = stage_from(c, &empty);
        assert_eq!(c.advance(&s, BlueGreenEvent::Abandon).unwrap().state, empty);
        let preview = stage(c, &empty, "v1");
        let s = stage_from(c, &preview);
        assert_eq!(
            c.advance(&s, BlueGreenEvent::Abandon).unwrap().state,
            preview
        );
        let switching = c
            .advance(
                &preview,
                BlueGreenEvent::Switch {
                    id: Uuid::new_v4(),
                    at,
                },
            )
            .unwrap()
            .state;
        assert!(c.advance(&switching, BlueGreenEvent::Staged).is_err());
        assert_eq!(
            c.advance(&switching, BlueGreenEvent::Abandon)
                .unwrap()
                .state,
            preview
        );
        let live = switch(c, &preview, false);
        let s = stage_from(c, &live);
        assert_eq!(c.advance(&s, BlueGreenEvent::Abandon).unwrap().state, live);
        let staged = stage(c, &live, "v2");
        let two = switch(c, &staged, false);
        let back = c
            .advance(
                &two,
                BlueGreenEvent::SwitchBack {
                    id: Uuid::new_v4(),
                    at,
                },
            )
            .unwrap()
            .state;
        assert_eq!(
            c.advance(&back, BlueGreenEvent::Abandon).unwrap().state,
            two
        );
    }

    crate::transition_coverage!(BlueGreenMachine; stage_switch_and_back, refusals, abandoned_operations_return);

    #[test]
    fn the_state_round_trips_as_json() {
        let mut c = C::new();
        let s = stage(&mut c, &BlueGreenState::new(), "v1");
        let json = serde_json::to_value(&s).unwrap();
        let back: BlueGreenState = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert_eq!("green".parse::<Slot>().unwrap(), Slot::Green);
        assert!("red".parse::<Slot>().is_err());
    }
}
