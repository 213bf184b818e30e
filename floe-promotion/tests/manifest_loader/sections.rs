//! The optional sections (approval, auto-promotion, webhooks, strategies, attestation): each
//! loads, and each is refused where it was written when malformed.

use std::path::Path;
use std::time::Duration;

use floe_promotion::EnvironmentConfig;
use floe_promotion::config::{Strategy, parse_manifest};

use super::{BASE, config_error, env, with_prod};

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
