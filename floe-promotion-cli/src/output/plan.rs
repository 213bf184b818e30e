//! Dry runs (`--dry-run`) and the environments they and `floe envs` describe, with their
//! promotion windows.

use super::*;

/// One thing that would refuse a planned operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// The message.
    pub message: String,
    /// The exit code the real run would end with.
    pub exit_code: u8,
    /// Its name.
    pub kind: String,
}

/// A dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOutput {
    /// Whether the real run would succeed now.
    pub would_succeed: bool,
    /// Artifact.
    pub artifact: String,
    /// Version.
    pub version: Tag,
    /// The digest that would be promoted.
    pub digest: Option<Digest>,
    /// Source environment (none for a rollback).
    pub from: Option<EnvName>,
    /// Target environment.
    pub to: EnvName,
    /// Source repository.
    pub source: Option<Repository>,
    /// Target repository.
    pub target: Repository,
    /// How blobs would move.
    pub copy_mode: Option<CopyMode>,
    /// Tags that would be written.
    pub tags: Vec<PlannedTag>,
    /// Every gate's result.
    pub gates: Vec<GateResult>,
    /// The lock on the target.
    pub lock: Option<EnvLock>,
    /// What would refuse the run, in order.
    pub blockers: Vec<Blocker>,
    /// The approval a real run would wait for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<PlannedApproval>,
    /// How the target releases it (a canary's steps).
    #[serde(default = "direct")]
    pub strategy: floe_promotion::config::Strategy,
    /// Blue-green: the slot the promotion would stage on (the pointer would not move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_slot: Option<floe_promotion::release::blue_green::Slot>,
}

fn direct() -> floe_promotion::config::Strategy {
    floe_promotion::config::Strategy::Direct
}

impl PlanOutput {
    /// The printable form of a plan.
    pub fn of(plan: &PromotionPlan) -> Self {
        PlanOutput {
            would_succeed: plan.would_succeed(),
            artifact: plan.artifact.to_string(),
            version: plan.version.clone(),
            digest: plan.digest.clone(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            source: plan.source.clone(),
            target: plan.target.clone(),
            copy_mode: plan.copy_mode,
            tags: plan.tags.clone(),
            gates: plan.gates.clone(),
            lock: plan.lock.clone(),
            blockers: plan
                .blockers
                .iter()
                .map(|e| {
                    let code = exit::code(e);
                    Blocker {
                        message: one_line(&e.to_string()),
                        exit_code: code,
                        kind: exit::name(code).to_string(),
                    }
                })
                .collect(),
            approval: plan.approval.clone(),
            strategy: plan.strategy.clone(),
            preview_slot: plan.preview_slot,
        }
    }
}

/// An environment as `floe envs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvOutput {
    /// Name.
    pub name: EnvName,
    /// Position in the promotion order (0 first).
    pub position: usize,
    /// Repository namespace.
    pub repository: Option<String>,
    /// Gates, in result order.
    pub gates: Vec<String>,
    /// Gate timeout in seconds.
    pub gate_timeout_seconds: u64,
    /// Allowed operators (empty: everyone).
    pub allowed_operators: Vec<String>,
    /// Allowed groups (empty: everyone).
    pub allowed_groups: Vec<String>,
    /// Separation of duties.
    pub separation_of_duties: bool,
    /// Version pattern.
    pub version_pattern: Option<String>,
    /// Minimum soak in the source environment, in seconds.
    pub minimum_soak_seconds: Option<u64>,
    /// Allowed source environments.
    pub allowed_sources: Vec<EnvName>,
    /// Freeze windows, described.
    pub freeze_windows: Vec<String>,
    /// Promotion windows (deny and allow), described.
    #[serde(default)]
    pub windows: Vec<String>,
    /// Whether promotion into it is open now, and when it opens next when closed.
    #[serde(default)]
    pub window: WindowOutput,
}

/// Whether promotion into an environment is open now (`floe envs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOutput {
    /// Whether promotion is open now.
    pub open: bool,
    /// When closed: `deny` (a deny window is active) or `allow` (outside every allow window).
    pub closed_by: Option<String>,
    /// When closed: why.
    pub reason: Option<String>,
    /// When closed: when promotion opens next (none within a year: `None`).
    pub next_open: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for WindowOutput {
    fn default() -> Self {
        WindowOutput {
            open: true,
            closed_by: None,
            reason: None,
            next_open: None,
        }
    }
}

impl WindowOutput {
    /// The output of a window state.
    pub fn of(state: &floe_promotion::config::WindowState) -> Self {
        match state {
            floe_promotion::config::WindowState::Open => WindowOutput::default(),
            floe_promotion::config::WindowState::Closed {
                reason,
                kind,
                until,
            } => WindowOutput {
                open: false,
                closed_by: Some(kind.to_string()),
                reason: Some(reason.clone()),
                next_open: *until,
            },
        }
    }
}
