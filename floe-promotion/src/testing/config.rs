//! Conformance suite of [`EnvironmentConfig`]: one public function per sentence of its
//! contract. Each takes a configuration whose settings have at least two environments and a
//! default registry, as [`config_conformance!`](crate::config_conformance) provides.

use crate::config::EnvironmentConfig;
use crate::error::Error;
use crate::model::{ArtifactName, EnvName};

/// `environments` returns the environments in promotion order, with unique names, never empty,
/// and the same list as the settings.
pub fn environments_are_ordered_and_unique(config: &dyn EnvironmentConfig) {
    let envs = config.environments();
    assert!(!envs.is_empty(), "no environments");
    let names: Vec<&EnvName> = envs.iter().map(|e| &e.name).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
    let from_settings: Vec<&EnvName> = config
        .settings()
        .environments
        .iter()
        .map(|e| &e.name)
        .collect();
    assert_eq!(names, from_settings);
    for (i, e) in envs.iter().enumerate() {
        assert_eq!(config.position(&e.name).expect("position"), i);
    }
}

/// `environment` returns the environment of that name, or `NotFound` naming it and the known
/// environments.
pub fn environment_lookup(config: &dyn EnvironmentConfig) {
    for e in config.environments() {
        assert_eq!(config.environment(&e.name).expect("known").name, e.name);
    }
    let unknown = EnvName::new("no-such-env").expect("valid name");
    match config.environment(&unknown) {
        Err(Error::NotFound { what }) => {
            assert!(what.contains("no-such-env"), "{what}");
            for e in config.environments() {
                assert!(
                    what.contains(e.name.as_str()),
                    "{what} does not list {}",
                    e.name
                );
            }
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        config.position(&unknown),
        Err(Error::NotFound { .. })
    ));
}

/// `repository` is the environment's location joined with the artifact name, or the default
/// registry's when the environment names none.
pub fn repository_per_environment(config: &dyn EnvironmentConfig) {
    let artifact = ArtifactName::new("team/app").expect("valid");
    for e in config.environments() {
        let repo = config.repository(&e.name, &artifact).expect("repository");
        let namespace = e
            .repository
            .as_ref()
            .or(config.settings().registry.as_ref())
            .expect("a location");
        assert_eq!(repo, namespace.join(&artifact).expect("a short repository"));
        assert!(repo.as_str().ends_with("/team/app"), "{repo}");
    }
}

/// The answers do not change during the life of the value.
pub fn answers_are_stable(config: &dyn EnvironmentConfig) {
    let artifact = ArtifactName::new("app").expect("valid");
    let first: Vec<_> = config
        .environments()
        .iter()
        .map(|e| (e.name.clone(), config.repository(&e.name, &artifact).ok()))
        .collect();
    for _ in 0..3 {
        let again: Vec<_> = config
            .environments()
            .iter()
            .map(|e| (e.name.clone(), config.repository(&e.name, &artifact).ok()))
            .collect();
        assert_eq!(again, first);
    }
}

/// Expands to one `#[test]` per [`EnvironmentConfig`] conformance case. `$setup` evaluates to
/// an `Arc<dyn EnvironmentConfig>`.
#[macro_export]
macro_rules! config_conformance {
    ($setup:expr) => {
        $crate::config_conformance!(@cases $setup;
            environments_are_ordered_and_unique,
            environment_lookup,
            repository_per_environment,
            answers_are_stable
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let config: ::std::sync::Arc<dyn $crate::EnvironmentConfig> = $setup;
                $crate::testing::config::$case(config.as_ref());
            }
        )*
    };
}
