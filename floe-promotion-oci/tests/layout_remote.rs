//! Copies between an OCI layout directory and a real registry, both ways, through
//! `RoutingRegistry`: the manifest's exact bytes, index children, blobs streamed and skipped
//! when present, the cosign signature and attestation tags and the evidence referrers come
//! along; skopeo, an independent client, reads the result. A missing source is `NotFound`; a
//! blob whose bytes do not match its digest stops the copy with nothing tagged.

mod layout_support;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::gate::{SignatureEnforcement, SignatureGate, SignatureVerifier};
use floe_promotion::registry::{
    CopyMode, CopyReport, Evidence, EvidenceKind, EvidenceStatus, Manifest, OCI_INDEX, OCI_MANIFEST,
};
use floe_promotion::{
    Actor, ArtifactName, ArtifactRegistry, DefaultPromotionManager, Digest, EnvName, Error,
    PromotionRequest, Promotions, Reference, RegistryExt, Repository, Tag,
};
use floe_promotion_oci::testing::{
    SignatureLayerSpec, TestRegistry, TestSigningKey, push_cosign_signature, push_generated_image,
    skopeo_raw_manifest,
};
use floe_promotion_oci::{CosignVerifier, OciLayoutRegistry, OciRegistry, RoutingRegistry};
use layout_support::{oci_ref, skopeo, skopeo_digest, tag};

type Router = RoutingRegistry<OciLayoutRegistry, OciRegistry>;

fn router() -> Router {
    RoutingRegistry::new(OciLayoutRegistry::new(), TestRegistry::shared().client())
}

fn remote_repo(name: &str) -> Repository {
    TestRegistry::shared()
        .namespace(name)
        .join(&ArtifactName::new("app").unwrap())
        .unwrap()
}

fn layout_repo(dir: &Path) -> Repository {
    OciLayoutRegistry::location(dir).unwrap()
}

/// Everything attached to an image in its source.
struct Attached {
    image: Manifest,
    signature: Manifest,
    attestation: Manifest,
    evidence: Digest,
    key: TestSigningKey,
}

/// Pushes a signed image with a cosign attestation tag and a tests-passed evidence referrer.
async fn signed_image(registry: &Router, repo: &Repository, seed: u64) -> Attached {
    let image = push_generated_image(registry, repo, None, &[300 * 1024, 5000], seed).await;
    let key = TestSigningKey::generate();
    let signature = push_cosign_signature(
        registry,
        repo,
        image.digest(),
        &[SignatureLayerSpec::new(&key, image.digest())],
    )
    .await;
    let attestation = push_attestation(registry, repo, image.digest()).await;
    let evidence = Evidence {
        kind: EvidenceKind::Tests,
        status: EvidenceStatus::Passed,
        environment: None,
        created: Utc::now(),
        actor: None,
        details: serde_json::json!({"suite": "unit"}),
    };
    let evidence = registry
        .attach_evidence(repo, image.digest(), &evidence)
        .await
        .expect("attach evidence");
    Attached {
        image,
        signature,
        attestation,
        evidence,
        key,
    }
}

/// A manifest tagged `sha256-<hex>.att`, as cosign lays out attestations.
async fn push_attestation(registry: &Router, repo: &Repository, subject: &Digest) -> Manifest {
    let envelope = serde_json::json!({"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}).to_string();
    let layer = registry
        .push_blob(repo, envelope.clone().into_bytes())
        .await
        .unwrap();
    let config = registry.push_blob(repo, b"{}".to_vec()).await.unwrap();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config.as_str()},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "size": envelope.len(), "digest": layer.as_str()}],
    });
    let manifest = Manifest::from_bytes(body.to_string().into_bytes(), Some(OCI_MANIFEST)).unwrap();
    let att = Tag::new(format!("sha256-{}.att", subject.hex())).unwrap();
    registry
        .put_manifest(repo, Some(&att), &manifest)
        .await
        .unwrap();
    manifest
}

async fn resolve(registry: &Router, repo: &Repository, reference: Reference) -> Manifest {
    registry
        .resolve(repo, &reference)
        .await
        .unwrap_or_else(|e| panic!("resolve {repo} {reference:?}: {e}"))
}

/// Checks that `dst` holds `attached` exactly: bytes, signature and attestation tags, the
/// evidence referrer, and a signature that verifies there.
async fn assert_everything_arrived(registry: &Router, dst: &Repository, attached: &Attached) {
    let digest = attached.image.digest();
    let copied = resolve(registry, dst, Reference::Digest(digest.clone())).await;
    assert_eq!(copied.bytes(), attached.image.bytes());
    let sig = resolve(registry, dst, Reference::Tag(tag(&digest.signature_tag()))).await;
    assert_eq!(sig.bytes(), attached.signature.bytes());
    let att = resolve(
        registry,
        dst,
        Reference::Tag(tag(&format!("sha256-{}.att", digest.hex()))),
    )
    .await;
    assert_eq!(att.bytes(), attached.attestation.bytes());
    let referrers = registry.referrers(dst, digest).await.unwrap();
    assert!(
        referrers.iter().any(|r| r.digest == attached.evidence),
        "the evidence is not a referrer in {dst}: {referrers:?}"
    );
    let evidence = registry.evidence(dst, digest).await.unwrap();
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    for blob in attached.image.body().blobs() {
        assert!(
            floe_promotion_oci::BlobStreams::blob_exists(registry, dst, &blob.digest)
                .await
                .unwrap()
        );
    }
    let verifier =
        CosignVerifier::from_named_pem("cosign.pub", attached.key.public_key_pem()).unwrap();
    let report = verifier.verify(registry, dst, digest).await.unwrap();
    assert!(report.verified, "{}", report.message);
}

fn assert_full_copy(report: &CopyReport, image: &Manifest) {
    // The image, its signature, its attestation and its evidence.
    assert_eq!(report.manifests_copied, 4, "{report:?}");
    assert_eq!(report.signatures_copied, 1, "{report:?}");
    assert_eq!(report.referrers_copied, 2, "{report:?}");
    assert_eq!(report.blobs_mounted, 0, "{report:?}");
    let image_bytes: u64 = image.body().blobs().map(|b| b.size).sum();
    assert!(report.bytes_uploaded > image_bytes, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_to_registry_keeps_digests_and_brings_attachments() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = router();
    let dev = layout_repo(&tmp.path().join("dev"));
    let staging = remote_repo("l2r");
    let attached = signed_image(&registry, &dev, 11).await;
    let digest = attached.image.digest().clone();
    assert_eq!(registry.copy_mode(&dev, &staging), CopyMode::Stream);

    let report = registry.copy(&dev, &staging, &digest).await.expect("copy");
    assert_full_copy(&report, &attached.image);
    assert_everything_arrived(&registry, &staging, &attached).await;
    // The copy writes no tag but the signature and attestation tags.
    let tags = registry.list_tags(&staging).await.unwrap();
    assert!(
        tags.iter()
            .all(|t| t.as_str().starts_with(&format!("sha256-{}", digest.hex()))),
        "{tags:?}"
    );

    // skopeo reads the same bytes from the registry.
    assert_eq!(
        skopeo_raw_manifest(&format!("{staging}@{digest}")),
        attached.image.bytes()
    );
    assert_eq!(
        skopeo_raw_manifest(&format!("{staging}:{}", digest.signature_tag())),
        attached.signature.bytes()
    );

    // Again: everything is there, nothing moves.
    let again = registry.copy(&dev, &staging, &digest).await.expect("again");
    assert_eq!(again.manifests_copied, 0, "{again:?}");
    assert_eq!(again.blobs_uploaded, 0, "{again:?}");
    assert_eq!(again.signatures_copied, 0, "{again:?}");
    assert_eq!(again.referrers_copied, 0, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_to_layout_keeps_digests_and_brings_attachments() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = router();
    let dev = remote_repo("r2l");
    let prod_dir = tmp.path().join("prod");
    let prod = layout_repo(&prod_dir);
    let attached = signed_image(&registry, &dev, 12).await;
    let digest = attached.image.digest().clone();
    assert_eq!(registry.copy_mode(&dev, &prod), CopyMode::Stream);

    let report = registry.copy(&dev, &prod, &digest).await.expect("copy");
    assert_full_copy(&report, &attached.image);
    assert_everything_arrived(&registry, &prod, &attached).await;

    // skopeo reads the layout: the tag written after the copy, the signature tag.
    registry
        .put_manifest(&prod, Some(&tag("v1")), &attached.image)
        .await
        .unwrap();
    assert_eq!(
        skopeo(&["inspect", "--raw", &oci_ref(&prod_dir, "v1")]),
        attached.image.bytes()
    );
    assert_eq!(skopeo_digest(&oci_ref(&prod_dir, "v1")), digest.as_str());
    assert_eq!(
        skopeo(&[
            "inspect",
            "--raw",
            &oci_ref(&prod_dir, &digest.signature_tag())
        ]),
        attached.signature.bytes()
    );

    let again = registry.copy(&dev, &prod, &digest).await.expect("again");
    assert_eq!(again.manifests_copied, 0, "{again:?}");
    assert_eq!(again.blobs_uploaded, 0, "{again:?}");
    assert_eq!(again.signatures_copied + again.referrers_copied, 0);
}

/// An index over two platform images, pushed into `repo`.
async fn push_index(registry: &Router, repo: &Repository, seed: u64) -> (Manifest, Vec<Manifest>) {
    let amd = push_generated_image(registry, repo, None, &[2000], seed).await;
    let arm = push_generated_image(registry, repo, None, &[3000], seed + 1).await;
    let entry = |m: &Manifest, arch: &str| {
        serde_json::json!({
            "mediaType": m.media_type(), "digest": m.digest().as_str(), "size": m.bytes().len(),
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let body = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")],
    });
    let index =
        Manifest::from_bytes(serde_json::to_vec_pretty(&body).unwrap(), Some(OCI_INDEX)).unwrap();
    registry.put_manifest(repo, None, &index).await.unwrap();
    (index, vec![amd, arm])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_arch_index_crosses_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = router();
    let dev_dir = tmp.path().join("dev");
    let dev = layout_repo(&dev_dir);
    let staging = remote_repo("index");
    let prod_dir = tmp.path().join("prod");
    let prod = layout_repo(&prod_dir);
    let (index, children) = push_index(&registry, &dev, 21).await;

    let up = registry.copy(&dev, &staging, index.digest()).await.unwrap();
    assert_eq!(up.manifests_copied, 3, "{up:?}");
    assert_eq!(
        skopeo_raw_manifest(&format!("{staging}@{}", index.digest())),
        index.bytes()
    );
    for child in &children {
        assert_eq!(
            skopeo_raw_manifest(&format!("{staging}@{}", child.digest())),
            child.bytes()
        );
    }

    let down = registry
        .copy(&staging, &prod, index.digest())
        .await
        .unwrap();
    assert_eq!(down.manifests_copied, 3, "{down:?}");
    registry
        .put_manifest(&prod, Some(&tag("v1")), &index)
        .await
        .unwrap();
    assert_eq!(
        skopeo(&["inspect", "--raw", &oci_ref(&prod_dir, "v1")]),
        index.bytes()
    );
    // skopeo copies the whole index out of the layout, reading every child and blob.
    let out_dir = tmp.path().join("out");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        &oci_ref(&prod_dir, "v1"),
        &oci_ref(&out_dir, "v1"),
    ]);
    assert_eq!(
        skopeo_digest(&oci_ref(&out_dir, "v1")),
        index.digest().as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_is_not_found_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = router();
    let folder = layout_repo(&tmp.path().join("dev"));
    let remote = remote_repo("missing");
    let nothing = Digest::of(b"no such manifest");
    for (src, dst) in [(&folder, &remote), (&remote, &folder)] {
        match registry.copy(src, dst, &nothing).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!("{src} -> {dst}: expected NotFound, got {other:?}"),
        }
        assert!(registry.list_tags(dst).await.unwrap().is_empty());
    }
}

/// Overwrites one byte in the middle of `path`, keeping its length.
fn corrupt_file(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// A promotion `dev` -> `staging` through the manager, with the signature gate on staging.
fn manager(
    registry: Arc<dyn ArtifactRegistry>,
    dev: &Repository,
    staging: &Repository,
    key: &TestSigningKey,
) -> DefaultPromotionManager {
    let envs = vec![
        Environment::new(EnvName::new("dev").unwrap()).with_repository(dev.clone()),
        Environment::new(EnvName::new("staging").unwrap()).with_repository(staging.clone()),
    ];
    let config = InMemoryConfig::new(PromotionSettings::new(envs)).unwrap();
    let verifier = CosignVerifier::from_named_pem("cosign.pub", key.public_key_pem()).unwrap();
    DefaultPromotionManager::builder()
        .config(Arc::new(config))
        .registry(registry)
        .gate(
            EnvName::new("staging").unwrap(),
            Arc::new(SignatureGate::new(
                Arc::new(verifier),
                SignatureEnforcement::Enforce,
            )),
        )
        .build()
        .unwrap()
}

fn request(version: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, "dev", "staging", Actor::new("ci").unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_image_is_promoted_from_a_layout_into_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Arc::new(router());
    let dev_base = layout_repo(&tmp.path().join("dev"));
    let staging_base = TestRegistry::shared().namespace("promote");
    let app = ArtifactName::new("app").unwrap();
    let (dev, staging) = (
        dev_base.join(&app).unwrap(),
        staging_base.join(&app).unwrap(),
    );
    let attached = signed_image(&registry, &dev, 31).await;
    registry
        .put_manifest(&dev, Some(&tag("v1.0.0")), &attached.image)
        .await
        .unwrap();
    let promotions = manager(registry.clone(), &dev_base, &staging_base, &attached.key);
    let record = promotions
        .promote(request("v1.0.0"))
        .await
        .expect("promote");
    assert_eq!(&record.digest, attached.image.digest());
    assert_everything_arrived(&registry, &staging, &attached).await;
    assert_eq!(
        skopeo_raw_manifest(&format!("{staging}:v1.0.0-staging")),
        attached.image.bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_layout_blob_is_refused_and_nothing_is_tagged() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Arc::new(router());
    let dev_dir = tmp.path().join("dev");
    let dev_base = layout_repo(&dev_dir);
    let staging_base = TestRegistry::shared().namespace("corrupt");
    let app = ArtifactName::new("app").unwrap();
    let (dev, staging) = (
        dev_base.join(&app).unwrap(),
        staging_base.join(&app).unwrap(),
    );
    let attached = signed_image(&registry, &dev, 41).await;
    registry
        .put_manifest(&dev, Some(&tag("v1.0.0")), &attached.image)
        .await
        .unwrap();
    let layer = attached.image.body().layers[0].digest.clone();
    let layer_file = dev_dir.join("app/blobs/sha256").join(layer.hex());
    corrupt_file(&layer_file);

    let err = registry
        .copy(&dev, &staging, attached.image.digest())
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, Error::Store { .. }), "{err}");
    assert!(err.to_string().contains(layer.hex()), "{err}");
    let promotions = manager(registry.clone(), &dev_base, &staging_base, &attached.key);
    let err = promotions.promote(request("v1.0.0")).await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err}");

    assert!(registry.list_tags(&staging).await.unwrap().is_empty());
    match registry
        .resolve(
            &staging,
            &Reference::Digest(attached.image.digest().clone()),
        )
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!("the manifest was written: {other:?}"),
    }
    assert!(
        !floe_promotion_oci::BlobStreams::blob_exists(registry.as_ref(), &staging, &layer)
            .await
            .unwrap(),
        "the corrupt blob landed in the registry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_registry_blob_is_refused_and_nothing_lands_in_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestRegistry::shared();
    let registry = router();
    let dev = remote_repo("corrupt-src");
    let prod_dir = tmp.path().join("prod");
    let prod = layout_repo(&prod_dir);
    let image = push_generated_image(&registry, &dev, Some(&tag("v1")), &[4000], 51).await;
    let layer = image.body().layers[0].digest.clone();
    let data = server
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&layer.hex()[..2])
        .join(layer.hex())
        .join("data");
    corrupt_file(&data);

    let err = registry
        .copy(&dev, &prod, image.digest())
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, Error::Store { .. }), "{err}");
    assert!(err.to_string().contains(layer.hex()), "{err}");
    assert!(!prod_dir.join("blobs/sha256").join(layer.hex()).exists());
    assert!(registry.list_tags(&prod).await.unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(&prod_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".floe-tmp"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
