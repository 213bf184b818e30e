//! Gates: checks a candidate promotion must pass.
//!
//! A gate is anything implementing [`PromotionGate`]; closures become gates through
//! [`gate_fn`]. The built-in gates are in the submodules and are built from the manifest's
//! `gates` map by the manager. [`run_gates`] evaluates a set concurrently, each with a timeout,
//! and fails closed: a timeout, an error or a panic is a failure.

mod command;
mod policy;
mod scan;
mod signature;
mod soak;
mod tests_passed;

use std::fmt::{self, Debug};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::history::HistoryStore;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Repository, Tag};
use crate::registry::{ArtifactRegistry, Manifest};

pub use crate::policy::soak::soak_time;
pub use command::{CommandGate, CommandSpec};
pub use policy::{PolicyEvaluator, PolicyGate, PolicyRules};
pub use scan::{ScanGate, ScanSource, Severity};
pub use signature::{SignatureEnforcement, SignatureGate, SignatureReport, SignatureVerifier};
pub use soak::SoakGate;
pub use tests_passed::EvidenceGate;

/// Everything a gate may look at. Cheap to clone: the registry and history are shared.
#[derive(Clone, Debug)]
pub struct GateContext {
    /// The artifact being promoted.
    pub artifact: ArtifactName,
    /// Its version (release tag).
    pub version: Tag,
    /// The digest resolved at the start of the promotion; every check binds to it.
    pub digest: Digest,
    /// The manifest at that digest, byte-exact.
    pub manifest: Manifest,
    /// The repository the artifact is read from (the source environment's).
    pub source: Repository,
    /// Source environment.
    pub from: EnvName,
    /// Target environment.
    pub to: EnvName,
    /// Who asked.
    pub actor: Actor,
    /// The time the promotion started (from the manager's clock).
    pub now: DateTime<Utc>,
    /// The registry, for evidence and signatures.
    pub registry: Arc<dyn ArtifactRegistry>,
    /// The audit history, for soak times and prior promotions.
    pub history: Arc<dyn HistoryStore>,
}

pub use crate::model::gate::{GateOutcome, GateResult, GateStatus};

/// One check of a candidate promotion.
///
/// # Contract
///
/// - `evaluate` returns `Ok` with a passed, warned or failed outcome when it could decide, and
///   `Err` only when it could not evaluate; the manager treats `Err` as a failure.
/// - `evaluate` judges the digest in the context, never whatever a tag points at now.
/// - `evaluate` has no side effect that a dry run would regret: it reads, it does not write
///   tags, history, approvals or locks.
/// - `evaluate` may be cancelled at any await point (timeouts); it must not leave work running.
/// - `name` is stable and non-empty; it names the gate in results and the audit trail.
/// - `timeout`, when `Some`, replaces the environment's default timeout for this gate.
#[async_trait]
pub trait PromotionGate: Send + Sync + Debug + 'static {
    /// The gate's name.
    fn name(&self) -> &str;

    /// Evaluates the candidate.
    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome>;

    /// This gate's own timeout, if it has one.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

type BoxedGateFn =
    dyn Fn(GateContext) -> Pin<Box<dyn Future<Output = Result<GateOutcome>> + Send>> + Send + Sync;

/// A gate made from an async closure; see [`gate_fn`].
pub struct FnGate {
    name: String,
    f: Box<BoxedGateFn>,
}

impl Debug for FnGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnGate").field("name", &self.name).finish()
    }
}

/// Makes a gate from an async closure.
///
/// ```
/// use floe_promotion::gate::{gate_fn, GateOutcome};
/// let gate = gate_fn("change-ticket", |ctx| async move {
///     Ok(if ctx.version.as_str().starts_with('v') {
///         GateOutcome::pass("version is a release")
///     } else {
///         GateOutcome::fail("not a release version")
///     })
/// });
/// # let _ = gate;
/// ```
pub fn gate_fn<F, Fut>(name: impl Into<String>, f: F) -> FnGate
where
    F: Fn(GateContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<GateOutcome>> + Send + 'static,
{
    FnGate {
        name: name.into(),
        f: Box::new(move |ctx| Box::pin(f(ctx))),
    }
}

#[async_trait]
impl PromotionGate for FnGate {
    fn name(&self) -> &str {
        &self.name
    }

    // Written out as `#[async_trait]` would expand it: the closure's future is boxed already,
    // so it is returned as it is instead of being boxed a second time.
    fn evaluate<'life0, 'life1, 'async_trait>(
        &'life0 self,
        ctx: &'life1 GateContext,
    ) -> Pin<Box<dyn Future<Output = Result<GateOutcome>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (self.f)(ctx.clone())
    }
}

/// Evaluates every gate concurrently, each under its own timeout (or `default_timeout`), and
/// returns one result per gate in the order given. Never fails fast: every gate runs.
///
/// A gate that errors, panics or times out gets a failing result.
pub async fn run_gates(
    gates: &[Arc<dyn PromotionGate>],
    ctx: &GateContext,
    default_timeout: Duration,
) -> Vec<GateResult> {
    if in_tasks(gates) {
        run_gates_spawned(gates, Arc::new(ctx.clone()), default_timeout).await
    } else {
        run_gates_inline(gates, ctx, default_timeout).await
    }
}

/// [`run_gates`] over a context the caller built for it, shared by the gates as it is (no
/// copy).
///
/// Gates run as tasks of their own (in parallel) on a multi-threaded runtime when there are
/// two or more; otherwise, where a task would buy no parallelism (a current-thread runtime,
/// a single gate), they run concurrently inside the caller's task. Either way
/// each has its timeout, a panic is caught and fails its gate, and dropping the returned
/// future cancels every gate still running.
pub(crate) async fn run_gates_shared(
    gates: &[Arc<dyn PromotionGate>],
    shared: Arc<GateContext>,
    default_timeout: Duration,
) -> Vec<GateResult> {
    if in_tasks(gates) {
        run_gates_spawned(gates, shared, default_timeout).await
    } else {
        run_gates_inline(gates, &shared, default_timeout).await
    }
}

/// Whether `gates` gain by running as tasks of their own: two or more, on a multi-threaded
/// runtime.
fn in_tasks(gates: &[Arc<dyn PromotionGate>]) -> bool {
    gates.len() > 1
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// A gate's result before it is named: its outcome within `limit` (`Err` when it timed
/// out), or `None` when it panicked or was cancelled, and how long it took.
type Evaluated = (
    Option<std::result::Result<Result<GateOutcome>, ()>>,
    Duration,
);

/// The result of a gate that ran for `took`, given what it returned.
fn gate_result(gate: &dyn PromotionGate, limit: Duration, evaluated: Evaluated) -> GateResult {
    let (outcome, took) = evaluated;
    let (status, message) = match outcome {
        Some(Ok(Ok(o))) => (o.status, o.message),
        Some(Ok(Err(e))) => (GateStatus::Error, e.to_string()),
        Some(Err(())) => (
            GateStatus::TimedOut,
            format!("no answer within {}", humantime::format_duration(limit)),
        ),
        None => (GateStatus::Error, "the gate panicked".to_string()),
    };
    GateResult {
        gate: gate.name().to_string(),
        status,
        message,
        duration_ms: took.as_millis() as u64,
    }
}

/// Every gate concurrently inside the caller's task, a panic caught as the gate's failure.
async fn run_gates_inline(
    gates: &[Arc<dyn PromotionGate>],
    ctx: &GateContext,
    default_timeout: Duration,
) -> Vec<GateResult> {
    use futures::FutureExt;
    // The gates start together: one reading of each clock serves them all (the runtime's for
    // the deadlines, so that a paused test clock applies; the real one for durations).
    let started = Instant::now();
    let now = tokio::time::Instant::now();
    let runs = gates.iter().map(|gate| {
        let limit = gate.timeout().unwrap_or(default_timeout);
        async move {
            let outcome = std::panic::AssertUnwindSafe(async {
                // As `tokio::time::timeout` does, a limit too far to reach is 30 years.
                let deadline = now
                    .checked_add(limit)
                    .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
                tokio::time::timeout_at(deadline, gate.evaluate(ctx))
                    .await
                    .map_err(|_| ())
            })
            .catch_unwind()
            .await
            .ok();
            gate_result(gate.as_ref(), limit, (outcome, started.elapsed()))
        }
    });
    futures::future::join_all(runs).await
}

/// Every gate as a task of its own, in parallel on a multi-threaded runtime.
async fn run_gates_spawned(
    gates: &[Arc<dyn PromotionGate>],
    shared: Arc<GateContext>,
    default_timeout: Duration,
) -> Vec<GateResult> {
    // A JoinSet aborts every gate still running if this future is dropped.
    let mut set = tokio::task::JoinSet::new();
    // Task id -> gate index, for a task that panicked or was cancelled (a handful of gates:
    // a list is enough).
    let mut ids = Vec::with_capacity(gates.len());
    let mut results: Vec<GateResult> = gates
        .iter()
        .map(|gate| GateResult {
            gate: gate.name().to_string(),
            status: GateStatus::Error,
            message: "the gate was cancelled".into(),
            duration_ms: 0,
        })
        .collect();
    for (index, gate) in gates.iter().enumerate() {
        let gate = Arc::clone(gate);
        let ctx = Arc::clone(&shared);
        let limit = gate.timeout().unwrap_or(default_timeout);
        let handle = set.spawn(async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(limit, gate.evaluate(&ctx))
                .await
                .map_err(|_| ());
            (index, limit, outcome, started.elapsed())
        });
        ids.push((handle.id(), index));
    }
    while let Some(joined) = set.join_next_with_id().await {
        match joined {
            Ok((_, (index, limit, outcome, took))) => {
                results[index] = gate_result(gates[index].as_ref(), limit, (Some(outcome), took));
            }
            Err(join) => {
                if let Some(&(_, index)) = ids.iter().find(|(id, _)| *id == join.id()) {
                    results[index].message = if join.is_panic() {
                        "the gate panicked".to_string()
                    } else {
                        "the gate was cancelled".to_string()
                    };
                }
            }
        }
    }
    results
}
