//! Gates declared in a manifest, run by the manager: a command gate and a scan gate reading a
//! report next to the manifest decide whether a promotion happens.

use std::sync::Arc;

use floe_promotion::config::parse_manifest;
use floe_promotion::gate::GateStatus;
use floe_promotion::{
    Actor, DefaultPromotionManager, Error, InMemoryRegistry, PromotionRequest, Promotions,
    Repository, Tag,
};

const REPORT: &str = r#"{
  "SchemaVersion": 2,
  "ArtifactName": "app",
  "Results": [{ "Target": "app", "Vulnerabilities": [
    { "VulnerabilityID": "CVE-2024-0001", "PkgName": "libfoo", "FixedVersion": "", "Status": "affected", "Severity": "CRITICAL" },
    { "VulnerabilityID": "CVE-2024-0002", "PkgName": "libbar", "FixedVersion": "1.2", "Status": "fixed", "Severity": "MEDIUM" }
  ]}]
}"#;

async fn promote(manifest: &str, dir: &std::path::Path) -> Result<(), Error> {
    let path = dir.join("manifest.yaml");
    std::fs::write(&path, manifest).unwrap();
    let config = floe_promotion::config::load_manifest(&path)?;
    let registry = Arc::new(InMemoryRegistry::new());
    registry
        .push_image(
            &Repository::new("mem/floe/app").unwrap(),
            &Tag::new("v1.0.0").unwrap(),
            &[b"layer"],
        )
        .await?;
    let manager = DefaultPromotionManager::builder()
        .config(Arc::new(config))
        .registry(registry)
        .build()?;
    manager
        .promote(PromotionRequest::new(
            "app",
            "v1.0.0",
            "dev",
            "staging",
            Actor::new("ci")?,
        )?)
        .await
        .map(|_| ())
}

fn manifest(gates: &str) -> String {
    format!(
        "artifacts:\n  registry: {{ uri: mem/floe }}\n  promotion:\n    gate_commands:\n      ok: [\"true\"]\n    environments:\n      - name: dev\n      - name: staging\n        gates:\n{gates}"
    )
}

#[tokio::test]
async fn a_failing_command_gate_from_the_manifest_blocks_the_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = manifest(
        "          ok: true\n          ticket: [/bin/sh, -c, \"echo no ticket for $FLOE_VERSION >&2; exit 4\"]\n",
    );
    match promote(&yaml, dir.path()).await.unwrap_err() {
        Error::GateFailed { failed } => {
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].gate, "ticket");
            assert_eq!(failed[0].status, GateStatus::Failed);
            assert!(
                failed[0]
                    .message
                    .ends_with("exited with code 4: no ticket for v1.0.0"),
                "{}",
                failed[0].message
            );
        }
        other => panic!("{other:?}"),
    }
    promote(&manifest("          ok: true\n"), dir.path())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_scan_report_next_to_the_manifest_is_judged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("reports")).unwrap();
    std::fs::write(dir.path().join("reports/scan.json"), REPORT).unwrap();
    let blocking = manifest(
        "          security_scan: { report: reports/scan.json, block_on_severity: [CRITICAL] }\n",
    );
    match promote(&blocking, dir.path()).await.unwrap_err() {
        Error::GateFailed { failed } => {
            assert_eq!(failed[0].gate, "security_scan");
            assert!(
                failed[0].message.contains("CVE-2024-0001 in libfoo"),
                "{}",
                failed[0].message
            );
        }
        other => panic!("{other:?}"),
    }
    // The only critical finding has no fix.
    let lenient = manifest(
        "          security_scan: { report: ./reports/scan.json, block_on_severity: [CRITICAL], ignore_unfixed: true }\n",
    );
    promote(&lenient, dir.path()).await.unwrap();
    assert!(parse_manifest(&lenient, None).is_ok());
}
