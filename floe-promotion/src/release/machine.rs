//! The shape every release state machine has: a pure function `(state, event) -> (state,
//! effects)` with its transitions declared in one table, and a test helper that fails when a
//! declared transition is never exercised (after Temporal sdk-core's machines and
//! `transition_coverage.rs`).
//!
//! A machine implements [`StateMachine`]; callers never call
//! [`on_event`](StateMachine::on_event) directly but [`advance`], which refuses an event the
//! table does not allow in the current state and a result the table does not declare. The
//! machine performs nothing: its effects are data, applied by another layer (see
//! [`release`](crate::release)). [`encode`] and [`decode`] keep a machine's state in a
//! [`Release`].
//!
//! In a machine's test module, each scenario is a function taking a `TransitionCoverage` and
//! driving the machine through it; `transition_coverage!` turns the list into one `#[test]`
//! per scenario plus `transition_coverage`, which runs them all and fails naming every
//! declared transition none of them took. Both are compiled for tests and with the `testing`
//! feature.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Release, ReleaseState};
use crate::error::{Error, Result};

/// A state or event name of a machine: a field-less enum, stored and shown as a string.
pub trait MachineName: Copy + Eq + Ord + Debug + Send + Sync + 'static {
    /// The name as stored (a release's status) and shown: `a-z`, `0-9`, `_`, `-`.
    fn as_str(self) -> &'static str;
}

/// One declared transition: from a state, on an event, to a state.
pub type Transition<M> = (
    <M as StateMachine>::StateName,
    <M as StateMachine>::EventName,
    <M as StateMachine>::StateName,
);

/// What one event did: the next state and the effects to apply, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<S, E> {
    /// The next state.
    pub state: S,
    /// What to do, in order, after the next state is stored.
    pub effects: Vec<E>,
}

impl<S, E> Step<S, E> {
    /// A step to `state` with no effect.
    pub fn to(state: S) -> Self {
        Step {
            state,
            effects: Vec::new(),
        }
    }

    /// This step with one more effect.
    pub fn with_effect(mut self, effect: E) -> Self {
        self.effects.push(effect);
        self
    }
}

/// A release process as a pure state machine.
///
/// # Contract
///
/// - `on_event` is pure: it reads the state and the event and returns the next state and its
///   effects; it performs no I/O, reads no clock (times come in events) and has no other
///   output.
/// - Every `(from, event, to)` that `on_event` can produce is in `TRANSITIONS`, each once;
///   `(state, event)` pairs that appear in no entry are refused by [`advance`] before
///   `on_event` is called.
/// - `state_name` of a state is what the store indexes as the release's status.
pub trait StateMachine: 'static {
    /// The machine's name in messages, e.g. `approval`.
    const NAME: &'static str;
    /// The state, with its data.
    type State: Debug;
    /// An input, with its data.
    type Event: Debug;
    /// Something to do after the step is stored.
    type Effect: Debug;
    /// The names of the states.
    type StateName: MachineName;
    /// The names of the events.
    type EventName: MachineName;
    /// Every transition the machine makes.
    const TRANSITIONS: &'static [Transition<Self>];

    /// The name of a state.
    fn state_name(state: &Self::State) -> Self::StateName;
    /// The name of an event.
    fn event_name(event: &Self::Event) -> Self::EventName;
    /// The next state and effects. Called through [`advance`].
    fn on_event(state: &Self::State, event: Self::Event)
    -> Result<Step<Self::State, Self::Effect>>;
}

/// Whether the table lets `event` happen in state `from` (to some state).
pub fn allows<M: StateMachine>(from: M::StateName, event: M::EventName) -> bool {
    M::TRANSITIONS
        .iter()
        .any(|&(f, e, _)| f == from && e == event)
}

/// Whether `(from, event, to)` is declared.
pub fn is_declared<M: StateMachine>(
    from: M::StateName,
    event: M::EventName,
    to: M::StateName,
) -> bool {
    M::TRANSITIONS.contains(&(from, event, to))
}

/// Feeds `event` to a machine in `state`.
///
/// An event the table does not allow in `state` is [`Error::Conflict`] naming the machine,
/// the state and the event, and the machine is not called; a step to a state the table does
/// not declare for this event (a bug in the machine) is [`Error::Conflict`] naming the
/// transition. The machine's own refusals are returned as they are.
pub fn advance<M: StateMachine>(
    state: &M::State,
    event: M::Event,
) -> Result<Step<M::State, M::Effect>> {
    let from = M::state_name(state);
    let on = M::event_name(&event);
    if !allows::<M>(from, on) {
        return Err(Error::Conflict(format!(
            "{} machine: event {} is not allowed in state {}",
            M::NAME,
            on.as_str(),
            from.as_str()
        )));
    }
    let step = M::on_event(state, event)?;
    let to = M::state_name(&step.state);
    if !is_declared::<M>(from, on, to) {
        return Err(Error::Conflict(format!(
            "{} machine: transition {} --{}--> {} is not in its transition table",
            M::NAME,
            from.as_str(),
            on.as_str(),
            to.as_str()
        )));
    }
    Ok(step)
}

/// Checks a machine's table: no transition declared twice, every name a valid status.
pub fn check_table<M: StateMachine>() -> std::result::Result<(), String> {
    for (i, t) in M::TRANSITIONS.iter().enumerate() {
        if M::TRANSITIONS[..i].contains(t) {
            return Err(format!(
                "{} machine: transition {:?} is declared twice",
                M::NAME,
                t
            ));
        }
        for name in [t.0.as_str(), t.2.as_str()] {
            super::check_status(name).map_err(|e| format!("{} machine: {e}", M::NAME))?;
        }
    }
    Ok(())
}

/// A machine's state as a release stores it: its state name as the status, the state as JSON.
pub fn encode<M: StateMachine>(state: &M::State) -> Result<ReleaseState>
where
    M::State: Serialize,
{
    ReleaseState::encode(M::state_name(state).as_str(), state)
}

/// A machine's state read back from a release; a state that does not decode, or whose name
/// disagrees with the release's status, is [`Error::Conflict`] naming the release.
pub fn decode<M: StateMachine>(release: &Release) -> Result<M::State>
where
    M::State: DeserializeOwned,
{
    let state: M::State = release.decode_state()?;
    let name = M::state_name(&state).as_str();
    if name != release.status {
        return Err(Error::Conflict(format!(
            "{} release {} (version {}): its status is {} but its stored {} state is {name}",
            release.kind,
            release.id,
            release.version,
            release.status,
            M::NAME
        )));
    }
    Ok(state)
}

/// Test helper: drives a machine through [`advance`] and remembers every transition taken, to
/// fail when a declared transition is never exercised (see
/// [`transition_coverage!`](crate::transition_coverage)).
#[cfg(any(test, feature = "testing"))]
pub struct TransitionCoverage<M: StateMachine> {
    seen: std::collections::BTreeSet<Transition<M>>,
}

#[cfg(any(test, feature = "testing"))]
impl<M: StateMachine> Debug for TransitionCoverage<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitionCoverage")
            .field("machine", &M::NAME)
            .field("seen", &self.seen)
            .finish()
    }
}

#[cfg(any(test, feature = "testing"))]
impl<M: StateMachine> Default for TransitionCoverage<M> {
    fn default() -> Self {
        TransitionCoverage {
            seen: Default::default(),
        }
    }
}

#[cfg(any(test, feature = "testing"))]
impl<M: StateMachine> TransitionCoverage<M> {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`advance`], remembering the transition when it succeeds.
    pub fn advance(
        &mut self,
        state: &M::State,
        event: M::Event,
    ) -> Result<Step<M::State, M::Effect>> {
        let from = M::state_name(state);
        let on = M::event_name(&event);
        let step = advance::<M>(state, event)?;
        self.seen.insert((from, on, M::state_name(&step.state)));
        Ok(step)
    }

    /// The transitions taken so far.
    pub fn seen(&self) -> Vec<Transition<M>> {
        self.seen.iter().copied().collect()
    }

    /// The declared transitions not taken yet, in table order.
    pub fn missing(&self) -> Vec<Transition<M>> {
        M::TRANSITIONS
            .iter()
            .filter(|t| !self.seen.contains(t))
            .copied()
            .collect()
    }

    /// Panics naming every declared transition not taken (a test assertion).
    #[track_caller]
    pub fn assert_complete(&self) {
        let missing: Vec<String> = self
            .missing()
            .into_iter()
            .map(|(f, e, t)| format!("{} --{}--> {}", f.as_str(), e.as_str(), t.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} machine: declared transitions never exercised by a test: {}",
            M::NAME,
            missing.join(", ")
        );
    }
}

/// Expands a machine's test scenarios into tests, plus the coverage test.
///
/// `transition_coverage!(Machine; scenario_a, scenario_b)` takes functions in scope
/// `fn scenario_a(coverage: &mut TransitionCoverage<Machine>)` that drive the machine through
/// `coverage.advance(..)` and assert on the results. It expands to a module `transitions`
/// with one `#[test]` per scenario, `transition_table_is_well_formed` (see [`check_table`])
/// and `transition_coverage`, which runs every scenario on one [`TransitionCoverage`] and
/// fails naming each declared transition that none took.
#[cfg(any(test, feature = "testing"))]
#[macro_export]
macro_rules! transition_coverage {
    ($machine:ty; $($scenario:ident),+ $(,)?) => {
        mod transitions {
            use super::*;

            $(
                #[test]
                fn $scenario() {
                    super::$scenario(
                        &mut $crate::release::machine::TransitionCoverage::<$machine>::new(),
                    );
                }
            )+

            #[test]
            fn transition_table_is_well_formed() {
                if let Err(problem) = $crate::release::machine::check_table::<$machine>() {
                    panic!("{problem}");
                }
            }

            #[test]
            fn transition_coverage() {
                let mut coverage =
                    $crate::release::machine::TransitionCoverage::<$machine>::new();
                $( super::$scenario(&mut coverage); )+
                coverage.assert_complete();
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde::Deserialize;

    use super::*;
    use crate::model::{ArtifactName, Digest, EnvName, Tag};
    use crate::release::ReleaseKind;

    /// A tiny vote machine, only to prove the helpers: votes until a quorum, one rejection is
    /// final, an approved vote executes once.
    struct Vote;

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    enum VoteState {
        Waiting { votes: u32, needed: u32 },
        Approved,
        Rejected { by: String },
        Executed,
    }

    #[derive(Debug)]
    enum VoteEvent {
        Vote,
        Reject(String),
        Execute,
    }

    #[derive(Debug, PartialEq, Eq)]
    enum VoteEffect {
        Notify(&'static str),
        WriteTags,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum S {
        Waiting,
        Approved,
        Rejected,
        Executed,
    }

    impl MachineName for S {
        fn as_str(self) -> &'static str {
            match self {
                S::Waiting => "waiting",
                S::Approved => "approved",
                S::Rejected => "rejected",
                S::Executed => "executed",
            }
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum E {
        Vote,
        Reject,
        Execute,
    }

    impl MachineName for E {
        fn as_str(self) -> &'static str {
            match self {
                E::Vote => "vote",
                E::Reject => "reject",
                E::Execute => "execute",
            }
        }
    }

    impl StateMachine for Vote {
        const NAME: &'static str = "vote";
        type State = VoteState;
        type Event = VoteEvent;
        type Effect = VoteEffect;
        type StateName = S;
        type EventName = E;
        const TRANSITIONS: &'static [Transition<Self>] = &[
            (S::Waiting, E::Vote, S::Waiting),
            (S::Waiting, E::Vote, S::Approved),
            (S::Waiting, E::Reject, S::Rejected),
            (S::Approved, E::Execute, S::Executed),
        ];

        fn state_name(state: &VoteState) -> S {
            match state {
                VoteState::Waiting { .. } => S::Waiting,
                VoteState::Approved => S::Approved,
                VoteState::Rejected { .. } => S::Rejected,
                VoteState::Executed => S::Executed,
            }
        }

        fn event_name(event: &VoteEvent) -> E {
            match event {
                VoteEvent::Vote => E::Vote,
                VoteEvent::Reject(_) => E::Reject,
                VoteEvent::Execute => E::Execute,
            }
        }

        fn on_event(state: &VoteState, event: VoteEvent) -> Result<Step<VoteState, VoteEffect>> {
            Ok(match (state, event) {
                (VoteState::Waiting { votes, needed }, VoteEvent::Vote) if votes + 1 >= *needed => {
                    Step::to(VoteState::Approved).with_effect(VoteEffect::Notify("approved"))
                }
                (VoteState::Waiting { votes, needed }, VoteEvent::Vote) => {
                    Step::to(VoteState::Waiting {
                        votes: votes + 1,
                        needed: *needed,
                    })
                }
                (VoteState::Waiting { .. }, VoteEvent::Reject(by)) => {
                    Step::to(VoteState::Rejected { by }).with_effect(VoteEffect::Notify("rejected"))
                }
                (VoteState::Approved, VoteEvent::Execute) => Step::to(VoteState::Executed)
                    .with_effect(VoteEffect::WriteTags)
                    .with_effect(VoteEffect::Notify("executed")),
                (state, event) => {
                    return Err(Error::Conflict(format!("unreachable: {state:?} {event:?}")));
                }
            })
        }
    }

    fn waiting(needed: u32) -> VoteState {
        VoteState::Waiting { votes: 0, needed }
    }

    fn quorum_then_execute(c: &mut TransitionCoverage<Vote>) {
        let one = c.advance(&waiting(2), VoteEvent::Vote).expect("vote");
        assert_eq!(
            one,
            Step::to(VoteState::Waiting {
                votes: 1,
                needed: 2
            })
        );
        let two = c.advance(&one.state, VoteEvent::Vote).expect("vote");
        assert_eq!(two.state, VoteState::Approved);
        assert_eq!(two.effects, [VoteEffect::Notify("approved")]);
        let done = c.advance(&two.state, VoteEvent::Execute).expect("execute");
        assert_eq!(
            done.effects,
            [VoteEffect::WriteTags, VoteEffect::Notify("executed")]
        );
    }

    fn rejection_is_final(c: &mut TransitionCoverage<Vote>) {
        let rejected = c
            .advance(&waiting(2), VoteEvent::Reject("carol".into()))
            .expect("reject");
        assert_eq!(rejected.state, VoteState::Rejected { by: "carol".into() });
        for event in [VoteEvent::Vote, VoteEvent::Execute] {
            let e = c.advance(&rejected.state, event).expect_err("final");
            let msg = e.to_string();
            assert!(
                matches!(e, Error::Conflict(_)) && msg.contains("vote machine"),
                "{msg}"
            );
            assert!(msg.contains("in state rejected"), "{msg}");
        }
    }

    crate::transition_coverage!(Vote; quorum_then_execute, rejection_is_final);

    #[test]
    fn coverage_names_what_no_scenario_took() {
        let mut c = TransitionCoverage::<Vote>::new();
        rejection_is_final(&mut c);
        assert_eq!(c.seen(), [(S::Waiting, E::Reject, S::Rejected)]);
        assert_eq!(
            c.missing(),
            [
                (S::Waiting, E::Vote, S::Waiting),
                (S::Waiting, E::Vote, S::Approved),
                (S::Approved, E::Execute, S::Executed),
            ]
        );
        let failure = std::panic::catch_unwind(|| c.assert_complete()).expect_err("incomplete");
        let msg = failure
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            msg.contains("never exercised") && msg.contains("approved --execute--> executed"),
            "{msg}"
        );
        // Refused events are not coverage.
        assert_eq!(c.seen().len(), 1);
    }

    /// A machine whose step is not in its table, and whose table repeats an entry.
    struct Broken;

    impl StateMachine for Broken {
        const NAME: &'static str = "broken";
        type State = VoteState;
        type Event = VoteEvent;
        type Effect = VoteEffect;
        type StateName = S;
        type EventName = E;
        const TRANSITIONS: &'static [Transition<Self>] = &[
            (S::Waiting, E::Vote, S::Approved),
            (S::Waiting, E::Vote, S::Approved),
        ];

        fn state_name(state: &VoteState) -> S {
            Vote::state_name(state)
        }

        fn event_name(event: &VoteEvent) -> E {
            Vote::event_name(event)
        }

        fn on_event(_: &VoteState, _: VoteEvent) -> Result<Step<VoteState, VoteEffect>> {
            Ok(Step::to(VoteState::Executed))
        }
    }

    #[test]
    fn an_undeclared_step_is_refused() {
        let e = advance::<Broken>(&waiting(1), VoteEvent::Vote).expect_err("undeclared");
        assert!(
            matches!(&e, Error::Conflict(m) if m.contains("waiting --vote--> executed")),
            "{e}"
        );
    }

    #[test]
    fn a_repeated_transition_is_reported() {
        let problem = check_table::<Broken>().expect_err("declared twice");
        assert!(problem.contains("declared twice"), "{problem}");
    }

    #[test]
    fn state_round_trips_through_a_release() {
        let state = VoteState::Rejected { by: "dave".into() };
        let encoded = encode::<Vote>(&state).expect("encode");
        assert_eq!(encoded.status, "rejected");
        let mut release = Release::new(
            ReleaseKind::Approval,
            EnvName::new("prod").expect("env"),
            ArtifactName::new("app").expect("artifact"),
            Tag::new("v1").expect("tag"),
            Digest::of(b"x"),
            encoded,
            Utc::now(),
        );
        assert_eq!(decode::<Vote>(&release).expect("decode"), state);
        release.status = "approved".into();
        let e = decode::<Vote>(&release).expect_err("status disagrees");
        assert!(
            matches!(&e, Error::Conflict(m) if m.contains(&release.id.to_string())),
            "{e}"
        );
    }
}
