//! The tail of every write: the environment's lease, the checks that must hold under it, the
//! copy and the tag writes, the record of the outcome, the release.

use backon::{ExponentialBuilder, Retryable};

use super::*;

/// What [`DefaultPromotionManager::write`] did, under a lease the caller releases.
pub(super) struct Written {
    /// The tags written, in order.
    pub(super) tags: Vec<Tag>,
    /// What the copy moved, when the repositories differ.
    pub(super) copy: Option<CopyReport>,
    /// The environment's promotion lease.
    pub(super) lease: Lease,
    /// A lock found in force under the lease and passed with the request's override.
    pub(super) lock: Option<EnvLock>,
    /// Tags whose write failed but that the registry holds all the same (a lost reply).
    pub(super) confirmed: Vec<Tag>,
}

/// What the common tail needs to know of the operation it finishes.
pub(super) struct Tail<'a> {
    /// The environment whose lease is taken (the target).
    pub(super) environment: &'a EnvName,
    /// Who asks.
    pub(super) actor: &'a Actor,
    /// Whether the request carries a break-glass lock override.
    pub(super) override_lock: bool,
    /// Builds an event of a kind about this request, at a time.
    pub(super) event: &'a (dyn Fn(EventKind, DateTime<Utc>) -> EventRecord + Send + Sync),
    /// The kind recorded on success.
    pub(super) success: EventKind,
}

/// What the common tail did.
pub(super) struct Executed {
    /// The tags written, in order.
    pub(super) tags: Vec<Tag>,
    /// What the copy moved, when the repositories differ.
    pub(super) copy: Option<CopyReport>,
    /// The sequence number of the last recorded outcome event.
    pub(super) event_seq: Option<u64>,
    /// When the outcome was recorded.
    pub(super) finished: DateTime<Utc>,
}

impl DefaultPromotionManager {
    /// The common tail of every write (promotion, rollback, approved promotion, release
    /// steps): records a lock override found by the checks, writes under the environment's
    /// lease (see [`Self::write`]), records the outcome (`finish` sets the operation's own
    /// members and returns its payload, which becomes the event's details), then releases the
    /// lease. Planned tags marked immutable (the environment or rollback tag) are checked again
    /// under the lease. On failure nothing is recorded of the outcome: the caller records the
    /// failed event.
    pub(super) async fn run_tail(
        &self,
        ev: &mut Evaluation,
        tail: Tail<'_>,
        finish: impl FnOnce(&mut EventRecord, &Evaluation, &Written) -> Payload,
    ) -> Result<Executed> {
        if let (true, Some(lock)) = (ev.lock_overridden, &ev.lock) {
            let e = lock_overridden(tail.event, ev, lock, self.now());
            self.record(vec![e]).await?;
        }
        if let Some(window) = &ev.window_overridden {
            let mut e = (tail.event)(EventKind::WindowOverridden, self.now());
            e.digest = ev.digest().cloned();
            self.record(vec![
                e.with_payload(Payload::WindowOverridden(window.clone())),
            ])
            .await?;
        }
        let immutable: Vec<&Tag> = ev
            .tags
            .iter()
            .filter(|t| t.immutable)
            .map(|t| &t.tag)
            .collect();
        let held = ev.lease.take();
        let w = self
            .write(
                ev,
                tail.environment,
                tail.actor,
                &immutable,
                tail.override_lock,
                held,
            )
            .await?;
        let mut events = Vec::new();
        if let (Some(lock), false) = (&w.lock, ev.lock_overridden) {
            // Locked while the gates ran; the override passes it, and says so.
            ev.lock_overridden = true;
            events.push(lock_overridden(tail.event, ev, lock, self.now()));
        }
        let finished = self.now();
        let mut done = (tail.event)(tail.success, finished);
        done.digest = ev.digest().cloned();
        let payload = finish(&mut done, ev, &w);
        done.set_payload(payload);
        events.push(done);
        let stored = self.record_in_lease(events).await;
        self.release(&w.lease).await;
        let stored = stored?;
        let event_seq = stored.last().map(|e| e.seq);
        self.parts.dispatcher.committed(stored);
        self.kick_notifications();
        Ok(Executed {
            tags: w.tags,
            copy: w.copy,
            event_seq,
            finished,
        })
    }

    /// Takes the environment's promotion lease, waiting (with backoff, in real time) while
    /// another promoter holds it, up to the builder's `lease_wait`; then [`Error::Busy`].
    ///
    /// A lease whose holder provably no longer runs (it ran on this machine and its process
    /// is gone, e.g. killed) is taken over at once: broken, with an
    /// [`EventKind::LeaseBroken`] event naming the dead holder, instead of blocking every
    /// promotion into the environment until the lease expires.
    pub(super) async fn take_lease(&self, env: &EnvName, actor: &Actor, id: Uuid) -> Result<Lease> {
        let ttl = Duration::from_std(self.settings().lease_ttl).unwrap_or(Duration::minutes(15));
        let holder = LeaseHolder::this_process(format!("{} ({id})", actor.id));
        let backoff = ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(5))
            .with_max_delay(std::time::Duration::from_millis(500))
            .without_max_times()
            .with_total_delay(Some(self.parts.lease_wait));
        (|| async {
            let taken = self
                .parts
                .locks
                .acquire_lease(env, &holder, ttl, self.now())
                .await;
            if !matches!(taken, Err(Error::Busy { .. })) || !self.break_dead_lease(env, actor).await
            {
                return taken;
            }
            self.parts
                .locks
                .acquire_lease(env, &holder, ttl, self.now())
                .await
        })
        .retry(backoff)
        .when(|e| matches!(e, Error::Busy { .. }))
        .await
    }

    /// Breaks the lease on `env` when its holder ran on this machine and its process is gone;
    /// whether it did. Failures to look or to break are left to the caller's retry.
    async fn break_dead_lease(&self, env: &EnvName, actor: &Actor) -> bool {
        let Ok(leases) = self.parts.locks.leases(self.now()).await else {
            return false;
        };
        let Some(lease) = leases.into_iter().find(|l| &l.environment == env) else {
            return false;
        };
        let liveness = lease
            .process
            .as_ref()
            .map_or(Liveness::Unknown, HolderProcess::liveness);
        if liveness != Liveness::Gone {
            return false;
        }
        let reason = format!(
            "taken over: the holder {} ran on this machine and its process {} is gone",
            lease.holder,
            lease.process.as_ref().map_or(0, |p| p.pid)
        );
        tracing::info!(environment = %env, holder = %lease.holder, "taking over the lease of a process that is gone");
        self.break_and_record(&lease, actor, &reason, liveness, false)
            .await
            .unwrap_or(false)
    }

    /// Writes the planned tags (copying first when the repositories differ) under the
    /// environment's lease, which the caller releases after recording the outcome, so the
    /// order of outcome events is the order of the writes.
    ///
    /// Under the lease, what changed while the gates ran decides: the lock is checked again
    /// before the first write and again before the first tag moves (a lock taken meanwhile
    /// refuses the request unless it carries a break-glass override), and immutable tags are
    /// checked again, unless the evaluation read them under the lease already (`held`, the
    /// lease it took first). A tag write that fails is read back: a write the registry
    /// applied but whose reply was lost counts as written, so the record agrees with the
    /// registry.
    pub(super) async fn write(
        &self,
        ev: &Evaluation,
        lease_env: &EnvName,
        actor: &Actor,
        immutable: &[&Tag],
        override_lock: bool,
        held: Option<Lease>,
    ) -> Result<Written> {
        let (Some(manifest), Some(source), Some(target)) =
            (ev.manifest.as_ref(), ev.source.as_ref(), ev.target.as_ref())
        else {
            if let Some(lease) = held {
                self.release(&lease).await;
            }
            return Err(Error::Conflict("nothing resolved to write".into()));
        };
        let read_under_lease = held.is_some();
        let lease = match held {
            Some(lease) => lease,
            None => self.take_lease(lease_env, actor, ev.id).await?,
        };
        let mut out = Written {
            tags: Vec::new(),
            copy: None,
            lease,
            lock: None,
            confirmed: Vec::new(),
        };
        let result = async {
            // Another promoter may have written while we checked: look again under the
            // lease, at the lock and at the immutable tags together. A lease taken before the
            // checks made the evaluation's reads of both the look under the lease (step 6):
            // they are not repeated.
            let rechecked = ev
                .tags
                .iter()
                .filter(|t| !read_under_lease && immutable.contains(&&t.tag));
            let (lock, found) = futures::join!(
                async {
                    if read_under_lease {
                        Ok(None)
                    } else {
                        self.recheck_lock(lease_env, override_lock).await
                    }
                },
                futures::future::join_all(
                    rechecked
                        .clone()
                        .map(|planned| self.tag_digest(target, &planned.tag))
                )
            );
            out.lock = lock?;
            for (planned, found) in rechecked.zip(found) {
                if let Some(m) = found?
                    && m.digest() != manifest.digest()
                {
                    return Err(Error::Immutability {
                        repository: target.to_string(),
                        tag: planned.tag.to_string(),
                        existing: m.digest().clone(),
                        attempted: manifest.digest().clone(),
                    });
                }
            }
            if source != target {
                out.copy = Some(
                    self.parts
                        .registry
                        .copy_known(source, target, manifest)
                        .await?,
                );
                // A copy can take long: a lock taken meanwhile still stops the tags.
                if let Some(lock) = self.recheck_lock(lease_env, override_lock).await? {
                    out.lock = Some(lock);
                }
            }
            for planned in ev.tags.iter().filter(|t| t.action != TagAction::Unchanged) {
                if self.put_tag(target, &planned.tag, manifest).await? {
                    out.confirmed.push(planned.tag.clone());
                }
                out.tags.push(planned.tag.clone());
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                self.release(&out.lease).await;
                Err(e)
            }
        }
    }

    /// The lock check of step 6, under the lease: a lock in force refuses the write unless
    /// the request overrides it; the lock that was overridden is returned.
    pub(super) async fn recheck_lock(
        &self,
        env: &EnvName,
        override_lock: bool,
    ) -> Result<Option<EnvLock>> {
        match self.parts.locks.get_lock(env, self.now()).await? {
            Some(lock) if !override_lock => Err(Error::Locked {
                lock: Box::new(lock),
            }),
            other => Ok(other),
        }
    }

    /// Writes `tag` in `repo`. When the write fails, the tag is read back: `Ok(true)` when
    /// the registry holds the manifest there all the same (the reply was lost), the write's
    /// error when it does not (the tag is as it was) or cannot be read.
    pub(super) async fn put_tag(
        &self,
        repo: &Repository,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<bool> {
        let Err(e) = self
            .parts
            .registry
            .put_manifest(repo, Some(tag), manifest)
            .await
        else {
            return Ok(false);
        };
        match self.tag_digest(repo, tag).await {
            Ok(Some(m)) if m.digest() == manifest.digest() => {
                tracing::warn!(%repo, %tag, error = %e, "the tag write failed but the registry applied it");
                Ok(true)
            }
            Ok(_) => Err(e),
            Err(read) => Err(Error::Unavailable {
                registry: repo.to_string(),
                message: format!(
                    "writing {repo}:{tag} failed ({e}) and reading it back failed too ({read}): \
                     the tag may point at {} or at what it pointed at before",
                    manifest.digest()
                ),
            }),
        }
    }

    /// Gives the lease back; a failure only delays the next promoter until it expires.
    pub(super) async fn release(&self, lease: &Lease) {
        if let Err(e) = self.parts.locks.release_lease(lease).await {
            tracing::warn!(environment = %lease.environment, error = %e, "could not release the promotion lease; it will expire");
        }
    }

    pub(super) async fn record_failure(
        &self,
        mut record: EventRecord,
        ev: &Evaluation,
        error: &Error,
    ) {
        record.digest = ev.digest().cloned();
        record.gates = ev.gates.clone();
        let mut failed = Failed::new(error.to_string());
        failed.group = ev.group;
        record.set_payload(match record.kind {
            EventKind::RollbackFailed => Payload::RollbackFailed(failed),
            _ => Payload::PromotionFailed(failed),
        });
        if let Err(e) = self.record(vec![record]).await {
            tracing::error!(error = %e, "could not record the failed event");
        }
    }
}

/// The record of a lock passed with a break-glass override.
fn lock_overridden(
    event: &(dyn Fn(EventKind, DateTime<Utc>) -> EventRecord + Send + Sync),
    ev: &Evaluation,
    lock: &EnvLock,
    now: DateTime<Utc>,
) -> EventRecord {
    let mut e = event(EventKind::LockOverridden, now);
    e.digest = ev.digest().cloned();
    e.with_payload(Payload::LockOverridden(LockDetails::new(
        &lock.owner,
        &lock.reason,
    )))
}
