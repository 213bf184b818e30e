//! `floe attest`: evidence attached to a digest.

use super::*;

pub(super) async fn run(g: &Global, a: AttestArgs) -> Result<(Option<Output>, u8)> {
    let (artifact, version) = artifact_version(&a.reference)?;
    let env = EnvName::new(&a.env)?;
    let who = actor(g)?;
    let details = match &a.file {
        None => serde_json::Value::Null,
        Some(path) => read_report(path)?,
    };
    let app = App::open(g, true, &[&env]).await?;
    app.deliver_at_exit();
    let evidence = Evidence {
        kind: match a.kind {
            cli::EvidenceKindArg::Tests => EvidenceKind::Tests,
            cli::EvidenceKindArg::Policy => EvidenceKind::Policy,
        },
        status: match a.status {
            cli::EvidenceStatusArg::Passed => EvidenceStatus::Passed,
            cli::EvidenceStatusArg::Failed => EvidenceStatus::Failed,
        },
        environment: Some(env.clone()),
        created: Utc::now(),
        actor: Some(who.id.clone()),
        details,
    };
    let (digest, attached) = app
        .manager
        .attest(&artifact, &version, &env, &evidence, &who)
        .await?;
    Ok((
        Some(Output::Attest(AttestOutput {
            artifact: artifact.to_string(),
            version,
            environment: env,
            digest,
            evidence: attached,
            kind: evidence.kind.to_string(),
            status: evidence.status.to_string(),
        })),
        exit::OK,
    ))
}

/// The largest report `floe attest --file` attaches.
const MAX_REPORT: u64 = 1024 * 1024;

fn read_report(path: &std::path::Path) -> Result<serde_json::Value> {
    let bytes = read_bounded(path, MAX_REPORT, "--file")?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    }))
}
