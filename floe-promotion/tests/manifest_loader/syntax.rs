//! Refusals of the manifest's shape, located by line and column: unknown keys, type errors, an
//! unclosed bracket, and a manifest without environments.

use super::{BASE, config_error, with_prod};

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
