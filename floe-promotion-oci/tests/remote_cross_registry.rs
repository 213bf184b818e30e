//! Copies between two real registries: a 64 MiB image streams with flat memory (measured in a
//! separate process), and a registry killed mid-copy gives an "unavailable" error and leaves
//! no tag in the destination, through the promotion manager.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::registry::CopyMode;
use floe_promotion::{
    Actor, ArtifactName, ArtifactRegistry, DefaultPromotionManager, Digest, EnvName, Error,
    PromotionRequest, Promotions, Reference, Repository, Tag,
};
use floe_promotion_oci::testing::{
    TestRegistry, peak_rss_bytes, push_generated_image, skopeo_raw_manifest,
};
use floe_promotion_oci::{OciOptions, OciRegistry};

const MIB: usize = 1024 * 1024;
/// Set in the child process that performs the measured copy.
const CHILD_ENV: &str = "FLOE_OCI_MEMORY_CHILD";

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").unwrap()).unwrap()
}

fn client_for(registries: &[&TestRegistry]) -> OciRegistry {
    let mut options = registries[0].oci_options();
    options.insecure_hosts = registries.iter().map(|r| r.host()).collect();
    OciRegistry::new(options).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The child side: copy `src` → `dst` for `digest`, then print the report and the peak RSS.
fn measured_copy(spec: &str) {
    let spec: serde_json::Value = serde_json::from_str(spec).unwrap();
    let field = |k: &str| spec[k].as_str().unwrap().to_string();
    let options = OciOptions {
        insecure_hosts: spec["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect(),
        credentials: floe_promotion_oci::CredentialSource::Anonymous,
        ..OciOptions::default()
    };
    let src = Repository::new(field("src")).unwrap();
    let dst = Repository::new(field("dst")).unwrap();
    let digest = Digest::new(field("digest")).unwrap();
    let before = peak_rss_bytes().unwrap();
    let report = runtime().block_on(async {
        let client = OciRegistry::new(options).unwrap();
        client.copy(&src, &dst, &digest).await.unwrap()
    });
    let after = peak_rss_bytes().unwrap();
    println!(
        "FLOE_RESULT {}",
        serde_json::json!({"before": before, "after": after, "report": report})
    );
}

/// Copies a 64 MiB image to another registry in a separate process and reads that process's
/// peak resident memory: it stays far below the image size.
#[test]
fn cross_registry_copy_of_64_mib_keeps_memory_flat() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        measured_copy(&spec);
        return;
    }
    let (src_registry, dst_registry) = (TestRegistry::start(), TestRegistry::start());
    let client = client_for(&[&src_registry, &dst_registry]);
    let src = app(&src_registry.namespace("big"));
    let dst = app(&dst_registry.namespace("big"));
    let image = runtime().block_on(push_generated_image(
        &client,
        &src,
        Some(&tag("v1")),
        &[64 * MIB, 4096],
        64,
    ));
    assert_eq!(client.copy_mode(&src, &dst), CopyMode::Stream);

    let spec = serde_json::json!({
        "hosts": [src_registry.host(), dst_registry.host()],
        "src": src.as_str(), "dst": dst.as_str(), "digest": image.digest().as_str(),
    });
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "cross_registry_copy_of_64_mib_keeps_memory_flat",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec.to_string())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("FLOE_RESULT ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"));
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    let (before, after) = (
        result["before"].as_u64().unwrap(),
        result["after"].as_u64().unwrap(),
    );
    let report = &result["report"];
    eprintln!(
        "64 MiB cross-registry copy: peak RSS {:.1} MiB (before the copy {:.1} MiB), {:.2} s in the child process, {report}",
        after as f64 / MIB as f64,
        before as f64 / MIB as f64,
        took.as_secs_f64()
    );
    assert_eq!(report["blobs_uploaded"], 3, "{report}");
    assert!(report["bytes_uploaded"].as_u64().unwrap() > 64 * MIB as u64);
    assert!(
        after < 24 * MIB as u64,
        "peak RSS {after} bytes is not far below the 64 MiB image"
    );
    assert!(
        after - before < 16 * MIB as u64,
        "the copy grew the peak RSS by {} bytes",
        after - before
    );
    // The destination holds the same bytes, by an independent client.
    let raw = skopeo_raw_manifest(&format!("{dst}@{}", image.digest()));
    assert_eq!(raw, image.bytes());
    let blob = runtime().block_on(client.fetch_blob(&dst, &image.body().layers[1].digest, 4096));
    assert_eq!(blob.unwrap().len(), 4096);
}

/// A manager promoting `app` from `dev` (one registry) to `staging` (another).
fn manager(
    registry: Arc<dyn ArtifactRegistry>,
    dev: &Repository,
    staging: &Repository,
) -> DefaultPromotionManager {
    let envs = vec![
        Environment::new(EnvName::new("dev").unwrap()).with_repository(dev.clone()),
        Environment::new(EnvName::new("staging").unwrap()).with_repository(staging.clone()),
    ];
    let config = InMemoryConfig::new(PromotionSettings::new(envs)).unwrap();
    DefaultPromotionManager::builder()
        .config(Arc::new(config))
        .registry(registry)
        .build()
        .unwrap()
}

/// Waits until `registry` has opened a blob upload session below `path`.
async fn wait_for_upload_session(registry: &TestRegistry, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(registry.log_path()).unwrap_or_default();
        let opened = log.lines().any(|l| {
            l.contains("\"http.request.method\":\"POST\"")
                && l.contains(path)
                && l.contains("/blobs/uploads/")
                && l.contains("\"http.response.status\":202")
        });
        if opened {
            return;
        }
        assert!(Instant::now() < deadline, "no upload session opened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills one registry while the 64 MiB layer streams; the promotion fails with Unavailable
/// naming that registry, and the destination has no tag afterwards.
async fn killed_mid_copy(kill_destination: bool) {
    let (src_registry, dst_registry) = (TestRegistry::start(), TestRegistry::start());
    let mut options = src_registry.oci_options();
    options.insecure_hosts = vec![src_registry.host(), dst_registry.host()];
    options.retries = 1;
    let client = Arc::new(OciRegistry::new(options).unwrap());
    let dev = src_registry.namespace("dev");
    let staging = dst_registry.namespace("staging");
    push_generated_image(
        client.as_ref(),
        &app(&dev),
        Some(&tag("v1")),
        &[64 * MIB],
        7,
    )
    .await;
    let manager = manager(client.clone(), &dev, &staging);
    let promotion = tokio::spawn(async move {
        manager
            .promote(
                PromotionRequest::new("app", "v1", "dev", "staging", Actor::new("ci").unwrap())
                    .unwrap(),
            )
            .await
    });
    let staging_path = app(&staging)
        .as_str()
        .split_once('/')
        .unwrap()
        .1
        .to_string();
    wait_for_upload_session(&dst_registry, &format!("/v2/{staging_path}/")).await;
    let killed = if kill_destination {
        &dst_registry
    } else {
        &src_registry
    };
    killed.kill();
    let result = promotion.await.unwrap();
    match &result {
        Err(e @ Error::Unavailable { registry, message }) => {
            eprintln!("{e}");
            assert_eq!(registry, &killed.host(), "{message}");
            assert!(message.contains("blob"), "{message}");
        }
        other => panic!("expected Unavailable from {}, got {other:?}", killed.host()),
    }
    if kill_destination {
        dst_registry.restart();
    }
    let tags = client.list_tags(&app(&staging)).await.unwrap();
    assert!(tags.is_empty(), "tags in the destination: {tags:?}");
    match client
        .resolve(&app(&staging), &Reference::Tag(tag("v1-staging")))
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected no v1-staging, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_killed_mid_copy_is_unavailable_and_leaves_no_tag() {
    killed_mid_copy(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_killed_mid_copy_is_unavailable_and_leaves_no_tag() {
    killed_mid_copy(false).await;
}

/// A promotion across registries through the manager writes the environment tag with the
/// source's digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_across_registries_keeps_the_digest() {
    let (a, b) = (TestRegistry::start(), TestRegistry::start());
    let client = Arc::new(client_for(&[&a, &b]));
    let (dev, staging) = (a.namespace("dev"), b.namespace("staging"));
    let image =
        push_generated_image(client.as_ref(), &app(&dev), Some(&tag("v1")), &[100_000], 3).await;
    let record = manager(client.clone(), &dev, &staging)
        .promote(
            PromotionRequest::new("app", "v1", "dev", "staging", Actor::new("ci").unwrap())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(&record.digest, image.digest());
    let raw = skopeo_raw_manifest(&format!("{}:v1-staging", app(&staging)));
    assert_eq!(&Digest::of(&raw), image.digest());
}
