//! `artifacts.promotion.attestation.checkpoints: { to, every }` in the manifest: where
//! checkpoints go (a file relative to the manifest, oci://, oci-layout:) and how often; bad
//! values refused where they were written.

use std::path::Path;

use floe_promotion::config::{CheckpointLocation, EnvironmentConfig, parse_manifest};
use floe_promotion::{Error, Repository};

const BASE: &str = "\
artifacts:
  promotion:
    environments:
      - name: dev
      - name: prod
    attestation:
      key: keys/floe.key
";

fn load(checkpoints: &str) -> floe_promotion::Result<floe_promotion::config::InMemoryConfig> {
    parse_manifest(
        &format!("{BASE}      checkpoints: {checkpoints}\n"),
        Some(Path::new("/cfg/manifest.yaml")),
    )
}

#[test]
fn locations_and_frequency_load() {
    for (to, expected) in [
        (
            "audit/checkpoints.jsonl",
            CheckpointLocation::File("/cfg/audit/checkpoints.jsonl".into()),
        ),
        (
            "oci://registry.example.com/floe/audit",
            CheckpointLocation::Repository(
                Repository::new("registry.example.com/floe/audit").unwrap(),
            ),
        ),
        (
            "oci-layout:audit",
            CheckpointLocation::Repository(Repository::new("oci-layout:/cfg/audit").unwrap()),
        ),
    ] {
        let config = load(&format!("{{ to: '{to}', every: 1000 }}")).expect(to);
        let c = config
            .settings()
            .attestation
            .clone()
            .unwrap()
            .checkpoints
            .unwrap();
        assert_eq!(c.to, expected, "{to}");
        assert_eq!(c.every, Some(1000));
    }
    let c = load("{ to: cp.jsonl }")
        .unwrap()
        .settings()
        .attestation
        .clone();
    assert_eq!(
        c.unwrap().checkpoints.unwrap().every,
        None,
        "every is optional"
    );
    let none = parse_manifest(BASE, None).unwrap();
    assert!(
        none.settings()
            .attestation
            .clone()
            .unwrap()
            .checkpoints
            .is_none()
    );
}

#[test]
fn bad_values_are_refused_where_they_were_written() {
    for (section, needle) in [
        ("{ to: cp.jsonl, every: 0 }", "checkpoints.every: 0 events"),
        ("{ to: '' }", "checkpoints.to"),
        ("{ to: 'oci://' }", "oci://HOST/PATH"),
        ("{ to: 'oci-layout:' }", "needs a directory"),
        (
            "{ to: 'https://user:hunter2@example.com/x' }",
            "not a checkpoint location",
        ),
        ("{ every: 10 }", "to"),
        ("{ to: cp.jsonl, evry: 10 }", "unknown field"),
        ("{ to: cp.jsonl, every: -5 }", "every"),
    ] {
        let err = load(section).expect_err(section);
        assert!(matches!(err, Error::Config { .. }), "{section}: {err:?}");
        let shown = err.to_string();
        assert!(shown.contains(needle), "{section}: {shown}");
        assert!(
            shown.contains("manifest.yaml:"),
            "{section}: no location in {shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
