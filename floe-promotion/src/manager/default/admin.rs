//! Locks, leases, status, history, verification and evidence.

use super::*;

impl DefaultPromotionManager {
    pub(super) async fn run_lock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        expires_in: Option<Duration>,
    ) -> Result<EnvLock> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        require_reason(Reasoned::Lock, Some(reason))?;
        if let Some(d) = expires_in
            && d <= Duration::zero()
        {
            return Err(Error::invalid(
                "lock expiry",
                d.to_string(),
                "a lock's expiry must be in the future",
            ));
        }
        self.check_authorized(env, actor, "lock")?;
        let now = self.now();
        let lock = self
            .parts
            .locks
            .lock(
                EnvLock {
                    environment: environment.clone(),
                    owner: actor.id.clone(),
                    reason: reason.to_string(),
                    created: now,
                    expires: expires_in.map(|d| now + d),
                },
                now,
            )
            .await?;
        let mut e = self.event(EventKind::Locked, actor, now);
        e.environment = Some(environment.clone());
        e.reason = Some(reason.to_string());
        e.set_payload(Payload::Locked(Locked::new(lock.expires)));
        self.record(vec![e]).await?;
        Ok(lock)
    }

    pub(super) async fn run_unlock(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<EnvLock> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, reason)?;
        self.check_authorized(env, actor, "unlock")?;
        let now = self.now();
        let lock = self
            .parts
            .locks
            .unlock(environment, now)
            .await?
            .ok_or_else(|| Error::not_found(format!("a lock on environment {environment}")))?;
        let mut e = self.event(EventKind::Unlocked, actor, now);
        e.environment = Some(environment.clone());
        e.reason = reason.map(str::to_string);
        e.set_payload(Payload::Unlocked(LockDetails::new(
            &lock.owner,
            &lock.reason,
        )));
        self.record(vec![e]).await?;
        Ok(lock)
    }

    pub(super) async fn run_status(
        &self,
        environment: Option<&EnvName>,
    ) -> Result<Vec<EnvironmentStatus>> {
        if let Some(e) = environment {
            self.parts.config.environment(e)?;
        }
        let now = self.now();
        let mut out = Vec::new();
        for (position, env) in self.parts.config.environments().iter().enumerate() {
            if environment.is_some_and(|e| e != &env.name) {
                continue;
            }
            out.push(EnvironmentStatus {
                environment: env.name.clone(),
                position,
                deployments: self.parts.history.deployments(Some(&env.name)).await?,
                lock: self.parts.locks.get_lock(&env.name, now).await?,
                holds: self.parts.holds.holds(Some(&env.name)).await?,
                canaries: self.run_canaries(Some(&env.name)).await?,
                revoked: self.revoked_in(&env.name).await?,
                slots: self.slot_statuses(&env.name).await?,
            });
        }
        Ok(out)
    }

    pub(super) async fn run_history(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        self.parts.history.query(query).await
    }

    pub(super) async fn run_verify(&self) -> Result<VerifyReport> {
        self.parts.history.verify().await
    }

    pub(super) async fn run_leases(&self) -> Result<Vec<Lease>> {
        self.parts.locks.leases(self.now()).await
    }

    pub(super) async fn run_break_lease(
        &self,
        environment: &EnvName,
        actor: &Actor,
        reason: &str,
        force: bool,
    ) -> Result<Lease> {
        let env = self.parts.config.environment(environment)?;
        check_text_input(actor, Some(reason))?;
        require_reason(Reasoned::LeaseBreak, Some(reason))?;
        self.check_authorized(env, actor, "break the promotion lease of")?;
        let now = self.now();
        let lease = self
            .parts
            .locks
            .leases(now)
            .await?
            .into_iter()
            .find(|l| &l.environment == environment)
            .ok_or_else(|| {
                Error::not_found(format!("a promotion lease on environment {environment}"))
            })?;
        let liveness = lease
            .process
            .as_ref()
            .map_or(Liveness::Unknown, HolderProcess::liveness);
        if liveness == Liveness::Alive && !force {
            return Err(Error::Busy {
                environment: environment.clone(),
                holder: format!(
                    "{}, whose process {} is still running on this machine",
                    lease.holder,
                    lease.process.as_ref().map_or(0, |p| p.pid)
                ),
                until: lease.expires.to_rfc3339(),
            });
        }
        if !self
            .break_and_record(&lease, actor, reason, liveness, force)
            .await?
        {
            return Err(Error::Conflict(format!(
                "the promotion lease of {environment} changed hands while it was being broken; look again"
            )));
        }
        Ok(lease)
    }

    /// Breaks `lease` and records an [`EventKind::LeaseBroken`] event; `false` (and nothing
    /// recorded) when the lease changed hands meanwhile.
    pub(super) async fn break_and_record(
        &self,
        lease: &Lease,
        actor: &Actor,
        reason: &str,
        liveness: Liveness,
        force: bool,
    ) -> Result<bool> {
        if !self.parts.locks.break_lease(lease).await? {
            return Ok(false);
        }
        let mut e = self.event(EventKind::LeaseBroken, actor, self.now());
        e.environment = Some(lease.environment.clone());
        e.reason = Some(reason.to_string());
        let mut broken = LeaseBroken::new(&lease.holder, lease.expires, liveness);
        broken.holder_process = lease.process.as_ref().map(|p| HostProcess {
            host: p.host.clone(),
            pid: p.pid,
        });
        broken.forced = force;
        e.set_payload(Payload::LeaseBroken(broken));
        self.record(vec![e]).await?;
        Ok(true)
    }

    /// Attaches evidence to the digest of `artifact:version` in `environment` and records an
    /// [`EventKind::EvidenceAttached`] event. Returns the artifact's digest and the evidence
    /// manifest's digest.
    pub async fn attest(
        &self,
        artifact: &ArtifactName,
        version: &Tag,
        environment: &EnvName,
        evidence: &crate::registry::Evidence,
        actor: &Actor,
    ) -> Result<(Digest, Digest)> {
        use crate::registry::RegistryExt;
        check_text_input(actor, None)?;
        if let Some(by) = &evidence.actor {
            crate::model::text::check_free_text("evidence actor", by)?;
        }
        let (repo, manifest) = self.resolve_in(artifact, version, environment).await?;
        let attached = self
            .parts
            .registry
            .attach_evidence(&repo, manifest.digest(), evidence)
            .await?;
        let mut e = self.event(EventKind::EvidenceAttached, actor, self.now());
        e.artifact = Some(artifact.clone());
        e.version = Some(version.clone());
        e.digest = Some(manifest.digest().clone());
        e.environment = Some(environment.clone());
        e.set_payload(Payload::EvidenceAttached(EvidenceAttached::new(
            attached.clone(),
            evidence.kind.clone(),
            evidence.status,
        )));
        self.record(vec![e]).await?;
        Ok((manifest.digest().clone(), attached))
    }
}
