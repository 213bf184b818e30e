//! What `floe` prints: one serde type per command for `--output json`, and the text form.
//!
//! With `--output json` every run prints exactly one JSON document on standard output: an
//! [`Output`] (tagged by `"command"`) on success, or an [`ErrorOutput`] on failure.

use std::fmt::Write as _;

use floe_promotion::gate::GateResult;
use floe_promotion::history::{AuditEvent, ChainBreak, Deployment};
use floe_promotion::manager::{
    ApprovalOutcome, ApprovalView, EnvironmentStatus, Outcome, PlannedApproval, PlannedTag,
    PromotionPlan, PromotionRecord,
};
use floe_promotion::model::text::printable as safe;
use floe_promotion::registry::CopyMode;
use floe_promotion::state::{EnvLock, HolderProcess, Lease, Liveness};
use floe_promotion::{Digest, EnvName, Error, Repository, Tag};
use serde::{Deserialize, Serialize};

use crate::exit;

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

fn lease_text(out: &mut String, l: &LeaseOutput) {
    let lease = &l.lease;
    let _ = writeln!(
        out,
        "{} held by {} since {} until {}; process {} ({})",
        lease.environment,
        safe(&lease.holder),
        lease.acquired.format("%Y-%m-%d %H:%M:%S"),
        lease.expires.format("%Y-%m-%d %H:%M:%S"),
        lease
            .process
            .as_ref()
            .map(|p| format!("{}:{}", safe(&p.host), p.pid))
            .unwrap_or_else(|| "not recorded".into()),
        l.holder_liveness
    );
}

fn approval_text(out: &mut String, r: &ApprovalView) {
    let t = &r.ticket;
    let _ = writeln!(
        out,
        "{} {} {}:{} {} {} -> {} requested by {} (expires {})",
        r.id,
        r.status,
        t.artifact,
        t.version,
        t.digest,
        t.from,
        t.to,
        safe(&t.requested_by.id),
        t.expires.format("%Y-%m-%d %H:%M:%S")
    );
    for v in &r.votes {
        let _ = writeln!(
            out,
            "  {} by {}{}",
            if v.approve { "approved" } else { "rejected" },
            safe(&v.actor.id),
            v.comment
                .as_deref()
                .map(|c| format!(": {}", safe(c)))
                .unwrap_or_default()
        );
    }
    for rule in &t.rules {
        let got = r.assigned.get(&rule.name).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(
            out,
            "  rule {}: {}/{} [{}] (users: {}; groups: {})",
            rule.name,
            got.len(),
            rule.required,
            got.join(", "),
            rule.users.join(", "),
            rule.groups.join(", ")
        );
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

fn gates_text(out: &mut String, gates: &[GateResult]) {
    for g in gates {
        let _ = writeln!(
            out,
            "  gate {:<20} {:<9} {}",
            g.gate,
            g.status.to_string(),
            safe(&g.message)
        );
    }
}

fn record_text(out: &mut String, verb: &str, r: &PromotionRecord) {
    let _ = writeln!(
        out,
        "{verb} {}:{} {}{} -> {} ({})",
        r.artifact,
        r.version,
        r.from.as_ref().map(|f| format!("{f} ")).unwrap_or_default(),
        r.digest,
        r.to,
        match r.outcome {
            Outcome::AlreadyPromoted => "nothing written".to_string(),
            other => format!("{other:?}"),
        }
    );
    let _ = writeln!(out, "  repository {}", r.repository);
    for t in &r.tags_written {
        let _ = writeln!(out, "  wrote {}:{t}", r.repository);
    }
    if let Some(c) = &r.copy {
        let _ = writeln!(
            out,
            "  copied {} manifest(s): {} blob(s) mounted, {} uploaded ({} bytes), {} already present; {} signature(s), {} referrer(s)",
            c.manifests_copied,
            c.blobs_mounted,
            c.blobs_uploaded,
            c.bytes_uploaded,
            c.blobs_skipped,
            c.signatures_copied,
            c.referrers_copied
        );
    }
    gates_text(out, &r.gates);
    if r.lock_overridden {
        let _ = writeln!(
            out,
            "  lock overridden: {}",
            safe(r.reason.as_deref().unwrap_or(""))
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {}", safe(w));
    }
}

impl Output {
    /// The text form.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match self {
            Output::Promote(r) if r.outcome == Outcome::AlreadyPromoted => {
                // Idempotent: the version already runs there at this digest.
                record_text(&mut out, "already promoted", r);
            }
            Output::Promote(r) => record_text(&mut out, "promoted", r),
            Output::Rollback(r) => record_text(&mut out, "rolled back", r),
            Output::Plan(p) => {
                let _ = writeln!(
                    out,
                    "dry run: {}:{} {}-> {}: {}",
                    p.artifact,
                    p.version,
                    p.from.as_ref().map(|f| format!("{f} ")).unwrap_or_default(),
                    p.to,
                    match (p.would_succeed, &p.approval) {
                        (false, _) => "would be refused",
                        (true, Some(_)) => "would wait for approval",
                        (true, None) => "would succeed",
                    }
                );
                if let Some(d) = &p.digest {
                    let _ = writeln!(out, "  digest {d}");
                }
                if let Some(m) = p.copy_mode {
                    let _ = writeln!(
                        out,
                        "  {} -> {} ({})",
                        p.source.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                        p.target,
                        match m {
                            CopyMode::TagOnly => "same repository: tags only",
                            CopyMode::Mount => "blobs mounted",
                            CopyMode::Stream => "blobs streamed",
                        }
                    );
                }
                for t in &p.tags {
                    let _ = writeln!(out, "  would write {}:{} ({:?})", p.target, t.tag, t.action);
                }
                gates_text(&mut out, &p.gates);
                for b in &p.blockers {
                    let _ = writeln!(out, "  blocked ({}): {}", b.kind, safe(&b.message));
                }
                if let Some(a) = &p.approval {
                    let _ = writeln!(
                        out,
                        "  would wait for approval{}:",
                        a.open_request
                            .map(|id| format!(" (open request {id})"))
                            .unwrap_or_default()
                    );
                    for r in &a.rules {
                        let _ = writeln!(
                            out,
                            "    rule {}: {} of users [{}] or groups [{}]",
                            r.name,
                            r.required,
                            r.users.join(", "),
                            r.groups.join(", ")
                        );
                    }
                }
            }
            Output::Status { environments } => {
                let _ = writeln!(
                    out,
                    "{:<12} {:<16} {:<14} {:<19} {:<20} {:<12} TAGS",
                    "ENVIRONMENT", "ARTIFACT", "VERSION", "DIGEST", "SINCE", "BY"
                );
                for s in environments {
                    if s.deployments.is_empty() {
                        let _ = writeln!(
                            out,
                            "{:<12} {:<16} {:<14} {:<19} {:<20} {:<12} -",
                            s.environment.as_str(),
                            "-",
                            "-",
                            "-",
                            "-",
                            "-"
                        );
                    }
                    for d in &s.deployments {
                        let tags: Vec<&str> = d.tags.iter().map(Tag::as_str).collect();
                        let dep = &d.deployment;
                        let _ = writeln!(
                            out,
                            "{:<12} {:<16} {:<14} {:<19} {:<20} {:<12} {}",
                            s.environment.as_str(),
                            dep.artifact.as_str(),
                            dep.version.as_str(),
                            format!("sha256:{}", dep.digest.short()),
                            dep.since.format("%Y-%m-%d %H:%M:%S"),
                            dep.by,
                            tags.join(",")
                        );
                    }
                }
                for s in environments {
                    if let Some(l) = &s.lock {
                        let _ = writeln!(
                            out,
                            "{} is locked by {} since {}{}: {}",
                            s.environment,
                            safe(&l.owner),
                            l.created.format("%Y-%m-%d %H:%M:%S"),
                            l.expires
                                .map(|e| format!(" until {}", e.format("%Y-%m-%d %H:%M:%S")))
                                .unwrap_or_default(),
                            safe(&l.reason)
                        );
                    }
                }
            }
            Output::History { events } => {
                if events.is_empty() {
                    let _ = writeln!(out, "no events");
                }
                for e in events {
                    let r = &e.record;
                    let _ = writeln!(
                        out,
                        "#{:<5} {} {:<19} {:<10} {}{}{}{}{}",
                        e.seq,
                        r.time.format("%Y-%m-%d %H:%M:%S"),
                        r.kind.as_str(),
                        safe(&r.actor.id),
                        r.artifact
                            .as_ref()
                            .map(|a| format!(
                                "{a}{} ",
                                r.version
                                    .as_ref()
                                    .map(|v| format!(":{v}"))
                                    .unwrap_or_default()
                            ))
                            .unwrap_or_default(),
                        r.from
                            .as_ref()
                            .map(|f| format!("{f} -> "))
                            .unwrap_or_default(),
                        r.environment
                            .as_ref()
                            .map(|e| e.to_string())
                            .unwrap_or_default(),
                        r.digest
                            .as_ref()
                            .map(|d| format!(" {d}"))
                            .unwrap_or_default(),
                        r.reason
                            .as_ref()
                            .map(|x| format!(" ({})", safe(x)))
                            .unwrap_or_default(),
                    );
                    if let Some(err) = r.details.get("error") {
                        let _ = writeln!(out, "       error: {}", safe(err));
                    }
                }
            }
            Output::Lock { lock } => {
                let _ = writeln!(
                    out,
                    "locked {} by {}: {}{}",
                    lock.environment,
                    safe(&lock.owner),
                    safe(&lock.reason),
                    lock.expires
                        .map(|e| format!(" (until {})", e.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            Output::Unlock { lock } => {
                let _ = writeln!(
                    out,
                    "unlocked {} (was locked by {}: {})",
                    lock.environment,
                    safe(&lock.owner),
                    safe(&lock.reason)
                );
            }
            Output::Approvals { requests } => {
                if requests.is_empty() {
                    let _ = writeln!(out, "no approval requests");
                }
                for r in requests {
                    approval_text(&mut out, r);
                }
            }
            Output::Approve(outcome) => {
                approval_text(&mut out, &outcome.request);
                if let Some(record) = &outcome.executed {
                    record_text(&mut out, "promoted", record);
                }
                if let Some(why) = &outcome.execution_blocked {
                    let _ = writeln!(
                        out,
                        "  approved, but the promotion did not run: {}; it stays approved until it expires (floe approvals execute {})",
                        safe(why),
                        outcome.request.id
                    );
                }
            }
            Output::Reject { request } => approval_text(&mut out, request),
            Output::Leases { leases } => {
                if leases.is_empty() {
                    let _ = writeln!(out, "no promotion leases in force");
                }
                for l in leases {
                    lease_text(&mut out, l);
                }
            }
            Output::LeaseBroken { lease } => {
                let _ = write!(out, "broke the lease: ");
                lease_text(&mut out, lease);
            }
            Output::Envs { environments } => {
                for e in environments {
                    let _ = writeln!(
                        out,
                        "{}. {}  repository: {}",
                        e.position + 1,
                        e.name,
                        e.repository.as_deref().unwrap_or("(default)")
                    );
                    let _ = writeln!(
                        out,
                        "   gates: {}  (timeout {}s)",
                        if e.gates.is_empty() {
                            "none".to_string()
                        } else {
                            e.gates.join(", ")
                        },
                        e.gate_timeout_seconds
                    );
                    if !e.allowed_operators.is_empty() || !e.allowed_groups.is_empty() {
                        let _ = writeln!(
                            out,
                            "   operators: [{}]  groups: [{}]",
                            e.allowed_operators.join(", "),
                            e.allowed_groups.join(", ")
                        );
                    }
                    if e.separation_of_duties {
                        let _ = writeln!(out, "   separation of duties");
                    }
                    if let Some(p) = &e.version_pattern {
                        let _ = writeln!(out, "   versions must match {p}");
                    }
                    if let Some(s) = e.minimum_soak_seconds {
                        let _ = writeln!(
                            out,
                            "   minimum soak {}",
                            humantime::format_duration(std::time::Duration::from_secs(s))
                        );
                    }
                    if !e.allowed_sources.is_empty() {
                        let sources: Vec<&str> =
                            e.allowed_sources.iter().map(|s| s.as_str()).collect();
                        let _ = writeln!(out, "   from: {}", sources.join(", "));
                    }
                    for w in &e.freeze_windows {
                        let _ = writeln!(out, "   frozen {w}");
                    }
                }
            }
            Output::Verify(v) => {
                if v.intact {
                    let _ = writeln!(
                        out,
                        "audit chain intact: {} events verified ({}){}",
                        v.events,
                        v.source,
                        v.head
                            .as_ref()
                            .map(|h| format!(", head {h}"))
                            .unwrap_or_default()
                    );
                } else if let Some(b) = &v.first_break {
                    let _ = writeln!(
                        out,
                        "audit chain BROKEN at event {}{}: {}",
                        b.seq,
                        b.id.map(|i| format!(" ({i})")).unwrap_or_default(),
                        b.problem
                    );
                }
            }
            Output::Export {
                format,
                events,
                out: file,
            } => {
                let _ = writeln!(out, "exported {events} events as {format} to {file}");
            }
            Output::Attest(a) => {
                let _ = writeln!(
                    out,
                    "attached {} evidence ({}) to {}:{} {} in {} as {}",
                    a.kind, a.status, a.artifact, a.version, a.digest, a.environment, a.evidence
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let outputs = vec![
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
                }],
            },
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
