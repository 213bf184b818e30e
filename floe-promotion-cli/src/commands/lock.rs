//! `floe lock` and `floe unlock`.

use super::*;

pub(super) async fn lock(g: &Global, a: LockArgs) -> Result<(Option<Output>, u8)> {
    let env = EnvName::new(&a.env)?;
    let actor = actor(g)?;
    let expires = a
        .expires
        .as_deref()
        .map(|s| {
            humantime::parse_duration(s)
                // humantime quotes the unit it did not know, whole.
                .map_err(|e| {
                    Error::invalid("--expires", s, Excerpt::new(&e.to_string()).to_string())
                })
                .and_then(|d| {
                    chrono::Duration::from_std(d)
                        .map_err(|e| Error::invalid("--expires", s, e.to_string()))
                })
        })
        .transpose()?;
    let app = App::open(g, false, &[&env]).await?;
    app.deliver_at_exit();
    let lock = app.manager.lock(&env, &actor, &a.reason, expires).await?;
    Ok((Some(Output::Lock { lock }), exit::OK))
}

pub(super) async fn unlock(g: &Global, a: UnlockArgs) -> Result<(Option<Output>, u8)> {
    let env = EnvName::new(&a.env)?;
    let actor = actor(g)?;
    let app = App::open(g, false, &[&env]).await?;
    app.deliver_at_exit();
    let lock = app
        .manager
        .unlock(&env, &actor, a.reason.as_deref())
        .await?;
    Ok((Some(Output::Unlock { lock }), exit::OK))
}
