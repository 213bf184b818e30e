//! The manifest loader: a complete manifest into settings, and one test per refusal, each
//! checking the error names the field and, where the YAML has one, the line and column.

use std::path::{Path, PathBuf};

use floe_promotion::EnvironmentConfig;
use floe_promotion::config::parse_manifest;
use floe_promotion::{EnvName, Error};

mod loads;
mod sections;
mod syntax;
mod values;

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
