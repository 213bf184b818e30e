//! Interoperability with skopeo, an independent reader and writer of OCI image layouts
//! (`oci:<dir>:<tag>`): skopeo reads what `OciLayoutRegistry` wrote, and the registry reads what
//! skopeo wrote, with identical digests and bytes.

mod layout_support;

use std::fs;
use std::path::Path;

use chrono::Utc;
use floe_promotion::registry::{
    Evidence, EvidenceKind, EvidenceStatus, Manifest, ManifestBody, OCI_INDEX,
};
use floe_promotion::{ArtifactRegistry, Digest, Reference, RegistryExt};
use floe_promotion_oci::OciLayoutRegistry;
use layout_support::*;

#[tokio::test]
async fn skopeo_reads_and_copies_what_we_wrote() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst_dir) = (tmp.path().join("src"), tmp.path().join("dst"));
    let (src, dst) = (location(&src_dir), location(&dst_dir));
    let registry = OciLayoutRegistry::new();
    let image = push_image(&registry, &src, "ours", &[b"layer one", b"layer two"]).await;
    registry
        .put_manifest(&src, Some(&tag("v1")), &image)
        .await
        .expect("tag");
    // Entries skopeo does not know about (untagged referrers, signature tags) do not disturb it.
    let evidence = Evidence {
        kind: EvidenceKind::Tests,
        status: EvidenceStatus::Passed,
        environment: None,
        created: Utc::now(),
        actor: None,
        details: serde_json::Value::Null,
    };
    registry
        .attach_evidence(&src, image.digest(), &evidence)
        .await
        .expect("evidence");
    let other = push_image(&registry, &src, "other", &[b"other layer"]).await;
    registry
        .put_manifest(&src, Some(&tag("v2")), &other)
        .await
        .expect("tag v2");

    let reference = oci_ref(&src_dir, "v1");
    assert_eq!(skopeo(&["inspect", "--raw", &reference]), image.bytes());
    assert_eq!(skopeo_digest(&reference), image.digest().as_str());
    assert_eq!(
        skopeo_digest(&oci_ref(&src_dir, "v2")),
        other.digest().as_str()
    );

    skopeo(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        &reference,
        &oci_ref(&dst_dir, "v1"),
    ]);
    let copied = resolve_tag(&registry, &dst, "v1").await;
    assert_eq!(copied.bytes(), image.bytes());
    for blob in image.body().blobs() {
        registry
            .fetch_blob(&dst, &blob.digest, 1 << 20)
            .await
            .expect("blob skopeo copied");
    }
}

#[tokio::test]
async fn skopeo_copies_a_multi_arch_index_we_wrote() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst_dir) = (tmp.path().join("src"), tmp.path().join("dst"));
    let (src, dst) = (location(&src_dir), location(&dst_dir));
    let registry = OciLayoutRegistry::new();
    let amd = push_image(&registry, &src, "amd64", &[b"amd64"]).await;
    let arm = push_image(&registry, &src, "arm64", &[b"arm64"]).await;
    let mut entries = vec![amd.descriptor(), arm.descriptor()];
    entries[0].platform = Some(serde_json::json!({"architecture": "amd64", "os": "linux"}));
    entries[1].platform = Some(serde_json::json!({"architecture": "arm64", "os": "linux"}));
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.into()),
        manifests: Some(entries),
        ..Default::default()
    };
    let index =
        Manifest::from_bytes(serde_json::to_vec(&body).expect("json"), None).expect("index");
    registry
        .put_manifest(&src, Some(&tag("multi")), &index)
        .await
        .expect("put index");

    let reference = oci_ref(&src_dir, "multi");
    assert_eq!(skopeo(&["inspect", "--raw", &reference]), index.bytes());
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        &reference,
        &oci_ref(&dst_dir, "multi"),
    ]);
    let got = resolve_tag(&registry, &dst, "multi").await;
    assert_eq!(got.bytes(), index.bytes());
    assert!(got.is_index());
    for child in [&amd, &arm] {
        let m = registry
            .resolve(&dst, &Reference::Digest(child.digest().clone()))
            .await
            .expect("child copied by skopeo");
        assert_eq!(m.bytes(), child.bytes());
    }
}

/// A `dir:` image (skopeo's plain directory format) for skopeo to convert into a layout.
fn write_dir_image(dir: &Path, salt: &str) {
    fs::create_dir_all(dir).expect("mkdir");
    let layer = format!("uncompressed layer {salt}").into_bytes();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"salt":"{salt}"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::of(&layer)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        Digest::of(config.as_bytes()),
        config.len(),
        Digest::of(&layer),
        layer.len()
    );
    fs::write(dir.join(Digest::of(&layer).hex()), &layer).expect("layer");
    fs::write(dir.join(Digest::of(config.as_bytes()).hex()), &config).expect("config");
    fs::write(dir.join("manifest.json"), manifest).expect("manifest");
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").expect("version");
}

#[tokio::test]
async fn we_read_and_extend_a_layout_skopeo_wrote() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = tmp.path().join("dir-image");
    write_dir_image(&source, "skopeo");
    let (lay_dir, copy_dir) = (tmp.path().join("skopeo-layout"), tmp.path().join("ours"));
    let (lay, ours) = (location(&lay_dir), location(&copy_dir));
    // skopeo compresses the layer on the way, so the layout's manifest is skopeo's own.
    skopeo(&[
        "copy",
        "--quiet",
        &format!("dir:{}", source.display()),
        &oci_ref(&lay_dir, "v1"),
    ]);
    let raw = skopeo(&["inspect", "--raw", &oci_ref(&lay_dir, "v1")]);
    let digest = skopeo_digest(&oci_ref(&lay_dir, "v1"));

    let registry = OciLayoutRegistry::new();
    let got = resolve_tag(&registry, &lay, "v1").await;
    assert_eq!(got.bytes(), raw.as_slice());
    assert_eq!(got.digest().as_str(), digest);
    let tags: Vec<String> = registry
        .list_tags(&lay)
        .await
        .expect("tags")
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(tags, ["v1"]);
    let config = got.body().config.clone().expect("config");
    let config_bytes = registry
        .fetch_blob(&lay, &config.digest, 1 << 20)
        .await
        .expect("config blob");
    assert!(String::from_utf8_lossy(&config_bytes).contains("\"salt\":\"skopeo\""));

    // We tag in skopeo's layout; skopeo still reads both tags.
    registry
        .put_manifest(&lay, Some(&tag("v1-staging")), &got)
        .await
        .expect("tag in skopeo's layout");
    assert_eq!(skopeo_digest(&oci_ref(&lay_dir, "v1-staging")), digest);
    assert_eq!(skopeo_digest(&oci_ref(&lay_dir, "v1")), digest);

    // We copy out of skopeo's layout; skopeo reads the copy.
    registry
        .copy(&lay, &ours, got.digest())
        .await
        .expect("copy");
    registry
        .put_manifest(&ours, Some(&tag("v1-prod")), &got)
        .await
        .expect("tag copy");
    assert_eq!(skopeo_digest(&oci_ref(&copy_dir, "v1-prod")), digest);

    // skopeo writes a tag into our layout; we see it and keep our own entries.
    skopeo(&[
        "copy",
        "--quiet",
        &oci_ref(&lay_dir, "v1"),
        &oci_ref(&copy_dir, "from-skopeo"),
    ]);
    let tags: Vec<String> = registry
        .list_tags(&ours)
        .await
        .expect("tags")
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(tags, ["from-skopeo", "v1-prod"]);
    assert_eq!(
        resolve_tag(&registry, &ours, "from-skopeo").await.digest(),
        got.digest()
    );
}
