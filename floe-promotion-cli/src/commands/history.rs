//! `floe history`: the audit trail, newest first.

use super::*;

pub(super) async fn run(g: &Global, a: HistoryArgs) -> Result<(Option<Output>, u8)> {
    let mut q = HistoryQuery {
        environment: a.env.as_deref().map(EnvName::new).transpose()?,
        limit: Some(a.limit),
        order: Order::NewestFirst,
        ..Default::default()
    };
    if let Some(s) = &a.artifact {
        if s.contains(':') {
            let (name, version) = artifact_version(s)?;
            q.artifact = Some(name);
            q.version = Some(version);
        } else {
            q.artifact = Some(ArtifactName::new(s)?);
        }
    }
    let app = App::open(g, false, &q.environment.iter().collect::<Vec<_>>()).await?;
    let events = app.manager.history(&q).await?;
    Ok((Some(Output::History { events }), exit::OK))
}
