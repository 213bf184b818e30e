//! `floe lease list` and `floe lease break`.

use super::*;

pub(super) async fn list(g: &Global) -> Result<(Option<Output>, u8)> {
    let app = App::open(g, false, &[]).await?;
    let leases = app.manager.leases().await?;
    Ok((
        Some(Output::Leases {
            leases: leases.into_iter().map(LeaseOutput::from).collect(),
        }),
        exit::OK,
    ))
}

pub(super) async fn break_lease(g: &Global, a: LeaseBreakArgs) -> Result<(Option<Output>, u8)> {
    let env = EnvName::new(&a.env)?;
    let actor = actor(g)?;
    let app = App::open(g, false, &[&env]).await?;
    app.deliver_at_exit();
    let lease = app
        .manager
        .break_lease(&env, &actor, &a.reason, a.force)
        .await?;
    Ok((
        Some(Output::LeaseBroken {
            lease: lease.into(),
        }),
        exit::OK,
    ))
}
