//! Environments and their settings: the [`EnvironmentConfig`] trait, the settings model, and
//! the `manifest.yaml` loader ([`load_manifest`]).

mod allowed_signers;
mod artifacts;
mod attestation;
mod manifest;
mod server;
mod settings;
mod strategy;
mod tag_scheme;
mod webhook;
mod window_state;
mod windows;

use std::fmt::Debug;

use crate::error::{Error, Result};
use crate::model::{ArtifactName, EnvName, Repository};

pub use allowed_signers::{AllowedSigner, AllowedSigners};
pub use artifacts::{ArtifactSettings, catalogue_graph, validate_catalogue};
pub use attestation::{AttestationSettings, CheckpointLocation, CheckpointSettings};
pub use manifest::{
    load_manifest, load_manifest_with_env, parse_manifest, parse_manifest_with_env,
};
pub use server::{OidcIssuer, ServerSettings, TlsFiles};
pub use settings::{
    ApprovalPolicy, ApprovalRule, ApprovalSeparation, Authorization, Environment, FreezeWindow,
    GateSettings, PolicySettings, PromotionSettings, ScanSettings, Weekday,
};
pub use strategy::{AutoPromotion, CanaryStep, Strategy};
pub use tag_scheme::TagScheme;
pub use webhook::{HeaderValue, MAX_WEBHOOK_RETRIES, Secret, WebhookSettings};
pub use window_state::WindowState;
pub use windows::{
    DEFAULT_START, MAX_DURATION, MAX_OCCURRENCES, MAX_RULE_LEN, NEXT_OPEN_HORIZON_DAYS, Period,
    PromotionWindow, Recurrence, WindowError, WindowField, WindowKind, WindowSchedule,
    parse_duration, parse_local, parse_time, parse_timezone,
};

/// The ordered environments an artifact moves through, and their settings.
///
/// # Contract
///
/// - `environments` returns the environments in promotion order (first is where CI pushes),
///   with unique names; the list is never empty.
/// - `environment` returns the environment with that name, or
///   [`Error::NotFound`] naming it and the known environments.
/// - `settings` returns the workspace-wide settings (tag scheme, timeouts, signatures).
/// - `repository` is where an artifact lives in an environment: the environment's repository
///   location joined with the artifact name, or the default registry's when the environment
///   names none; [`Error::Config`] when neither is set.
/// - The answers do not change during the life of the value.
pub trait EnvironmentConfig: Send + Sync + Debug + 'static {
    /// The workspace-wide settings, including every environment in order.
    fn settings(&self) -> &PromotionSettings;

    /// The environments in promotion order.
    fn environments(&self) -> &[Environment] {
        &self.settings().environments
    }

    /// One environment by name.
    fn environment(&self, name: &EnvName) -> Result<&Environment> {
        self.environments()
            .iter()
            .find(|e| &e.name == name)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "environment {name} (known: {})",
                    self.environments()
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Position of an environment in the promotion order.
    fn position(&self, name: &EnvName) -> Result<usize> {
        self.environment(name)?;
        Ok(self
            .environments()
            .iter()
            .position(|e| &e.name == name)
            .unwrap_or_default())
    }

    /// Where `artifact` lives in `environment`.
    fn repository(&self, environment: &EnvName, artifact: &ArtifactName) -> Result<Repository> {
        let env = self.environment(environment)?;
        match env
            .repository
            .as_ref()
            .or(self.settings().registry.as_ref())
        {
            Some(namespace) => namespace.join(artifact),
            None => Err(Error::Config {
                file: None,
                location: None,
                message: format!(
                    "environment {environment} has no repository and artifacts.registry.uri is not set"
                ),
            }),
        }
    }
}

/// An [`EnvironmentConfig`] built in code or parsed from a manifest.
///
/// ```
/// use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings, EnvironmentConfig};
/// use floe_promotion::{EnvName, Repository};
/// let settings = PromotionSettings::new(
///     ["dev", "staging", "prod"].map(|n| Environment::new(EnvName::new(n).unwrap())).to_vec(),
/// )
/// .with_registry(Repository::new("mem/floe").unwrap());
/// let config = InMemoryConfig::new(settings)?;
/// assert_eq!(config.environments().len(), 3);
/// # Ok::<(), floe_promotion::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryConfig {
    settings: PromotionSettings,
}

impl InMemoryConfig {
    /// Validates the settings (non-empty, unique names, rules that can be satisfied) and wraps
    /// them.
    pub fn new(settings: PromotionSettings) -> Result<Self> {
        settings.validate()?;
        Ok(InMemoryConfig { settings })
    }
}

impl EnvironmentConfig for InMemoryConfig {
    fn settings(&self) -> &PromotionSettings {
        &self.settings
    }
}
