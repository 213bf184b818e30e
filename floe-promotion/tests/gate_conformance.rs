//! The `PromotionGate` conformance suite against every built-in gate and a closure gate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floe_promotion::config::ScanSettings;
use floe_promotion::gate::{
    CommandGate, CommandSpec, EvidenceGate, GateOutcome, PolicyGate, PolicyRules, PromotionGate,
    ScanGate, ScanSource, Severity, SignatureEnforcement, SignatureGate, SignatureReport,
    SignatureVerifier, SoakGate, gate_fn,
};
use floe_promotion::registry::EvidenceKind;
use floe_promotion::testing::gate::*;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::{ArtifactRegistry, Digest, Repository, Result, async_trait};

/// Verifies exactly one digest, as a signature bound to that digest would.
#[derive(Debug)]
struct SignedDigest(Digest);

#[async_trait]
impl SignatureVerifier for SignedDigest {
    async fn verify(
        &self,
        _registry: &dyn ArtifactRegistry,
        _repo: &Repository,
        digest: &Digest,
    ) -> Result<SignatureReport> {
        Ok(SignatureReport {
            verified: digest == &self.0,
            message: format!("checked {digest}"),
        })
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

async fn gates(p: &TestPipeline) -> Vec<Arc<dyn PromotionGate>> {
    let digest = p.release_digest("app", "v1").await;
    vec![
        Arc::new(EvidenceGate::new(EvidenceKind::Tests)),
        Arc::new(PolicyGate::new(
            PolicyRules {
                required_annotations: BTreeMap::from([("org.example".to_string(), None)]),
                max_size_bytes: Some(1 << 20),
                ..Default::default()
            },
            None,
        )),
        Arc::new(SoakGate::new(Duration::from_secs(60))),
        Arc::new(SignatureGate::new(
            Arc::new(SignedDigest(digest)),
            SignatureEnforcement::Enforce,
        )),
        Arc::new(ScanGate::new(ScanSettings {
            source: ScanSource::Report(fixture("trivy-image.json")),
            block_on_severity: vec![Severity::Critical],
            ignore_unfixed: false,
        })),
        Arc::new(CommandGate::new(
            "smoke",
            CommandSpec::new(["/bin/sh", "-c", "exit 0"]).unwrap(),
        )),
        Arc::new(gate_fn("closure", |ctx| async move {
            Ok(GateOutcome::pass(format!("saw {}", ctx.digest)))
        })),
    ]
}

async fn pipeline() -> TestPipeline {
    let p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.push_release("app", "v1", b"one").await;
    p
}

#[tokio::test]
async fn every_gate_has_a_stable_name() {
    let p = pipeline().await;
    for gate in gates(&p).await {
        name_is_stable(gate.as_ref());
    }
}

#[tokio::test]
async fn every_gate_reads_only() {
    let p = pipeline().await;
    let ctx = p.gate_context("app", "v1", "dev", "staging", "ci").await;
    for gate in gates(&p).await {
        evaluate_reads_only(gate.as_ref(), &p, &ctx).await;
    }
}

#[tokio::test]
async fn every_gate_can_be_cancelled() {
    let p = pipeline().await;
    let ctx = p.gate_context("app", "v1", "dev", "staging", "ci").await;
    for gate in gates(&p).await {
        evaluate_can_be_cancelled(gate.as_ref(), &ctx).await;
    }
}

#[tokio::test]
async fn every_gate_binds_to_the_digest() {
    let p = pipeline().await;
    let ctx = p.gate_context("app", "v1", "dev", "staging", "ci").await;
    for gate in gates(&p).await {
        evaluate_binds_to_the_digest(gate.as_ref(), &p, &ctx).await;
    }
}

#[tokio::test]
async fn the_signature_gate_fails_for_another_digest() {
    let p = pipeline().await;
    let ctx = p.gate_context("app", "v1", "dev", "staging", "ci").await;
    let gate = SignatureGate::new(
        Arc::new(SignedDigest(Digest::of(b"another"))),
        SignatureEnforcement::Enforce,
    );
    assert_eq!(
        evaluate_reads_only(&gate, &p, &ctx).await,
        Some(floe_promotion::gate::GateStatus::Failed)
    );
    let warn = SignatureGate::new(
        Arc::new(SignedDigest(Digest::of(b"another"))),
        SignatureEnforcement::Warn,
    );
    assert_eq!(
        evaluate_reads_only(&warn, &p, &ctx).await,
        Some(floe_promotion::gate::GateStatus::Warned)
    );
}

#[tokio::test]
async fn a_gate_timeout_replaces_the_default() {
    let spec = CommandSpec::new(["/bin/true"])
        .unwrap()
        .with_timeout(Duration::from_secs(3));
    let gate = CommandGate::new("t", spec);
    assert!(gate.timeout().unwrap() >= Duration::from_secs(3));
    assert_eq!(EvidenceGate::new(EvidenceKind::Tests).timeout(), None);
}
