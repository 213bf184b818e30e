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

mod attestation;
mod auto;
mod checkpoint;
mod group;
mod lines;
mod plan;
mod status;
mod switch;
mod table;
mod text;
mod vote_signatures;

pub use attestation::{AttestationVerifyOutput, KeygenOutput};
pub use auto::{AutoDecisionOutput, AutoOutput};
pub use checkpoint::CheckpointsOutput;
pub use group::{GroupOutput, GroupPlanOutput};
pub use plan::{Blocker, EnvOutput, PlanOutput, WindowOutput};
pub use status::{DeploymentOutput, StatusOutput};
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
    /// `floe verify`.
    AttestationVerified(AttestationVerifyOutput),
    /// `floe keygen`.
    Keygen(KeygenOutput),
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
            Output::AttestationVerified(AttestationVerifyOutput {
                image: format!("r.example/app@sha256:{}", "a".repeat(64)),
                digest: Digest::of(b"image"),
                environment: EnvName::new("prod").unwrap(),
                level: "FLOE_ENV_PROD".into(),
                time_verified: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                resource_uri: "r.example/app@sha256:0".into(),
                key: format!("sha256:{}", "b".repeat(64)),
                envelope: Digest::of(b"envelope"),
                envelopes_examined: 2,
            }),
            Output::Keygen(KeygenOutput {
                private_key: "keys/floe.key".into(),
                public_key: "keys/floe.pub".into(),
                fingerprint: format!("sha256:{}", "c".repeat(64)),
            }),
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
