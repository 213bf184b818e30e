//! Dependencies: every dependency the artifact declares must already be current in the target
//! environment at the digest wanted. Which digest is wanted (the annotation's, or the one
//! current in the source environment) is decided when the dependencies are resolved, before
//! this check runs; it sees them in [`CheckContext::dependencies`].

use async_trait::async_trait;

use super::{Check, CheckContext, Operation, Stage};
use crate::error::{Error, Result};
use crate::model::MissingDependency;

/// Each declared dependency is current in the target at the digest wanted; the refusal
/// names every one that is not ([`Error::DependencyMissing`]).
#[derive(Debug, Clone, Copy)]
pub struct DependenciesPresent;

#[async_trait]
impl Check for DependenciesPresent {
    fn name(&self) -> &'static str {
        "dependencies"
    }

    fn stage(&self) -> Stage {
        Stage::Resolved
    }

    fn applies_to(&self, operation: Operation) -> bool {
        operation == Operation::Promote
    }

    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>> {
        let dependencies = match ctx.dependencies {
            Some(d) if !d.is_empty() => d,
            _ => return Ok(None),
        };
        let running = ctx.history.deployments(Some(&ctx.to.name)).await?;
        let missing: Vec<MissingDependency> = dependencies
            .iter()
            .filter_map(|d| {
                let current = running
                    .iter()
                    .find(|r| r.artifact == d.artifact)
                    .map(|r| r.digest.clone());
                (current.as_ref() != Some(&d.digest)).then(|| MissingDependency {
                    artifact: d.artifact.clone(),
                    digest: d.digest.clone(),
                    version: d.version.clone(),
                    current,
                })
            })
            .collect();
        Ok((!missing.is_empty()).then(|| Error::DependencyMissing {
            environment: ctx.to.name.clone(),
            artifact: format!("{}:{}", ctx.artifact, ctx.version),
            missing,
        }))
    }
}
