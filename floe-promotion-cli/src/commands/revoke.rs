//! `floe revoke`, `floe unrevoke` and `floe revocations`.

use floe_promotion::Revocations;

use super::*;

/// `NAME@sha256:<hex>`.
fn artifact_digest(s: &str) -> Result<(ArtifactName, floe_promotion::Digest)> {
    let r: ArtifactRef = s.parse()?;
    match r.reference {
        Reference::Digest(d) => Ok((r.name, d)),
        Reference::Tag(_) => Err(Error::invalid(
            "artifact reference",
            s,
            "give NAME@sha256:<hex>: a revocation names the exact digest",
        )),
    }
}

/// The reference, the actor and the opened state of `revoke` and `unrevoke`, every argument
/// checked before the state file is opened.
async fn open(
    g: &Global,
    a: &RevokeArgs,
) -> Result<(
    App,
    floe_promotion::Actor,
    ArtifactName,
    floe_promotion::Digest,
)> {
    let (artifact, digest) = artifact_digest(&a.reference)?;
    let actor = actor(g)?;
    for_flag(
        "--reason",
        require_reason(Reasoned::Revocation, Some(&a.reason)),
    )?;
    let app = App::open(g, false, &[]).await?;
    app.deliver_at_exit();
    Ok((app, actor, artifact, digest))
}

pub(super) async fn revoke(g: &Global, a: RevokeArgs) -> Result<(Option<Output>, u8)> {
    let (app, actor, artifact, digest) = open(g, &a).await?;
    let revocation = app
        .manager
        .revoke(&artifact, &digest, &actor, &a.reason)
        .await?;
    Ok((Some(Output::Revoked { revocation }), exit::OK))
}

pub(super) async fn unrevoke(g: &Global, a: RevokeArgs) -> Result<(Option<Output>, u8)> {
    let (app, actor, _, digest) = open(g, &a).await?;
    let revocation = app.manager.unrevoke(&digest, &actor, &a.reason).await?;
    Ok((Some(Output::Unrevoked { revocation }), exit::OK))
}

pub(super) async fn list(g: &Global) -> Result<(Option<Output>, u8)> {
    let app = App::open(g, false, &[]).await?;
    let revocations = app.manager.revocations().await?;
    Ok((Some(Output::Revocations { revocations }), exit::OK))
}
