//! The security scan gate over committed Trivy and Grype reports, from files and from real
//! scanner-like commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floe_promotion::config::ScanSettings;
use floe_promotion::gate::{
    CommandSpec, GateContext, GateOutcome, GateStatus, PromotionGate, ScanGate, ScanSource,
    Severity,
};
use floe_promotion::registry::Manifest;
use floe_promotion::{
    Actor, ArtifactName, EnvName, Error, InMemoryHistory, InMemoryRegistry, Repository, Tag,
};

use Severity::{Critical, High, Low, Medium};

fn context() -> GateContext {
    let manifest = Manifest::from_bytes(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec(),
        None,
    )
    .unwrap();
    GateContext {
        artifact: ArtifactName::new("app").unwrap(),
        version: Tag::new("v1.2.3").unwrap(),
        digest: manifest.digest().clone(),
        manifest,
        source: Repository::new("registry.example.com/floe/dev/app").unwrap(),
        from: EnvName::new("dev").unwrap(),
        to: EnvName::new("staging").unwrap(),
        actor: Actor::new("ci").unwrap(),
        now: chrono::Utc::now(),
        registry: Arc::new(InMemoryRegistry::new()),
        history: Arc::new(InMemoryHistory::new()),
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

fn settings(source: ScanSource, block: &[Severity], ignore_unfixed: bool) -> ScanSettings {
    ScanSettings {
        source,
        block_on_severity: block.to_vec(),
        ignore_unfixed,
    }
}

async fn scan_file(name: &str, block: &[Severity], ignore_unfixed: bool) -> GateOutcome {
    ScanGate::new(settings(
        ScanSource::Report(fixture(name)),
        block,
        ignore_unfixed,
    ))
    .evaluate(&context())
    .await
    .unwrap()
}

fn command(argv: &[&str]) -> ScanSource {
    ScanSource::Command(CommandSpec::new(argv.iter().copied()).unwrap())
}

#[tokio::test]
async fn trivy_findings_at_a_blocking_severity_fail_with_counts_and_ids() {
    let out = scan_file("trivy-image.json", &[Critical, High], false).await;
    assert_eq!(out.status, GateStatus::Failed, "{}", out.message);
    let m = &out.message;
    assert!(
        m.starts_with("trivy report: 4 finding(s) at CRITICAL, HIGH"),
        "{m}"
    );
    assert!(m.contains("CVE-2024-5535 in libssl3"), "{m}");
    assert!(m.contains("CVE-2023-45853 in zlib1g"), "{m}");
    assert!(m.contains("CVE-2023-44487 in golang.org/x/net"), "{m}");
    assert!(m.contains("2 CRITICAL, 2 HIGH, 1 MEDIUM, 1 LOW"), "{m}");
}

#[tokio::test]
async fn trivy_ignore_unfixed_skips_findings_without_a_fix() {
    // CVE-2023-45853 (will_not_fix, no FixedVersion) is the only other critical.
    let out = scan_file("trivy-image.json", &[Critical], true).await;
    assert_eq!(out.status, GateStatus::Failed, "{}", out.message);
    assert!(
        out.message
            .contains("1 finding(s) at CRITICAL: CVE-2024-5535 in libssl3 ("),
        "{}",
        out.message
    );
    assert!(!out.message.contains("CVE-2023-45853"), "{}", out.message);
    assert!(out.message.contains("3 unfixed ignored"), "{}", out.message);

    // The only LOW finding (apt, status affected) has no fix.
    let out = scan_file("trivy-image.json", &[Low], true).await;
    assert_eq!(out.status, GateStatus::Passed, "{}", out.message);
    let out = scan_file("trivy-image.json", &[Low], false).await;
    assert_eq!(out.status, GateStatus::Failed, "{}", out.message);
    assert!(
        out.message.contains("CVE-2011-3374 in apt"),
        "{}",
        out.message
    );

    // HIGH: libc6 has an empty FixedVersion and status affected; x/net is fixed.
    let out = scan_file("trivy-image.json", &[High], true).await;
    assert!(
        out.message.contains("1 finding(s) at HIGH: CVE-2023-44487"),
        "{}",
        out.message
    );
}

#[tokio::test]
async fn a_report_without_blocking_findings_passes() {
    let out = scan_file("trivy-image.json", &[Medium], true).await;
    assert_eq!(out.status, GateStatus::Failed, "{}", out.message);
    let out = scan_file("trivy-clean.json", &[Critical, High, Medium, Low], false).await;
    assert_eq!(out.status, GateStatus::Passed, "{}", out.message);
    assert!(out.message.contains("no findings"), "{}", out.message);
}

#[tokio::test]
async fn grype_findings_are_judged_the_same_way() {
    let out = scan_file("grype-image.json", &[Critical, High], false).await;
    assert_eq!(out.status, GateStatus::Failed, "{}", out.message);
    assert!(
        out.message
            .starts_with("grype report: 4 finding(s) at CRITICAL, HIGH"),
        "{}",
        out.message
    );
    assert!(
        out.message.contains("2 CRITICAL, 2 HIGH, 1 LOW"),
        "{}",
        out.message
    );

    let out = scan_file("grype-image.json", &[Critical, High], true).await;
    assert!(out.message.contains("2 finding(s)"), "{}", out.message);
    assert!(
        out.message.contains("CVE-2024-5535 in libssl3"),
        "{}",
        out.message
    );
    assert!(
        out.message
            .contains("GHSA-qppj-fm5r-hxr3 in golang.org/x/net"),
        "{}",
        out.message
    );
    assert!(
        !out.message.contains("CVE-2023-45853"),
        "wont-fix is unfixed: {}",
        out.message
    );
    assert!(
        !out.message.contains("CVE-2024-2961"),
        "not-fixed is unfixed: {}",
        out.message
    );

    // Grype's "Negligible" counts as LOW; it has no fix.
    let out = scan_file("grype-image.json", &[Low], false).await;
    assert_eq!(out.status, GateStatus::Failed, "{}", out.message);
    let out = scan_file("grype-image.json", &[Low], true).await;
    assert_eq!(out.status, GateStatus::Passed, "{}", out.message);
}

#[tokio::test]
async fn a_malformed_report_is_an_error_naming_the_file_and_the_json_problem() {
    let gate = ScanGate::new(settings(
        ScanSource::Report(fixture("malformed.json")),
        &[Critical],
        false,
    ));
    let err = gate.evaluate(&context()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{text}");
    assert!(text.contains("malformed.json"), "{text}");
    assert!(text.contains("invalid JSON"), "{text}");
    assert!(text.contains("line 5"), "{text}");
}

#[tokio::test]
async fn json_of_another_shape_is_refused() {
    let gate = ScanGate::new(settings(
        ScanSource::Report(fixture("not-a-report.json")),
        &[Critical],
        false,
    ));
    let text = gate.evaluate(&context()).await.unwrap_err().to_string();
    assert!(text.contains("not-a-report.json"), "{text}");
    assert!(text.contains("not a Trivy or Grype JSON report"), "{text}");
}

#[tokio::test]
async fn a_missing_report_is_an_io_error_naming_it() {
    let gate = ScanGate::new(settings(
        ScanSource::Report(fixture("absent.json")),
        &[Critical],
        false,
    ));
    match gate.evaluate(&context()).await.unwrap_err() {
        Error::Io { context, source } => {
            assert!(context.contains("absent.json"), "{context}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[tokio::test]
async fn a_scanner_command_report_is_read_from_stdout() {
    let report = fixture("grype-image.json");
    let report = report.to_str().unwrap();
    let gate = ScanGate::new(settings(command(&["cat", report]), &[Critical], true));
    let out = gate.evaluate(&context()).await.unwrap();
    assert_eq!(out.status, GateStatus::Failed);
    assert!(out.message.contains("CVE-2024-5535"), "{}", out.message);
}

#[tokio::test]
async fn a_scanner_exiting_nonzero_with_a_report_is_judged_by_the_report() {
    // Like `trivy --exit-code 1`: the report is printed, the exit code says "found something".
    let script = format!("cat {}; exit 1", fixture("trivy-image.json").display());
    let gate = ScanGate::new(settings(command(&["/bin/sh", "-c", &script]), &[Low], true));
    let out = gate.evaluate(&context()).await.unwrap();
    assert_eq!(out.status, GateStatus::Passed, "{}", out.message);
    assert!(
        out.message.contains("the scanner exited with code 1"),
        "{}",
        out.message
    );
}

#[tokio::test]
async fn a_scanner_that_fails_without_a_report_is_an_error() {
    let gate = ScanGate::new(settings(
        command(&["/bin/sh", "-c", "echo 'FATAL image not found' >&2; exit 2"]),
        &[Critical],
        false,
    ));
    let text = gate.evaluate(&context()).await.unwrap_err().to_string();
    assert!(text.contains("scanner command \"/bin/sh\""), "{text}");
    assert!(
        text.contains("exited with code 2: FATAL image not found"),
        "{text}"
    );
}

#[tokio::test]
async fn a_scanner_printing_garbage_is_an_error_naming_the_command() {
    let gate = ScanGate::new(settings(
        command(&["echo", "Scanning..."]),
        &[Critical],
        false,
    ));
    let text = gate.evaluate(&context()).await.unwrap_err().to_string();
    assert!(text.contains("scanner command \"echo\""), "{text}");
    assert!(text.contains("invalid JSON"), "{text}");
}

#[tokio::test]
async fn an_oversized_report_is_refused_without_being_kept() {
    let gate = ScanGate::new(settings(
        command(&["head", "-c", "70000000", "/dev/zero"]),
        &[Critical],
        false,
    ));
    let text = gate.evaluate(&context()).await.unwrap_err().to_string();
    assert!(text.contains("larger than 67108864 bytes"), "{text}");
}

#[tokio::test]
async fn the_digest_placeholder_reaches_the_scanner_and_its_timeout_applies() {
    let ctx = context();
    // The scanner echoes a report only when it received the right reference.
    let script = r#"[ "$1" = "$FLOE_ARTIFACT_REF" ] && echo '{"SchemaVersion":2}'"#;
    let gate = ScanGate::new(settings(
        command(&["/bin/sh", "-c", script, "sh", "${ARTIFACT_REF}"]),
        &[Critical],
        false,
    ));
    assert_eq!(
        gate.evaluate(&ctx).await.unwrap().status,
        GateStatus::Passed
    );

    let spec = CommandSpec::new(["sleep", "30"])
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let gate = ScanGate::new(settings(ScanSource::Command(spec), &[Critical], false));
    assert!(gate.timeout().is_some());
    let out = gate.evaluate(&ctx).await.unwrap();
    assert_eq!(out.status, GateStatus::Failed);
    assert!(
        out.message.contains("timed out after 200ms"),
        "{}",
        out.message
    );
}
