use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::window_state::WindowState;
use super::windows::{PromotionWindow, Recurrence, WindowKind, WindowSchedule};
use super::{AutoPromotion, Strategy, TagScheme};
use crate::error::{Error, Result};
use crate::gate::{CommandSpec, PolicyRules, ScanSource, Severity, SignatureEnforcement};
use crate::model::{EnvName, Repository};

/// Workspace-wide promotion settings, with the environments in order.
#[derive(Clone, Debug)]
pub struct PromotionSettings {
    /// The default repository namespace (`artifacts.registry.uri`), used by environments that
    /// name none.
    pub registry: Option<Repository>,
    /// The environments, in promotion order.
    pub environments: Vec<Environment>,
    /// Default timeout of a gate.
    pub default_timeout: Duration,
    /// Whether signatures are enforced, only warned about, or not checked.
    pub signature_enforcement: SignatureEnforcement,
    /// Public keys (PEM files) trusted for cosign signatures.
    pub trusted_keys: Vec<PathBuf>,
    /// Registry hosts (`host:port`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// How long a registry may leave a request unanswered or a blob transfer without
    /// progress before the attempt fails and is retried (`registry_timeout_seconds`); `None`
    /// keeps the registry client's default.
    pub registry_timeout: Option<Duration>,
    /// How environment, pointer and rollback tags are named.
    pub tag_scheme: TagScheme,
    /// Whether a promotion may skip environments (still forward only).
    pub allow_skip: bool,
    /// How long a promotion lease lasts before another promoter may take it.
    pub lease_ttl: Duration,
    /// The file these settings came from, if any.
    pub source: Option<PathBuf>,
    /// Webhook endpoints that receive the lifecycle events (`artifacts.promotion.webhooks`).
    pub webhooks: Vec<super::WebhookSettings>,
    /// The per-artifact catalogue (`artifacts.promotion.artifacts`): dependencies by name.
    pub artifacts: std::collections::BTreeMap<crate::model::ArtifactName, super::ArtifactSettings>,
    /// The settings of `floe serve` (`artifacts.promotion.server`), when the manifest has them.
    pub server: Option<super::ServerSettings>,
    /// Group membership (top-level `groups: { release: [bob, erin] }`): the groups of a
    /// signed vote's principal, by group name.
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    /// The key that signs attestations and audit checkpoints (`artifacts.promotion.attestation`).
    pub attestation: Option<super::AttestationSettings>,
}

impl PromotionSettings {
    /// The groups `principal` is a member of, per [`groups`](Self::groups), sorted.
    pub fn groups_of(&self, principal: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m == principal))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Settings with these environments and defaults everywhere else: 300 s gate timeout,
    /// signatures off, the default tag scheme, no skipping, 15 min leases.
    pub fn new(environments: Vec<Environment>) -> Self {
        PromotionSettings {
            registry: None,
            environments,
            default_timeout: Duration::from_secs(300),
            signature_enforcement: SignatureEnforcement::Off,
            trusted_keys: vec![],
            insecure_registries: vec![],
            registry_timeout: None,
            tag_scheme: TagScheme::default(),
            allow_skip: false,
            lease_ttl: Duration::from_secs(15 * 60),
            source: None,
            webhooks: vec![],
            artifacts: std::collections::BTreeMap::new(),
            server: None,
            groups: std::collections::BTreeMap::new(),
            attestation: None,
        }
    }

    /// Sets the default repository namespace.
    pub fn with_registry(mut self, registry: Repository) -> Self {
        self.registry = Some(registry);
        self
    }

    fn err(&self, message: String) -> Error {
        Error::Config {
            file: self.source.clone(),
            location: None,
            message,
        }
    }

    /// Checks what cannot be checked field by field: at least one environment, unique names,
    /// references to environments that exist, approval rules that can be met, tag templates
    /// that yield safe tags, and settings whose behaviour is not implemented yet.
    pub fn validate(&self) -> Result<()> {
        if self.environments.is_empty() {
            return Err(
                self.err("promotion.environments: at least one environment is required".into())
            );
        }
        let mut seen = HashSet::new();
        for env in &self.environments {
            if !seen.insert(&env.name) {
                return Err(self.err(format!(
                    "promotion.environments: duplicate environment name {:?}",
                    env.name.as_str()
                )));
            }
        }
        self.tag_scheme.validate().map_err(|m| self.err(m))?;
        super::validate_catalogue(&self.artifacts).map_err(|m| self.err(m))?;
        for (i, hook) in self.webhooks.iter().enumerate() {
            hook.validate(&format!("artifacts.promotion.webhooks[{i}]"))
                .map_err(|m| self.err(m))?;
        }
        for env in &self.environments {
            let at = |field: &str| format!("environment {}: {field}", env.name);
            for source in &env.policy.allowed_sources {
                if !seen.contains(source) {
                    return Err(self.err(format!(
                        "{}: unknown environment {:?}",
                        at("policy.allowed_sources"),
                        source.as_str()
                    )));
                }
            }
            if let Some(policy) = &env.approval {
                policy.validate(&at("approval")).map_err(|m| self.err(m))?;
            }
            match &env.strategy {
                Strategy::Direct => {}
                Strategy::Canary { steps } => {
                    let weights: Vec<u8> = steps.iter().map(|s| s.weight).collect();
                    let increasing = weights.windows(2).all(|w| w[0] < w[1]);
                    if weights.is_empty()
                        || !increasing
                        || weights.last() != Some(&100)
                        || weights[0] == 0
                    {
                        return Err(self.err(format!(
                            "{}: weights {weights:?} must increase from 1 and end at 100",
                            at("strategy.canary.steps")
                        )));
                    }
                }
                Strategy::BlueGreen { .. } => {}
            }
            if let Some(auto) = &env.auto_promotion {
                let from = self.environments.iter().position(|e| e.name == auto.from);
                let own = self.environments.iter().position(|e| e.name == env.name);
                match (from, own) {
                    (None, _) => {
                        return Err(self.err(format!(
                            "{}: unknown environment {:?}",
                            at("auto_promote.from"),
                            auto.from.as_str()
                        )));
                    }
                    (Some(f), Some(o)) if f < o => {}
                    _ => {
                        return Err(self.err(format!(
                            "{}: {} does not come before {} in the promotion order",
                            at("auto_promote.from"),
                            auto.from,
                            env.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One environment and its rules.
#[derive(Clone, Debug)]
pub struct Environment {
    /// Its name.
    pub name: EnvName,
    /// Its repository namespace (a registry path or `oci-layout:<dir>`); the default registry
    /// when `None`.
    pub repository: Option<Repository>,
    /// Gates to pass to enter this environment.
    pub gates: GateSettings,
    /// Timeout of each gate; the workspace default when `None`.
    pub gate_timeout: Option<Duration>,
    /// Who may promote into it.
    pub authorization: Authorization,
    /// Approvals needed to enter it.
    pub approval: Option<ApprovalPolicy>,
    /// Version pattern, soak time and allowed sources.
    pub policy: PolicySettings,
    /// Periods when promotion into it is refused (deny windows in today's UTC form).
    pub freeze_windows: Vec<FreezeWindow>,
    /// Promotion windows: deny and allow windows as recurrence rules or one-off dates,
    /// evaluated together with `freeze_windows` (see [`Environment::window_state`]).
    pub windows: Vec<PromotionWindow>,
    /// How a new version is released in it.
    pub strategy: Strategy,
    /// Automatic promotion into it (`auto_promote`).
    pub auto_promotion: Option<AutoPromotion>,
}

impl Environment {
    /// An environment with no gates, rules or repository of its own.
    pub fn new(name: EnvName) -> Self {
        Environment {
            name,
            repository: None,
            gates: GateSettings::default(),
            gate_timeout: None,
            authorization: Authorization::default(),
            approval: None,
            policy: PolicySettings::default(),
            freeze_windows: vec![],
            windows: vec![],
            strategy: Strategy::Direct,
            auto_promotion: None,
        }
    }

    /// Sets the repository namespace.
    pub fn with_repository(mut self, repository: Repository) -> Self {
        self.repository = Some(repository);
        self
    }

    /// Adds a promotion window.
    pub fn with_window(mut self, window: PromotionWindow) -> Self {
        self.windows.push(window);
        self
    }

    /// The freeze window in force at `now`, if any (only `freeze_windows`; see
    /// [`Environment::window_state`] for every window).
    pub fn frozen_at(&self, now: DateTime<Utc>) -> Option<&FreezeWindow> {
        self.freeze_windows.iter().find(|w| w.contains(now))
    }

    /// Every window of the environment: its `windows`, then its `freeze_windows` as deny
    /// windows.
    pub fn all_windows(&self) -> Vec<PromotionWindow> {
        self.windows
            .iter()
            .cloned()
            .chain(
                self.freeze_windows
                    .iter()
                    .filter_map(FreezeWindow::to_window),
            )
            .collect()
    }

    /// Whether promotion into this environment is open at `now`, under all its windows
    /// (`windows` and `freeze_windows`): closed while a deny window is active, and, when the
    /// environment has allow windows, while none of them is active. A closed state names the
    /// reason, the kind of window that closes it, and when promotion opens next (searched
    /// [`NEXT_OPEN_HORIZON_DAYS`](super::NEXT_OPEN_HORIZON_DAYS) days ahead; `None` beyond).
    /// A window that cannot be evaluated counts as an active deny window.
    ///
    /// ```
    /// use floe_promotion::config::{
    ///     Environment, PromotionWindow, Recurrence, WindowKind, WindowSchedule, WindowState,
    ///     parse_timezone,
    /// };
    /// use floe_promotion::EnvName;
    /// let friday = Recurrence::new(
    ///     "FREQ=WEEKLY;BYDAY=FR;BYHOUR=15",
    ///     parse_timezone("Europe/Berlin").unwrap(),
    ///     None,
    ///     std::time::Duration::from_secs(9 * 3600),
    /// )
    /// .unwrap();
    /// let prod = Environment::new(EnvName::new("prod").unwrap()).with_window(PromotionWindow::new(
    ///     WindowKind::Deny,
    ///     WindowSchedule::recurring(friday),
    ///     "weekend",
    /// ));
    /// // Friday 2026-01-16, 15:30 in Berlin (UTC+1): closed until midnight Berlin time.
    /// let now = "2026-01-16T14:30:00Z".parse().unwrap();
    /// assert_eq!(
    ///     prod.window_state(now),
    ///     WindowState::Closed {
    ///         reason: "weekend".into(),
    ///         kind: WindowKind::Deny,
    ///         until: Some("2026-01-16T23:00:00Z".parse().unwrap()),
    ///     }
    /// );
    /// assert!(prod.window_state("2026-01-16T13:59:59Z".parse().unwrap()).is_open());
    /// ```
    pub fn window_state(&self, now: DateTime<Utc>) -> WindowState {
        super::window_state::evaluate(&self.all_windows(), now)
    }

    /// The first moment at or after `now` when promotion into this environment is open
    /// (`now` itself when open now), searched
    /// [`NEXT_OPEN_HORIZON_DAYS`](super::NEXT_OPEN_HORIZON_DAYS) days ahead; `None` when it
    /// stays closed that long. Auto-promotion waits for this.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        super::window_state::next_open(&self.all_windows(), now)
    }
}

/// The built-in gates an environment requires.
#[derive(Clone, Debug, Default)]
pub struct GateSettings {
    /// Passed test evidence must be attached to the digest.
    pub tests: bool,
    /// Policy compliance rules.
    pub policy_compliance: Option<PolicyRules>,
    /// A security scan.
    pub security_scan: Option<ScanSettings>,
    /// Whether the signature gate runs here: `None` follows `signature_enforcement`.
    pub signature: Option<bool>,
    /// Custom commands, by name.
    pub commands: Vec<(String, CommandSpec)>,
}

/// How a security scan gate gets its report and what blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanSettings {
    /// A scanner command or a report file.
    pub source: ScanSource,
    /// Severities that block the promotion.
    pub block_on_severity: Vec<Severity>,
    /// Ignore findings that have no fix.
    pub ignore_unfixed: bool,
}

/// Who may promote into an environment. Empty lists allow everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// Groups whose members may promote.
    pub allowed_groups: Vec<String>,
    /// Actors who may promote.
    pub allowed_operators: Vec<String>,
    /// The actor who promoted a version into the source environment may not promote it out.
    pub separation_of_duties: bool,
}

impl Authorization {
    /// Whether the lists allow `actor` (by id or by one of its groups).
    pub fn allows(&self, actor: &crate::Actor) -> bool {
        (self.allowed_groups.is_empty() && self.allowed_operators.is_empty())
            || self.allowed_operators.iter().any(|o| o == &actor.id)
            || actor.groups.iter().any(|g| self.allowed_groups.contains(g))
    }
}

/// An environment's approval policy: every rule must be met by distinct people before a
/// promotion into it executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// The rules; each needs its own approvers (one person counts toward one rule only).
    pub rules: Vec<ApprovalRule>,
    /// How long a request stays open before it expires.
    pub timeout: Duration,
    /// Who may never approve.
    pub separation: ApprovalSeparation,
    /// When set (`approval.signers`), every vote must be signed by a key listed here; the
    /// vote's identity is the key's principal and its groups are the manifest's `groups`.
    pub signers: Option<std::sync::Arc<super::AllowedSigners>>,
}

impl ApprovalPolicy {
    /// Refuses a policy that can never be met or says nothing: no rule, a rule needing 0
    /// approvals, a rule naming no user and no group, fewer users than required (without
    /// groups), two rules of one name, a zero timeout. The message starts with `at`.
    pub fn validate(&self, at: &str) -> std::result::Result<(), String> {
        if self.rules.is_empty() {
            return Err(format!("{at}.rules: at least one rule is needed"));
        }
        if self.timeout.is_zero() {
            return Err(format!("{at}.timeout: must be longer than 0s"));
        }
        let mut names = std::collections::HashSet::new();
        for rule in &self.rules {
            let r = format!("{at}.rules[{}]", rule.name);
            if rule.name.trim().is_empty() {
                return Err(format!("{at}.rules: a rule needs a name"));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(format!("{r}: two rules have this name"));
            }
            if rule.required == 0 {
                return Err(format!("{r}.required: must be at least 1"));
            }
            if rule.users.is_empty() && rule.groups.is_empty() {
                return Err(format!(
                    "{r}: names no users and no groups, so nobody could approve"
                ));
            }
            if rule.groups.is_empty() && (rule.required as usize) > rule.users.len() {
                return Err(format!(
                    "{r}.required: needs {} approvers but only {} users are listed and no groups",
                    rule.required,
                    rule.users.len()
                ));
            }
        }
        Ok(())
    }
}

/// One approval rule: `required` approvals from the listed users or members of the groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// The rule's name (unique within the environment), e.g. `security`.
    pub name: String,
    /// Approvals needed.
    pub required: u32,
    /// Users who may approve.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups whose members may approve.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl ApprovalRule {
    /// Whether `actor` may approve under this rule.
    pub fn admits(&self, actor: &crate::Actor) -> bool {
        self.users.iter().any(|u| u == &actor.id)
            || actor.groups.iter().any(|g| self.groups.contains(g))
    }
}

/// Separation of duties for approvals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalSeparation {
    /// The requester may never approve their own request.
    #[default]
    Requester,
    /// Neither the requester nor anyone who promoted the digest into the source environment.
    Promoters,
}

/// An environment's policy.
#[derive(Clone, Debug, Default)]
pub struct PolicySettings {
    /// Versions must match this pattern.
    pub version_pattern: Option<Regex>,
    /// How long a version must have been in the source environment.
    pub minimum_soak: Option<Duration>,
    /// Environments promotions may come from (empty: the one before, per transition rules).
    pub allowed_sources: Vec<EnvName>,
}

/// Days of the week, for recurring freeze windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A period when promotion into an environment is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FreezeWindow {
    /// From `start` (inclusive) to `end` (exclusive).
    Absolute {
        /// Start.
        start: DateTime<Utc>,
        /// End.
        end: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// Every week on `days`, from `start` to `end` (UTC times of day; `end` after `start`).
    Weekly {
        /// Days.
        days: Vec<Weekday>,
        /// Start time of day (UTC).
        start: NaiveTime,
        /// End time of day (UTC), exclusive.
        end: NaiveTime,
        /// Why.
        reason: String,
    },
}

impl FreezeWindow {
    /// Whether `now` falls in the window (the evaluation of every window, see
    /// [`FreezeWindow::to_window`]).
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.to_window().is_some_and(|w| w.active_at(now))
    }

    /// The same period as a deny [`PromotionWindow`]: an absolute window is a one-off
    /// window, a weekly one the rule `FREQ=WEEKLY;BYDAY=…;BYHOUR=…` in UTC lasting from
    /// `start` to `end`. `None` for a window that is never active (no days, an end not after
    /// its start).
    pub fn to_window(&self) -> Option<PromotionWindow> {
        let schedule = match self {
            FreezeWindow::Absolute { start, end, .. } => WindowSchedule::once(*start, *end).ok()?,
            FreezeWindow::Weekly {
                days, start, end, ..
            } => {
                let length = (*end - *start).to_std().ok()?;
                let days: Vec<u32> = days.iter().map(|d| *d as u32).collect();
                WindowSchedule::recurring(Recurrence::weekly_utc(&days, *start, length)?)
            }
        };
        Some(PromotionWindow::new(
            WindowKind::Deny,
            schedule,
            self.reason(),
        ))
    }

    /// Why the window exists.
    pub fn reason(&self) -> &str {
        match self {
            FreezeWindow::Absolute { reason, .. } | FreezeWindow::Weekly { reason, .. } => reason,
        }
    }
}
