//! A complete manifest loads into the expected settings; relative paths without a file; a
//! missing file is an I/O error naming its path.

use std::path::PathBuf;
use std::time::Duration;

use floe_promotion::EnvironmentConfig;
use floe_promotion::config::{FreezeWindow, Strategy, Weekday, load_manifest, parse_manifest};
use floe_promotion::gate::{ScanSource, Severity, SignatureEnforcement};
use floe_promotion::{EnvName, Error};

use super::{env, fixtures};

#[test]
fn a_complete_manifest_loads_into_the_expected_settings() {
    let path = fixtures().join("manifest.yaml");
    let config = load_manifest(&path).unwrap();
    let s = config.settings();
    let dir = fixtures();

    assert_eq!(s.source.as_deref(), Some(path.as_path()));
    assert_eq!(
        s.registry.as_ref().unwrap().as_str(),
        "registry.example.com/floe"
    );
    assert_eq!(s.default_timeout, Duration::from_secs(300));
    assert_eq!(s.signature_enforcement, SignatureEnforcement::Warn);
    assert_eq!(s.trusted_keys, vec![dir.join("keys/cosign.pub")]);
    assert_eq!(s.insecure_registries, vec!["127.0.0.1:5000".to_string()]);
    assert_eq!(s.registry_timeout, Some(Duration::from_secs(45)));
    assert!(!s.allow_skip);
    assert_eq!(s.lease_ttl, Duration::from_secs(900));
    assert_eq!(s.tag_scheme.environment, "{version}-{env}");
    assert_eq!(s.tag_scheme.pointer, "current-{env}");
    assert_eq!(s.tag_scheme.rollback, "{version}-{env}-rb{n}");
    let names: Vec<&str> = s.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "staging", "prod"]);

    let dev = env(&config, "dev");
    assert_eq!(
        dev.repository.as_ref().unwrap().as_str(),
        format!("oci-layout:{}", dir.join("registry/dev").display())
    );
    assert_eq!(dev.gates.commands.len(), 1);
    assert_eq!(dev.gates.commands[0].0, "lint");
    assert_eq!(dev.gates.commands[0].1.argv, ["make", "lint"]);
    assert_eq!(dev.gates.commands[0].1.timeout, None);
    assert!(!dev.gates.tests && dev.gates.security_scan.is_none());
    assert_eq!(dev.gate_timeout, None);

    let staging = env(&config, "staging");
    assert_eq!(
        staging.repository.as_ref().unwrap().as_str(),
        "registry.example.com/floe/staging"
    );
    assert_eq!(staging.gate_timeout, Some(Duration::from_secs(600)));
    let g = &staging.gates;
    assert!(g.tests);
    let pc = g.policy_compliance.as_ref().unwrap();
    assert!(pc.require_evidence && pc.required_annotations.is_empty());
    let scan = g.security_scan.as_ref().unwrap();
    match &scan.source {
        ScanSource::Command(spec) => {
            assert_eq!(
                spec.argv,
                [
                    "trivy",
                    "image",
                    "--format",
                    "json",
                    "--exit-code",
                    "1",
                    "${ARTIFACT_REF}"
                ]
            );
            assert_eq!(spec.timeout, Some(Duration::from_secs(900)));
        }
        other => panic!("expected a command, got {other:?}"),
    }
    assert_eq!(scan.block_on_severity, [Severity::Critical, Severity::High]);
    assert!(scan.ignore_unfixed);
    let commands: Vec<(&str, Vec<&str>, Option<Duration>)> = g
        .commands
        .iter()
        .map(|(n, c)| {
            (
                n.as_str(),
                c.argv.iter().map(String::as_str).collect(),
                c.timeout,
            )
        })
        .collect();
    // A relative program is the manifest's neighbour; commands run in the manifest's directory.
    let smoke = fixtures().join("scripts/smoke.sh");
    for (_, spec) in &g.commands {
        assert_eq!(spec.working_dir.as_deref(), Some(fixtures().as_path()));
    }
    assert_eq!(
        commands,
        [
            (
                "smoke",
                vec![smoke.to_str().unwrap(), "--target", "${ARTIFACT_REF}"],
                Some(Duration::from_secs(120))
            ),
            (
                "change-ticket",
                vec!["ticket-check", "--digest", "${ARTIFACT_DIGEST}"],
                None
            ),
        ]
    );
    assert_eq!(staging.authorization.allowed_groups, ["release-managers"]);
    assert!(staging.authorization.allowed_operators.is_empty());
    assert!(staging.authorization.separation_of_duties);
    let pattern = staging.policy.version_pattern.as_ref().unwrap();
    assert!(pattern.is_match("v1.2.3") && !pattern.is_match("v1.2"));
    assert_eq!(staging.policy.minimum_soak, Some(Duration::from_secs(5400)));
    assert_eq!(
        staging.policy.allowed_sources,
        [EnvName::new("dev").unwrap()]
    );

    let prod = env(&config, "prod");
    assert_eq!(prod.repository, None);
    assert_eq!(
        config
            .repository(&prod.name, &"app".parse().unwrap())
            .unwrap()
            .as_str(),
        "registry.example.com/floe/app"
    );
    assert_eq!(prod.gates.signature, Some(true));
    let rules = prod.gates.policy_compliance.as_ref().unwrap();
    assert!(rules.require_evidence);
    assert_eq!(
        rules
            .required_annotations
            .get("org.opencontainers.image.source"),
        Some(&None)
    );
    assert_eq!(
        rules.required_annotations.get("com.example.reviewed"),
        Some(&Some("yes".to_string()))
    );
    assert_eq!(
        rules.allowed_media_types,
        ["application/vnd.oci.image.manifest.v1+json"]
    );
    assert_eq!(rules.max_size_bytes, Some(50 * 1024 * 1024));
    let scan = prod.gates.security_scan.as_ref().unwrap();
    assert_eq!(
        scan.source,
        ScanSource::Report(dir.join("reports/prod-scan.json"))
    );
    assert_eq!(scan.block_on_severity, [Severity::Critical]);
    assert!(!scan.ignore_unfixed);
    assert_eq!(prod.gates.commands[0].0, "load-test");
    assert_eq!(
        prod.gates.commands[0].1.timeout,
        Some(Duration::from_secs(1800))
    );
    assert_eq!(
        prod.authorization.allowed_operators,
        ["alice", "ci-release"]
    );
    assert_eq!(
        prod.policy.minimum_soak,
        Some(Duration::from_secs(24 * 3600))
    );
    assert_eq!(prod.freeze_windows.len(), 2);
    match &prod.freeze_windows[0] {
        FreezeWindow::Absolute { start, end, reason } => {
            assert_eq!(start.to_rfc3339(), "2025-12-20T00:00:00+00:00");
            assert_eq!(end.to_rfc3339(), "2026-01-02T00:00:00+00:00");
            assert_eq!(reason, "year-end freeze");
        }
        other => panic!("{other:?}"),
    }
    match &prod.freeze_windows[1] {
        FreezeWindow::Weekly {
            days,
            start,
            end,
            reason,
        } => {
            assert_eq!(days, &[Weekday::Sat, Weekday::Sun]);
            assert_eq!(start.to_string(), "00:00:00");
            assert_eq!(end.to_string(), "23:59:00");
            assert_eq!(reason, "no weekend releases");
        }
        other => panic!("{other:?}"),
    }
    let saturday = chrono::DateTime::parse_from_rfc3339("2025-06-07T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        prod.frozen_at(saturday).unwrap().reason(),
        "no weekend releases"
    );
    assert_eq!(prod.strategy, Strategy::Direct);
    assert!(prod.approval.is_none() && prod.auto_promotion.is_none());
}

#[test]
fn without_a_file_relative_paths_stay_relative() {
    let yaml = "artifacts:\n  promotion:\n    trusted_keys: [./keys/a.pub]\n    environments:\n      - name: dev\n        repository: oci-layout:./reg/dev\n";
    let config = parse_manifest(yaml, None).unwrap();
    assert_eq!(
        config.environments()[0]
            .repository
            .as_ref()
            .unwrap()
            .as_str(),
        "oci-layout:reg/dev"
    );
    assert_eq!(
        config.settings().trusted_keys,
        [PathBuf::from("keys/a.pub")]
    );
    assert_eq!(config.settings().registry, None);
}

#[test]
fn a_missing_file_is_an_io_error_naming_the_path() {
    let path = fixtures().join("absent.yaml");
    match load_manifest(&path).unwrap_err() {
        e @ Error::Io { .. } => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
