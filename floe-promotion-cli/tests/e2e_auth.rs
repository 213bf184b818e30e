//! End to end: registry credentials come from a docker config file (`--docker-config`, or
//! `$DOCKER_CONFIG/config.json`), against a real `docker-registry` with htpasswd (bcrypt) Basic
//! auth; the secret never appears on stdout, stderr (even with `RUST_LOG=trace`), in the state
//! file or in the audit export.

mod common;

use std::sync::OnceLock;

use common::{Workspace, base64, push, skopeo_digest, three_env_manifest};
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::{TestRegistry, TestRegistryOptions};

const USER: &str = "floe-e2e";
const PASSWORD: &str = "s3cret-Pw-91f0c2d7e6";

fn registry() -> &'static TestRegistry {
    static REGISTRY: OnceLock<TestRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        TestRegistry::start_with(TestRegistryOptions {
            basic_auth: Some((USER.into(), PASSWORD.into())),
        })
    })
}

fn creds() -> String {
    format!("{USER}:{PASSWORD}")
}

/// `{"auths": {HOST: {"auth": base64(user:password)}}}`, as `docker login` writes it.
fn docker_config(dir: &std::path::Path, password: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.json");
    let auth = base64(format!("{USER}:{password}").as_bytes());
    std::fs::write(
        &path,
        serde_json::json!({"auths": {registry().host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    path
}

/// Every form of the secret that could leak: the password, and the Basic auth value.
fn secrets(password: &str) -> [String; 3] {
    [
        password.to_string(),
        base64(format!("{USER}:{password}").as_bytes()),
        base64(password.as_bytes()),
    ]
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str, password: &str) {
    for s in secrets(password) {
        assert!(!text.contains(&s), "{what} contains the secret {s:?}");
    }
}

#[test]
fn base64_matches_the_rfc_examples() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

/// With the credentials in a docker config file, promotion works; with `RUST_LOG=trace` the
/// logs are there but hold no secret, nor do the state file and the audit export.
#[test]
fn docker_config_credentials_are_used_and_never_printed() {
    let ns = registry().namespace("auth").to_string();
    let ws = Workspace::new(&three_env_manifest(&registry().host(), &ns, &[]));
    let config = docker_config(&ws.join("docker"), PASSWORD);
    let config_arg = config.display().to_string();
    let digest = push(&format!("{ns}/dev/app"), "v1.0.0", 21, Some(&creds()));

    let trace = [("RUST_LOG", "trace")];
    let run = ws.run_env(
        &[
            "--docker-config",
            &config_arg,
            "--output",
            "json",
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
        ],
        &trace,
    );
    let Output::Promote(record) = run.ok().output() else {
        panic!()
    };
    assert_eq!(record.digest, digest);
    assert!(
        run.stderr.lines().count() > 20,
        "RUST_LOG=trace logged almost nothing, so the check below proves little:\n{}",
        run.stderr
    );
    assert_no_secret("stdout", &run.stdout, PASSWORD);
    assert_no_secret("stderr at trace level", &run.stderr, PASSWORD);

    // Text mode, a dry run and the default location ($DOCKER_CONFIG/config.json) too.
    let docker_dir = ws.join("docker").display().to_string();
    let run = ws.run_env(
        &[
            "promote",
            "app:v1.0.0",
            "--from",
            "staging",
            "--to",
            "prod",
            "--actor",
            "release",
            "--dry-run",
        ],
        &[("RUST_LOG", "trace"), ("DOCKER_CONFIG", &docker_dir)],
    );
    assert!(run.ok().stdout.contains("would succeed"), "{run:?}");
    assert_no_secret(
        "dry-run output",
        &format!("{}{}", run.stdout, run.stderr),
        PASSWORD,
    );
    let run = ws.run_env(
        &[
            "promote",
            "app:v1.0.0",
            "--from",
            "staging",
            "--to",
            "prod",
            "--actor",
            "release",
        ],
        &[("RUST_LOG", "trace"), ("DOCKER_CONFIG", &docker_dir)],
    );
    assert_no_secret(
        "promote output",
        &format!("{}{}", run.stdout, run.stderr),
        PASSWORD,
    );
    run.ok();
    assert_eq!(
        skopeo_digest(&format!("{ns}/prod/app:latest-prod"), Some(&creds())),
        digest
    );

    let state = std::fs::read(ws.state()).unwrap();
    assert_no_secret("the state file", &String::from_utf8_lossy(&state), PASSWORD);
    let export = ws.run(&["audit", "export", "--format", "jsonl"]);
    assert_no_secret("the audit export", &export.ok().stdout, PASSWORD);
    assert!(export.stdout.contains(digest.as_str()));
}

/// Missing or wrong credentials: the registry-auth exit code, one line naming the registry,
/// no secret in it even at trace level, and nothing written.
#[test]
fn missing_or_wrong_credentials_are_refused_without_leaking() {
    let ns = registry().namespace("noauth").to_string();
    let ws = Workspace::new(&three_env_manifest(&registry().host(), &ns, &[]));
    push(&format!("{ns}/dev/app"), "v1.0.0", 22, Some(&creds()));
    let args = [
        "promote",
        "app:v1.0.0",
        "--from",
        "dev",
        "--to",
        "staging",
        "--actor",
        "ci",
    ];

    // No credentials at all (the workspace's DOCKER_CONFIG is empty).
    let line = ws.run(&args).one_error_line(exit::REGISTRY_AUTH);
    assert!(line.contains(&registry().host()), "{line}");

    // A wrong password.
    let wrong = "wrong-Pw-0d9e8f7a";
    let config = docker_config(&ws.join("wrong"), wrong);
    let config_arg = config.display().to_string();
    let mut with_config = vec!["--docker-config", config_arg.as_str()];
    with_config.extend_from_slice(&args);
    let line = ws.run(&with_config).one_error_line(exit::REGISTRY_AUTH);
    assert_no_secret("the error line", &line, wrong);
    let traced = ws.run_env(&with_config, &[("RUST_LOG", "trace")]);
    traced.expect(exit::REGISTRY_AUTH);
    assert_no_secret("stderr at trace level", &traced.stderr, wrong);
    let mut json = vec!["--output", "json"];
    json.extend_from_slice(&with_config);
    let doc = ws.run(&json).json_error(exit::REGISTRY_AUTH);
    assert_no_secret("the JSON error", &doc.error, wrong);

    // A missing --docker-config file is named.
    let line = ws
        .run(&[
            "--docker-config",
            "nowhere/config.json",
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
        ])
        .one_error_line(exit::USAGE);
    assert!(line.contains("nowhere/config.json"), "{line}");

    assert!(
        common::tags(&format!("{ns}/staging/app"), Some(&creds())).is_empty(),
        "something was written to staging"
    );
}
