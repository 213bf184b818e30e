//! `floe promote`: a promotion, or its plan with `--dry-run`.

use super::*;

pub(super) async fn run(g: &Global, a: PromoteArgs) -> Result<(Option<Output>, u8)> {
    // Every argument is checked before the state file is opened: bad input writes
    // nothing.
    let (artifact, version) = artifact_version(&a.reference)?;
    let (from, to) = (EnvName::new(&a.from)?, EnvName::new(&a.to)?);
    let actor = actor(g)?;
    if a.override_lock {
        for_flag(
            "--reason",
            require_reason(Reasoned::LockOverride, a.reason.as_deref()),
        )?;
    }
    if a.override_window {
        for_flag(
            "--reason",
            require_reason(Reasoned::WindowOverride, a.reason.as_deref()),
        )?;
    }
    let app = App::open_to_move(g, &[&from, &to], &artifact).await?;
    let req = PromotionRequest {
        artifact,
        version,
        from,
        to,
        actor,
        reason: a.reason.clone(),
        override_lock: a.override_lock,
        automatic: false,
        override_window: a.override_window,
    };
    if a.with_dependencies {
        return super::promote_group::run(&app, req, a.dry_run).await;
    }
    if a.dry_run {
        let plan = PlanOutput::of(&app.manager.plan(req).await?);
        let code = plan_code(&plan);
        return Ok((Some(Output::Plan(plan)), code));
    }
    app.deliver_at_exit();
    let progress = app.progress();
    let record = app.manager.promote(req).await;
    progress.finish();
    Ok((Some(Output::Promote(record?)), exit::OK))
}
