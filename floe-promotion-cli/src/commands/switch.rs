//! `floe switch`: a blue-green environment's pointer to its staged preview, or back to the
//! previous slot; or the plan of it.

use floe_promotion::manager::{BlueGreen, SwitchRequest};

use super::*;
use crate::cli::SwitchArgs;
use crate::output::SwitchPlanOutput;

pub(super) async fn run(g: &Global, a: SwitchArgs) -> Result<(Option<Output>, u8)> {
    let env = EnvName::new(&a.env)?;
    let named = a.artifact.as_deref().map(ArtifactName::new).transpose()?;
    let actor = actor(g)?;
    if a.back {
        for_flag(
            "--reason",
            require_reason(Reasoned::SwitchBack, a.reason.as_deref()),
        )?;
    }
    if a.override_lock {
        for_flag(
            "--reason",
            require_reason(Reasoned::LockOverride, a.reason.as_deref()),
        )?;
    }
    let app = App::open(g, true, &[&env]).await?;
    let artifact = match named {
        Some(name) => name,
        None => the_artifact(&app, &env).await?,
    };
    let req = SwitchRequest {
        environment: env,
        artifact,
        actor,
        reason: a.reason.clone(),
        back: a.back,
        override_lock: a.override_lock,
    };
    if a.dry_run {
        let plan = SwitchPlanOutput::of(&app.manager.plan_switch(req).await?);
        let code = plan.blockers.first().map_or(exit::OK, |b| b.exit_code);
        return Ok((Some(Output::SwitchPlan(plan)), code));
    }
    app.deliver_at_exit();
    Ok((
        Some(Output::Switch(app.manager.switch(req).await?)),
        exit::OK,
    ))
}

/// The artifact a switch of `env` means when none is named: the one released there by
/// blue-green.
async fn the_artifact(app: &App, env: &EnvName) -> Result<ArtifactName> {
    let mut artifacts: Vec<ArtifactName> = app
        .manager
        .slots(env)
        .await?
        .into_iter()
        .map(|s| s.artifact)
        .collect();
    artifacts.dedup();
    match artifacts.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::InvalidTransition {
            from: env.to_string(),
            to: env.to_string(),
            reason: format!("nothing was staged in {env}; promote a version into {env} first"),
        }),
        _ => Err(Error::invalid(
            "artifact",
            env.to_string(),
            format!(
                "{env} has blue-green releases of several artifacts ({}); name one with --artifact",
                artifacts
                    .iter()
                    .map(ArtifactName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
