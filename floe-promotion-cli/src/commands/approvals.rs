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
        Some(ApprovalsAction::Message { id, reject }) => return message(g, &id, reject).await,
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

/// The request `id`, as `floe approvals` lists it.
async fn request(app: &App, id: uuid::Uuid) -> Result<floe_promotion::manager::ApprovalView> {
    app.manager
        .approvals(None, None)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| Error::not_found(format!("approval request {id}")))
}

/// `floe approvals message ID`: the message, exactly as signed, on standard output.
async fn message(g: &Global, id: &str, reject: bool) -> Result<(Option<Output>, u8)> {
    let id = request_id(id)?;
    let app = App::open(g, false, &[]).await?;
    let decision = if reject {
        VoteDecision::Reject
    } else {
        VoteDecision::Approve
    };
    let text = request(&app, id).await?.ticket.vote_message(id, decision);
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing the message to standard output", e))?;
    Ok((None, exit::OK))
}

/// The signature of `decision` on request `id`: read from `--signature FILE`, or made as
/// `--sign-with` says over the message the library checks (see
/// [`floe_promotion::release::approval::ApprovalTicket::vote_message`]).
async fn signature(
    app: &App,
    id: uuid::Uuid,
    decision: VoteDecision,
    voter: &Voter,
) -> Result<VoteSignature> {
    let sign_with = match voter {
        Voter::Signature(file) => {
            let bytes = read_bounded(file, 64 * 1024, "signature file")?;
            return VoteSignature::from_armored(&String::from_utf8_lossy(&bytes));
        }
        Voter::SignWith(key) => key,
        Voter::Claimed(_) => {
            return Err(Error::invalid(
                "vote",
                "unsigned",
                "an unsigned vote has no signature",
            ));
        }
    };
    let view = request(app, id).await?;
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
    Signature(std::path::PathBuf),
    Claimed(floe_promotion::Actor),
}

fn voter(
    g: &Global,
    sign_with: Option<String>,
    signature: Option<std::path::PathBuf>,
) -> Result<Voter> {
    Ok(match (sign_with, signature) {
        (Some(key), _) => Voter::SignWith(key),
        (None, Some(file)) => Voter::Signature(file),
        (None, None) => Voter::Claimed(actor(g)?),
    })
}

pub(super) async fn approve(g: &Global, a: ApproveArgs) -> Result<(Option<Output>, u8)> {
    let id = request_id(&a.id)?;
    let voter = voter(g, a.sign_with, a.signature)?;
    let app = App::open(g, true, &[]).await?;
    app.deliver_at_exit();
    let outcome = match &voter {
        Voter::SignWith(_) | Voter::Signature(_) => {
            let sig = signature(&app, id, VoteDecision::Approve, &voter).await?;
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
    let voter = voter(g, a.sign_with, a.signature)?;
    for_flag(
        "--reason",
        require_reason(Reasoned::Rejection, Some(&a.reason)),
    )?;
    let app = App::open(g, false, &[]).await?;
    app.deliver_at_exit();
    let request = match &voter {
        Voter::SignWith(_) | Voter::Signature(_) => {
            let sig = signature(&app, id, VoteDecision::Reject, &voter).await?;
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
