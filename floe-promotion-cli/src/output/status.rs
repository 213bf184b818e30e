//! `floe status`: every environment with what runs there, its locks, holds and leases.

use super::*;

/// An environment as `floe status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOutput {
    /// The environment.
    pub environment: EnvName,
    /// Its position in the promotion order (0 first).
    pub position: usize,
    /// The current version of each artifact there.
    pub deployments: Vec<DeploymentOutput>,
    /// Its active lock.
    pub lock: Option<EnvLock>,
    /// Its holds on automatic promotion.
    #[serde(default)]
    pub holds: Vec<Hold>,
    /// The canaries running in it: what a deployer reads (version, digest, weight, step).
    #[serde(default)]
    pub canaries: Vec<CanaryView>,
    /// The revocations of digests still running in it.
    #[serde(default)]
    pub revoked: Vec<floe_promotion::state::Revocation>,
    /// Blue-green: both slots of each artifact released there by blue-green (what each holds,
    /// which one is live, which one holds a staged preview).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<floe_promotion::manager::SlotStatus>,
}

/// What runs in an environment, where, and under which tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentOutput {
    /// The deployment: environment, artifact, version, digest, since, by, the event.
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The repository holding the environment's copy.
    pub repository: Repository,
    /// The tags there that name this digest: the version's environment tag and the
    /// environment's pointer.
    pub tags: Vec<Tag>,
}

impl StatusOutput {
    /// The printable status of an environment; `locate` gives a deployment's repository and
    /// tags (from the configuration, without reaching the registry).
    pub fn of(
        status: EnvironmentStatus,
        locate: impl Fn(&Deployment) -> floe_promotion::Result<(Repository, Vec<Tag>)>,
    ) -> floe_promotion::Result<Self> {
        let deployments = status
            .deployments
            .into_iter()
            .map(|d| {
                let (repository, tags) = locate(&d)?;
                Ok(DeploymentOutput {
                    deployment: d,
                    repository,
                    tags,
                })
            })
            .collect::<floe_promotion::Result<_>>()?;
        Ok(StatusOutput {
            environment: status.environment,
            position: status.position,
            deployments,
            lock: status.lock,
            holds: status.holds,
            canaries: status.canaries,
            revoked: status.revoked,
            slots: status.slots,
        })
    }
}
