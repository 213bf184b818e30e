//! The manifest shown in the README is accepted by the loader.

use floe_promotion::EnvironmentConfig;
use floe_promotion::config::parse_manifest;

#[test]
fn the_readme_manifest_loads() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## The manifest")
        .nth(1)
        .expect("the README has a manifest section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a yaml block");
    let dir = tempfile::tempdir().unwrap();
    let config = parse_manifest(yaml, Some(&dir.path().join("manifest.yaml")))
        .unwrap_or_else(|e| panic!("the README manifest is refused: {e}"));
    let names: Vec<&str> = config
        .environments()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    let prod = &config.environments()[2];
    assert!(
        prod.policy
            .version_pattern
            .as_ref()
            .unwrap()
            .is_match("v1.2.3")
    );
    assert!(prod.authorization.separation_of_duties);
    assert_eq!(config.environments()[1].gates.commands.len(), 1);
}
