//! Conformance suite of [`ArtifactRegistry`]: one public async function per sentence of the
//! trait's contract. Run it with [`registry_conformance!`](crate::registry_conformance).
//!
//! Each case gets a registry and a namespace (`base`) no other case uses, and creates its
//! repositories below it with [`Repository::join`].

use std::collections::BTreeMap;

use chrono::Utc;

use crate::error::Error;
use crate::model::{ArtifactName, Digest, Reference, Repository, Tag};
use crate::registry::{
    ArtifactRegistry, CopyMode, Descriptor, Evidence, EvidenceKind, EvidenceStatus, Manifest,
    ManifestBody, OCI_INDEX, OCI_MANIFEST, RegistryExt,
};

mod copy;
pub use copy::*;

fn repo(base: &Repository, name: &str) -> Repository {
    base.join(&ArtifactName::new(name).expect("test repository names are valid"))
        .expect("test repositories are short")
}

fn tag(t: &str) -> Tag {
    Tag::new(t).expect("test tags are valid")
}

fn blob_descriptor(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(data),
        size: data.len() as u64,
        annotations: BTreeMap::new(),
        artifact_type: None,
        platform: None,
    }
}

/// Pushes a small image (config + layers) into `repo` without tagging it. The manifest bytes
/// are formatted unusually (spaces, key order) so that re-serialising them would change the
/// digest. `salt` makes the image unique.
pub async fn push_image(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    salt: &str,
    layers: &[&[u8]],
) -> Manifest {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"salt\":\"{salt}\"}}");
    registry
        .push_blob(repo, config.clone().into_bytes())
        .await
        .expect("push config blob");
    let mut layer_json = Vec::new();
    for layer in layers {
        registry
            .push_blob(repo, layer.to_vec())
            .await
            .expect("push layer blob");
        layer_json.push(format!(
            "{{ \"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"size\": {}, \"digest\": \"{}\" }}",
            layer.len(),
            Digest::of(layer)
        ));
    }
    let bytes = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{ \"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"size\": {}, \"digest\": \"{}\" }},\n  \"layers\": [ {} ],\n  \"annotations\": {{ \"org.example.salt\": \"{salt}\" }}\n}}\n",
        config.len(),
        Digest::of(config.as_bytes()),
        layer_json.join(", ")
    );
    let manifest = Manifest::from_bytes(bytes.into_bytes(), Some(OCI_MANIFEST)).expect("manifest");
    registry
        .put_manifest(repo, None, &manifest)
        .await
        .expect("put manifest");
    manifest
}

/// Pushes an artifact whose `subject` is `subject` (like a signature or an attestation).
pub async fn push_referrer(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    subject: &Manifest,
    artifact_type: &str,
    payload: &[u8],
) -> Manifest {
    registry
        .push_blob(repo, b"{}".to_vec())
        .await
        .expect("push empty config");
    registry
        .push_blob(repo, payload.to_vec())
        .await
        .expect("push payload");
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: Some(blob_descriptor("application/vnd.oci.empty.v1+json", b"{}")),
        layers: vec![blob_descriptor("application/octet-stream", payload)],
        subject: Some(subject.descriptor()),
        ..Default::default()
    };
    let manifest =
        Manifest::from_bytes(serde_json::to_vec(&body).expect("json"), Some(OCI_MANIFEST))
            .expect("manifest");
    registry
        .put_manifest(repo, None, &manifest)
        .await
        .expect("put referrer");
    manifest
}

/// Pushes a cosign-style signature manifest and tags it `sha256-<hex>.sig`.
pub async fn push_signature_tag(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    subject: &Manifest,
) -> Manifest {
    let payload = format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{repo}\"}},\"image\":{{\"docker-manifest-digest\":\"{}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}",
        subject.digest()
    );
    registry
        .push_blob(repo, b"{}".to_vec())
        .await
        .expect("push config");
    registry
        .push_blob(repo, payload.clone().into_bytes())
        .await
        .expect("push payload");
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(blob_descriptor(
            "application/vnd.oci.image.config.v1+json",
            b"{}",
        )),
        layers: vec![blob_descriptor(
            "application/vnd.dev.cosign.simplesigning.v1+json",
            payload.as_bytes(),
        )],
        ..Default::default()
    };
    let manifest =
        Manifest::from_bytes(serde_json::to_vec(&body).expect("json"), Some(OCI_MANIFEST))
            .expect("manifest");
    registry
        .put_manifest(
            repo,
            Some(&tag(&subject.digest().signature_tag())),
            &manifest,
        )
        .await
        .expect("put signature");
    manifest
}

async fn resolve_tag(registry: &dyn ArtifactRegistry, repo: &Repository, t: &str) -> Manifest {
    registry
        .resolve(repo, &Reference::Tag(tag(t)))
        .await
        .unwrap_or_else(|e| panic!("resolve {repo}:{t}: {e}"))
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// `resolve` returns the exact stored bytes, their media type and their SHA-256 digest.
pub async fn resolve_returns_exact_bytes(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let pushed = push_image(registry, &r, "exact", &[b"layer-one"]).await;
    registry
        .put_manifest(&r, Some(&tag("v1")), &pushed)
        .await
        .expect("tag");
    let got = resolve_tag(registry, &r, "v1").await;
    assert_eq!(got.bytes(), pushed.bytes());
    assert_eq!(got.digest(), &Digest::of(pushed.bytes()));
    assert_eq!(got.media_type(), OCI_MANIFEST);
    let by_digest = registry
        .resolve(&r, &Reference::Digest(pushed.digest().clone()))
        .await
        .expect("resolve by digest");
    assert_eq!(by_digest.bytes(), pushed.bytes());
}

/// A missing repository, tag or digest is `NotFound`.
pub async fn resolve_missing_is_not_found(registry: &dyn ArtifactRegistry, base: &Repository) {
    let missing_repo = repo(base, "nothing-here");
    assert_not_found(
        registry
            .resolve(&missing_repo, &Reference::Tag(tag("v1")))
            .await,
        "missing repository",
    );
    let r = repo(base, "app");
    push_image(registry, &r, "missing", &[b"l"]).await;
    assert_not_found(
        registry.resolve(&r, &Reference::Tag(tag("nope"))).await,
        "missing tag",
    );
    assert_not_found(
        registry
            .resolve(&r, &Reference::Digest(Digest::of(b"never pushed")))
            .await,
        "missing digest",
    );
}

/// `resolve_tag` returns what `resolve` of the tag returns, and `None` for a missing
/// repository or tag.
pub async fn resolve_tag_is_resolve_or_none(registry: &dyn ArtifactRegistry, base: &Repository) {
    let missing_repo = repo(base, "nothing-here");
    assert_eq!(
        registry
            .resolve_tag(&missing_repo, &tag("v1"))
            .await
            .expect("a missing repository is no error"),
        None
    );
    let r = repo(base, "app");
    let m = push_image(registry, &r, "resolve-tag", &[b"t"]).await;
    registry
        .put_manifest(&r, Some(&tag("present")), &m)
        .await
        .expect("tag");
    let found = registry
        .resolve_tag(&r, &tag("present"))
        .await
        .expect("resolve_tag")
        .expect("the tag exists");
    let resolved = registry
        .resolve(&r, &Reference::Tag(tag("present")))
        .await
        .expect("resolve");
    assert_eq!(found.digest(), m.digest());
    assert_eq!(found.bytes(), resolved.bytes());
    assert_eq!(found.media_type(), resolved.media_type());
    assert_eq!(
        registry
            .resolve_tag(&r, &tag("absent"))
            .await
            .expect("a missing tag is no error"),
        None
    );
}

/// `put_manifest` stores the bytes unchanged: resolving the tag yields the same digest.
pub async fn put_manifest_keeps_digest(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let m = push_image(registry, &r, "keep", &[b"a", b"b"]).await;
    for t in ["v1", "v1-staging", "latest-staging"] {
        registry
            .put_manifest(&r, Some(&tag(t)), &m)
            .await
            .expect("tag");
        assert_eq!(
            resolve_tag(registry, &r, t).await.digest(),
            m.digest(),
            "{t}"
        );
    }
}

/// With no tag, the manifest is stored by digest only.
pub async fn put_manifest_without_tag(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let m = push_image(registry, &r, "untagged", &[b"x"]).await;
    assert!(registry.list_tags(&r).await.expect("list").is_empty());
    let got = registry
        .resolve(&r, &Reference::Digest(m.digest().clone()))
        .await
        .expect("by digest");
    assert_eq!(got.digest(), m.digest());
}

/// A manifest whose blobs are missing is refused with `NotFound` and nothing is written.
pub async fn put_manifest_refuses_missing_blobs(
    registry: &dyn ArtifactRegistry,
    base: &Repository,
) {
    let r = repo(base, "app");
    push_image(registry, &r, "present", &[b"present"]).await;
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(blob_descriptor(
            "application/vnd.oci.image.config.v1+json",
            b"{\"never\":\"pushed\"}",
        )),
        layers: vec![blob_descriptor(
            "application/vnd.oci.image.layer.v1.tar",
            b"never pushed layer",
        )],
        ..Default::default()
    };
    let m = Manifest::from_bytes(serde_json::to_vec(&body).expect("json"), Some(OCI_MANIFEST))
        .expect("manifest");
    assert_not_found(
        registry.put_manifest(&r, Some(&tag("broken")), &m).await,
        "manifest with missing blobs",
    );
    assert_not_found(
        registry.resolve(&r, &Reference::Tag(tag("broken"))).await,
        "tag of refused manifest",
    );
}

/// A manifest with a `subject` becomes one of the subject's referrers.
pub async fn put_manifest_with_subject_is_referrer(
    registry: &dyn ArtifactRegistry,
    base: &Repository,
) {
    let r = repo(base, "app");
    let subject = push_image(registry, &r, "subject", &[b"s"]).await;
    assert!(
        registry
            .referrers(&r, subject.digest())
            .await
            .expect("referrers")
            .is_empty()
    );
    let referrer = push_referrer(
        registry,
        &r,
        &subject,
        "application/vnd.example.sbom",
        b"sbom",
    )
    .await;
    let found = registry
        .referrers(&r, subject.digest())
        .await
        .expect("referrers");
    assert_eq!(found.len(), 1);
    assert_eq!(&found[0].digest, referrer.digest());
    assert_eq!(
        found[0].artifact_type.as_deref(),
        Some("application/vnd.example.sbom")
    );
}

/// `put_manifest` moves an existing tag.
pub async fn put_manifest_moves_tag(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let a = push_image(registry, &r, "a", &[b"a"]).await;
    let b = push_image(registry, &r, "b", &[b"b"]).await;
    registry
        .put_manifest(&r, Some(&tag("latest")), &a)
        .await
        .expect("tag a");
    registry
        .put_manifest(&r, Some(&tag("latest")), &b)
        .await
        .expect("tag b");
    assert_eq!(
        resolve_tag(registry, &r, "latest").await.digest(),
        b.digest()
    );
}

/// `push_blob` returns the digest of the bytes, is idempotent, and `fetch_blob` reads them.
pub async fn push_blob_is_idempotent(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let data = b"some blob bytes".to_vec();
    let d1 = registry.push_blob(&r, data.clone()).await.expect("push");
    let d2 = registry
        .push_blob(&r, data.clone())
        .await
        .expect("push again");
    assert_eq!(d1, Digest::of(&data));
    assert_eq!(d1, d2);
    assert_eq!(
        registry.fetch_blob(&r, &d1, 1024).await.expect("fetch"),
        data
    );
}

/// `fetch_blob` is `NotFound` for a missing blob and `InvalidInput` above `max_bytes`.
pub async fn fetch_blob_limits(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let d = registry.push_blob(&r, vec![7u8; 100]).await.expect("push");
    assert_not_found(
        registry.fetch_blob(&r, &Digest::of(b"absent"), 1024).await,
        "missing blob",
    );
    match registry.fetch_blob(&r, &d, 99).await {
        Err(Error::InvalidInput { .. }) => {}
        other => panic!("blob over the limit: expected InvalidInput, got {other:?}"),
    }
    assert_eq!(
        registry
            .fetch_blob(&r, &d, 100)
            .await
            .expect("at limit")
            .len(),
        100
    );
}

/// `list_tags` returns every tag once, sorted; an unknown repository has none.
pub async fn list_tags_sorted(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    assert!(
        registry
            .list_tags(&repo(base, "unknown"))
            .await
            .expect("unknown repo")
            .is_empty()
    );
    let m = push_image(registry, &r, "tags", &[b"l"]).await;
    for t in ["v2", "latest-dev", "v1", "v1-dev", "v2"] {
        registry
            .put_manifest(&r, Some(&tag(t)), &m)
            .await
            .expect("tag");
    }
    let tags: Vec<String> = registry
        .list_tags(&r)
        .await
        .expect("list")
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(tags, ["latest-dev", "v1", "v1-dev", "v2"]);
}

/// `referrers` lists every manifest attached to the subject, sorted by digest.
pub async fn referrers_sorted(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let subject = push_image(registry, &r, "subject", &[b"s"]).await;
    let other = push_image(registry, &r, "other", &[b"o"]).await;
    let mut digests = Vec::new();
    for i in 0..3 {
        let m = push_referrer(
            registry,
            &r,
            &subject,
            "application/vnd.example.attestation",
            format!("payload {i}").as_bytes(),
        )
        .await;
        digests.push(m.digest().clone());
    }
    push_referrer(
        registry,
        &r,
        &other,
        "application/vnd.example.attestation",
        b"x",
    )
    .await;
    digests.sort();
    let found: Vec<Digest> = registry
        .referrers(&r, subject.digest())
        .await
        .expect("referrers")
        .into_iter()
        .map(|d| d.digest)
        .collect();
    assert_eq!(found, digests);
}

/// `copy_mode` of a repository to itself is `TagOnly`, to another one is not.
pub async fn copy_mode_without_io(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (a, b) = (repo(base, "a"), repo(base, "b"));
    assert_eq!(registry.copy_mode(&a, &a), CopyMode::TagOnly);
    assert_ne!(registry.copy_mode(&a, &b), CopyMode::TagOnly);
}

/// Concurrent writers do not lose tags or manifests.
pub async fn concurrent_writes(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let m = push_image(registry, &r, "concurrent", &[b"l"]).await;
    let tasks = (0..16).map(|i| {
        let r = r.clone();
        let m = m.clone();
        async move {
            registry
                .put_manifest(&r, Some(&tag(&format!("t{i:02}"))), &m)
                .await
        }
    });
    for result in futures::future::join_all(tasks).await {
        result.expect("concurrent put");
    }
    assert_eq!(registry.list_tags(&r).await.expect("tags").len(), 16);
}

/// Evidence attached with [`RegistryExt::attach_evidence`] reads back with
/// [`RegistryExt::evidence`], bound to its digest only; other referrers are skipped, and a
/// missing subject is `NotFound`.
pub async fn evidence_round_trip(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let a = push_image(registry, &r, "a", &[b"a"]).await;
    let b = push_image(registry, &r, "b", &[b"b"]).await;
    let evidence = Evidence {
        kind: EvidenceKind::Policy,
        status: EvidenceStatus::Failed,
        environment: Some(crate::EnvName::new("dev").expect("env")),
        created: Utc::now(),
        actor: None,
        details: serde_json::Value::Null,
    };
    registry
        .attach_evidence(&r, a.digest(), &evidence)
        .await
        .expect("attach");
    // A referrer that is not floe evidence (an SBOM, say) is skipped.
    push_referrer(registry, &r, &a, "application/vnd.example.sbom", b"sbom").await;
    assert_eq!(
        registry.evidence(&r, a.digest()).await.expect("a"),
        vec![evidence.clone()]
    );
    assert_not_found(
        registry
            .attach_evidence(&r, &Digest::of(b"never pushed"), &evidence)
            .await,
        "evidence for a missing subject",
    );
    assert!(
        registry
            .evidence(&r, b.digest())
            .await
            .expect("b")
            .is_empty()
    );
}

/// Expands to one `#[tokio::test]` per registry conformance case.
///
/// `$setup` is an expression evaluating to a future of
/// `(Arc<dyn ArtifactRegistry>, Repository)`: a registry and a namespace unique to the call.
///
/// ```ignore
/// floe_promotion::registry_conformance!(async {
///     let registry: Arc<dyn ArtifactRegistry> = Arc::new(InMemoryRegistry::new());
///     (registry, Repository::new("mem/conformance").unwrap())
/// });
/// ```
#[macro_export]
macro_rules! registry_conformance {
    ($setup:expr) => {
        $crate::registry_conformance!(@cases $setup;
            resolve_returns_exact_bytes,
            resolve_missing_is_not_found,
            resolve_tag_is_resolve_or_none,
            put_manifest_keeps_digest,
            put_manifest_without_tag,
            put_manifest_refuses_missing_blobs,
            put_manifest_with_subject_is_referrer,
            put_manifest_moves_tag,
            push_blob_is_idempotent,
            fetch_blob_limits,
            copy_keeps_bytes_and_blobs,
            copy_known_is_copy,
            copy_index_with_children,
            copy_brings_signature,
            copy_brings_attestations_without_replacing,
            copy_brings_referrers,
            copy_writes_no_tag_and_is_idempotent,
            copy_into_same_repository_is_noop,
            copy_missing_source_is_not_found,
            list_tags_sorted,
            referrers_sorted,
            copy_mode_without_io,
            concurrent_writes,
            evidence_round_trip
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (registry, base): (
                    ::std::sync::Arc<dyn $crate::ArtifactRegistry>,
                    $crate::Repository,
                ) = $setup.await;
                $crate::testing::registry::$case(registry.as_ref(), &base).await;
            }
        )*
    };
}
