//! `floe approvals`, `floe approve`, `floe reject`, `floe approvals execute` and
//! `floe approvals verify`.

use floe_promotion::history::EventKind;
use floe_promotion::model::{VoteDecision, VoteSignature};
use floe_promotion::policy::signed_vote::{RecordedVote, verify_recorded_vote};

use super::*;
use crate::output::{VoteCheck, VoteSignaturesOutput};

/// The request id given on the command line.
fn request_id(s: &str) -> Result<uuid::Uuid> {
    s.parse()
        .map_err(|_| Error::invalid("approval request id", s, "not a request id (a UUID)"))
}

pub(super) async fn list(g: &Global, a: ApprovalsArgs) -> Result<(Option<Output>, u8)> {
    match a.action {
        Some(ApprovalsAction::Execute { id }) => return execute(g, &id).await,
        Some(ApprovalsAction::Verify) => return verify(g).await,
        None => {}
    }
    let env = a.env.as_deref().map(EnvName::new).transpose()?;
    let status = a
        .status
        .as_deref()
        .map(str::parse::<floe_promotion::release::approval::Phase>)
        .transpose()?;
    let app = App::open(g, false, &env.iter().collect::<Vec<_>>()).await?;
    let requests = app.manager.approvals(env.as_ref(), status).await?;
    Ok((Some(Output::Approvals { requests }), exit::OK))
}

async fn execute(g: &Global, id: &str) -> Result<(Option<Output>, u8)> {
    let id = request_id(id)?;
    let actor = actor(g)?;
    let app = App::open(g, true, &[]).await?;
    app.deliver_at_exit();
    let progress = app.progress();
    let record = app.manager.execute(id, &actor).await;
    progress.finish();
    Ok((Some(Output::Promote(record?)), exit::OK))
}

/// The signature of `decision` on request `id` made as `sign_with` says, over the message
/// the library checks (see [`floe_promotion::release::approval::ApprovalTicket::vote_message`]).
async fn signature(
    app: &App,
    id: uuid::Uuid,
    decision: VoteDecision,
    sign_with: &str,
) -> Result<VoteSignature> {
    let view = app
        .manager
        .approvals(None, None)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| Error::not_found(format!("approval request {id}")))?;
    let message = view.ticket.vote_message(id, decision);
    let signers = app
        .config
        .environment(&view.ticket.to)
        .ok()
        .and_then(|e| e.approval.as_ref())
        .and_then(|p| p.signers.clone());
    super::vote_signing::sign(sign_with, &message, signers.as_deref())
}

/// Who votes: a key that signs (its principal is the voter; no actor is needed or used), or
/// the actor given by --actor and --group.
enum Voter {
    SignWith(String),
    Claimed(floe_promotion::Actor),
}

fn voter(g: &Global, sign_with: Option<String>) -> Result<Voter> {
    Ok(match sign_with {
        Some(key) => Voter::SignWith(key),
        None => Voter::Claimed(actor(g)?),
    })
}

pub(super) async fn approve(g: &Global, a: ApproveArgs) -> Result<(Option<Output>, u8)> {
    let id = request_id(&a.id)?;
    let voter = voter(g, a.sign_with)?;
    let app = App::open(g, true, &[]).await?;
    app.deliver_at_exit();
    let outcome = match &voter {
        Voter::SignWith(key) => {
            let sig = signature(&app, id, VoteDecision::Approve, key).await?;
            let progress = app.progress();
            let outcome = app
                .manager
                .approve_signed(id, &sig, a.comment.as_deref())
                .await;
            progress.finish();
            outcome
        }
        Voter::Claimed(actor) => {
            let progress = app.progress();
            let outcome = app.manager.approve(id, actor, a.comment.as_deref()).await;
            progress.finish();
            outcome
        }
    };
    Ok((Some(Output::Approve(Box::new(outcome?))), exit::OK))
}

pub(super) async fn reject(g: &Global, a: RejectArgs) -> Result<(Option<Output>, u8)> {
    let id = request_id(&a.id)?;
    let voter = voter(g, a.sign_with)?;
    for_flag(
        "--reason",
        require_reason(Reasoned::Rejection, Some(&a.reason)),
    )?;
    let app = App::open(g, false, &[]).await?;
    app.deliver_at_exit();
    let request = match &voter {
        Voter::SignWith(key) => {
            let sig = signature(&app, id, VoteDecision::Reject, key).await?;
            app.manager.reject_signed(id, &sig, &a.reason).await?
        }
        Voter::Claimed(actor) => app.manager.reject(id, actor, &a.reason).await?,
    };
    Ok((Some(Output::Reject { request }), exit::OK))
}

/// `floe approvals verify`: every `approval_decided` event, checked again.
async fn verify(g: &Global) -> Result<(Option<Output>, u8)> {
    let app = App::open(g, false, &[]).await?;
    let events = app
        .store
        .history
        .query(&HistoryQuery {
            kinds: vec![EventKind::ApprovalDecided],
            ..Default::default()
        })
        .await?;
    let mut out = VoteSignaturesOutput {
        source: app.state_name.clone(),
        verified: vec![],
        failed: vec![],
        unsigned: vec![],
    };
    for e in events {
        let r = &e.record;
        let check = |problem: Option<String>| VoteCheck {
            seq: e.seq,
            event: r.id,
            request: r.details.get("approval").cloned(),
            environment: r.environment.as_ref().map(ToString::to_string),
            actor: r.actor.id.clone(),
            problem,
        };
        let signers = r
            .environment
            .as_ref()
            .and_then(|env| app.config.environment(env).ok())
            .and_then(|env| env.approval.as_ref())
            .and_then(|p| p.signers.clone());
        let signed = r.details.contains_key("signature");
        match (signers, signed) {
            (None, false) => {}
            (None, true) => out.failed.push(check(Some(
                "a signed vote, but the environment's approval has no `signers` file to check it against".into(),
            ))),
            (Some(s), _) => match verify_recorded_vote(r, &s) {
                RecordedVote::Verified { .. } => out.verified.push(check(None)),
                RecordedVote::Unsigned => out.unsigned.push(check(None)),
                RecordedVote::Failed(why) => out.failed.push(check(Some(why))),
            },
        }
    }
    let code = if out.failed.is_empty() {
        exit::OK
    } else {
        exit::SIGNATURE
    };
    Ok((Some(Output::VoteSignatures(out)), code))
}
