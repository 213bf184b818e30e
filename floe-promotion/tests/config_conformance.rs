//! The `EnvironmentConfig` conformance suite against a configuration built in code and one
//! loaded from a manifest, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings, parse_manifest};
use floe_promotion::{ArtifactName, EnvName, EnvironmentConfig, Error, Repository};

mod in_code {
    use super::*;

    fn config() -> Arc<dyn EnvironmentConfig> {
        let envs = vec![
            Environment::new(EnvName::new("dev").unwrap()),
            Environment::new(EnvName::new("staging").unwrap())
                .with_repository(Repository::new("registry.example.com/staging").unwrap()),
            Environment::new(EnvName::new("prod").unwrap()),
        ];
        Arc::new(
            InMemoryConfig::new(
                PromotionSettings::new(envs)
                    .with_registry(Repository::new("registry.example.com/floe").unwrap()),
            )
            .unwrap(),
        )
    }

    floe_promotion::config_conformance!(config());
}

mod from_manifest {
    use super::*;

    const MANIFEST: &str = "\
artifacts:
  registry: { uri: oci://registry.example.com/floe }
  promotion:
    environments:
      - name: dev
      - name: staging
        repository: registry.example.com/staging
      - name: prod
";

    fn config() -> Arc<dyn EnvironmentConfig> {
        Arc::new(parse_manifest(MANIFEST, None).unwrap())
    }

    floe_promotion::config_conformance!(config());
}

/// `repository` is a `Config` error when neither the environment nor the default registry
/// gives a location.
#[test]
fn repository_without_any_location_is_a_config_error() {
    let config = InMemoryConfig::new(PromotionSettings::new(vec![Environment::new(
        EnvName::new("dev").unwrap(),
    )]))
    .unwrap();
    let err = config
        .repository(
            &EnvName::new("dev").unwrap(),
            &ArtifactName::new("app").unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("dev"));
}

/// An empty list of environments is refused, so `environments` is never empty.
#[test]
fn no_environments_is_refused() {
    assert!(matches!(
        InMemoryConfig::new(PromotionSettings::new(vec![])),
        Err(Error::Config { .. })
    ));
}
