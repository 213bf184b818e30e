//! `OciRegistry` against a real `docker-registry` (distribution 2.8): digests preserved (checked
//! with skopeo, an independent client), Docker media types, image indexes, cross-repository
//! mounts (checked in the registry's request log), tag listing, transport rules.

use floe_promotion::registry::{
    CopyMode, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, Manifest, ManifestBody, OCI_INDEX,
};
use floe_promotion::{ArtifactName, ArtifactRegistry, Digest, Error, Reference, Repository, Tag};
use floe_promotion_oci::testing::{
    OciLayoutWriter, TestRegistry, pseudo_random_bytes, push_generated_image, skopeo,
    skopeo_raw_manifest,
};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};

fn repo(base: &Repository, name: &str) -> Repository {
    base.join(&ArtifactName::new(name).unwrap()).unwrap()
}

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

/// `HOST/PATH` of a repository, for skopeo.
fn loc(r: &Repository) -> &str {
    r.as_str()
}

/// An image written as an OCI layout by hand, pushed by skopeo, promoted by `OciRegistry`
/// (copy + tag), read back by skopeo: the bytes, hence the digest, never change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_is_preserved_and_checked_by_skopeo() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let base = registry.namespace("digest");
    let (dev, staging) = (repo(&base, "dev/app"), repo(&base, "staging/app"));

    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayoutWriter::create(dir.path());
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = pseudo_random_bytes(300_000, 7);
    let (config_digest, config_size) = layout.blob(config);
    let (layer_digest, layer_size) = layout.blob(&layer);
    // Unusual spacing and key order: re-serialising would change the digest.
    let bytes = format!(
        "{{ \"schemaVersion\" : 2 , \"mediaType\" : \"application/vnd.oci.image.manifest.v1+json\",\n\"layers\": [ {{\"size\": {layer_size}, \"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"{layer_digest}\"}} ],\n\"config\": {{\"size\": {config_size}, \"digest\": \"{config_digest}\", \"mediaType\": \"application/vnd.oci.image.config.v1+json\"}} }}\n"
    );
    let manifest = Manifest::from_bytes(bytes.into_bytes(), None).unwrap();
    layout.manifest(&manifest, Some("v1.2.3"));
    let layout_dir = layout.finish();
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1.2.3", layout_dir.display()),
        &format!("docker://{}:v1.2.3", loc(&dev)),
    ]);

    let resolved = client
        .resolve(&dev, &Reference::Tag(tag("v1.2.3")))
        .await
        .unwrap();
    assert_eq!(resolved.digest(), manifest.digest());
    assert_eq!(resolved.bytes(), manifest.bytes());

    // Promotion: copy by digest, then the environment tag with the exact bytes.
    let report = client
        .copy(&dev, &staging, resolved.digest())
        .await
        .unwrap();
    assert_eq!(report.manifests_copied, 1);
    client
        .put_manifest(&staging, Some(&tag("v1.2.3-staging")), &resolved)
        .await
        .unwrap();

    let raw = skopeo_raw_manifest(&format!("{}:v1.2.3-staging", loc(&staging)));
    assert_eq!(
        raw,
        manifest.bytes(),
        "skopeo reads other bytes than were pushed"
    );
    assert_eq!(&Digest::of(&raw), manifest.digest());
    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}:v1.2.3-staging", loc(&staging)),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&inspected).trim(),
        manifest.digest().as_str()
    );
}

/// Docker schema 2 manifests and manifest lists keep their media type and bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_media_types_are_kept() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let base = registry.namespace("docker-types");
    let (src, dst) = (repo(&base, "src"), repo(&base, "dst"));

    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = pseudo_random_bytes(1000, 3);
    let config_digest = client.push_blob(&src, config.to_vec()).await.unwrap();
    let layer_digest = client.push_blob(&src, layer.clone()).await.unwrap();
    let image = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{DOCKER_MANIFEST}\",\n   \"config\": {{\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      \"size\": {},\n      \"digest\": \"{config_digest}\"\n   }},\n   \"layers\": [\n      {{\n         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": {},\n         \"digest\": \"{layer_digest}\"\n      }}\n   ]\n}}",
        config.len(),
        layer.len()
    );
    let image = Manifest::from_bytes(image.into_bytes(), None).unwrap();
    assert_eq!(image.media_type(), DOCKER_MANIFEST);
    client
        .put_manifest(&src, Some(&tag("v1")), &image)
        .await
        .unwrap();
    let list = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{DOCKER_MANIFEST_LIST}\",\n   \"manifests\": [\n      {{ \"mediaType\": \"{DOCKER_MANIFEST}\", \"size\": {}, \"digest\": \"{}\", \"platform\": {{ \"architecture\": \"amd64\", \"os\": \"linux\" }} }}\n   ]\n}}",
        image.bytes().len(),
        image.digest()
    );
    let list = Manifest::from_bytes(list.into_bytes(), None).unwrap();
    client
        .put_manifest(&src, Some(&tag("v1-list")), &list)
        .await
        .unwrap();

    for (t, m, media_type) in [
        ("v1", &image, DOCKER_MANIFEST),
        ("v1-list", &list, DOCKER_MANIFEST_LIST),
    ] {
        let got = client.resolve(&src, &Reference::Tag(tag(t))).await.unwrap();
        assert_eq!(got.media_type(), media_type);
        assert_eq!(got.bytes(), m.bytes());
        assert_eq!(
            skopeo_raw_manifest(&format!("{}:{t}", loc(&src))),
            m.bytes()
        );
    }

    client.copy(&src, &dst, list.digest()).await.unwrap();
    for m in [&image, &list] {
        let got = client
            .resolve(&dst, &Reference::Digest(m.digest().clone()))
            .await
            .unwrap();
        assert_eq!(got.bytes(), m.bytes());
        assert_eq!(got.media_type(), m.media_type());
        assert_eq!(
            skopeo_raw_manifest(&format!("{}@{}", loc(&dst), m.digest())),
            m.bytes()
        );
    }
}

/// Promotion to another repository of the same registry mounts every blob: the registry's
/// request log shows a successful mount per blob and no upload of blob bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_repository_promotion_mounts_every_blob() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let base = registry.namespace("mount");
    let (dev, prod) = (repo(&base, "dev/app"), repo(&base, "prod/app"));
    let image = push_generated_image(
        &client,
        &dev,
        Some(&tag("v1")),
        &[200_000, 300_000, 1000],
        11,
    )
    .await;
    let blobs: Vec<Digest> = image.body().blobs().map(|d| d.digest.clone()).collect();
    assert_eq!(blobs.len(), 4);
    assert_eq!(client.copy_mode(&dev, &prod), CopyMode::Mount);

    let report = client.copy(&dev, &prod, image.digest()).await.unwrap();
    assert_eq!(report.blobs_mounted, 4, "{report:?}");
    assert_eq!(report.blobs_uploaded, 0, "{report:?}");
    assert_eq!(report.bytes_uploaded, 0, "{report:?}");

    let prod_path = format!("/v2/{}/", prod.as_str().split_once('/').unwrap().1);
    let requests = registry.requests_for(&prod_path);
    let uploads: Vec<_> = requests.iter().filter(|r| r.is_blob_upload()).collect();
    assert!(uploads.is_empty(), "blob bytes were uploaded: {uploads:?}");
    let mounts: Vec<_> = requests.iter().filter(|r| r.is_mount()).collect();
    assert_eq!(mounts.len(), 4, "{requests:#?}");
    for d in &blobs {
        assert!(
            mounts.iter().any(|m| m.uri.contains(d.hex())),
            "no mount of {d}"
        );
        // The registry's storage links the blob into the destination repository.
        let link = registry
            .storage_dir()
            .join("docker/registry/v2/repositories")
            .join(prod.as_str().split_once('/').unwrap().1)
            .join("_layers/sha256")
            .join(d.hex())
            .join("link");
        assert!(link.is_file(), "{} is missing", link.display());
    }

    // Promoting again moves nothing.
    let again = client.copy(&dev, &prod, image.digest()).await.unwrap();
    assert_eq!(
        (
            again.blobs_mounted,
            again.blobs_uploaded,
            again.manifests_copied
        ),
        (0, 0, 0)
    );

    // Retag in the same repository is tag-only.
    assert_eq!(client.copy_mode(&prod, &prod), CopyMode::TagOnly);
    let before = registry.requests_for(&prod_path).len();
    let report = client.copy(&prod, &prod, image.digest()).await.unwrap();
    assert_eq!(report, Default::default());
    client
        .put_manifest(&prod, Some(&tag("v1-prod")), &image)
        .await
        .unwrap();
    let new_requests = &registry.requests_for(&prod_path)[before..];
    assert!(
        new_requests.iter().all(|r| !r.uri.contains("/blobs/")),
        "a retag touched blobs: {new_requests:#?}"
    );
}

/// A multi-arch index pushed by skopeo (`--all`) is copied children first, then the index,
/// with every digest kept, within a registry and to another registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_index_is_copied_children_first() {
    let registry = TestRegistry::shared();
    let other = TestRegistry::start();
    let client =
        OciRegistry::new(registry.oci_options().with_insecure_hosts([other.host()])).unwrap();
    let base = registry.namespace("index");
    let (src, dst) = (repo(&base, "src"), repo(&base, "dst"));
    let remote = repo(&other.namespace("index"), "app");

    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayoutWriter::create(dir.path());
    let mut children = Vec::new();
    for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
        let config = format!(
            "{{\"architecture\":\"{arch}\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
        );
        let (cd, cs) = layout.blob(config.as_bytes());
        let (ld, ls) = layout.blob(&pseudo_random_bytes(50_000, 100 + i as u64));
        let body = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{cd}\",\"size\":{cs}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{ld}\",\"size\":{ls}}}]}}"
        );
        let m = Manifest::from_bytes(body.into_bytes(), None).unwrap();
        layout.manifest(&m, None);
        let mut d = m.descriptor();
        d.platform = Some(serde_json::json!({"architecture": arch, "os": "linux"}));
        children.push((m, d));
    }
    let index_body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.into()),
        manifests: Some(
            children
                .iter()
                .map(|(_, d)| d.clone())
                .collect::<Vec<Descriptor>>(),
        ),
        ..Default::default()
    };
    let index =
        Manifest::from_bytes(serde_json::to_vec_pretty(&index_body).unwrap(), None).unwrap();
    assert!(index.is_index());
    layout.manifest(&index, Some("v2"));
    let layout_dir = layout.finish();
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v2", layout_dir.display()),
        &format!("docker://{}:v2", loc(&src)),
    ]);
    let resolved = client
        .resolve(&src, &Reference::Tag(tag("v2")))
        .await
        .unwrap();
    assert_eq!(resolved.digest(), index.digest());

    for target in [&dst, &remote] {
        let report = client.copy(&src, target, index.digest()).await.unwrap();
        assert_eq!(report.manifests_copied, 3, "{target}: {report:?}");
        client
            .put_manifest(target, Some(&tag("v2-next")), &resolved)
            .await
            .unwrap();
        let raw = skopeo_raw_manifest(&format!("{}:v2-next", loc(target)));
        assert_eq!(&Digest::of(&raw), index.digest(), "{target}");
        for (child, _) in &children {
            let raw = skopeo_raw_manifest(&format!("{}@{}", loc(target), child.digest()));
            assert_eq!(&raw, child.bytes(), "{target}");
        }
    }
    assert_eq!(client.copy_mode(&src, &remote), CopyMode::Stream);

    // Order: in the other registry's log, both children were written before the index.
    let path = format!(
        "/v2/{}/manifests/",
        remote.as_str().split_once('/').unwrap().1
    );
    let puts: Vec<String> = other
        .requests_for(&path)
        .into_iter()
        .filter(|r| r.method == "PUT" && r.status == 201)
        .map(|r| r.uri)
        .collect();
    let pos = |d: &Digest| puts.iter().position(|u| u.ends_with(d.as_str()));
    let index_pos = pos(index.digest()).expect("index written by digest");
    for (child, _) in &children {
        assert!(
            pos(child.digest()).expect("child written") < index_pos,
            "{puts:#?}"
        );
    }
}

/// An index whose children are missing is refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_with_missing_children_is_refused() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let r = repo(&registry.namespace("bad-index"), "app");
    let present = push_generated_image(&client, &r, None, &[10], 5).await;
    let missing = Manifest::from_bytes(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.to_vec(), None).unwrap();
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.into()),
        manifests: Some(vec![present.descriptor(), missing.descriptor()]),
        ..Default::default()
    };
    let index = Manifest::from_bytes(serde_json::to_vec(&body).unwrap(), None).unwrap();
    match client.put_manifest(&r, Some(&tag("v1")), &index).await {
        Err(Error::NotFound { what }) => {
            assert!(what.contains(missing.digest().as_str()), "{what}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(client.list_tags(&r).await.unwrap().is_empty());
}

/// Distribution 2.8 ignores `n` and `last`; listing still ends, with every tag once, and asks
/// at most twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_listing_ends_when_the_registry_ignores_pagination() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let r = repo(&registry.namespace("many-tags"), "app");
    let image = push_generated_image(&client, &r, None, &[10], 9).await;
    let count = 1010;
    use futures::StreamExt as _;
    futures::stream::iter(0..count)
        .map(|i| {
            let (client, r, image) = (client.clone(), r.clone(), image.clone());
            async move {
                client
                    .put_manifest(&r, Some(&tag(&format!("t{i:04}"))), &image)
                    .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .unwrap();
    let path = format!("/v2/{}/tags/list", r.as_str().split_once('/').unwrap().1);
    let tags = client.list_tags(&r).await.unwrap();
    assert_eq!(tags.len(), count);
    assert!(
        tags.windows(2).all(|w| w[0] < w[1]),
        "not sorted or not unique"
    );
    let listings = registry.requests_for(&path).len();
    assert!((1..=2).contains(&listings), "{listings} listing requests");
}

/// `oci-layout:` locations and locations with a scheme are refused with a clear error.
#[tokio::test]
async fn layout_locations_are_refused() {
    let client = OciRegistry::new(OciOptions::default()).unwrap();
    let layout = Repository::new("oci-layout:./registry/dev/app").unwrap();
    let err = client
        .resolve(&layout, &Reference::Tag(tag("v1")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("OciLayoutRegistry"), "{err}");
    let err = client
        .copy(
            &Repository::new("127.0.0.1:1/a").unwrap(),
            &layout,
            &Digest::of(b"x"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("oci-layout"), "{err}");
}

/// Plain HTTP is used only for listed hosts: the same registry not listed as insecure is
/// reached over HTTPS, which a plain-HTTP registry cannot answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_for_listed_hosts() {
    let registry = TestRegistry::shared();
    let listed = registry.client();
    let r = repo(&registry.namespace("tls"), "app");
    let image = push_generated_image(&listed, &r, Some(&tag("v1")), &[10], 1).await;

    let not_listed = OciRegistry::new(OciOptions {
        credentials: CredentialSource::Anonymous,
        retries: 0,
        ..OciOptions::default()
    })
    .unwrap();
    let err = not_listed
        .resolve(&r, &Reference::Tag(tag("v1")))
        .await
        .unwrap_err();
    match &err {
        Error::Unavailable {
            registry: host,
            message,
        } => {
            assert_eq!(host, &registry.host());
            assert!(message.contains("https://"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let listed_again = OciRegistry::new(OciOptions {
        insecure_hosts: vec![registry.host()],
        credentials: CredentialSource::Anonymous,
        ..OciOptions::default()
    })
    .unwrap();
    let got = listed_again
        .resolve(&r, &Reference::Tag(tag("v1")))
        .await
        .unwrap();
    assert_eq!(got.digest(), image.digest());
}

/// A 4xx is not retried: a missing tag costs one request, and the error names the registry and
/// the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_not_retried_and_names_the_reference() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let r = repo(&registry.namespace("notfound"), "app");
    push_generated_image(&client, &r, Some(&tag("v1")), &[10], 2).await;
    let path = format!("/manifests/nope-{}", uuid_like());
    let missing_tag = path.rsplit('/').next().unwrap().to_string();
    let err = client
        .resolve(&r, &Reference::Tag(tag(&missing_tag)))
        .await
        .unwrap_err();
    match &err {
        Error::NotFound { what } => {
            assert!(what.contains(&format!("{r}:{missing_tag}")), "{what}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let attempts = registry.requests_for(&path);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0].status, 404);
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
