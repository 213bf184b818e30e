//! Credentials against a real registry with htpasswd (bcrypt) Basic auth: a docker config
//! file, explicit credentials, a credential helper; refused or missing credentials are
//! `Unauthorized`, and no secret appears in errors or `Debug` output.

use std::process::Command;
use std::sync::OnceLock;

use floe_promotion::{ArtifactName, ArtifactRegistry, Error, Reference, Repository, Tag};
use floe_promotion_oci::testing::{
    TestRegistry, TestRegistryOptions, push_generated_image, skopeo,
};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};

const USER: &str = "floe-ci";
const PASSWORD: &str = "pw-7c1e4d2b9a";
/// Set in the child process that resolves through a credential helper.
const HELPER_CHILD_ENV: &str = "FLOE_OCI_HELPER_CHILD";

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn registry() -> &'static TestRegistry {
    static REGISTRY: OnceLock<TestRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        TestRegistry::start_with(TestRegistryOptions {
            basic_auth: Some((USER.into(), PASSWORD.into())),
        })
    })
}

fn app(name: &str) -> Repository {
    registry()
        .namespace(name)
        .join(&ArtifactName::new("app").unwrap())
        .unwrap()
}

fn options(credentials: CredentialSource) -> OciOptions {
    OciOptions {
        insecure_hosts: vec![registry().host()],
        credentials,
        retries: 0,
        ..OciOptions::default()
    }
}

/// `{"auths": {HOST: {"auth": base64(user:password)}}}`, as `docker login` writes it.
fn docker_config(
    dir: &std::path::Path,
    host: &str,
    user: &str,
    password: &str,
) -> std::path::PathBuf {
    let auth = base64_encode(format!("{user}:{password}").as_bytes());
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    path
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_file_credentials_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = docker_config(dir.path(), &registry().host(), USER, PASSWORD);
    let client = OciRegistry::new(options(CredentialSource::docker_config(&config))).unwrap();
    let (dev, prod) = (app("auth-dev"), app("auth-prod"));
    let image = push_generated_image(&client, &dev, Some(&tag("v1")), &[2000, 3000], 4).await;
    let resolved = client
        .resolve(&dev, &Reference::Tag(tag("v1")))
        .await
        .unwrap();
    assert_eq!(resolved.digest(), image.digest());
    let report = client.copy(&dev, &prod, image.digest()).await.unwrap();
    assert_eq!(report.blobs_mounted, 3, "{report:?}");
    client
        .put_manifest(&prod, Some(&tag("v1-prod")), &resolved)
        .await
        .unwrap();
    assert_eq!(client.list_tags(&prod).await.unwrap(), vec![tag("v1-prod")]);

    // skopeo, with the same config file as its auth file, sees the promoted tag.
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--authfile",
        config.to_str().unwrap(),
        "--format",
        "{{.Digest}}",
        &format!("docker://{prod}:v1-prod"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out).trim(),
        image.digest().as_str()
    );
    assert!(!format!("{client:?}").contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_credentials_are_unauthorized_without_leaking_them() {
    let writer = OciRegistry::new(options(CredentialSource::basic(USER, PASSWORD))).unwrap();
    let repo = app("auth-refused");
    push_generated_image(&writer, &repo, Some(&tag("v1")), &[100], 5).await;

    let wrong = "wrong-pw-5d3f";
    let dir = tempfile::tempdir().unwrap();
    let config = docker_config(dir.path(), &registry().host(), USER, wrong);
    let other_host_config = {
        let d = dir.path().join("other");
        std::fs::create_dir_all(&d).unwrap();
        docker_config(&d, "registry.example.com", USER, PASSWORD)
    };
    for (source, secret) in [
        (CredentialSource::Anonymous, None),
        (CredentialSource::basic(USER, wrong), Some(wrong)),
        (CredentialSource::docker_config(&config), Some(wrong)),
        (CredentialSource::docker_config(&other_host_config), None),
        (
            CredentialSource::bearer("not-a-token-8e2a"),
            Some("not-a-token-8e2a"),
        ),
    ] {
        let shown = format!("{source:?}");
        let client = OciRegistry::new(options(source)).unwrap();
        for result in [
            client
                .resolve(&repo, &Reference::Tag(tag("v1")))
                .await
                .map(|_| ()),
            client.push_blob(&repo, b"blob".to_vec()).await.map(|_| ()),
        ] {
            let err = result.unwrap_err();
            match &err {
                Error::Unauthorized {
                    registry: host,
                    message,
                } => {
                    assert_eq!(host, &registry().host());
                    assert!(message.contains(repo.as_str()), "{message}");
                }
                other => panic!("{shown}: expected Unauthorized, got {other:?}"),
            }
            let text = format!("{err} {err:?} {client:?}");
            assert!(!text.contains(PASSWORD), "{text}");
            if let Some(secret) = secret {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}

/// The child side of the helper test: resolve with the docker config given, with the helper
/// on `PATH`.
fn resolve_through_helper(spec: &str) {
    let spec: serde_json::Value = serde_json::from_str(spec).unwrap();
    let client = OciRegistry::new(OciOptions {
        insecure_hosts: vec![spec["host"].as_str().unwrap().into()],
        credentials: CredentialSource::docker_config(spec["config"].as_str().unwrap()),
        retries: 0,
        ..OciOptions::default()
    })
    .unwrap();
    let repo = Repository::new(spec["repo"].as_str().unwrap()).unwrap();
    let digest = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.resolve(&repo, &Reference::Tag(tag("v1"))))
        .unwrap();
    println!("FLOE_HELPER_DIGEST {}", digest.digest());
}

/// `credHelpers` names a `docker-credential-<name>` program, run with the host on its standard
/// input. The test runs in a child process whose `PATH` holds the helper.
#[test]
fn credential_helpers_are_run() {
    if let Ok(spec) = std::env::var(HELPER_CHILD_ENV) {
        resolve_through_helper(&spec);
        return;
    }
    let repo = app("auth-helper");
    let image = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let writer =
                OciRegistry::new(options(CredentialSource::basic(USER, PASSWORD))).unwrap();
            push_generated_image(&writer, &repo, Some(&tag("v1")), &[100], 6).await
        });
    let dir = tempfile::tempdir().unwrap();
    let asked = dir.path().join("asked");
    let helper = dir.path().join("docker-credential-floetest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\nprintf '%s' \"$server\" > '{}'\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            asked.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"credHelpers": {registry().host(): "floetest"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let spec = serde_json::json!({
        "host": registry().host(), "config": config, "repo": repo.as_str(),
    });
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "credential_helpers_are_run",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_CHILD_ENV, spec.to_string())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = stdout
        .lines()
        .find_map(|l| {
            l.split_once("FLOE_HELPER_DIGEST ")
                .map(|(_, d)| d.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no digest from the child: {stdout}"));
    assert_eq!(digest, image.digest().as_str());
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), registry().host());
}
