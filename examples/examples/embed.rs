//! Embedding floe-promotion with in-memory parts: a custom gate, a promotion through three
//! environments, a lock, a rollback, and the audit trail verified and exported.
//!
//! Run: `cargo run -p floe-examples --example embed`

use std::sync::Arc;

use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{ExportFormat, HistoryQuery};
use floe_promotion::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // Three environments sharing one repository namespace: promotion writes tags only.
    let envs = ["dev", "staging", "prod"].map(|n| EnvName::new(n).map(Environment::new));
    let settings = PromotionSettings::new(envs.into_iter().collect::<Result<Vec<_>>>()?)
        .with_registry(Repository::new("example/floe")?);
    let registry = Arc::new(InMemoryRegistry::new());
    let history = Arc::new(InMemoryHistory::new());

    // A team's own gate: only semantic versions go to prod.
    let semver = gate_fn("semver", |ctx| async move {
        let ok = ctx.version.as_str().starts_with('v')
            && ctx.version.as_str()[1..].split('.').count() == 3;
        Ok(if ok {
            GateOutcome::pass("semantic version")
        } else {
            GateOutcome::fail(format!("{} is not vX.Y.Z", ctx.version))
        })
    });

    let manager = DefaultPromotionManager::builder()
        .config(Arc::new(InMemoryConfig::new(settings)?))
        .registry(registry.clone())
        .history(history.clone())
        .notifier(Arc::new(LogNotifier))
        .gate(EnvName::new("prod")?, Arc::new(semver))
        .build()?;

    // CI pushed two releases into dev.
    let repo = Repository::new("example/floe/app")?;
    for (v, content) in [("v1.0.0", b"first" as &[u8]), ("v1.1.0", b"second")] {
        registry
            .push_image(&repo, &Tag::new(v)?, &[content])
            .await?;
    }

    let ci = Actor::new("ci")?;
    let release = Actor::new("release-manager")?.with_groups(["release"]);
    for v in ["v1.0.0", "v1.1.0"] {
        manager
            .promote(PromotionRequest::new(
                "app",
                v,
                "dev",
                "staging",
                ci.clone(),
            )?)
            .await?;
        let r = manager
            .promote(PromotionRequest::new(
                "app",
                v,
                "staging",
                "prod",
                release.clone(),
            )?)
            .await?;
        println!(
            "{} {v} -> prod as {}",
            r.digest.short(),
            r.tags_written
                .iter()
                .map(Tag::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // An incident: lock prod, then roll back to v1.0.0 with a reason (break-glass).
    let prod = EnvName::new("prod")?;
    manager.lock(&prod, &release, "incident 7", None).await?;
    let mut rollback = RollbackRequest::new(
        "app",
        "prod",
        "v1.0.0",
        release.clone(),
        "v1.1.0 breaks checkout",
    )?;
    rollback.override_lock = true;
    let r = manager.rollback(rollback).await?;
    println!("rolled back prod to {} ({})", r.version, r.tags_written[0]);

    for s in manager.status(None).await? {
        let what: Vec<String> = s
            .deployments
            .iter()
            .map(|d| format!("{}:{} {}", d.artifact, d.version, d.digest.short()))
            .collect();
        println!(
            "{:8} {:30} {}",
            s.environment.as_str(),
            what.join(", "),
            s.lock
                .map(|l| format!("locked: {}", l.reason))
                .unwrap_or_default()
        );
    }

    let report = manager.verify().await?;
    println!(
        "audit chain: {} events, intact: {}",
        report.events,
        report.is_intact()
    );
    let mut out = Vec::new();
    let n = history
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await?;
    let verified = floe_promotion::history::verify_export(out.as_slice(), true)?;
    println!(
        "exported {n} events as JSON Lines; the export verifies: {}",
        verified.is_intact()
    );
    assert!(verified.is_intact());
    Ok(())
}
