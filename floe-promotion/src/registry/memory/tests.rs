//! The in-memory registry's own tests (the shared conformance suite runs elsewhere).

use super::*;

/// Everything `repo` holds, in a stable order; `None` when there is no such repository.
fn state(registry: &InMemoryRegistry, repo: &Repository) -> Option<String> {
    let store = registry.lock();
    let r = store.repos.get(repo.as_str())?;
    let mut manifests: Vec<String> = r
        .manifests
        .iter()
        .map(|(d, m)| format!("{d} {} {}", m.media_type(), m.digest()))
        .collect();
    manifests.sort();
    let mut blobs: Vec<&str> = r.blobs.keys().map(Digest::as_str).collect();
    blobs.sort();
    let mut referrers: Vec<String> = r
        .referrers
        .iter()
        .map(|(s, list)| format!("{s} <- {list:?}"))
        .collect();
    referrers.sort();
    let mut tags: Vec<String> = r
        .tags
        .iter()
        .map(|(t, m)| format!("{t} {} {}", m.digest(), m.media_type()))
        .collect();
    tags.sort();
    Some(format!("{manifests:?}\n{tags:?}\n{blobs:?}\n{referrers:?}"))
}

/// An artifact with one layer, naming `subject` when given, stored in `repo` and tagged.
async fn artifact(
    registry: &InMemoryRegistry,
    repo: &Repository,
    tag: &str,
    layer: &[u8],
    subject: Option<&Manifest>,
) -> Manifest {
    let config = registry.push_blob(repo, b"{}".to_vec()).await.unwrap();
    let layer_digest = registry.push_blob(repo, layer.to_vec()).await.unwrap();
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(Descriptor {
            media_type: "application/vnd.oci.empty.v1+json".into(),
            digest: config,
            size: 2,
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        }),
        layers: vec![Descriptor {
            media_type: "application/octet-stream".into(),
            digest: layer_digest,
            size: layer.len() as u64,
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        }],
        subject: subject.map(Manifest::descriptor),
        ..Default::default()
    };
    let manifest =
        Manifest::from_bytes(serde_json::to_vec(&body).unwrap(), Some(OCI_MANIFEST)).unwrap();
    registry
        .put_manifest(repo, Some(&Tag::new(tag).unwrap()), &manifest)
        .await
        .unwrap();
    manifest
}

/// Removes a blob from `repo` behind the registry's back, so that a copy fails part-way.
fn lose_blob(registry: &InMemoryRegistry, repo: &Repository, digest: &Digest) {
    let mut store = registry.lock();
    let r = store.repos.get_mut(repo.as_str()).unwrap();
    assert!(r.blobs.remove(digest).is_some(), "{digest} was stored");
}

/// A registry holding `v1` in `mem/dev/app`, copied to `mem/staging/app` and tagged
/// `tag` there: the registry, dev, staging and `v1`.
async fn v1_in_staging(tag: &str) -> (InMemoryRegistry, Repository, Repository, Manifest) {
    let registry = InMemoryRegistry::new();
    let dev = Repository::new("mem/dev/app").unwrap();
    let staging = Repository::new("mem/staging/app").unwrap();
    let v1 = registry
        .push_image(&dev, &Tag::new("v1").unwrap(), &[b"one"])
        .await
        .unwrap();
    registry.copy(&dev, &staging, v1.digest()).await.unwrap();
    registry
        .put_manifest(&staging, Some(&Tag::new(tag).unwrap()), &v1)
        .await
        .unwrap();
    (registry, dev, staging, v1)
}

#[tokio::test]
async fn a_copy_failing_after_a_referrer_leaves_the_destination_as_it_was() {
    let (registry, dev, staging, _) = v1_in_staging("staging").await;
    let v2 = registry
        .push_image(&dev, &Tag::new("v2").unwrap(), &[b"two"])
        .await
        .unwrap();
    // Referrers are copied in the order they were stored: the first arrives, the second
    // fails.
    artifact(&registry, &dev, "sbom", b"sbom", Some(&v2)).await;
    artifact(&registry, &dev, "scan", b"scan", Some(&v2)).await;
    lose_blob(&registry, &dev, &Digest::of(b"scan"));
    let before = state(&registry, &staging).unwrap();

    let err = registry
        .copy(&dev, &staging, v2.digest())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(state(&registry, &staging).unwrap(), before);
    assert!(
        registry
            .referrers(&staging, v2.digest())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_copy_failing_at_the_signature_leaves_a_new_or_an_existing_destination_as_it_was() {
    let registry = InMemoryRegistry::new();
    let dev = Repository::new("mem/dev/app").unwrap();
    let staging = Repository::new("mem/staging/app").unwrap();
    let prod = Repository::new("mem/prod/app").unwrap();
    let v1 = registry
        .push_image(&dev, &Tag::new("v1").unwrap(), &[b"one"])
        .await
        .unwrap();
    let v2 = registry
        .push_image(&dev, &Tag::new("v2").unwrap(), &[b"two"])
        .await
        .unwrap();
    registry.copy(&dev, &staging, v1.digest()).await.unwrap();
    // The destination's own signature of v2 is restored, not removed, by the undo.
    let own = artifact(
        &registry,
        &staging,
        &v2.digest().signature_tag(),
        b"own",
        None,
    )
    .await;
    artifact(&registry, &dev, &v2.digest().signature_tag(), b"sig", None).await;
    lose_blob(&registry, &dev, &Digest::of(b"sig"));
    let before = state(&registry, &staging).unwrap();

    registry
        .copy(&dev, &staging, v2.digest())
        .await
        .unwrap_err();
    assert_eq!(state(&registry, &staging).unwrap(), before);
    let sig = Reference::Tag(Tag::new(v2.digest().signature_tag()).unwrap());
    assert_eq!(registry.resolve(&staging, &sig).await.unwrap(), own);

    registry.copy(&dev, &prod, v2.digest()).await.unwrap_err();
    assert_eq!(state(&registry, &prod), None);
}

#[tokio::test]
async fn a_tag_follows_its_manifest_stored_again_with_another_media_type_and_restored() {
    let (registry, dev, staging, v1) = v1_in_staging("current").await;
    let tag = Reference::Tag(Tag::new("current").unwrap());
    let docker =
        Manifest::from_bytes(v1.bytes().to_vec(), Some(super::super::DOCKER_MANIFEST)).unwrap();
    registry
        .put_manifest(&staging, None, &docker)
        .await
        .unwrap();
    for reference in [&tag, &Reference::Digest(v1.digest().clone())] {
        let got = registry.resolve(&staging, reference).await.unwrap();
        assert_eq!(
            got.media_type(),
            super::super::DOCKER_MANIFEST,
            "{reference}"
        );
    }

    // A copy of v1 as dev stores it replaces the media type, then fails at the signature:
    // the undo restores the manifest, and the tag follows it back.
    artifact(&registry, &dev, &v1.digest().signature_tag(), b"sig", None).await;
    lose_blob(&registry, &dev, &Digest::of(b"sig"));
    let before = state(&registry, &staging).unwrap();
    registry
        .copy(&dev, &staging, v1.digest())
        .await
        .unwrap_err();
    assert_eq!(state(&registry, &staging).unwrap(), before);
    assert_eq!(
        registry.resolve(&staging, &tag).await.unwrap().media_type(),
        super::super::DOCKER_MANIFEST
    );
}
