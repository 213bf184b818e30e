//! The conformance cases of `ArtifactRegistry::copy` and `copy_known`.

use super::*;

/// Asserts that `m` is in `dst` by digest with identical bytes and every blob; returns it as
/// resolved there.
async fn copied(registry: &dyn ArtifactRegistry, dst: &Repository, m: &Manifest) -> Manifest {
    let got = registry
        .resolve(dst, &Reference::Digest(m.digest().clone()))
        .await
        .expect("resolve in dst");
    assert_eq!(got.bytes(), m.bytes());
    for d in m.body().blobs() {
        registry
            .fetch_blob(dst, &d.digest, 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("blob {} in dst: {e}", d.digest));
    }
    got
}

/// `copy` makes the manifest resolvable by digest in `dst` with identical bytes and blobs.
pub async fn copy_keeps_bytes_and_blobs(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    let m = push_image(registry, &src, "copy", &[b"layer-1", b"layer-2"]).await;
    registry.copy(&src, &dst, m.digest()).await.expect("copy");
    let got = copied(registry, &dst, &m).await;
    registry
        .put_manifest(&dst, Some(&tag("v1-staging")), &got)
        .await
        .expect("tag in dst");
}

/// `copy_known` of a manifest resolved from `src` leaves `dst` as `copy` does: the manifest
/// resolvable by digest with identical bytes, its blobs and its signature tag there, no other
/// tag written; and again, it changes nothing.
pub async fn copy_known_is_copy(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (src, dst) = (repo(base, "src"), repo(base, "known"));
    let m = push_image(registry, &src, "known", &[b"layer-k1", b"layer-k2"]).await;
    let sig = push_signature_tag(registry, &src, &m).await;
    let resolved = registry
        .resolve(&src, &Reference::Digest(m.digest().clone()))
        .await
        .expect("resolve in src");
    for _ in 0..2 {
        registry
            .copy_known(&src, &dst, &resolved)
            .await
            .expect("copy_known");
        copied(registry, &dst, &m).await;
        let sig_tag = tag(&m.digest().signature_tag());
        let copied = registry
            .resolve(&dst, &Reference::Tag(sig_tag.clone()))
            .await
            .expect("signature tag in dst");
        assert_eq!(copied.digest(), sig.digest());
        assert_eq!(
            registry.list_tags(&dst).await.expect("tags"),
            [sig_tag],
            "no other tag"
        );
    }
}

/// `copy` of an index copies its children first, and keeps every digest.
pub async fn copy_index_with_children(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    let amd = push_image(registry, &src, "amd64", &[b"amd64 layer"]).await;
    let arm = push_image(registry, &src, "arm64", &[b"arm64 layer"]).await;
    let mut entries = vec![amd.descriptor(), arm.descriptor()];
    entries[0].platform = Some(serde_json::json!({"architecture": "amd64", "os": "linux"}));
    entries[1].platform = Some(serde_json::json!({"architecture": "arm64", "os": "linux"}));
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.into()),
        manifests: Some(entries),
        ..Default::default()
    };
    let index = Manifest::from_bytes(serde_json::to_vec(&body).expect("json"), Some(OCI_INDEX))
        .expect("index");
    registry
        .put_manifest(&src, Some(&tag("v1")), &index)
        .await
        .expect("put index");
    registry
        .copy(&src, &dst, index.digest())
        .await
        .expect("copy index");
    for m in [&index, &amd, &arm] {
        let got = registry
            .resolve(&dst, &Reference::Digest(m.digest().clone()))
            .await
            .expect("resolve in dst");
        assert_eq!(got.bytes(), m.bytes());
    }
    assert!(
        registry
            .resolve(&dst, &Reference::Digest(index.digest().clone()))
            .await
            .expect("index")
            .is_index()
    );
}

/// `copy` brings the cosign signature tag `sha256-<hex>.sig` along.
pub async fn copy_brings_signature(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    let m = push_image(registry, &src, "signed", &[b"signed layer"]).await;
    let sig = push_signature_tag(registry, &src, &m).await;
    let report = registry.copy(&src, &dst, m.digest()).await.expect("copy");
    let got = resolve_tag(registry, &dst, &m.digest().signature_tag()).await;
    assert_eq!(got.digest(), sig.digest());
    assert_eq!(report.signatures_copied, 1);
}

/// `copy` brings the cosign attestation tag `sha256-<hex>.att` when the destination has
/// none, and never replaces the one the destination has (attestations are appended per
/// repository).
pub async fn copy_brings_attestations_without_replacing(
    registry: &dyn ArtifactRegistry,
    base: &Repository,
) {
    use crate::attest::{Envelope, attach::attach};
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    let m = push_image(registry, &src, "attested", &[b"attested layer"]).await;
    let envelope = |text: &str| Envelope {
        payload_type: "application/vnd.in-toto+json".into(),
        payload: text.into(),
        signatures: vec![],
    };
    let type_ = "https://example.com/predicate";
    let first = attach(
        registry,
        &src,
        m.digest(),
        &envelope("Zmlyc3Q="),
        type_,
        None,
        Utc::now(),
    )
    .await
    .expect("attach in the source");
    registry.copy(&src, &dst, m.digest()).await.expect("copy");
    let att = m.digest().attestation_tag();
    let copied = resolve_tag(registry, &dst, &att).await;
    assert_eq!(
        copied.digest(),
        &first.attestation_manifest,
        "the attestation tag did not travel"
    );

    let own = attach(
        registry,
        &dst,
        m.digest(),
        &envelope("b3du"),
        type_,
        None,
        Utc::now(),
    )
    .await
    .expect("attach in the destination");
    attach(
        registry,
        &src,
        m.digest(),
        &envelope("bGF0ZXI="),
        type_,
        None,
        Utc::now(),
    )
    .await
    .expect("attach again in the source");
    registry
        .copy(&src, &dst, m.digest())
        .await
        .expect("copy again");
    let kept = resolve_tag(registry, &dst, &att).await;
    assert_eq!(
        kept.digest(),
        &own.attestation_manifest,
        "the destination's attestations were replaced"
    );
    assert_eq!(kept.body().layers.len(), 2, "the append lost a layer");
}

/// `copy` brings referrers (evidence, attestations) along.
pub async fn copy_brings_referrers(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    let m = push_image(registry, &src, "with-referrers", &[b"l"]).await;
    let evidence = Evidence {
        kind: EvidenceKind::Tests,
        status: EvidenceStatus::Passed,
        environment: None,
        created: Utc::now(),
        actor: Some("ci".into()),
        details: serde_json::json!({"passed": 10}),
    };
    registry
        .attach_evidence(&src, m.digest(), &evidence)
        .await
        .expect("attach");
    let report = registry.copy(&src, &dst, m.digest()).await.expect("copy");
    assert_eq!(report.referrers_copied, 1);
    let found = registry
        .evidence(&dst, m.digest())
        .await
        .expect("evidence in dst");
    assert_eq!(found, vec![evidence]);
}

/// `copy` writes no other tag, and is idempotent.
pub async fn copy_writes_no_tag_and_is_idempotent(
    registry: &dyn ArtifactRegistry,
    base: &Repository,
) {
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    let m = push_image(registry, &src, "idem", &[b"l"]).await;
    registry
        .put_manifest(&src, Some(&tag("v1")), &m)
        .await
        .expect("tag");
    registry.copy(&src, &dst, m.digest()).await.expect("copy");
    let second = registry
        .copy(&src, &dst, m.digest())
        .await
        .expect("copy again");
    assert_eq!(
        second.blobs_uploaded, 0,
        "second copy uploaded blobs: {second:?}"
    );
    assert_eq!(
        second.blobs_mounted, 0,
        "second copy mounted blobs: {second:?}"
    );
    assert!(registry.list_tags(&dst).await.expect("tags").is_empty());
}

/// Copying into the same repository changes nothing.
pub async fn copy_into_same_repository_is_noop(registry: &dyn ArtifactRegistry, base: &Repository) {
    let r = repo(base, "app");
    let m = push_image(registry, &r, "same", &[b"l"]).await;
    registry
        .put_manifest(&r, Some(&tag("v1")), &m)
        .await
        .expect("tag");
    let before = registry.list_tags(&r).await.expect("tags");
    let report = registry.copy(&r, &r, m.digest()).await.expect("copy");
    assert_eq!(report, Default::default());
    assert_eq!(registry.list_tags(&r).await.expect("tags"), before);
}

/// Copying a digest the source does not have is `NotFound`.
pub async fn copy_missing_source_is_not_found(registry: &dyn ArtifactRegistry, base: &Repository) {
    let (src, dst) = (repo(base, "src"), repo(base, "dst"));
    push_image(registry, &src, "other", &[b"l"]).await;
    assert_not_found(
        registry.copy(&src, &dst, &Digest::of(b"absent")).await,
        "copy of a missing digest",
    );
}
