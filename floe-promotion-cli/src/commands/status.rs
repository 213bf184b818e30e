//! `floe status`: what runs where.

use super::*;

pub(super) async fn run(g: &Global, a: StatusArgs) -> Result<(Option<Output>, u8)> {
    let env = a.env.as_deref().map(EnvName::new).transpose()?;
    let app = App::open(g, false, &env.iter().collect::<Vec<_>>()).await?;
    let scheme = &app.config.settings().tag_scheme;
    let environments = app
        .manager
        .status(env.as_ref())
        .await?
        .into_iter()
        .map(|s| {
            StatusOutput::of(s, |d| {
                Ok((
                    app.config.repository(&d.environment, &d.artifact)?,
                    vec![
                        scheme.environment_tag(&d.version, &d.environment)?,
                        scheme.pointer_tag(&d.environment)?,
                    ],
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((Some(Output::Status { environments }), exit::OK))
}
