//! The rules of the promotion path, one per file, each behind the small [`Check`] trait.
//!
//! A check looks at one request (who wants what, from where to where) and, once the digest is
//! resolved, at the digest's history, and answers pass or block. The evaluation runs them in
//! order: a real run stops at the first blocker, a plan collects every blocker.
//!
//! | check | file | stage |
//! |---|---|---|
//! | forward, adjacent transition | `transition.rs` | request |
//! | allowed sources | `sources.rs` | request |
//! | operators and groups | `authorization.rs` | request |
//! | version pattern | `version_pattern.rs` | request |
//! | promotion windows (deny/allow, freeze windows) | `window.rs` | request |
//! | environment lock | `lock.rs` | request |
//! | separation of duties | `separation.rs` | resolved |
//! | minimum soak | `soak.rs` | resolved |
//! | dependencies current in the target | `dependencies.rs` | resolved |
//!
//! Immutability of environment and rollback tags is checked where tags are planned, and again
//! under the environment's lease; signatures are checked by the signature gate.

mod authorization;
mod dependencies;
pub mod input;
mod lock;
pub mod quorum;
mod revocation;
mod separation;
pub mod signed_vote;
pub mod soak;
mod sources;
mod transition;
mod version_pattern;
mod window;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::{Environment, EnvironmentConfig};
use crate::error::{Error, Result};
use crate::history::{AuditEvent, HistoryStore};
use crate::model::{Actor, ArtifactName, Dependency, Digest, EnvName, Tag};
use crate::state::EnvLock;

pub use self::authorization::{Authorized, authorize};
pub use self::dependencies::DependenciesPresent;
pub use self::lock::NotLocked;
pub use self::revocation::NotRevoked;
pub use self::separation::SeparationOfDuties;
pub use self::soak::MinimumSoak;
pub use self::sources::AllowedSources;
pub use self::transition::Transition;
pub use self::version_pattern::VersionPattern;
pub use self::window::WindowOpen;

/// The operation a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A promotion from one environment into the next.
    Promote,
    /// A rollback of an environment to a version it ran before.
    Rollback,
}

impl Operation {
    /// The verb used in refusals ("not allowed to promote to prod").
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Promote => "promote to",
            Operation::Rollback => "roll back",
        }
    }
}

/// When a check can run: on the request alone, or once the digest is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Names, environments, the actor, the time, the lock.
    Request,
    /// The digest and the event that brought the version into the source environment.
    Resolved,
}

/// What a check sees.
#[derive(Debug)]
pub struct CheckContext<'a> {
    /// The operation.
    pub operation: Operation,
    /// The environments.
    pub config: &'a dyn EnvironmentConfig,
    /// The audit history.
    pub history: &'a dyn HistoryStore,
    /// The artifact.
    pub artifact: &'a ArtifactName,
    /// The version.
    pub version: &'a Tag,
    /// The source environment (none for a rollback).
    pub from: Option<&'a EnvName>,
    /// The target environment.
    pub to: &'a Environment,
    /// Who asks.
    pub actor: &'a Actor,
    /// Whether the request carries a break-glass lock override.
    pub override_lock: bool,
    /// Whether the request carries a break-glass override of a closed promotion window.
    pub override_window: bool,
    /// The target's lock in force, if any.
    pub lock: Option<&'a EnvLock>,
    /// The time of the evaluation.
    pub now: DateTime<Utc>,
    /// The resolved digest (from the resolved stage on).
    pub digest: Option<&'a Digest>,
    /// The event that brought the version into the source environment, when history has one.
    pub arrival: Option<&'a AuditEvent>,
    /// The artifact's direct dependencies, each at the digest wanted (resolved with the
    /// digest; `None` before, and for callers that do not resolve them).
    pub dependencies: Option<&'a [Dependency]>,
    /// The revocation of the resolved digest, when it is revoked (resolved with the digest).
    pub revocation: Option<&'a crate::state::Revocation>,
}

/// Who asks for what: the request part of a [`CheckContext`].
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The operation.
    pub operation: Operation,
    /// The artifact.
    pub artifact: &'a ArtifactName,
    /// The version.
    pub version: &'a Tag,
    /// The source environment (none for a rollback).
    pub from: Option<&'a EnvName>,
    /// The target environment.
    pub to: &'a Environment,
    /// Who asks.
    pub actor: &'a Actor,
    /// Whether the request carries a break-glass lock override.
    pub override_lock: bool,
    /// Whether the request carries a break-glass override of a closed promotion window.
    pub override_window: bool,
}

impl<'a> CheckContext<'a> {
    /// The context of the request stage for `subject` (no digest yet).
    pub fn new(
        subject: Subject<'a>,
        config: &'a dyn EnvironmentConfig,
        history: &'a dyn HistoryStore,
        lock: Option<&'a EnvLock>,
        now: DateTime<Utc>,
    ) -> Self {
        CheckContext {
            operation: subject.operation,
            config,
            history,
            artifact: subject.artifact,
            version: subject.version,
            from: subject.from,
            to: subject.to,
            actor: subject.actor,
            override_lock: subject.override_lock,
            override_window: subject.override_window,
            lock,
            now,
            digest: None,
            arrival: None,
            dependencies: None,
            revocation: None,
        }
    }
}

/// One rule of the promotion path.
///
/// # Contract
///
/// - `check` returns `Ok(None)` when the request passes, `Ok(Some(error))` with the refusal
///   when it does not, and `Err` only when it could not decide (a store failed).
/// - `check` writes nothing: it may read the history and the configuration, nothing else.
/// - A check of [`Stage::Resolved`] is only run with `digest` set.
#[async_trait]
pub trait Check: Send + Sync + Debug {
    /// A short name, for plans and messages.
    fn name(&self) -> &'static str;
    /// When it runs.
    fn stage(&self) -> Stage;
    /// Whether it applies to `operation`.
    fn applies_to(&self, operation: Operation) -> bool;
    /// Passes or blocks the request.
    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Option<Error>>;
}

/// The checks of the promotion path, in the order they run.
pub fn standard_checks() -> Vec<Box<dyn Check>> {
    vec![
        Box::new(Transition),
        Box::new(AllowedSources),
        Box::new(Authorized),
        Box::new(VersionPattern),
        Box::new(WindowOpen),
        Box::new(NotLocked),
        Box::new(SeparationOfDuties),
        Box::new(MinimumSoak),
        Box::new(DependenciesPresent),
        Box::new(NotRevoked),
    ]
}

/// Every check of `checks` that applies to `ctx.operation` at `stage`, in order: the
/// refusals found. `all` collects every refusal (a plan); otherwise the first one ends it.
pub async fn run_checks(
    checks: &[Box<dyn Check>],
    stage: Stage,
    ctx: &CheckContext<'_>,
    all: bool,
) -> Result<Vec<Error>> {
    let mut blockers = Vec::new();
    for check in checks
        .iter()
        .filter(|c| c.stage() == stage && c.applies_to(ctx.operation))
    {
        if let Some(e) = check.check(ctx).await? {
            blockers.push(e);
            if !all {
                break;
            }
        }
    }
    Ok(blockers)
}
