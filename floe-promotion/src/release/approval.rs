//! The approval of one promotion as a state machine.
//!
//! A promotion into an environment with an approval policy becomes a request bound to the
//! digest its checks and gates passed. Votes are events; the quorum is a matching of distinct
//! approvers to the policy's rules ([`crate::policy::quorum::quorum`]). When it is met
//! the request is approved and asks to be executed; execution starts (`executing`), then
//! finishes (`executed`) or is blocked (back to `approved`, to be executed again until the
//! request expires). One rejection is final; an expired request can be neither approved nor
//! executed.
//!
//! | from | event | to | effect |
//! |---|---|---|---|
//! | pending | approve | pending | record the vote |
//! | pending | approve | approved | record the vote, execute |
//! | pending | reject | rejected | record the rejection |
//! | pending, approved | expire | expired | record the expiry |
//! | approved | start | executing | |
//! | executing | finish | executed | record the execution |
//! | executing | block | approved | |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::machine::{MachineName, StateMachine, Step, Transition};
use crate::config::{ApprovalRule, ApprovalSeparation};
use crate::error::{Error, Result};
use crate::model::gate::GateResult;
use crate::model::{
    Actor, ArtifactName, Digest, EnvName, SignedVote, Tag, VoteDecision, VoteMessage,
};
use crate::policy::quorum::{Quorum, quorum};

/// What is being approved: fixed when the request is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalTicket {
    /// The artifact.
    pub artifact: ArtifactName,
    /// The version.
    pub version: Tag,
    /// The digest the request is bound to.
    pub digest: Digest,
    /// The source environment.
    pub from: EnvName,
    /// The target environment.
    pub to: EnvName,
    /// Who asked.
    pub requested_by: Actor,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rules that must be met.
    pub rules: Vec<ApprovalRule>,
    /// Who may never approve.
    pub separation: ApprovalSeparation,
    /// Who promoted the digest into the source (excluded under `promoters`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promoters: Vec<String>,
    /// The gate results when the request was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// When it was made.
    pub created: DateTime<Utc>,
    /// When it expires.
    pub expires: DateTime<Utc>,
}

impl ApprovalTicket {
    /// The message a voter signs to cast `decision` on request `request` for this ticket
    /// (see [`VoteMessage`]).
    pub fn vote_message(&self, request: uuid::Uuid, decision: VoteDecision) -> VoteMessage {
        VoteMessage::new(
            request,
            &self.to,
            &self.artifact,
            &self.version,
            &self.digest,
            decision,
        )
    }
}

/// One vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Who voted, with the groups they had then.
    pub actor: Actor,
    /// Approve (`true`) or reject.
    pub approve: bool,
    /// A comment (the reason of a rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When.
    pub time: DateTime<Utc>,
    /// The signature of a signed vote (an environment with `approval.signers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignedVote>,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for votes.
    Pending,
    /// The quorum is met; waiting for (or retrying) execution.
    Approved,
    /// Execution started; a process that died here is resumed.
    Executing,
    /// The promotion ran.
    Executed,
    /// Someone rejected it; final.
    Rejected,
    /// It expired before it ran; final.
    Expired,
}

impl MachineName for Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Approved => "approved",
            Phase::Executing => "executing",
            Phase::Executed => "executed",
            Phase::Rejected => "rejected",
            Phase::Expired => "expired",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Phase {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [
            Phase::Pending,
            Phase::Approved,
            Phase::Executing,
            Phase::Executed,
            Phase::Rejected,
            Phase::Expired,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| {
            Error::invalid(
                "approval status",
                s,
                "one of pending, approved, executing, executed, rejected, expired",
            )
        })
    }
}

/// The state of one approval request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalState {
    /// What is approved.
    pub ticket: ApprovalTicket,
    /// The votes, in order.
    pub votes: Vec<Vote>,
    /// Where it stands.
    pub phase: Phase,
}

impl ApprovalState {
    /// A new request, pending.
    pub fn new(ticket: ApprovalTicket) -> Self {
        ApprovalState {
            ticket,
            votes: Vec::new(),
            phase: Phase::Pending,
        }
    }

    /// The approvals so far matched to the rules.
    pub fn quorum(&self) -> Quorum {
        let approvers: Vec<Actor> = self
            .votes
            .iter()
            .filter(|v| v.approve)
            .map(|v| v.actor.clone())
            .collect();
        quorum(&self.ticket.rules, &approvers)
    }

    /// Who may approve, per rule, for messages: `security: users [ann], groups [sec]; ...`.
    pub fn who_may_approve(&self) -> String {
        self.ticket
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{} ({} needed): users [{}], groups [{}]",
                    r.name,
                    r.required,
                    r.users.join(", "),
                    r.groups.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Why `actor` may not vote on this request, if they may not.
    pub fn refusal(&self, actor: &Actor) -> Option<Error> {
        let t = &self.ticket;
        let forbidden = |reason: String| Error::Forbidden {
            actor: actor.id.clone(),
            action: "approve a promotion to",
            environment: t.to.clone(),
            reason,
        };
        if actor.id == t.requested_by.id {
            return Some(forbidden(format!(
                "requested this promotion and may not approve it; may approve: {}",
                self.who_may_approve()
            )));
        }
        if t.separation == ApprovalSeparation::Promoters && t.promoters.contains(&actor.id) {
            return Some(forbidden(format!(
                "promoted {} into {} and may not approve it out of there; may approve: {}",
                t.digest,
                t.from,
                self.who_may_approve()
            )));
        }
        if !t.rules.iter().any(|r| r.admits(actor)) {
            return Some(forbidden(format!(
                "matches no approval rule; may approve: {}",
                self.who_may_approve()
            )));
        }
        if self.votes.iter().any(|v| v.actor.id == actor.id) {
            return Some(Error::Conflict(format!(
                "{} has already voted on this request",
                actor.id
            )));
        }
        None
    }
}

/// An input of the approval machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalEvent {
    /// A vote for.
    Approve(Vote),
    /// A vote against.
    Reject(Vote),
    /// The request's time ran out (the event carries the time it was noticed).
    Expire(DateTime<Utc>),
    /// Execution starts.
    Start,
    /// Execution wrote the tags and recorded the promotion.
    Finish,
    /// Execution was refused (a lock, a failing gate); the request stays approved.
    Block,
}

/// The names of the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApprovalEventName {
    /// [`ApprovalEvent::Approve`].
    Approve,
    /// [`ApprovalEvent::Reject`].
    Reject,
    /// [`ApprovalEvent::Expire`].
    Expire,
    /// [`ApprovalEvent::Start`].
    Start,
    /// [`ApprovalEvent::Finish`].
    Finish,
    /// [`ApprovalEvent::Block`].
    Block,
}

impl MachineName for ApprovalEventName {
    fn as_str(self) -> &'static str {
        match self {
            ApprovalEventName::Approve => "approve",
            ApprovalEventName::Reject => "reject",
            ApprovalEventName::Expire => "expire",
            ApprovalEventName::Start => "start",
            ApprovalEventName::Finish => "finish",
            ApprovalEventName::Block => "block",
        }
    }
}

/// What the layer that applies the machine must do after storing a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalEffect {
    /// Record the vote (an `approval_decided` event).
    RecordVote,
    /// Record the expiry (an `approval_expired` event).
    RecordExpiry,
    /// Run the promotion now (the quorum was just met).
    Execute,
}

/// The approval machine.
#[derive(Debug)]
pub struct ApprovalMachine;

impl StateMachine for ApprovalMachine {
    const NAME: &'static str = "approval";
    type State = ApprovalState;
    type Event = ApprovalEvent;
    type Effect = ApprovalEffect;
    type StateName = Phase;
    type EventName = ApprovalEventName;
    const TRANSITIONS: &'static [Transition<Self>] = &[
        (Phase::Pending, ApprovalEventName::Approve, Phase::Pending),
        (Phase::Pending, ApprovalEventName::Approve, Phase::Approved),
        (Phase::Pending, ApprovalEventName::Reject, Phase::Rejected),
        (Phase::Pending, ApprovalEventName::Expire, Phase::Expired),
        (Phase::Approved, ApprovalEventName::Expire, Phase::Expired),
        (Phase::Approved, ApprovalEventName::Start, Phase::Executing),
        (Phase::Executing, ApprovalEventName::Finish, Phase::Executed),
        (Phase::Executing, ApprovalEventName::Block, Phase::Approved),
    ];

    fn state_name(state: &ApprovalState) -> Phase {
        state.phase
    }

    fn event_name(event: &ApprovalEvent) -> ApprovalEventName {
        match event {
            ApprovalEvent::Approve(_) => ApprovalEventName::Approve,
            ApprovalEvent::Reject(_) => ApprovalEventName::Reject,
            ApprovalEvent::Expire(_) => ApprovalEventName::Expire,
            ApprovalEvent::Start => ApprovalEventName::Start,
            ApprovalEvent::Finish => ApprovalEventName::Finish,
            ApprovalEvent::Block => ApprovalEventName::Block,
        }
    }

    fn on_event(
        state: &ApprovalState,
        event: ApprovalEvent,
    ) -> Result<Step<ApprovalState, ApprovalEffect>> {
        let mut next = state.clone();
        Ok(match event {
            ApprovalEvent::Approve(vote) | ApprovalEvent::Reject(vote)
                if vote.time >= state.ticket.expires =>
            {
                return Err(Error::ApprovalClosed {
                    request_id: String::new(),
                    state: format!(
                        "expired at {} (vote at {})",
                        state.ticket.expires.to_rfc3339(),
                        vote.time.to_rfc3339()
                    ),
                });
            }
            ApprovalEvent::Approve(vote) => {
                if let Some(refusal) = state.refusal(&vote.actor) {
                    return Err(refusal);
                }
                next.votes.push(Vote {
                    approve: true,
                    ..vote
                });
                if next.quorum().is_met() {
                    next.phase = Phase::Approved;
                    Step::to(next)
                        .with_effect(ApprovalEffect::RecordVote)
                        .with_effect(ApprovalEffect::Execute)
                } else {
                    Step::to(next).with_effect(ApprovalEffect::RecordVote)
                }
            }
            ApprovalEvent::Reject(vote) => {
                if let Some(refusal) = state.refusal(&vote.actor) {
                    return Err(refusal);
                }
                next.votes.push(Vote {
                    approve: false,
                    ..vote
                });
                next.phase = Phase::Rejected;
                Step::to(next).with_effect(ApprovalEffect::RecordVote)
            }
            ApprovalEvent::Expire(at) => {
                if at < state.ticket.expires {
                    return Err(Error::Conflict(format!(
                        "the request expires at {}, not yet at {}",
                        state.ticket.expires.to_rfc3339(),
                        at.to_rfc3339()
                    )));
                }
                next.phase = Phase::Expired;
                Step::to(next).with_effect(ApprovalEffect::RecordExpiry)
            }
            ApprovalEvent::Start => {
                next.phase = Phase::Executing;
                Step::to(next)
            }
            ApprovalEvent::Finish => {
                next.phase = Phase::Executed;
                Step::to(next)
            }
            ApprovalEvent::Block => {
                next.phase = Phase::Approved;
                Step::to(next)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::machine::TransitionCoverage;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(minutes)
    }

    fn rule(name: &str, users: &[&str], groups: &[&str]) -> ApprovalRule {
        ApprovalRule {
            name: name.into(),
            required: 1,
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn request() -> ApprovalState {
        ApprovalState::new(ApprovalTicket {
            artifact: ArtifactName::new("app").unwrap(),
            version: Tag::new("v1").unwrap(),
            digest: Digest::of(b"app"),
            from: EnvName::new("staging").unwrap(),
            to: EnvName::new("prod").unwrap(),
            requested_by: Actor::new("ci").unwrap(),
            reason: None,
            rules: vec![
                rule("security", &["ann"], &["sec"]),
                rule("release", &["bob"], &["rel"]),
            ],
            separation: ApprovalSeparation::Promoters,
            promoters: vec!["carl".into()],
            gates: vec![],
            created: t(0),
            expires: t(60),
        })
    }

    fn vote(id: &str, groups: &[&str], at: i64) -> Vote {
        Vote {
            actor: Actor::new(id).unwrap().with_groups(groups.iter().copied()),
            approve: true,
            comment: None,
            time: t(at),
            signature: None,
        }
    }

    fn two_rules_then_execution(c: &mut TransitionCoverage<ApprovalMachine>) {
        let one = c
            .advance(&request(), ApprovalEvent::Approve(vote("ann", &[], 1)))
            .unwrap();
        assert_eq!(one.state.phase, Phase::Pending);
        assert_eq!(one.effects, [ApprovalEffect::RecordVote]);
        let two = c
            .advance(&one.state, ApprovalEvent::Approve(vote("bob", &[], 2)))
            .unwrap();
        assert_eq!(two.state.phase, Phase::Approved);
        assert_eq!(
            two.effects,
            [ApprovalEffect::RecordVote, ApprovalEffect::Execute]
        );
        let started = c.advance(&two.state, ApprovalEvent::Start).unwrap();
        let blocked = c.advance(&started.state, ApprovalEvent::Block).unwrap();
        assert_eq!(blocked.state.phase, Phase::Approved);
        let again = c.advance(&blocked.state, ApprovalEvent::Start).unwrap();
        let done = c.advance(&again.state, ApprovalEvent::Finish).unwrap();
        assert_eq!(done.state.phase, Phase::Executed);
        for e in [
            ApprovalEvent::Approve(vote("dan", &["sec"], 3)),
            ApprovalEvent::Start,
            ApprovalEvent::Expire(t(90)),
        ] {
            assert!(c.advance(&done.state, e).is_err());
        }
    }

    fn refusals_and_rejection(c: &mut TransitionCoverage<ApprovalMachine>) {
        let r = request();
        for (who, groups, what) in [
            ("ci", &[][..], "requested this promotion"),
            ("carl", &["sec"][..], "promoted"),
            ("eve", &["admins"][..], "matches no approval rule"),
        ] {
            let e = c
                .advance(&r, ApprovalEvent::Approve(vote(who, groups, 1)))
                .unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, Error::Forbidden { .. }), "{msg}");
            assert!(
                msg.contains(what) && msg.contains("security (1 needed)"),
                "{msg}"
            );
        }
        // One person in both groups fills one rule only.
        let both = c
            .advance(&r, ApprovalEvent::Approve(vote("dan", &["sec", "rel"], 1)))
            .unwrap();
        assert_eq!(both.state.phase, Phase::Pending);
        let twice = c
            .advance(
                &both.state,
                ApprovalEvent::Approve(vote("dan", &["sec"], 2)),
            )
            .unwrap_err();
        assert!(matches!(twice, Error::Conflict(_)), "{twice}");
        let mut no = vote("bob", &[], 3);
        no.approve = false;
        no.comment = Some("not on a Friday".into());
        let rejected = c.advance(&both.state, ApprovalEvent::Reject(no)).unwrap();
        assert_eq!(rejected.state.phase, Phase::Rejected);
        assert!(
            c.advance(&rejected.state, ApprovalEvent::Approve(vote("ann", &[], 4)))
                .is_err(),
            "one rejection is final"
        );
    }

    fn expiry(c: &mut TransitionCoverage<ApprovalMachine>) {
        let r = request();
        let late = c
            .advance(&r, ApprovalEvent::Approve(vote("ann", &[], 60)))
            .unwrap_err();
        assert!(matches!(late, Error::ApprovalClosed { .. }), "{late}");
        assert!(c.advance(&r, ApprovalEvent::Expire(t(59))).is_err());
        let expired = c.advance(&r, ApprovalEvent::Expire(t(60))).unwrap();
        assert_eq!(expired.state.phase, Phase::Expired);
        assert_eq!(expired.effects, [ApprovalEffect::RecordExpiry]);
        let a = c
            .advance(&r, ApprovalEvent::Approve(vote("ann", &[], 1)))
            .unwrap();
        let b = c
            .advance(&a.state, ApprovalEvent::Approve(vote("bob", &[], 2)))
            .unwrap();
        let lapsed = c.advance(&b.state, ApprovalEvent::Expire(t(61))).unwrap();
        assert_eq!(lapsed.state.phase, Phase::Expired);
        assert!(c.advance(&lapsed.state, ApprovalEvent::Start).is_err());
    }

    crate::transition_coverage!(ApprovalMachine; two_rules_then_execution, refusals_and_rejection, expiry);

    #[test]
    fn the_state_round_trips_as_json() {
        let s = request();
        let json = serde_json::to_value(&s).unwrap();
        let back: ApprovalState = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert_eq!("executing".parse::<Phase>().unwrap(), Phase::Executing);
        assert!("done".parse::<Phase>().is_err());
    }
}
