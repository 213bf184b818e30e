//! `floe hold`: place, release and list holds on automatic promotion.

use super::*;

pub(super) async fn run(g: &Global, a: HoldArgs) -> Result<(Option<Output>, u8)> {
    match a.action {
        Some(HoldAction::Release {
            env,
            reason,
            holder,
        }) => {
            let env = EnvName::new(&env)?;
            let actor = actor(g)?;
            for_flag(
                "--reason",
                require_reason(Reasoned::HoldRelease, Some(&reason)),
            )?;
            let app = App::open(g, false, &[&env]).await?;
            app.deliver_at_exit();
            let hold = app
                .manager
                .release_hold(&env, &actor, holder.as_deref(), &reason)
                .await?;
            Ok((Some(Output::HoldReleased { hold }), exit::OK))
        }
        Some(HoldAction::List { env }) => {
            let env = env.as_deref().map(EnvName::new).transpose()?;
            let envs: Vec<&EnvName> = env.iter().collect();
            let app = App::open(g, false, &envs).await?;
            let holds = app.manager.holds(env.as_ref()).await?;
            Ok((Some(Output::Holds { holds }), exit::OK))
        }
        None => {
            let Some(env) = a.env else {
                return Err(Error::invalid(
                    "floe hold",
                    "",
                    "name the environment to hold (floe hold ENV --reason WHY), or use `floe hold release ENV` or `floe hold list`",
                ));
            };
            let env = EnvName::new(&env)?;
            let actor = actor(g)?;
            for_flag(
                "--reason",
                require_reason(Reasoned::Hold, a.reason.as_deref()),
            )?;
            let reason = a.reason.unwrap_or_default();
            let app = App::open(g, false, &[&env]).await?;
            app.deliver_at_exit();
            let hold = app.manager.hold(&env, &actor, &reason).await?;
            Ok((Some(Output::Hold { hold }), exit::OK))
        }
    }
}
