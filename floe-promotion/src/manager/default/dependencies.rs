//! Dependencies of a promotion: which digest of each is wanted (resolved in the source
//! environment), the order of a set, and promoting the set as one recorded group.
//!
//! The digest wanted of a dependency:
//! - declared in the `dev.floe.dependencies` annotation: the digest it names;
//! - declared with `depends_on` in the manifest: the one current in the source environment
//!   (what ran beside the dependent there): history's current version there, or, when the
//!   source is the first environment (where CI pushes releases side by side), the newest
//!   release tag by natural order (`v1.10` after `v1.9`).
//!
//! The annotation wins over `depends_on` for a name both declare.

use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::history::{GroupDetails, GroupMember};
use crate::manager::{GroupPlan, GroupRecord};
use crate::model::{
    DEPENDENCIES_ANNOTATION, Declared, MissingDependency, parse_dependency_annotation,
};
use crate::orchestrate::{Cycle, DependencyGraph, natural_order};

/// The dependencies of one artifact at one digest.
#[derive(Debug, Default)]
pub(super) struct DependencySet {
    /// Its direct dependencies, each at the digest wanted.
    pub(super) direct: Vec<Dependency>,
    /// Everything it depends on, directly or not, in promotion order (dependencies first,
    /// ties by name), itself excluded.
    pub(super) order: Vec<Dependency>,
}

/// The refusal of a dependency cycle.
fn cycle_error(cycle: &Cycle) -> Error {
    Error::invalid(
        "dependencies",
        cycle.to_string(),
        "they form a cycle, so none of them can be promoted first (check the dev.floe.dependencies annotations and depends_on)",
    )
}

impl DefaultPromotionManager {
    /// The direct dependencies of `artifact` (whose manifest in the source is `manifest`),
    /// each at the digest wanted and with its version in `from`.
    async fn direct_dependencies(
        &self,
        artifact: &ArtifactName,
        manifest: &Manifest,
        from: &EnvName,
    ) -> Result<Vec<Dependency>> {
        let annotated = match manifest.body().annotations.get(DEPENDENCIES_ANNOTATION) {
            Some(value) => parse_dependency_annotation(value).map_err(|e| {
                Error::invalid(
                    "dev.floe.dependencies annotation",
                    value.clone(),
                    format!("on {artifact}@{}: {e}", manifest.digest()),
                )
            })?,
            None => vec![],
        };
        let declared = self
            .settings()
            .artifacts
            .get(artifact)
            .map(|a| a.depends_on.clone())
            .unwrap_or_default();
        let mut out: Vec<Dependency> = Vec::new();
        for (name, digest) in annotated {
            if &name == artifact {
                return Err(cycle_error(&Cycle(vec![name.clone(), name])));
            }
            let version = self.version_of(artifact, &name, &digest, from).await?;
            out.push(Dependency {
                artifact: name,
                digest,
                version,
                declared: Declared::Annotation,
            });
        }
        for name in declared {
            if out.iter().any(|d| d.artifact == name) {
                continue;
            }
            let (version, digest) = self.current_in(artifact, &name, from).await?;
            out.push(Dependency {
                artifact: name,
                digest,
                version,
                declared: Declared::Manifest,
            });
        }
        Ok(out)
    }

    /// The release tags of `repo` (as CI pushes them into the first environment), newest
    /// first by natural order.
    async fn release_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        let envs: Vec<EnvName> = self
            .parts
            .config
            .environments()
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let scheme = &self.settings().tag_scheme;
        let mut tags: Vec<Tag> = match self.parts.registry.list_tags(repo).await {
            Ok(tags) => tags,
            Err(Error::NotFound { .. }) => vec![],
            Err(e) => return Err(e),
        };
        tags.retain(|t| scheme.is_release_tag(t, &envs));
        tags.sort_by(|a, b| natural_order(b.as_str(), a.as_str()));
        Ok(tags)
    }

    /// The version and digest of `dependency` current in `from` (see the module
    /// documentation); a clear [`Error::NotFound`] naming it when there is none.
    async fn current_in(
        &self,
        dependent: &ArtifactName,
        dependency: &ArtifactName,
        from: &EnvName,
    ) -> Result<(Tag, Digest)> {
        let config = &self.parts.config;
        if config.position(from)? == 0 {
            let repo = config.repository(from, dependency)?;
            let Some(newest) = self.release_tags(&repo).await?.into_iter().next() else {
                return Err(Error::not_found(format!(
                    "dependency {dependency} of {dependent}: no release of it in {from} ({repo})"
                )));
            };
            let m = self
                .parts
                .registry
                .resolve(&repo, &Reference::Tag(newest.clone()))
                .await?;
            return Ok((newest, m.digest().clone()));
        }
        self.parts
            .history
            .deployments(Some(from))
            .await?
            .into_iter()
            .find(|d| &d.artifact == dependency)
            .map(|d| (d.version, d.digest))
            .ok_or_else(|| {
                Error::not_found(format!(
                    "dependency {dependency} of {dependent}: no version of it is current in {from}"
                ))
            })
    }

    /// The version `digest` of `dependency` has in `from`: a release tag naming it (the
    /// newest by natural order) in the first environment, else the latest version history
    /// made current there at that digest.
    async fn version_of(
        &self,
        dependent: &ArtifactName,
        dependency: &ArtifactName,
        digest: &Digest,
        from: &EnvName,
    ) -> Result<Tag> {
        let config = &self.parts.config;
        let missing = || {
            Error::not_found(format!(
                "dependency {dependency}@{digest} of {dependent}: not in {from}"
            ))
        };
        if config.position(from)? == 0 {
            let repo = config.repository(from, dependency)?;
            for tag in self.release_tags(&repo).await? {
                if self
                    .tag_digest(&repo, &tag)
                    .await?
                    .is_some_and(|m| m.digest() == digest)
                {
                    return Ok(tag);
                }
            }
            return Err(missing());
        }
        self.parts
            .history
            .query(&HistoryQuery {
                environment: Some(from.clone()),
                artifact: Some(dependency.clone()),
                digest: Some(digest.clone()),
                kinds: SETS_CURRENT.to_vec(),
                limit: Some(1),
                order: Order::NewestFirst,
                ..Default::default()
            })
            .await?
            .pop()
            .and_then(|e| e.record.version)
            .ok_or_else(missing)
    }

    /// The dependencies of `artifact` at `manifest`, resolved in `from`, followed through
    /// the dependencies' own declarations: a cycle is refused naming it, and two members
    /// wanting one dependency at different digests is a conflict.
    pub(super) async fn dependency_set(
        &self,
        artifact: &ArtifactName,
        manifest: &Manifest,
        from: &EnvName,
    ) -> Result<DependencySet> {
        let direct = self.direct_dependencies(artifact, manifest, from).await?;
        if direct.is_empty() {
            return Ok(DependencySet::default());
        }
        let mut graph = DependencyGraph::new();
        graph.add(artifact);
        let mut wanted: BTreeMap<ArtifactName, (Dependency, ArtifactName)> = BTreeMap::new();
        let mut todo = VecDeque::from([(artifact.clone(), direct.clone())]);
        while let Some((dependent, deps)) = todo.pop_front() {
            for d in deps {
                graph.depends(&dependent, &d.artifact);
                if &d.artifact == artifact {
                    continue;
                }
                if let Some((w, by)) = wanted.get(&d.artifact) {
                    if w.digest != d.digest {
                        return Err(Error::Conflict(format!(
                            "{by} needs {}@{} but {dependent} needs {}@{}",
                            w.artifact, w.digest, d.artifact, d.digest
                        )));
                    }
                    continue;
                }
                let repo = self.parts.config.repository(from, &d.artifact)?;
                let m = self
                    .parts
                    .registry
                    .resolve(&repo, &Reference::Digest(d.digest.clone()))
                    .await?;
                let next = self.direct_dependencies(&d.artifact, &m, from).await?;
                let name = d.artifact.clone();
                wanted.insert(name.clone(), (d, dependent.clone()));
                todo.push_back((name, next));
            }
        }
        let order = graph
            .order_for(artifact)
            .map_err(|cycle| cycle_error(&cycle))?
            .into_iter()
            .filter_map(|a| wanted.get(&a).map(|(d, _)| d.clone()))
            .collect();
        Ok(DependencySet { direct, order })
    }
}

impl DefaultPromotionManager {
    /// Splits `order` into the dependencies already current in `to` at the digest wanted and
    /// the ones to promote, both in order.
    async fn split_present(
        &self,
        order: Vec<Dependency>,
        to: &EnvName,
    ) -> Result<(Vec<Dependency>, Vec<Dependency>)> {
        let running = self.parts.history.deployments(Some(to)).await?;
        Ok(order.into_iter().partition(|d| {
            running
                .iter()
                .any(|r| r.artifact == d.artifact && r.digest == d.digest)
        }))
    }

    /// The request that promotes `dependency` alongside `req`: same environments, actor,
    /// reason and overrides.
    fn dependency_request(req: &PromotionRequest, dependency: &Dependency) -> PromotionRequest {
        let mut r = req.clone();
        r.artifact = dependency.artifact.clone();
        r.version = dependency.version.clone();
        r
    }

    /// Records the group's outcome event, about the dependent.
    async fn record_group(&self, req: &PromotionRequest, digest: Option<Digest>, payload: Payload) {
        let mut e = self.promotion_event(payload.kind(), req, self.now());
        e.digest = digest;
        if let Err(err) = self.record(vec![e.with_payload(payload)]).await {
            tracing::error!(error = %err, "could not record the group event");
        }
    }

    /// Promotes `req` after the dependencies it lacks in the target, as one group.
    ///
    /// The dependencies (the manifest's `depends_on` and the `dev.floe.dependencies`
    /// annotation, followed through the dependencies' own) that are not current in the
    /// target at the digest wanted are promoted first, in dependency order (dependencies
    /// first, ties by name), each through its own checks, gates, approvals, locks and lease;
    /// then the dependent. Every member's events carry the group id.
    ///
    /// When a dependency fails (or waits for approval), the members after it, the dependent
    /// included, are not attempted: the error is [`Error::DependencyFailed`] naming it, and
    /// the dependencies promoted before it stay promoted. The group is recorded as
    /// `group_promoted` when every member reached the target, as `group_failed` (naming the
    /// member and the error) otherwise. A dependency cycle, a dependency missing from the
    /// source, or two members wanting one dependency at different digests refuse the
    /// group before anything is promoted.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use floe_promotion::config::ArtifactSettings;
    /// use floe_promotion::testing::pipeline::TestPipeline;
    /// use floe_promotion::{ArtifactName, PromotionRequest};
    /// let mut p = TestPipeline::new(&["dev", "staging"]);
    /// let name = |s: &str| ArtifactName::new(s).unwrap();
    /// p.settings.artifacts.insert(name("app"), ArtifactSettings::depending_on(vec![name("db")]));
    /// p.settings.artifacts.insert(name("db"), ArtifactSettings::default());
    /// p.push_release("db", "v7", b"db").await;
    /// p.push_release("app", "v1", b"app").await;
    /// let group = p
    ///     .manager()
    ///     .promote_with_dependencies(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(group.dependencies[0].artifact.as_str(), "db");
    /// assert_eq!(group.dependent.artifact.as_str(), "app");
    /// # });
    /// ```
    pub async fn promote_with_dependencies(&self, req: PromotionRequest) -> Result<GroupRecord> {
        self.check_request_input(&req)?;
        let group = Uuid::new_v4();
        let resolved = async {
            let (_, manifest) = self
                .resolve_in(&req.artifact, &req.version, &req.from)
                .await?;
            let set = self
                .dependency_set(&req.artifact, &manifest, &req.from)
                .await?;
            let (satisfied, needed) = self.split_present(set.order, &req.to).await?;
            Ok::<_, Error>((manifest, satisfied, needed))
        }
        .await;
        let (manifest, satisfied, needed) = match resolved {
            Ok(r) => r,
            Err(e) => {
                // Refused before any member ran: the dependent's failure, in its group.
                let mut ev = Evaluation::new(self.now(), false);
                ev.group = Some(group);
                let mut g = GroupDetails::new(group, vec![]);
                g.failed = Some(req.artifact.clone());
                g.error = Some(e.to_string());
                let e = self.fail_promotion(&req, &ev, e).await;
                self.record_group(&req, None, Payload::GroupFailed(g)).await;
                return Err(e);
            }
        };
        let mut members: Vec<GroupMember> = needed
            .iter()
            .map(|d| GroupMember {
                artifact: d.artifact.clone(),
                version: d.version.clone(),
                digest: d.digest.clone(),
            })
            .collect();
        members.push(GroupMember {
            artifact: req.artifact.clone(),
            version: req.version.clone(),
            digest: manifest.digest().clone(),
        });
        let failed = |artifact: &ArtifactName, e: &Error| {
            let mut g = GroupDetails::new(group, members.clone());
            g.failed = Some(artifact.clone());
            g.error = Some(e.to_string());
            Payload::GroupFailed(g)
        };
        let mut promoted = Vec::new();
        for dependency in &needed {
            let dreq = Self::dependency_request(&req, dependency);
            match self.run_promote_in(dreq, Some(group)).await {
                Ok(record) => promoted.push(record),
                Err(e) => {
                    let digest = Some(manifest.digest().clone());
                    self.record_group(&req, digest, failed(&dependency.artifact, &e))
                        .await;
                    return Err(Error::DependencyFailed {
                        environment: req.to.clone(),
                        artifact: format!("{}:{}", req.artifact, req.version),
                        dependency: format!("{}:{}", dependency.artifact, dependency.version),
                        source: Box::new(e),
                    });
                }
            }
        }
        let digest = Some(manifest.digest().clone());
        match self.run_promote_in(req.clone(), Some(group)).await {
            Ok(dependent) => {
                let payload = Payload::GroupPromoted(GroupDetails::new(group, members.clone()));
                self.record_group(&req, digest, payload).await;
                Ok(GroupRecord {
                    group,
                    satisfied,
                    dependencies: promoted,
                    dependent,
                })
            }
            Err(e) => {
                self.record_group(&req, digest, failed(&req.artifact, &e))
                    .await;
                Err(e)
            }
        }
    }

    /// The plan of [`Self::promote_with_dependencies`]: the plan of each dependency it would
    /// promote, in order, then the dependent's; it writes nothing. A dependency that an
    /// earlier step would promote is not a blocker of the later steps. When the dependencies
    /// cannot be resolved (a cycle, one missing from the source), the plan is the
    /// dependent's alone, with that blocker.
    pub async fn plan_with_dependencies(&self, req: PromotionRequest) -> Result<GroupPlan> {
        self.check_request_input(&req)?;
        let resolved = async {
            let (_, manifest) = self
                .resolve_in(&req.artifact, &req.version, &req.from)
                .await?;
            let set = self
                .dependency_set(&req.artifact, &manifest, &req.from)
                .await?;
            self.split_present(set.order, &req.to).await
        }
        .await;
        let (satisfied, needed) = match resolved {
            Ok(r) => r,
            Err(_) => {
                return Ok(GroupPlan {
                    satisfied: vec![],
                    steps: vec![self.run_plan(req).await?],
                });
            }
        };
        let mut steps = Vec::new();
        for dependency in &needed {
            steps.push(
                self.run_plan(Self::dependency_request(&req, dependency))
                    .await?,
            );
        }
        steps.push(self.run_plan(req).await?);
        // What an earlier step promotes is no longer missing for the steps after it.
        for (i, step) in steps.iter_mut().enumerate() {
            let before = &needed[..i.min(needed.len())];
            let blockers = std::mem::take(&mut step.blockers);
            step.blockers = blockers
                .into_iter()
                .filter_map(|b| match b {
                    Error::DependencyMissing {
                        environment,
                        artifact,
                        missing,
                    } => {
                        let missing: Vec<MissingDependency> = missing
                            .into_iter()
                            .filter(|m| {
                                !before
                                    .iter()
                                    .any(|d| d.artifact == m.artifact && d.digest == m.digest)
                            })
                            .collect();
                        (!missing.is_empty()).then_some(Error::DependencyMissing {
                            environment,
                            artifact,
                            missing,
                        })
                    }
                    other => Some(other),
                })
                .collect();
        }
        Ok(GroupPlan { satisfied, steps })
    }
}
