//! `floe verify IMAGE@DIGEST --env ENV --key floe.pub [--max-age 30d]`: what an admission
//! controller checks, by the library's `verify_promotion`. Reads the registry only: no state
//! file is opened or created.

use std::sync::Arc;

use floe_promotion::attest::{VerifyPolicy, verify_promotion};
use floe_promotion::{ArtifactRegistry, Digest, Repository};
use floe_promotion_oci::{
    CosignKeyVerifier, CredentialSource, OciLayoutRegistry, OciOptions, RoutingRegistry,
};

use super::*;
use crate::cli::VerifyArgs;
use crate::output::AttestationVerifyOutput;

/// Whether `location` names a repository on a registry or in a layout directory, rather than
/// an artifact of the manifest: Docker's rule, a first path component with a `.` or a `:`, or
/// `localhost`.
fn is_location(location: &str) -> bool {
    if location.starts_with("oci-layout:") {
        return true;
    }
    match location.split_once('/') {
        Some((host, _)) => host.contains('.') || host.contains(':') || host == "localhost",
        None => false,
    }
}

pub(super) async fn run(g: &Global, a: VerifyArgs) -> Result<(Option<Output>, u8)> {
    let (location, digest) = a.image.rsplit_once('@').ok_or_else(|| {
        Error::invalid(
            "image",
            &a.image,
            "give IMAGE@sha256:<hex>: an admission decision is about one exact digest",
        )
    })?;
    let digest = Digest::new(digest)?;
    let env = EnvName::new(&a.env)?;
    let max_age = a
        .max_age
        .as_deref()
        .map(|s| {
            humantime::parse_duration(s)
                .ok()
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "--max-age",
                        s,
                        "expected a duration such as 30d, 12h or 90m",
                    )
                })
        })
        .transpose()?;
    let key = CosignKeyVerifier::from_file(&a.key)?;
    // The manifest, when there is one, names the repository of an artifact and the registries
    // reached over plain HTTP; a full location needs none.
    let config = if g.manifest.is_file() {
        Some(crate::app::manifest(&g.manifest)?)
    } else {
        None
    };
    let repo = if is_location(location) {
        Repository::new(location)?
    } else {
        let artifact = ArtifactName::new(location)?;
        let config = config.as_ref().ok_or_else(|| Error::Config {
            file: Some(g.manifest.clone()),
            location: None,
            message: format!(
                "{location} is an artifact name and there is no manifest to find its repository in {env}: give the full image (registry.example.com/…/{location}@sha256:…) or --manifest"
            ),
        })?;
        config.repository(&env, &artifact)?
    };
    let mut options = OciOptions::default()
        .with_insecure_hosts(
            config
                .as_ref()
                .map(|c| c.settings().insecure_registries.clone())
                .unwrap_or_default(),
        )
        .with_credentials(match &g.docker_config {
            Some(path) => CredentialSource::docker_config(path),
            None => CredentialSource::default(),
        });
    if let Some(timeout) = config.as_ref().and_then(|c| c.settings().registry_timeout) {
        options = options.with_request_timeout(timeout);
    }
    let registry: Arc<dyn ArtifactRegistry> = Arc::new(RoutingRegistry::new(
        OciLayoutRegistry::new(),
        crate::lazy::LazyRemote::new(options, None),
    ));
    let mut policy = VerifyPolicy::new(env);
    policy.max_age = max_age;
    let verified = verify_promotion(registry.as_ref(), &repo, &digest, &key, &policy).await?;
    Ok((
        Some(Output::AttestationVerified(AttestationVerifyOutput {
            image: format!("{repo}@{digest}"),
            digest: verified.digest,
            environment: verified.environment,
            level: verified.level,
            time_verified: verified.time_verified,
            resource_uri: verified.resource_uri,
            key: verified.key,
            envelope: verified.envelope,
            envelopes_examined: verified.envelopes_examined,
        })),
        exit::OK,
    ))
}

#[cfg(test)]
mod tests {
    use super::is_location;

    #[test]
    fn locations_and_artifact_names_are_told_apart() {
        for l in [
            "registry.example.com/floe/prod/app",
            "127.0.0.1:5000/floe/prod/app",
            "localhost/app",
            "oci-layout:./registry/prod/app",
        ] {
            assert!(is_location(l), "{l}");
        }
        for a in ["app", "team/app", "floe/prod/app"] {
            assert!(!is_location(a), "{a}");
        }
    }
}
