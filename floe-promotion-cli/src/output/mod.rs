//! What `floe` prints: one serde type per command for `--output json`, and the text form.
//!
//! With `--output json` every run prints exactly one JSON document on standard output: an
//! [`Output`] (tagged by `"command"`) on success, or an [`ErrorOutput`] on failure.

use floe_promotion::gate::GateResult;
use floe_promotion::history::{AuditEvent, ChainBreak, Deployment};
use floe_promotion::manager::{
    ApprovalOutcome, ApprovalView, CanaryView, EnvironmentStatus, Outcome, PlannedApproval,
    PlannedTag, PromotionPlan, PromotionRecord,
};
use floe_promotion::model::text::printable as safe;
use floe_promotion::notify::DeliveryOutcome;
use floe_promotion::registry::CopyMode;
use floe_promotion::state::{EnvLock, Hold, HolderProcess, Lease, Liveness};
use floe_promotion::{Digest, EnvName, Error, Repository, Tag};
use serde::{Deserialize, Serialize};

use crate::exit;

mod auto;
mod checkpoint;
mod group;
mod switch;
mod table;
mod text;
mod vote_signatures;

pub use auto::{AutoDecisionOutput, AutoOutput};
pub use checkpoint::CheckpointsOutput;
pub use group::{GroupOutput, GroupPlanOutput};
pub use switch::SwitchPlanOutput;
pub use vote_signatures::{VoteCheck, VoteSignaturesOutput};

/// The JSON document of a successful command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Output {
    /// `floe promote`.
    Promote(PromotionRecord),
    /// `floe rollback`.
    Rollback(PromotionRecord),
    /// `floe promote --dry-run` and `floe rollback --dry-run`.
    Plan(PlanOutput),
    /// `floe switch`.
    Switch(PromotionRecord),
    /// `floe switch --dry-run`.
    SwitchPlan(SwitchPlanOutput),
    /// `floe promote --with-dependencies`.
    PromoteGroup(GroupOutput),
    /// `floe promote --with-dependencies --dry-run`.
    PlanGroup(GroupPlanOutput),
    /// `floe status`.
    Status {
        /// Per environment, in order.
        environments: Vec<StatusOutput>,
    },
    /// `floe history`.
    History {
        /// Newest first.
        events: Vec<AuditEvent>,
    },
    /// `floe lock`.
    Lock {
        /// The lock now in force.
        lock: EnvLock,
    },
    /// `floe unlock`.
    Unlock {
        /// The lock that was lifted.
        lock: EnvLock,
    },
    /// `floe approvals`.
    Approvals {
        /// The requests, oldest first.
        requests: Vec<ApprovalView>,
    },
    /// `floe approve`.
    Approve(Box<ApprovalOutcome>),
    /// `floe reject`.
    Reject {
        /// The request after the rejection.
        request: ApprovalView,
    },
    /// `floe approvals verify`.
    VoteSignatures(VoteSignaturesOutput),
    /// `floe lease list`.
    Leases {
        /// The leases in force, by environment.
        leases: Vec<LeaseOutput>,
    },
    /// `floe lease break`.
    LeaseBroken {
        /// The lease that was removed.
        lease: LeaseOutput,
    },
    /// `floe envs`.
    Envs {
        /// In promotion order.
        environments: Vec<EnvOutput>,
    },
    /// `floe audit verify`.
    Verify(VerifyOutput),
    /// `floe audit checkpoint`.
    Checkpoint(floe_promotion::checkpoint::TakenCheckpoint),
    /// `floe audit export --out FILE` (without `--out` the export itself is the output).
    Export {
        /// The format.
        format: String,
        /// Events written.
        events: u64,
        /// The file written.
        out: String,
    },
    /// `floe attest`.
    Attest(AttestOutput),
    /// `floe notifications`.
    Notifications {
        /// The latest outcome per webhook and event, by event then webhook.
        deliveries: Vec<DeliveryOutcome>,
    },
    /// `floe notifications retry`.
    NotificationsRetry(RetryOutput),
    /// `floe auto` (with `--watch`, one per pass, each on its own line in JSON).
    Auto(AutoOutput),
    /// `floe canary advance` and `floe canary abort`.
    Canary {
        /// The canary after the step.
        canary: CanaryView,
    },
    /// `floe revoke`.
    Revoked {
        /// The revocation now in force.
        revocation: floe_promotion::state::Revocation,
    },
    /// `floe unrevoke`.
    Unrevoked {
        /// The revocation that was lifted.
        revocation: floe_promotion::state::Revocation,
    },
    /// `floe revocations`.
    Revocations {
        /// Every revocation, oldest first.
        revocations: Vec<floe_promotion::state::Revocation>,
    },
    /// `floe canary list`.
    Canaries {
        /// The canaries that run.
        canaries: Vec<CanaryView>,
    },
    /// `floe hold ENV`.
    Hold {
        /// The hold placed.
        hold: Hold,
    },
    /// `floe hold release`.
    HoldReleased {
        /// The hold released.
        hold: Hold,
    },
    /// `floe hold list`.
    Holds {
        /// The holds, by environment.
        holds: Vec<Hold>,
    },
}

/// What `floe notifications retry` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOutput {
    /// The redeliveries' new outcomes, by event then webhook.
    pub retried: Vec<DeliveryOutcome>,
    /// Failed deliveries to webhooks no longer in the manifest, left as they are.
    pub skipped: Vec<DeliveryOutcome>,
    /// How many still fail.
    pub still_failed: usize,
}

/// A promotion lease, with what this machine can tell of its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOutput {
    /// The lease.
    #[serde(flatten)]
    pub lease: Lease,
    /// `alive` (its process runs here), `gone` (it ran here and exited) or `unknown`.
    pub holder_liveness: String,
}

impl From<Lease> for LeaseOutput {
    fn from(lease: Lease) -> Self {
        let holder_liveness = match lease.process.as_ref().map(HolderProcess::liveness) {
            Some(Liveness::Alive) => "alive",
            Some(Liveness::Gone) => "gone",
            _ => "unknown",
        }
        .to_string();
        LeaseOutput {
            lease,
            holder_liveness,
        }
    }
}

/// An environment as `floe status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOutput {
    /// The environment.
    pub environment: EnvName,
    /// Its position in the promotion order (0 first).
    pub position: usize,
    /// The current version of each artifact there.
    pub deployments: Vec<DeploymentOutput>,
    /// Its active lock.
    pub lock: Option<EnvLock>,
    /// Its holds on automatic promotion.
    #[serde(default)]
    pub holds: Vec<Hold>,
    /// The canaries running in it: what a deployer reads (version, digest, weight, step).
    #[serde(default)]
    pub canaries: Vec<CanaryView>,
    /// The revocations of digests still running in it.
    #[serde(default)]
    pub revoked: Vec<floe_promotion::state::Revocation>,
    /// Blue-green: both slots of each artifact released there by blue-green (what each holds,
    /// which one is live, which one holds a staged preview).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<floe_promotion::manager::SlotStatus>,
}

/// What runs in an environment, where, and under which tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentOutput {
    /// The deployment: environment, artifact, version, digest, since, by, the event.
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The repository holding the environment's copy.
    pub repository: Repository,
    /// The tags there that name this digest: the version's environment tag and the
    /// environment's pointer.
    pub tags: Vec<Tag>,
}

impl StatusOutput {
    /// The printable status of an environment; `locate` gives a deployment's repository and
    /// tags (from the configuration, without reaching the registry).
    pub fn of(
        status: EnvironmentStatus,
        locate: impl Fn(&Deployment) -> floe_promotion::Result<(Repository, Vec<Tag>)>,
    ) -> floe_promotion::Result<Self> {
        let deployments = status
            .deployments
            .into_iter()
            .map(|d| {
                let (repository, tags) = locate(&d)?;
                Ok(DeploymentOutput {
                    deployment: d,
                    repository,
                    tags,
                })
            })
            .collect::<floe_promotion::Result<_>>()?;
        Ok(StatusOutput {
            environment: status.environment,
            position: status.position,
            deployments,
            lock: status.lock,
            holds: status.holds,
            canaries: status.canaries,
            revoked: status.revoked,
            slots: status.slots,
        })
    }
}

/// The JSON document of a failed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorOutput {
    /// The one-line message.
    pub error: String,
    /// The process exit code.
    pub exit_code: u8,
    /// The exit code's name (see the README).
    pub kind: String,
}

impl ErrorOutput {
    /// The document of an error.
    pub fn of(error: &Error) -> Self {
        let code = exit::code(error);
        ErrorOutput {
            error: one_line(&error.to_string()),
            exit_code: code,
            kind: exit::name(code).to_string(),
        }
    }
}

/// `text` on one line: its lines trimmed and joined with a space, control characters escaped.
pub fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    safe(&joined).into_owned()
}

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

/// The result of `floe audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyOutput {
    /// Whether the chain is intact.
    pub intact: bool,
    /// Events verified.
    pub events: u64,
    /// The hash of the last event, when intact.
    pub head: Option<String>,
    /// The first bad event.
    pub first_break: Option<ChainBreak>,
    /// What was verified: the state file or an export file.
    pub source: String,
    /// With `--checkpoints`: whether the chain still holds every signed checkpoint's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointsOutput>,
}

/// The result of `floe attest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestOutput {
    /// Artifact.
    pub artifact: String,
    /// Version.
    pub version: Tag,
    /// Environment.
    pub environment: EnvName,
    /// The digest the evidence is bound to.
    pub digest: Digest,
    /// The evidence manifest's digest.
    pub evidence: Digest,
    /// Kind.
    pub kind: String,
    /// Verdict.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_promotion::orchestrate::{AutoAction, Candidate};

    #[test]
    fn error_documents_have_the_documented_shape() {
        let e = ErrorOutput::of(&Error::not_found("environment qa"));
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["kind"], "not_found");
        assert!(v["error"].as_str().unwrap().contains("qa"));
        let back: ErrorOutput = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn outputs_round_trip_and_carry_the_command() {
        let lock = EnvLock {
            environment: EnvName::new("prod").unwrap(),
            owner: "ops".into(),
            reason: "incident".into(),
            created: chrono::Utc::now(),
            expires: None,
        };
        let deployment = Deployment {
            environment: EnvName::new("prod").unwrap(),
            artifact: floe_promotion::ArtifactName::new("app").unwrap(),
            version: Tag::new("v1.0.0").unwrap(),
            digest: Digest::of(b"x"),
            since: chrono::Utc::now(),
            by: "ci".into(),
            seq: 7,
            kind: floe_promotion::history::EventKind::PromotionSucceeded,
        };
        let hold = Hold {
            environment: EnvName::new("prod").unwrap(),
            holder: "sec".into(),
            kind: floe_promotion::state::HoldKind::Manual,
            reason: "pen test".into(),
            placed: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let outputs = vec![
            Output::PromoteGroup(GroupOutput {
                group: uuid::Uuid::nil(),
                satisfied: vec![floe_promotion::model::Dependency {
                    artifact: floe_promotion::ArtifactName::new("config").unwrap(),
                    digest: Digest::of(b"c"),
                    version: Tag::new("v3").unwrap(),
                    declared: floe_promotion::model::Declared::Annotation,
                }],
                promotions: vec![],
            }),
            Output::PlanGroup(GroupPlanOutput {
                would_succeed: true,
                satisfied: vec![],
                steps: vec![],
            }),
            Output::Status {
                environments: vec![StatusOutput {
                    environment: EnvName::new("prod").unwrap(),
                    position: 2,
                    deployments: vec![DeploymentOutput {
                        deployment,
                        repository: Repository::new("r.example.com/prod/app").unwrap(),
                        tags: vec![
                            Tag::new("v1.0.0-prod").unwrap(),
                            Tag::new("latest-prod").unwrap(),
                        ],
                    }],
                    lock: Some(lock.clone()),
                    holds: vec![hold.clone()],
                    canaries: vec![],
                    revoked: vec![],
                    slots: vec![floe_promotion::manager::SlotStatus {
                        artifact: floe_promotion::ArtifactName::new("app").unwrap(),
                        slot: floe_promotion::release::blue_green::Slot::Green,
                        tag: Tag::new("prod-green").unwrap(),
                        version: Some(Tag::new("v1.0.0").unwrap()),
                        digest: Some(Digest::of(b"x")),
                        live: true,
                        preview: false,
                        phase: floe_promotion::release::blue_green::BlueGreenPhase::Live,
                    }],
                }],
            },
            Output::Hold { hold: hold.clone() },
            Output::HoldReleased { hold: hold.clone() },
            Output::Holds { holds: vec![hold] },
            Output::Auto(AutoOutput {
                dry_run: false,
                stopped: true,
                decisions: vec![AutoDecisionOutput {
                    environment: EnvName::new("prod").unwrap(),
                    from: EnvName::new("staging").unwrap(),
                    action: AutoAction::Promoted,
                    candidate: Some(Candidate {
                        artifact: floe_promotion::ArtifactName::new("app").unwrap(),
                        version: Tag::new("v1.0.0").unwrap(),
                        digest: Digest::new(format!("sha256:{}", "a".repeat(64))).unwrap(),
                        since: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                        soaked: std::time::Duration::from_secs(3600),
                    }),
                    detail: "promoted".into(),
                    approval: None,
                    event_seq: Some(9),
                    exit_code: None,
                }],
            }),
            Output::Lock { lock: lock.clone() },
            Output::Unlock { lock },
            Output::Leases {
                leases: vec![LeaseOutput::from(Lease {
                    environment: EnvName::new("prod").unwrap(),
                    holder: "ci (1)".into(),
                    token: uuid::Uuid::from_u128(1),
                    acquired: chrono::Utc::now(),
                    expires: chrono::Utc::now(),
                    process: HolderProcess::current(),
                })],
            },
            Output::LeaseBroken {
                lease: LeaseOutput::from(Lease {
                    environment: EnvName::new("prod").unwrap(),
                    holder: "ci (2)".into(),
                    token: uuid::Uuid::from_u128(2),
                    acquired: chrono::Utc::now(),
                    expires: chrono::Utc::now(),
                    process: None,
                }),
            },
            Output::History { events: vec![] },
            Output::Export {
                format: "csv".into(),
                events: 3,
                out: "x.csv".into(),
            },
            Output::Verify(VerifyOutput {
                intact: true,
                events: 2,
                head: Some("ab".into()),
                first_break: None,
                source: "state".into(),
                checkpoints: None,
            }),
            Output::VoteSignatures(VoteSignaturesOutput {
                source: "state".into(),
                verified: vec![],
                failed: vec![VoteCheck {
                    seq: 4,
                    event: uuid::Uuid::from_u128(4),
                    request: Some("r".into()),
                    environment: Some("prod".into()),
                    actor: "bob".into(),
                    problem: Some("not listed".into()),
                }],
                unsigned: vec![],
            }),
        ];
        for o in outputs {
            let json = serde_json::to_string(&o).unwrap();
            assert!(json.starts_with("{\"command\":"), "{json}");
            let back: Output = serde_json::from_str(&json).unwrap();
            assert_eq!(back, o);
            assert!(!o.text().is_empty());
        }
    }
}
