//! Bad values refused naming their field: durations, regular expressions, severities, tag
//! templates, environment names, allowed sources, gate commands, and the rest.

use floe_promotion::config::parse_manifest;

use super::{BASE, config_error, env, with_prod};

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
