//! The commands of `floe`, one file each. Every argument is checked before the state file is
//! opened, so bad input writes nothing; every decision is the library's.

mod approvals;
mod attest;
mod audit;
mod auto;
mod canary;
mod envs;
mod history;
mod hold;
mod keygen;
mod lease;
mod lock;
mod notifications;
mod promote;
mod promote_group;
mod revoke;
mod rollback;
mod serve;
mod status;
mod switch;
mod verify;
mod vote_signing;

use std::fs::File;
use std::io::Write;

use chrono::{DateTime, NaiveDate, Utc};
use clap::CommandFactory;
use floe_promotion::history::{ExportFormat, HistoryQuery, Order, verify_export_file};
use floe_promotion::input::read_bounded;
use floe_promotion::policy::input::{Reasoned, require_reason};
use floe_promotion::registry::{Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::{
    Administration, Approvals, ArtifactName, ArtifactRef, AutoPromotions, EnvName,
    EnvironmentConfig, Error, Excerpt, PromotionRequest, Promotions, Reference, Result,
    RollbackRequest, Tag,
};

use crate::app::App;
use crate::cli::{
    self, ApprovalsAction, ApprovalsArgs, ApproveArgs, AttestArgs, AuditCommand, AutoArgs,
    CanaryCommand, Cli, Command, ExportArgs, Global, HistoryArgs, HoldAction, HoldArgs,
    LeaseBreakArgs, LeaseCommand, LockArgs, NotificationsAction, NotificationsArgs, PromoteArgs,
    RejectArgs, RevokeArgs, RollbackArgs, StatusArgs, UnlockArgs,
};
use crate::exit;
use crate::output::{
    AttestOutput, EnvOutput, LeaseOutput, Output, PlanOutput, StatusOutput, VerifyOutput,
    WindowOutput,
};

/// Runs one command: its output (none when the command printed it itself) and exit code.
pub(crate) async fn execute(cli: Cli) -> Result<(Option<Output>, u8)> {
    let g = &cli.global;
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "floe", &mut std::io::stdout());
            Ok((None, exit::OK))
        }
        Command::Promote(a) => promote::run(g, a.0).await,
        Command::Rollback(a) => rollback::run(g, a.0).await,
        Command::Switch(a) => switch::run(g, a.0).await,
        Command::Status(a) => status::run(g, a.0).await,
        Command::History(a) => history::run(g, a.0).await,
        Command::Lock(a) => lock::lock(g, a.0).await,
        Command::Unlock(a) => lock::unlock(g, a.0).await,
        Command::Approvals(a) => approvals::list(g, a).await,
        Command::Approve(a) => approvals::approve(g, a.0).await,
        Command::Reject(a) => approvals::reject(g, a.0).await,
        Command::Lease(LeaseCommand::List) => lease::list(g).await,
        Command::Lease(LeaseCommand::Break(a)) => lease::break_lease(g, a).await,
        Command::Envs => envs::run(g).await,
        Command::Audit(AuditCommand::Verify {
            file,
            checkpoints,
            key,
        }) => audit::verify(g, file, checkpoints.zip(key)).await,
        Command::Audit(AuditCommand::Export(a)) => audit::export(g, a).await,
        Command::Audit(AuditCommand::Checkpoint { to }) => audit::checkpoint(g, to).await,
        Command::Attest(a) => attest::run(g, a.0).await,
        Command::Auto(a) => auto::run(g, a.0).await,
        Command::Hold(a) => hold::run(g, a).await,
        Command::Canary(c) => canary::run(g, c).await,
        Command::Revoke(a) => revoke::revoke(g, a.0).await,
        Command::Unrevoke(a) => revoke::unrevoke(g, a.0).await,
        Command::Revocations => revoke::list(g).await,
        Command::Verify(a) => verify::run(g, a.0).await,
        Command::Keygen(a) => keygen::run(a.0).await,
        Command::Notifications(a) => notifications::run(g, a).await,
        Command::Serve(a) => serve::run(g, a.0).await,
    }
}

/// The actor: `--actor`, else `$FLOE_ACTOR`, else `$USER`; groups from `--group`, else
/// `$FLOE_ACTOR_GROUPS`.
fn actor(global: &Global) -> Result<floe_promotion::Actor> {
    let id = global
        .actor
        .clone()
        .or_else(|| std::env::var("FLOE_ACTOR").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .ok_or_else(|| Error::invalid("actor", "", "give --actor, or set FLOE_ACTOR or USER"))?;
    let mut groups = global.groups.clone();
    if groups.is_empty()
        && let Ok(g) = std::env::var("FLOE_ACTOR_GROUPS")
    {
        groups = g
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(floe_promotion::Actor::new(id)?.with_groups(groups))
}

/// A time given as RFC 3339 or as a date (midnight UTC).
fn parse_time(what: &'static str, s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Error::invalid(
                what,
                s,
                "expected RFC 3339 (2026-01-31T12:00:00Z) or YYYY-MM-DD",
            )
        })
}

/// `NAME:VERSION`.
fn artifact_version(s: &str) -> Result<(ArtifactName, Tag)> {
    let r: ArtifactRef = s.parse()?;
    match r.reference {
        Reference::Tag(t) => Ok((r.name, t)),
        Reference::Digest(_) => Err(Error::invalid(
            "artifact reference",
            s,
            "give NAME:VERSION; promotion resolves the digest itself",
        )),
    }
}

/// The exit code of a dry run: that of the first blocker, approval pending (15) when it would
/// wait for approval, or success.
fn plan_code(plan: &PlanOutput) -> u8 {
    match (plan.blockers.first(), &plan.approval) {
        (Some(b), _) => b.exit_code,
        (None, Some(_)) => exit::APPROVAL_PENDING,
        (None, None) => exit::OK,
    }
}

/// `result` with an invalid-input refusal attributed to the command-line flag that carries
/// the value (the rule itself is the library's).
fn for_flag(flag: &'static str, result: Result<()>) -> Result<()> {
    result.map_err(|e| match e {
        Error::InvalidInput { value, reason, .. } => Error::InvalidInput {
            what: flag,
            value,
            reason,
        },
        other => other,
    })
}
