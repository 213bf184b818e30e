//! `floe rollback`: back to a version the environment ran before, or its plan.

use super::*;

pub(super) async fn run(g: &Global, a: RollbackArgs) -> Result<(Option<Output>, u8)> {
    let env = EnvName::new(&a.env)?;
    let named = if a.to.contains(':') {
        Some(artifact_version(&a.to)?)
    } else {
        None
    };
    let version = match &named {
        Some((_, v)) => v.clone(),
        None => Tag::new(&a.to)?,
    };
    let actor = actor(g)?;
    for_flag(
        "--reason",
        require_reason(Reasoned::Rollback, Some(&a.reason)),
    )?;
    let app = App::open(g, true, &[&env]).await?;
    let artifact = match named {
        Some((name, _)) => name,
        None => app.manager.rollback_artifact(&env, &version).await?,
    };
    let req = RollbackRequest {
        artifact,
        environment: env,
        to_version: version,
        actor,
        reason: a.reason.clone(),
        override_lock: a.override_lock,
    };
    if a.dry_run {
        let plan = PlanOutput::of(&app.manager.plan_rollback(req).await?);
        let code = plan_code(&plan);
        return Ok((Some(Output::Plan(plan)), code));
    }
    app.deliver_at_exit();
    Ok((
        Some(Output::Rollback(app.manager.rollback(req).await?)),
        exit::OK,
    ))
}
