use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::EnvironmentConfig;
use crate::error::{Error, Result};
use crate::gate::{
    CommandGate, EvidenceGate, PolicyEvaluator, PolicyGate, PromotionGate, ScanGate,
    SignatureEnforcement, SignatureGate, SignatureVerifier,
};
use crate::history::{HistoryStore, InMemoryHistory};
use crate::model::EnvName;
use crate::notify::{CursorStore, Dispatcher, InMemoryCursors, Notifier};
use crate::registry::{ArtifactRegistry, EvidenceKind};
use crate::release::{InMemoryReleaseStore, ReleaseStore};
use crate::state::{HoldStore, InMemoryState, LockStore, RevocationStore};

use super::DefaultPromotionManager;
use super::default::Parts;

/// Builds a [`DefaultPromotionManager`]. `config` and `registry` are required; history, locks
/// and approvals default to in-memory stores, the clock to the system clock.
///
/// Gates of an environment run in this order of registration: the built-ins from its settings
/// (signature, tests, policy compliance, security scan, commands), then gates added with
/// [`gate`](Self::gate) and [`gate_for_all`](Self::gate_for_all). All run concurrently; the
/// order is that of the results.
#[derive(Debug, Default)]
pub struct PromotionManagerBuilder {
    config: Option<Arc<dyn EnvironmentConfig>>,
    registry: Option<Arc<dyn ArtifactRegistry>>,
    history: Option<Arc<dyn HistoryStore>>,
    locks: Option<Arc<dyn LockStore>>,
    holds: Option<Arc<dyn HoldStore>>,
    revocations: Option<Arc<dyn RevocationStore>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    releases: Option<Arc<dyn ReleaseStore>>,
    cursors: Option<Arc<dyn CursorStore>>,
    notification_timeout: Option<std::time::Duration>,
    manual_delivery: bool,
    clock: Option<Arc<dyn Clock>>,
    gates: Vec<(Option<EnvName>, Arc<dyn PromotionGate>)>,
    signature_verifier: Option<Arc<dyn SignatureVerifier>>,
    policy_evaluator: Option<Arc<dyn PolicyEvaluator>>,
    lease_wait: Option<std::time::Duration>,
}

impl PromotionManagerBuilder {
    /// The environments and settings (required).
    pub fn config(mut self, config: Arc<dyn EnvironmentConfig>) -> Self {
        self.config = Some(config);
        self
    }

    /// Where artifacts live (required).
    pub fn registry(mut self, registry: Arc<dyn ArtifactRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The audit history (default: in memory).
    pub fn history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.history = Some(history);
        self
    }

    /// Locks and leases (default: in memory).
    pub fn locks(mut self, locks: Arc<dyn LockStore>) -> Self {
        self.locks = Some(locks);
        self
    }

    /// Holds on automatic promotion (default: in memory).
    pub fn holds(mut self, holds: Arc<dyn HoldStore>) -> Self {
        self.holds = Some(holds);
        self
    }

    /// Revoked digests (default: in memory).
    pub fn revocations(mut self, revocations: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Adds a notifier; every committed event goes to each, after the commit, from its own
    /// cursor (see [`crate::notify::outbox`]).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Where release state (approval requests) is kept (default: in memory).
    pub fn releases(mut self, releases: Arc<dyn ReleaseStore>) -> Self {
        self.releases = Some(releases);
        self
    }

    /// Where the notifiers' delivery cursors are kept (default: in memory, so a new process
    /// starts each notifier from the first event of its history). Give a durable store
    /// (`floe-promotion-sqlite`) so that a notifier that was down receives what it missed on
    /// the next run, once.
    pub fn cursors(mut self, cursors: Arc<dyn CursorStore>) -> Self {
        self.cursors = Some(cursors);
        self
    }

    /// Delivers notifications only when
    /// [`deliver_notifications`](DefaultPromotionManager::deliver_notifications) is called,
    /// instead of in the background after each operation: for short-lived processes (a CLI)
    /// that deliver once before exiting.
    pub fn manual_delivery(mut self) -> Self {
        self.manual_delivery = true;
        self
    }

    /// How long one notifier may take with one event before its queue waits for the next run
    /// (default 30 s).
    pub fn notification_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.notification_timeout = Some(timeout);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a gate for promotions into `environment`.
    pub fn gate(mut self, environment: EnvName, gate: Arc<dyn PromotionGate>) -> Self {
        self.gates.push((Some(environment), gate));
        self
    }

    /// Adds a gate for promotions into every environment.
    pub fn gate_for_all(mut self, gate: Arc<dyn PromotionGate>) -> Self {
        self.gates.push((None, gate));
        self
    }

    /// The signature verifier, required when `signature_enforcement` is not `off`.
    pub fn signature_verifier(mut self, verifier: Arc<dyn SignatureVerifier>) -> Self {
        self.signature_verifier = Some(verifier);
        self
    }

    /// A policy engine consulted by every `policy_compliance` gate.
    pub fn policy_evaluator(mut self, evaluator: Arc<dyn PolicyEvaluator>) -> Self {
        self.policy_evaluator = Some(evaluator);
        self
    }

    /// How long a promotion waits for another promoter's lease on the same environment before
    /// giving up with [`Error::Busy`] (default: 60 s). Concurrent promoters into one
    /// environment run one after the other.
    pub fn lease_wait(mut self, wait: std::time::Duration) -> Self {
        self.lease_wait = Some(wait);
        self
    }

    /// Checks the parts and builds the manager.
    pub fn build(self) -> Result<DefaultPromotionManager> {
        let missing = |what: &str| {
            Error::invalid(
                "promotion manager",
                what.to_string(),
                format!("the builder needs .{what}(..)"),
            )
        };
        let config = self.config.ok_or_else(|| missing("config"))?;
        let registry = self.registry.ok_or_else(|| missing("registry"))?;
        let settings = config.settings();
        settings.validate()?;
        let state = InMemoryState::new();
        let mut gates: HashMap<EnvName, Vec<Arc<dyn PromotionGate>>> = HashMap::new();
        for env in config.environments() {
            let mut list: Vec<Arc<dyn PromotionGate>> = Vec::new();
            let g = &env.gates;
            let signature_on = g
                .signature
                .unwrap_or(settings.signature_enforcement != SignatureEnforcement::Off);
            if signature_on {
                let enforcement = match settings.signature_enforcement {
                    SignatureEnforcement::Off => SignatureEnforcement::Enforce,
                    other => other,
                };
                let verifier = self.signature_verifier.clone().ok_or_else(|| Error::Config {
                    file: settings.source.clone(),
                    location: None,
                    message: format!(
                        "environment {}: signatures are checked (signature_enforcement: {enforcement}) but no signature verifier is configured (trusted_keys)",
                        env.name
                    ),
                })?;
                list.push(Arc::new(SignatureGate::new(verifier, enforcement)));
            }
            if g.tests {
                list.push(Arc::new(EvidenceGate::new(EvidenceKind::Tests)));
            }
            if let Some(rules) = &g.policy_compliance {
                list.push(Arc::new(PolicyGate::new(
                    rules.clone(),
                    self.policy_evaluator.clone(),
                )));
            }
            if let Some(scan) = &g.security_scan {
                list.push(Arc::new(ScanGate::new(scan.clone())));
            }
            for (name, spec) in &g.commands {
                list.push(Arc::new(CommandGate::new(name.clone(), spec.clone())));
            }
            for (target, gate) in &self.gates {
                if target.as_ref().is_none_or(|t| t == &env.name) {
                    list.push(Arc::clone(gate));
                }
            }
            gates.insert(env.name.clone(), list);
        }
        for (target, _) in &self.gates {
            if let Some(t) = target {
                config.environment(t)?;
            }
        }
        let history: Arc<dyn HistoryStore> = self
            .history
            .unwrap_or_else(|| Arc::new(InMemoryHistory::new()));
        let dispatcher = Dispatcher::new(
            Arc::clone(&history),
            self.cursors
                .unwrap_or_else(|| Arc::new(InMemoryCursors::new())),
            self.notifiers,
            self.notification_timeout
                .unwrap_or(std::time::Duration::from_secs(30)),
        );
        Ok(DefaultPromotionManager::from_parts(Parts {
            config,
            registry,
            history,
            locks: self.locks.unwrap_or_else(|| Arc::new(state.clone())),
            holds: self.holds.unwrap_or_else(|| Arc::new(state.clone())),
            revocations: self.revocations.unwrap_or_else(|| Arc::new(state.clone())),
            dispatcher: Arc::new(dispatcher),
            releases: self
                .releases
                .unwrap_or_else(|| Arc::new(InMemoryReleaseStore::new())),
            background_delivery: !self.manual_delivery,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            gates,
            lease_wait: self
                .lease_wait
                .unwrap_or(std::time::Duration::from_secs(60)),
            checks: crate::policy::standard_checks(),
        }))
    }
}
