//! `floe approvals`, `floe approve`, `floe reject` and `floe approvals execute`.

use super::*;

/// The request id given on the command line.
fn request_id(s: &str) -> Result<uuid::Uuid> {
    s.parse()
        .map_err(|_| Error::invalid("approval request id", s, "not a request id (a UUID)"))
}

pub(super) async fn list(g: &Global, a: ApprovalsArgs) -> Result<(Option<Output>, u8)> {
    if let Some(ApprovalsAction::Execute { id }) = a.action {
        return execute(g, &id).await;
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

pub(super) async fn approve(g: &Global, a: ApproveArgs) -> Result<(Option<Output>, u8)> {
    let id = request_id(&a.id)?;
    let actor = actor(g)?;
    let app = App::open(g, true, &[]).await?;
    app.deliver_at_exit();
    let progress = app.progress();
    let outcome = app.manager.approve(id, &actor, a.comment.as_deref()).await;
    progress.finish();
    Ok((Some(Output::Approve(Box::new(outcome?))), exit::OK))
}

pub(super) async fn reject(g: &Global, a: RejectArgs) -> Result<(Option<Output>, u8)> {
    let id = request_id(&a.id)?;
    let actor = actor(g)?;
    for_flag(
        "--reason",
        require_reason(Reasoned::Rejection, Some(&a.reason)),
    )?;
    let app = App::open(g, false, &[]).await?;
    app.deliver_at_exit();
    let request = app.manager.reject(id, &actor, &a.reason).await?;
    Ok((Some(Output::Reject { request }), exit::OK))
}
