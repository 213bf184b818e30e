//! `floe canary advance|abort|list`.

use floe_promotion::Canaries;

use super::*;

pub(super) async fn run(g: &Global, c: CanaryCommand) -> Result<(Option<Output>, u8)> {
    match c {
        CanaryCommand::Advance { env, artifact } => {
            let env = EnvName::new(&env)?;
            let artifact = artifact.as_deref().map(ArtifactName::new).transpose()?;
            let actor = actor(g)?;
            let app = App::open(g, true, &[&env]).await?;
            app.deliver_at_exit();
            let canary = app
                .manager
                .advance_canary(&env, artifact.as_ref(), &actor)
                .await?;
            Ok((Some(Output::Canary { canary }), exit::OK))
        }
        CanaryCommand::Abort {
            env,
            reason,
            artifact,
        } => {
            let env = EnvName::new(&env)?;
            let artifact = artifact.as_deref().map(ArtifactName::new).transpose()?;
            let actor = actor(g)?;
            for_flag(
                "--reason",
                require_reason(Reasoned::CanaryAbort, Some(&reason)),
            )?;
            let app = App::open(g, false, &[&env]).await?;
            app.deliver_at_exit();
            let canary = app
                .manager
                .abort_canary(&env, artifact.as_ref(), &actor, &reason)
                .await?;
            Ok((Some(Output::Canary { canary }), exit::OK))
        }
        CanaryCommand::List { env } => {
            let env = env.as_deref().map(EnvName::new).transpose()?;
            let envs: Vec<&EnvName> = env.iter().collect();
            let app = App::open(g, false, &envs).await?;
            let canaries = app.manager.canaries(env.as_ref()).await?;
            Ok((Some(Output::Canaries { canaries }), exit::OK))
        }
    }
}
