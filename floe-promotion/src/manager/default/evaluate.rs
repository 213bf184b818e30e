//! Steps 1 to 5 of the promotion path and of a rollback: the checks, the digest, the planned
//! tags and the gates, gathered in an [`Evaluation`].

use super::*;

/// What the checks of a promotion or rollback found; kept on failure so the failed event can
/// record the digest and gate results.
#[derive(Debug)]
pub(super) struct Evaluation {
    pub(super) id: Uuid,
    pub(super) now: DateTime<Utc>,
    pub(super) plan: bool,
    pub(super) source: Option<Repository>,
    pub(super) target: Option<Repository>,
    pub(super) manifest: Option<Manifest>,
    pub(super) gates: Vec<GateResult>,
    pub(super) lock: Option<EnvLock>,
    pub(super) lock_overridden: bool,
    /// A closed promotion window passed with a break-glass override, to be recorded.
    pub(super) window_overridden: Option<WindowOverridden>,
    pub(super) tags: Vec<PlannedTag>,
    pub(super) copy_mode: Option<CopyMode>,
    pub(super) blockers: Vec<Error>,
    /// The group this promotion belongs to (`promote_with_dependencies`), recorded on its
    /// events.
    pub(super) group: Option<Uuid>,
    /// The direct dependencies, each at the digest wanted, once resolved.
    pub(super) dependencies: Vec<Dependency>,
    /// The target's promotion lease when it was taken before the checks (see
    /// `lease_before_checks`): the evaluation's reads were made under it.
    pub(super) lease: Option<Lease>,
}

impl Evaluation {
    pub(super) fn new(now: DateTime<Utc>, plan: bool) -> Self {
        Evaluation {
            id: Uuid::new_v4(),
            now,
            plan,
            source: None,
            target: None,
            manifest: None,
            gates: vec![],
            lock: None,
            lock_overridden: false,
            window_overridden: None,
            tags: vec![],
            copy_mode: None,
            blockers: vec![],
            group: None,
            dependencies: vec![],
            lease: None,
        }
    }

    /// A refusal: the real run stops here; a plan notes it and goes on.
    pub(super) fn block(&mut self, e: Error) -> Result<()> {
        if self.plan {
            self.blockers.push(e);
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Records `gates`' results and refuses (see [`block`](Self::block)) when any of them
    /// does not allow the release.
    pub(super) fn gates_ran(&mut self, gates: Vec<GateResult>) -> Result<()> {
        self.gates = gates;
        let failed: Vec<GateResult> = self
            .gates
            .iter()
            .filter(|g| !g.status.allows())
            .cloned()
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            self.block(Error::GateFailed { failed })
        }
    }

    pub(super) fn digest(&self) -> Option<&Digest> {
        self.manifest.as_ref().map(Manifest::digest)
    }

    pub(super) fn into_plan(
        self,
        artifact: ArtifactName,
        version: Tag,
        from: Option<EnvName>,
        to: EnvName,
    ) -> Result<PromotionPlan> {
        let target = self
            .target
            .ok_or_else(|| Error::not_found(format!("repository of {artifact} in {to}")))?;
        Ok(PromotionPlan {
            digest: self.manifest.as_ref().map(|m| m.digest().clone()),
            artifact,
            version,
            from,
            to,
            source: self.source,
            target,
            copy_mode: self.copy_mode,
            tags: self.tags,
            gates: self.gates,
            lock: self.lock,
            blockers: self.blockers,
            approval: None,
            strategy: crate::config::Strategy::Direct,
            preview_slot: None,
            dependencies: self.dependencies,
        })
    }
}

impl DefaultPromotionManager {
    /// Steps 1 and 2: the checks that need no digest (transition, sources, authorization,
    /// policy, the lock), with the target's lock noted in the evaluation. Returns the lock.
    async fn request_checks(
        &self,
        ev: &mut Evaluation,
        subject: Subject<'_>,
    ) -> Result<Option<EnvLock>> {
        let lock = self.parts.locks.get_lock(&subject.to.name, ev.now).await?;
        ev.lock_overridden = lock.is_some() && subject.override_lock;
        ev.lock = lock.clone();
        let ctx = CheckContext::new(
            subject,
            self.parts.config.as_ref(),
            self.parts.history.as_ref(),
            lock.as_ref(),
            ev.now,
        );
        for e in run_checks(&self.parts.checks, Stage::Request, &ctx, ev.plan).await? {
            ev.block(e)?;
        }
        Ok(lock)
    }

    /// Plans the write of `tag` at `digest` in `repo`; `immutable` tags may not move.
    pub(super) async fn plan_tag(
        &self,
        ev: &mut Evaluation,
        repo: &Repository,
        tag: Tag,
        digest: &Digest,
        immutable: bool,
    ) -> Result<()> {
        self.plan_tags(ev, repo, [(tag, immutable)], digest).await
    }

    /// Plans the writes of `tags` (each with whether it is immutable) at `digest` in `repo`,
    /// in order, as [`plan_tag`](Self::plan_tag) would one after the other; the tags' current
    /// digests are read concurrently, one round trip for all of them.
    pub(super) async fn plan_tags<const N: usize>(
        &self,
        ev: &mut Evaluation,
        repo: &Repository,
        tags: [(Tag, bool); N],
        digest: &Digest,
    ) -> Result<()> {
        let found = self
            .read_tags(repo, &tags.each_ref().map(|(tag, _)| tag))
            .await;
        self.plan_read_tags(ev, repo, tags, found, digest)
    }

    /// The digests `tags` point at in `repo` (`None` for a tag that does not exist), in
    /// order, read concurrently: one round trip for all of them.
    async fn read_tags(&self, repo: &Repository, tags: &[&Tag]) -> Vec<Result<Option<Digest>>> {
        futures::future::join_all(tags.iter().map(|tag| async move {
            Ok(self
                .tag_digest(repo, tag)
                .await?
                .map(|m| m.digest().clone()))
        }))
        .await
    }

    /// [`plan_tags`](Self::plan_tags) with the tags' current digests already read
    /// ([`read_tags`](Self::read_tags)); a read that failed fails the plan.
    fn plan_read_tags<const N: usize>(
        &self,
        ev: &mut Evaluation,
        repo: &Repository,
        tags: [(Tag, bool); N],
        found: Vec<Result<Option<Digest>>>,
        digest: &Digest,
    ) -> Result<()> {
        for ((tag, immutable), current) in tags.into_iter().zip(found) {
            self.plan_tag_at(ev, repo, tag, digest, immutable, current?)?;
        }
        Ok(())
    }

    /// Plans the write of `tag` at `digest` in `repo`, which now points at `current`.
    fn plan_tag_at(
        &self,
        ev: &mut Evaluation,
        repo: &Repository,
        tag: Tag,
        digest: &Digest,
        immutable: bool,
        current: Option<Digest>,
    ) -> Result<()> {
        let action = match &current {
            None => TagAction::Create,
            Some(d) if d == digest => TagAction::Unchanged,
            Some(d) if immutable => {
                return ev.block(Error::Immutability {
                    repository: repo.to_string(),
                    tag: tag.to_string(),
                    existing: d.clone(),
                    attempted: digest.clone(),
                });
            }
            Some(_) => TagAction::Move,
        };
        ev.tags.push(PlannedTag {
            tag,
            action,
            current,
            immutable,
        });
        Ok(())
    }

    /// Steps 1 to 5 of the promotion path. Stops at the first refusal unless planning.
    pub(super) async fn evaluate_promotion(
        &self,
        req: &PromotionRequest,
        ev: &mut Evaluation,
    ) -> Result<()> {
        let config = &self.parts.config;
        let to_env = config.environment(&req.to)?;
        let source = config.repository(&req.from, &req.artifact)?;
        let target = config.repository(&req.to, &req.artifact)?;
        ev.source = Some(source.clone());
        ev.target = Some(target.clone());
        // Immutable environment tag; pointer.
        let scheme = &self.settings().tag_scheme;
        let env_tag = scheme.environment_tag(&req.version, &req.to)?;
        let pointer = scheme.pointer_tag(&req.to)?;

        // Steps 1 to 3 run while the target's tags are read: those reads need no digest and
        // change nothing, and a refusal found meanwhile still comes first.
        let read = [&env_tag, &pointer];
        let (checked, current) = futures::join!(
            self.promotion_checks(req, ev, &source, &target),
            self.read_tags(&target, &read)
        );
        let Some(manifest) = checked? else {
            return Ok(());
        };
        let digest = manifest.digest().clone();
        self.plan_read_tags(
            ev,
            &target,
            [(env_tag, true), (pointer, false)],
            current,
            &digest,
        )?;

        // 4. Gates, concurrently, every one of them, sharing one context.
        let ctx = Arc::new(GateContext {
            artifact: req.artifact.clone(),
            version: req.version.clone(),
            digest,
            manifest,
            source,
            from: req.from.clone(),
            to: req.to.clone(),
            actor: req.actor.clone(),
            now: ev.now,
            registry: Arc::clone(&self.parts.registry),
            history: Arc::clone(&self.parts.history),
        });
        let timeout = to_env
            .gate_timeout
            .unwrap_or(self.settings().default_timeout);
        ev.gates_ran(run_gates_shared(self.gates(&req.to), ctx, timeout).await)?;

        // 5. Approvals: environments with approval rules are refused by settings validation
        // until the approval workflow exists, so every environment here is auto-approved.
        Ok(())
    }

    /// Steps 1 to 3 of a promotion: the checks that need no digest, the digest resolved in
    /// the source environment, the dependencies, and the checks that need the digest. The
    /// manifest resolved, or `None` when planning and the source did not resolve.
    async fn promotion_checks(
        &self,
        req: &PromotionRequest,
        ev: &mut Evaluation,
        source: &Repository,
        target: &Repository,
    ) -> Result<Option<Manifest>> {
        let config = &self.parts.config;
        let from_env = config.environment(&req.from)?;
        let to_env = config.environment(&req.to)?;

        // 1 and 2. The checks that need no digest: transition, sources, authorization,
        // policy, the lock.
        let subject = Subject {
            operation: Operation::Promote,
            artifact: &req.artifact,
            version: &req.version,
            from: Some(&req.from),
            to: to_env,
            actor: &req.actor,
            override_lock: req.override_lock,
            override_window: req.override_window,
        };
        // 3. Resolve the digest once, in the source environment, while the checks of 1 and
        // 2 read the state; their refusals still come first.
        let resolve = async {
            if config.position(&req.from)? == 0 {
                self.parts
                    .registry
                    .resolve(source, &Reference::Tag(req.version.clone()))
                    .await
                    .map(|m| (m, None))
            } else {
                self.resolve_promoted(&req.artifact, &req.version, from_env, source)
                    .await
            }
        };
        let (lock, resolved) = futures::join!(self.request_checks(ev, subject), resolve);
        let lock = lock?;
        if req.override_window
            && let WindowState::Closed { reason, kind, .. } = to_env.window_state(ev.now)
        {
            ev.window_overridden = Some(WindowOverridden::new(
                kind,
                reason,
                req.reason.clone().unwrap_or_default(),
            ));
        }
        let mut ctx = CheckContext::new(
            subject,
            config.as_ref(),
            self.parts.history.as_ref(),
            lock.as_ref(),
            ev.now,
        );
        let (manifest, arrival) = match resolved {
            Ok(r) => r,
            Err(e) => {
                ev.block(e)?;
                return Ok(None);
            }
        };
        let digest = manifest.digest().clone();
        ev.manifest = Some(manifest.clone());
        ev.copy_mode = Some(self.parts.registry.copy_mode(source, target));

        // The dependencies, each at the digest wanted; a cycle or a dependency missing from
        // the source refuses here.
        match self
            .dependency_set(&req.artifact, &manifest, &req.from)
            .await
        {
            Ok(set) => ev.dependencies = set.direct,
            Err(e) => ev.block(e)?,
        }
        let dependencies = ev.dependencies.clone();

        // The checks that need the digest and its history: separation of duties, soak,
        // dependencies.
        let revocation = self.parts.revocations.revocation(&digest).await?;
        ctx.digest = Some(&digest);
        ctx.arrival = arrival.as_ref();
        ctx.dependencies = Some(&dependencies);
        ctx.revocation = revocation.as_ref();
        for e in run_checks(&self.parts.checks, Stage::Resolved, &ctx, ev.plan).await? {
            ev.block(e)?;
        }
        Ok(Some(manifest))
    }

    /// Resolves a version in a later environment: its environment tag, which must agree with
    /// the digest history recorded.
    pub(super) async fn resolve_promoted(
        &self,
        artifact: &ArtifactName,
        version: &Tag,
        env: &Environment,
        repo: &Repository,
    ) -> Result<(Manifest, Option<AuditEvent>)> {
        let arrival = self
            .arrival(&env.name, artifact, version)
            .await?
            .ok_or_else(|| Error::VersionNotPromoted {
                artifact: artifact.to_string(),
                version: version.to_string(),
                environment: env.name.clone(),
            })?;
        let recorded = arrival
            .record
            .digest
            .clone()
            .ok_or_else(|| Error::Integrity {
                seq: arrival.seq,
                problem: "a promotion event has no digest".into(),
            })?;
        let env_tag = self
            .settings()
            .tag_scheme
            .environment_tag(version, &env.name)?;
        let manifest = match self.tag_digest(repo, &env_tag).await? {
            Some(m) => m,
            None => {
                return Err(Error::not_found(format!(
                    "{repo}:{env_tag} (history says {artifact}:{version} was promoted to {} at {recorded})",
                    env.name
                )));
            }
        };
        if manifest.digest() != &recorded {
            return Err(Error::Conflict(format!(
                "{repo}:{env_tag} points at {} but history recorded {recorded} for {artifact}:{version} in {}",
                manifest.digest(),
                env.name
            )));
        }
        Ok((manifest, Some(arrival)))
    }

    /// Checks of a rollback. Stops at the first refusal unless planning.
    pub(super) async fn evaluate_rollback(
        &self,
        req: &RollbackRequest,
        ev: &mut Evaluation,
    ) -> Result<()> {
        let config = &self.parts.config;
        let env = config.environment(&req.environment)?;
        let target = config.repository(&req.environment, &req.artifact)?;
        ev.source = Some(target.clone());
        ev.target = Some(target.clone());
        ev.copy_mode = Some(CopyMode::TagOnly);
        let subject = Subject {
            operation: Operation::Rollback,
            artifact: &req.artifact,
            version: &req.to_version,
            from: None,
            to: env,
            actor: &req.actor,
            override_lock: req.override_lock,
            override_window: false,
        };
        self.request_checks(ev, subject).await?;
        let arrival = match self
            .arrival(&req.environment, &req.artifact, &req.to_version)
            .await?
        {
            Some(a) => a,
            None => {
                ev.block(Error::VersionNotPromoted {
                    artifact: req.artifact.to_string(),
                    version: req.to_version.to_string(),
                    environment: req.environment.clone(),
                })?;
                return Ok(());
            }
        };
        let recorded = arrival
            .record
            .digest
            .clone()
            .ok_or_else(|| Error::Integrity {
                seq: arrival.seq,
                problem: "a promotion event has no digest".into(),
            })?;
        // A revoked digest is never a rollback target.
        let revocation = self.parts.revocations.revocation(&recorded).await?;
        let mut ctx = CheckContext::new(
            subject,
            config.as_ref(),
            self.parts.history.as_ref(),
            None,
            ev.now,
        );
        ctx.digest = Some(&recorded);
        ctx.revocation = revocation.as_ref();
        for e in run_checks(&self.parts.checks, Stage::Resolved, &ctx, ev.plan).await? {
            ev.block(e)?;
        }
        let current = self
            .parts
            .history
            .deployments(Some(&req.environment))
            .await?
            .into_iter()
            .find(|d| d.artifact == req.artifact);
        if current
            .as_ref()
            .is_some_and(|c| c.version == req.to_version && c.digest == recorded)
        {
            ev.block(Error::InvalidTransition {
                from: req.environment.to_string(),
                to: req.environment.to_string(),
                reason: format!(
                    "{}:{} is already the current version",
                    req.artifact, req.to_version
                ),
            })?;
        }
        let manifest = self
            .parts
            .registry
            .resolve(&target, &Reference::Digest(recorded.clone()))
            .await?;
        let scheme = &self.settings().tag_scheme;
        let env_tag = scheme.environment_tag(&req.to_version, &req.environment)?;
        if let Some(m) = self.tag_digest(&target, &env_tag).await?
            && m.digest() != &recorded
        {
            ev.block(Error::Conflict(format!(
                "{target}:{env_tag} points at {} but history recorded {recorded}",
                m.digest()
            )))?;
        }
        ev.manifest = Some(manifest);
        let existing: HashSet<Tag> = self
            .parts
            .registry
            .list_tags(&target)
            .await?
            .into_iter()
            .collect();
        let mut n = 1;
        let rollback_tag = loop {
            let t = scheme.rollback_tag(&req.to_version, &req.environment, n)?;
            if !existing.contains(&t) {
                break t;
            }
            n += 1;
        };
        let pointer = scheme.pointer_tag(&req.environment)?;
        self.plan_tags(
            ev,
            &target,
            [(rollback_tag, true), (pointer, false)],
            &recorded,
        )
        .await
    }

    /// Input that does not form a request at all (an unknown environment, an override without
    /// a reason) is refused before anything is recorded; every refusal of a well-formed
    /// request is recorded as a failed event.
    pub(super) fn check_request_input(&self, req: &PromotionRequest) -> Result<()> {
        check_text_input(&req.actor, req.reason.as_deref())?;
        let config = &self.parts.config;
        config.environment(&req.from)?;
        config.environment(&req.to)?;
        if req.override_lock {
            require_reason(Reasoned::LockOverride, req.reason.as_deref())?;
        }
        if req.override_window {
            require_reason(Reasoned::WindowOverride, req.reason.as_deref())?;
        }
        Ok(())
    }

    /// Like [`Self::check_request_input`], for rollbacks: a known environment and a reason.
    pub(super) fn check_rollback_input(&self, req: &RollbackRequest) -> Result<()> {
        check_text_input(&req.actor, Some(&req.reason))?;
        let env = self.parts.config.environment(&req.environment)?;
        require_reason(Reasoned::Rollback, Some(&req.reason))?;
        // In a blue-green environment the pointer is always on the live slot: going back is a
        // switch to the other slot, never a pointer move beside the slots.
        if let Strategy::BlueGreen { .. } = env.strategy {
            return Err(Error::InvalidTransition {
                from: req.environment.to_string(),
                to: req.environment.to_string(),
                reason: format!(
                    "{} releases by blue-green: go back with `switch --back` (the previous slot), or promote the earlier version again to stage it and switch",
                    req.environment
                ),
            });
        }
        Ok(())
    }
}
