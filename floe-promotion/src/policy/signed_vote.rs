//! Signed approval votes: who a signed vote is from, and whether a recorded one still
//! verifies.
//!
//! In an environment with `approval.signers` a vote's identity is the principal of the key
//! that signed it and its groups are the manifest's `groups` of that principal; whatever
//! actor or groups the caller claims are not used.

use uuid::Uuid;

use crate::config::{AllowedSigners, PromotionSettings};
use crate::error::{Error, Result};
use crate::history::{ApprovalDecided, Decision, EventKind, EventRecord, Payload};
use crate::model::{Actor, SignedVote, VoteDecision, VoteMessage, VoteSignature};

/// Checks `signature` over `message` against `signers` and returns the voter (the principal,
/// with its declared groups) and what to record. Refused with [`Error::VoteSignature`] naming
/// request `request` and why.
pub fn signed_voter(
    request: Uuid,
    signers: &AllowedSigners,
    settings: &PromotionSettings,
    message: &VoteMessage,
    signature: &VoteSignature,
) -> Result<(Actor, SignedVote)> {
    let refuse = |reason: String| Error::VoteSignature {
        request_id: request.to_string(),
        reason,
    };
    let signer = signers
        .verify(message.as_bytes(), signature.armored())
        .map_err(refuse)?;
    let actor = Actor::new(signer.principal.as_str())
        .map_err(|e| refuse(e.to_string()))?
        .with_groups(settings.groups_of(&signer.principal));
    Ok((
        actor,
        SignedVote {
            principal: signer.principal.clone(),
            message: message.as_str().to_string(),
            signature: signature.armored().to_string(),
        },
    ))
}

/// The message a recorded `approval_decided` event must carry: rebuilt from the event's own
/// request, environment, artifact, version, digest and decision.
pub fn recorded_vote_message(
    event: &EventRecord,
    payload: &ApprovalDecided,
) -> Option<VoteMessage> {
    Some(VoteMessage::new(
        payload.approval,
        event.environment.as_ref()?,
        event.artifact.as_ref()?,
        event.version.as_ref()?,
        event.digest.as_ref()?,
        match payload.decision {
            Decision::Approved => VoteDecision::Approve,
            Decision::Rejected => VoteDecision::Reject,
        },
    ))
}

/// What re-verifying one recorded vote found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordedVote {
    /// Not an `approval_decided` event, or one without a signature.
    Unsigned,
    /// The signature verifies for the event's own vote, by the event's actor.
    Verified {
        /// The principal that signed.
        principal: String,
    },
    /// The signature does not verify, or verifies for something else; why.
    Failed(String),
}

/// Re-verifies the signature a recorded `approval_decided` event carries against `signers`:
/// the signed message must be the one rebuilt from the event's fields, the signature must be
/// by a key `signers` lists for the recorded principal in namespace `floe-approval`, and the
/// principal must be the event's actor.
pub fn verify_recorded_vote(event: &EventRecord, signers: &AllowedSigners) -> RecordedVote {
    if event.kind != EventKind::ApprovalDecided {
        return RecordedVote::Unsigned;
    }
    let payload = match event.payload() {
        Ok(Payload::ApprovalDecided(p)) => p,
        Ok(_) => return RecordedVote::Unsigned,
        Err(e) => return RecordedVote::Failed(e.to_string()),
    };
    let Some(signed) = &payload.signature else {
        return RecordedVote::Unsigned;
    };
    let Some(expected) = recorded_vote_message(event, &payload) else {
        return RecordedVote::Failed(
            "the event lacks the environment, artifact, version or digest the vote was bound to"
                .into(),
        );
    };
    if signed.message != expected.as_str() {
        return RecordedVote::Failed(
            "the signed message is not this event's vote (request, environment, artifact, version, digest or decision differ)"
                .into(),
        );
    }
    match signers.verify(signed.message.as_bytes(), &signed.signature) {
        Err(reason) => RecordedVote::Failed(reason),
        Ok(signer) if signer.principal != signed.principal => RecordedVote::Failed(format!(
            "the key belongs to {} in {}, but the event records {}",
            signer.principal,
            crate::Excerpt::path(signers.file()),
            signed.principal
        )),
        Ok(_) if event.actor.id != signed.principal => RecordedVote::Failed(format!(
            "signed by {} but recorded as a vote of {}",
            signed.principal, event.actor.id
        )),
        Ok(signer) => RecordedVote::Verified {
            principal: signer.principal.clone(),
        },
    }
}
