//! The manifest loader: a complete manifest into settings, and one test per refusal, each
//! checking the error names the field and, where the YAML has one, the line and column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use floe_promotion::EnvironmentConfig;
use floe_promotion::config::{FreezeWindow, Strategy, Weekday, load_manifest, parse_manifest};
use floe_promotion::gate::{ScanSource, Severity, SignatureEnforcement};
use floe_promotion::{EnvName, Error};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

/// A small valid manifest; tests replace one line or append to it.
const BASE: &str = "\
artifacts:
  registry: { uri: oci://registry.example.com/floe }
  promotion:
    environments:
      - name: dev
      - name: prod
        gate_timeout_seconds: 60
";

/// The error for `yaml`, parsed as if read from `/cfg/manifest.yaml`.
fn refuse(yaml: &str) -> Error {
    match parse_manifest(yaml, Some(Path::new("/cfg/manifest.yaml"))) {
        Ok(config) => panic!("accepted: {:?}", config.settings()),
        Err(e) => e,
    }
}

/// The location and message of a configuration error; fails on any other error.
fn config_error(yaml: &str) -> (Option<(usize, usize)>, String) {
    match refuse(yaml) {
        Error::Config {
            file,
            location,
            message,
        } => {
            assert_eq!(file.as_deref(), Some(Path::new("/cfg/manifest.yaml")));
            assert!(!message.contains('\n'), "one line: {message}");
            (location, message)
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
}

fn with_prod(lines: &str) -> String {
    let indented: String = lines.lines().map(|l| format!("        {l}\n")).collect();
    format!("{BASE}{indented}")
}

fn env<'a>(
    config: &'a impl EnvironmentConfig,
    name: &str,
) -> &'a floe_promotion::config::Environment {
    config.environment(&EnvName::new(name).unwrap()).unwrap()
}

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
fn an_unknown_key_is_refused_with_its_line_column_and_the_expected_keys() {
    let (at, msg) = config_error(&BASE.replace("gate_timeout_seconds", "gate_timout_seconds"));
    assert_eq!(at, Some((7, 9)));
    assert!(msg.contains("unknown field `gate_timout_seconds`"), "{msg}");
    assert!(msg.contains("gate_timeout_seconds"), "{msg}");
    assert!(
        msg.contains("repository"),
        "the expected keys are listed: {msg}"
    );

    let (at, msg) = config_error(&format!("{BASE}    colour: blue\n"));
    assert_eq!(at, Some((8, 5)));
    assert!(msg.contains("unknown field `colour`"), "{msg}");
}

#[test]
fn a_type_error_is_located_and_names_the_field() {
    let (at, msg) =
        config_error(&BASE.replace("gate_timeout_seconds: 60", "gate_timeout_seconds: -5"));
    assert_eq!(at, Some((7, 31)));
    assert!(
        msg.starts_with("gate_timeout_seconds: expected a whole number"),
        "{msg}"
    );

    let (at, msg) = config_error(&with_prod("gates: { tests: maybe }"));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(msg.contains("tests"), "{msg}");
}

#[test]
fn an_unclosed_bracket_is_located() {
    let yaml = "artifacts:\n  promotion:\n    environments: [ { name: dev }\n";
    let (at, msg) = config_error(yaml);
    assert_eq!(at.map(|(l, _)| l), Some(3));
    assert!(msg.contains("unclosed bracket"), "{msg}");
}

#[test]
fn a_bad_duration_is_refused_naming_the_field_and_value() {
    let (at, msg) = config_error(&with_prod("policy: { minimum_soak: soon }"));
    assert_eq!(at, Some((8, 33)));
    assert!(
        msg.starts_with("environment prod: policy.minimum_soak: \"soon\" is not a duration"),
        "{msg}"
    );
}

#[test]
fn a_bad_regex_is_refused_at_load() {
    let (at, msg) = config_error(&with_prod(r"policy: { version_pattern: '^v(\d+' }"));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(msg.contains("policy.version_pattern"), "{msg}");
    assert!(
        msg.contains("not a valid regular expression: unclosed group"),
        "{msg}"
    );
}

#[test]
fn a_bad_severity_is_refused() {
    let (at, msg) = config_error(&with_prod(
        "gates:\n  security_scan: { report: r.json, block_on_severity: [CRITICAL, SEVERE] }",
    ));
    assert_eq!(at, Some((9, 74)));
    assert!(
        msg.contains("gates.security_scan.block_on_severity"),
        "{msg}"
    );
    assert!(msg.contains("\"SEVERE\""), "{msg}");
    assert!(
        msg.contains("expected UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL"),
        "{msg}"
    );
}

#[test]
fn a_bad_tag_template_is_refused() {
    let (at, msg) = config_error(&format!("{BASE}    tag_scheme:\n      pointer: latest\n"));
    assert_eq!(at, Some((9, 16)));
    assert!(
        msg.contains("tag_scheme.pointer: \"latest\" must contain {env}"),
        "{msg}"
    );

    let (_, msg) = config_error(&format!(
        "{BASE}    tag_scheme: {{ rollback: \"{{version}}/{{env}}/{{n}}\" }}\n"
    ));
    assert!(msg.contains("tag_scheme.rollback"), "{msg}");
    assert!(msg.contains("does not yield a valid tag"), "{msg}");
}

#[test]
fn a_bad_environment_name_is_refused() {
    let (at, msg) = config_error(&BASE.replace("name: prod", "name: \"pro d\""));
    assert_eq!(at, Some((6, 15)));
    assert!(
        msg.starts_with("environments[1].name: invalid environment name \"pro d\""),
        "{msg}"
    );
}

#[test]
fn a_duplicate_environment_is_refused_at_its_second_definition() {
    let (at, msg) = config_error(&BASE.replace("name: prod", "name: dev"));
    assert_eq!(at, Some((6, 15)));
    assert!(
        msg.contains("duplicate environment name \"dev\" (first defined at line 5)"),
        "{msg}"
    );
}

#[test]
fn an_approval_needing_more_approvers_than_listed_is_refused() {
    let (at, msg) = config_error(&with_prod(
        "approval: { rules: [{ name: release, required: 3, users: [a, b] }] }",
    ));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(
        msg.contains("environment prod: approval.rules[release].required: needs 3 approvers but only 2 users are listed"),
        "{msg}"
    );
    let (_, msg) = config_error(&with_prod(
        "approval: { rules: [{ name: release, required: 0, users: [a] }] }",
    ));
    assert!(
        msg.contains("approval.rules[release].required: must be at least 1"),
        "{msg}"
    );
    let (_, msg) = config_error(&with_prod(
        "approval: { rules: [{ name: r, required: 1, users: [a] }, { name: r, required: 1, groups: [g] }] }",
    ));
    assert!(msg.contains("two rules have this name"), "{msg}");
    let (_, msg) = config_error(&with_prod(
        "approval: { rules: [{ name: r, required: 1 }] }",
    ));
    assert!(msg.contains("nobody could approve"), "{msg}");
    let (_, msg) = config_error(&with_prod(
        "approval: { rules: [{ name: r, required: 1, users: [a] }], separation_of_duties: nobody }",
    ));
    assert!(msg.contains("separation_of_duties"), "{msg}");
    // A policy that can be met loads whole.
    let config = parse_manifest(
        &with_prod(
            "approval: { rules: [{ name: sec, required: 1, users: [a] }, { name: rel, required: 2, groups: [release] }], timeout: 12h, separation_of_duties: promoters }",
        ),
        None,
    )
    .unwrap();
    let prod = env(&config, "prod");
    let policy = prod.approval.as_ref().expect("approval policy");
    assert_eq!(policy.rules.len(), 2);
    assert_eq!(policy.rules[1].name, "rel");
    assert_eq!(policy.rules[1].required, 2);
    assert_eq!(policy.rules[1].groups, ["release"]);
    assert_eq!(policy.timeout, std::time::Duration::from_secs(12 * 3600));
    assert_eq!(
        policy.separation,
        floe_promotion::config::ApprovalSeparation::Promoters
    );
    let (_, msg) = config_error(&with_prod(
        "approval: { rules: [{ name: r, required: 1, users: [a] }], timeout: tomorrow }",
    ));
    assert!(
        msg.contains("approval.timeout: \"tomorrow\" is not a duration"),
        "{msg}"
    );
}

#[test]
fn an_unknown_allowed_source_is_refused() {
    let (at, msg) = config_error(&with_prod("policy: { allowed_sources: [dev, qa] }"));
    assert_eq!(at, Some((8, 42)));
    assert!(
        msg.contains("environment prod: policy.allowed_sources: unknown environment \"qa\" (known: dev, prod)"),
        "{msg}"
    );
    let (at, msg) = config_error(&with_prod("auto_promote: { from: qa, soak: 24h }"));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(
        msg.contains("auto_promote.from: unknown environment \"qa\""),
        "{msg}"
    );
}

#[test]
fn auto_promote_loads_with_its_soak_and_versions() {
    for key in ["auto_promote", "auto_promotion"] {
        let yaml = with_prod(&format!(
            "{key}: {{ from: dev, soak: 90m, versions: '^v[0-9]+\\.[0-9]+\\.[0-9]+$' }}"
        ));
        let config = parse_manifest(&yaml, Some(Path::new("/cfg/manifest.yaml"))).unwrap();
        let auto = env(&config, "prod").auto_promotion.clone().unwrap();
        assert_eq!(auto.from.as_str(), "dev");
        assert_eq!(auto.soak, std::time::Duration::from_secs(90 * 60));
        assert!(auto.admits(&floe_promotion::Tag::new("v1.2.3").unwrap()));
        assert!(!auto.admits(&floe_promotion::Tag::new("v1.2.3-rc1").unwrap()));
        assert!(env(&config, "dev").auto_promotion.is_none());
    }
    let yaml = with_prod("auto_promote: { from: dev }");
    let config = parse_manifest(&yaml, Some(Path::new("/cfg/manifest.yaml"))).unwrap();
    let auto = env(&config, "prod").auto_promotion.clone().unwrap();
    assert_eq!(
        auto.soak,
        std::time::Duration::ZERO,
        "no soak means at once"
    );
    assert!(auto.admits(&floe_promotion::Tag::new("anything").unwrap()));
}

#[test]
fn a_bad_auto_promote_is_refused_with_its_line() {
    let (at, msg) = config_error(&with_prod("auto_promote: { from: prod }"));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(
        msg.contains("auto_promote.from: prod does not come before prod"),
        "{msg}"
    );
    let (at, msg) = config_error(&with_prod("auto_promote: { from: dev, soak: soon }"));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(msg.contains("auto_promote.soak"), "{msg}");
    let (at, msg) = config_error(&with_prod("auto_promote: { from: dev, versions: 'v[' }"));
    assert_eq!(at.map(|(l, _)| l), Some(8));
    assert!(
        msg.contains("auto_promote.versions: `v[` is not a valid regular expression"),
        "{msg}"
    );
    let (_, msg) = config_error(&with_prod("auto_promote: { from: dev, sook: 1h }"));
    assert!(msg.contains("sook"), "{msg}");
}

#[test]
fn a_command_string_with_shell_syntax_is_refused() {
    for (bad, c) in [
        ("make lint; rm -rf /", ';'),
        ("check $(whoami)", '$'),
        ("check `id`", '`'),
        ("check 'quoted arg'", '\''),
        ("check a|b", '|'),
        ("check > out", '>'),
        ("check *.json", '*'),
    ] {
        let yaml = with_prod(&format!("gates:\n  lint: \"{bad}\""));
        let (at, msg) = config_error(&yaml);
        assert_eq!(at.map(|(l, _)| l), Some(9), "{bad}");
        assert!(msg.contains(&format!("contains `{c}`")), "{bad}: {msg}");
        assert!(msg.contains("never run through a shell"), "{msg}");
        assert!(msg.contains("gates.lint"), "{msg}");
    }
    // The same characters inside an argv list are plain arguments.
    let config =
        parse_manifest(&with_prod("gates:\n  lint: [check, \"a; b $(c)\"]"), None).unwrap();
    assert_eq!(
        env(&config, "prod").gates.commands[0].1.argv,
        ["check", "a; b $(c)"]
    );
    // gate_commands strings are checked the same way.
    let (_, msg) = config_error(&format!("{BASE}    gate_commands: {{ x: \"a && b\" }}\n"));
    assert!(msg.contains("gate_commands.x"), "{msg}");
}

#[test]
fn a_reference_to_an_undefined_gate_command_is_refused() {
    let (at, msg) = config_error(&with_prod("gates:\n  smoke: true"));
    assert_eq!(at, Some((9, 11)));
    assert!(
        msg.contains(
            "gates.smoke: true refers to promotion.gate_commands.smoke, which is not defined"
        ),
        "{msg}"
    );
    // false turns a gate off.
    let config = parse_manifest(&with_prod("gates:\n  smoke: false"), None).unwrap();
    assert!(env(&config, "prod").gates.commands.is_empty());
}

#[test]
fn webhooks_load() {
    let yaml = format!("{BASE}    webhooks:\n      - url: https://hooks.example.com/x\n");
    let config = parse_manifest(&yaml, None).expect("a webhook without a secret loads");
    assert_eq!(config.settings().webhooks.len(), 1);
    // An empty list asks for nothing.
    assert!(parse_manifest(&format!("{BASE}    webhooks: []\n"), None).is_ok());
}

#[test]
fn a_canary_strategy_loads_its_steps() {
    let yaml = with_prod(
        "strategy: { canary: { steps: [{ weight: 10, pause: 1h }, { weight: 50 }, { weight: 100 }] } }",
    );
    let config = parse_manifest(&yaml, Some(Path::new("/cfg/manifest.yaml"))).unwrap();
    let Strategy::Canary { steps } = &env(&config, "prod").strategy else {
        panic!("{:?}", env(&config, "prod").strategy)
    };
    let got: Vec<_> = steps.iter().map(|s| (s.weight, s.pause)).collect();
    assert_eq!(
        got,
        [
            (10, Some(Duration::from_secs(3600))),
            (50, None),
            (100, None)
        ]
    );
}

#[test]
fn blue_green_loads() {
    for (yaml, auto_switch) in [
        ("strategy: blue_green", false),
        ("strategy: { blue_green: { auto_switch: true } }", true),
        ("strategy: { blue_green: { auto_switch: false } }", false),
    ] {
        let config = parse_manifest(&with_prod(yaml), None).expect(yaml);
        assert_eq!(
            env(&config, "prod").strategy,
            Strategy::BlueGreen { auto_switch },
            "{yaml}"
        );
    }
}

#[test]
fn malformed_strategies_are_refused_with_their_line() {
    for (yaml, expected) in [
        (
            "strategy: { canary: { steps: [{ weight: 50 }, { weight: 10 }] } }",
            "strategy.canary.steps[1].weight: 10 must be more than the step before (50)",
        ),
        (
            "strategy: { canary: { steps: [{ weight: 10 }, { weight: 50 }] } }",
            "strategy.canary.steps[1].weight: the last step must be at 100, not 50",
        ),
        (
            "strategy: { canary: { steps: [{ weight: 0 }, { weight: 100 }] } }",
            "strategy.canary.steps[0].weight: 0 is not a percentage from 1 to 100",
        ),
        (
            "strategy: { canary: { steps: [{ weight: 10, pause: soon }, { weight: 100 }] } }",
            "strategy.canary.steps[0].pause",
        ),
        (
            "strategy: { canary: { steps: [{ weight: 100, pause: 1h }] } }",
            "the last step (100) ends the canary and takes no pause",
        ),
        (
            "strategy: { canary: { steps: [] } }",
            "strategy.canary.steps: at least one step is needed",
        ),
        ("strategy: canary", "strategy: canary needs steps"),
        (
            "strategy: rolling",
            "strategy: unknown strategy \"rolling\"",
        ),
        (
            "strategy: { canary: { steps: [{ weight: 100 }] }, blue_green: {} }",
            "name exactly one strategy",
        ),
        (
            "strategy: { blue_green: { auto_swich: true } }",
            "auto_swich",
        ),
    ] {
        let (at, msg) = config_error(&with_prod(yaml));
        assert_eq!(at.map(|(l, _)| l), Some(8), "{yaml}: {msg}");
        assert!(msg.contains(expected), "{yaml}: {msg}");
    }
}

#[test]
fn no_environments_is_refused() {
    let (_, msg) = config_error("artifacts:\n  promotion:\n    environments: []\n");
    assert!(
        msg.contains("at least one environment is required"),
        "{msg}"
    );
    let (_, msg) = config_error("artifacts:\n  promotion:\n    allow_skip: true\n");
    assert!(
        msg.contains("at least one environment is required"),
        "{msg}"
    );
    let (at, msg) = config_error("# nothing here\n\n");
    assert_eq!(at, None);
    assert!(msg.contains("the manifest is empty"), "{msg}");
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

#[test]
fn other_bad_values_name_their_field() {
    let cases: &[(&str, &str)] = &[
        ("gates:\n  security_scan: true", "names no scanner"),
        (
            "gates:\n  security_scan: { severity: [HIGH] }",
            "unknown field `severity`",
        ),
        (
            "gates:\n  security_scan: { block_on_severity: [HIGH] }",
            "needs a scanner",
        ),
        (
            "gates:\n  security_scan: { report: a.json, block_on_severity: [] }",
            "at least one severity",
        ),
        (
            "gates:\n  policy_compliance: { max_size: lots }",
            "policy_compliance.max_size: \"lots\" is not a size",
        ),
        (
            "gates:\n  \"bad name\": [x]",
            "invalid gate name \"bad name\"",
        ),
        ("gates:\n  lint: { command: [] }", "needs a program"),
        (
            "gates:\n  lint: { command: [x], timeout_seconds: 0 }",
            "gates.lint.timeout_seconds: must be at least 1",
        ),
        (
            "repository: \"https://registry.example.com/x\"",
            "is not a repository location",
        ),
        (
            "freeze_windows: [{ days: [someday], from: \"00:00\", to: \"01:00\" }]",
            "\"someday\" is not a day",
        ),
        (
            "freeze_windows: [{ start: \"2025-12-20\", end: \"2026-01-02T00:00:00Z\" }]",
            "freeze_windows[0].start",
        ),
        (
            "freeze_windows: [{ days: [sat], from: \"22:00\", to: \"02:00\" }]",
            "must be after from",
        ),
        (
            "freeze_windows: [{ start: \"2025-12-20T00:00:00Z\", to: \"01:00\" }]",
            "expected either",
        ),
        (
            "authorization: { allowed_users: [a] }",
            "unknown field `allowed_users`",
        ),
    ];
    for (lines, expected) in cases {
        let (at, msg) = config_error(&with_prod(lines));
        assert!(msg.contains(expected), "{lines}: {msg}");
        assert!(
            at.is_some_and(|(l, _)| l >= 8),
            "{lines}: located {at:?}: {msg}"
        );
    }
    let (at, msg) = config_error(&format!("{BASE}    signature_enforcement: strict\n"));
    assert_eq!(at, Some((8, 28)));
    assert!(msg.contains("signature_enforcement"), "{msg}");
    let (_, msg) = config_error(&format!(
        "{BASE}    insecure_registries: [\"http://x:5000\"]\n"
    ));
    assert!(msg.contains("not a registry host"), "{msg}");
    let (at, msg) = config_error(&BASE.replace(
        "oci://registry.example.com/floe",
        "https://user:secret@registry.example.com",
    ));
    assert_eq!(at, Some((2, 20)));
    assert!(
        msg.starts_with("artifacts.registry.uri: a https:// URL is not a repository location"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "{msg}");
}

#[test]
fn the_attestation_key_loads_relative_to_the_manifest() {
    let yaml = format!(
        "{BASE}    attestation: {{ key: keys/floe.key, key_password_env: FLOE_KEY_PASSWORD }}\n"
    );
    let config = parse_manifest(&yaml, Some(Path::new("/cfg/manifest.yaml"))).expect("loads");
    let attestation = config.settings().attestation.clone().expect("configured");
    assert_eq!(attestation.key, Path::new("/cfg/keys/floe.key"));
    assert_eq!(
        attestation.key_password_env.as_deref(),
        Some("FLOE_KEY_PASSWORD")
    );
    // Without the section nothing signs.
    assert!(
        parse_manifest(BASE, None)
            .unwrap()
            .settings()
            .attestation
            .is_none()
    );
}

#[test]
fn a_bad_attestation_section_is_refused_where_it_was_written() {
    for (section, needle) in [
        ("attestation: { key: '' }", "attestation.key: an empty path"),
        (
            "attestation: { key: k.key, key_password_env: 'NOT A NAME' }",
            "attestation.key_password_env",
        ),
        (
            "attestation: { key: k.key, password: hunter2 }",
            "unknown field",
        ),
        ("attestation: { key_password_env: X }", "key"),
    ] {
        let yaml = format!("{BASE}    {section}\n");
        let err = parse_manifest(&yaml, Some(Path::new("/cfg/manifest.yaml")))
            .expect_err(section)
            .to_string();
        assert!(err.contains(needle), "{section}: {err}");
        assert!(
            err.contains("manifest.yaml:"),
            "{section}: no location in {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}
