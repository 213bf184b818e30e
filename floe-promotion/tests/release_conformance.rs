//! The release-store conformance suite against the in-memory store, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::{InMemoryReleaseStore, ReleaseStore};

floe_promotion::release_conformance!(async {
    let releases: Arc<dyn ReleaseStore> = Arc::new(InMemoryReleaseStore::new());
    releases
});

/// Clones share one store.
#[tokio::test]
async fn clones_share_state() {
    use floe_promotion::release::{Release, ReleaseKind, ReleaseState};
    use floe_promotion::{ArtifactName, Digest, EnvName, Tag};

    let a = InMemoryReleaseStore::new();
    let b = a.clone();
    let r = Release::new(
        ReleaseKind::Approval,
        EnvName::new("prod").unwrap(),
        ArtifactName::new("app").unwrap(),
        Tag::new("v1").unwrap(),
        Digest::of(b"x"),
        ReleaseState::new("pending", serde_json::json!({})),
        chrono::Utc::now(),
    );
    a.create(r.clone()).await.unwrap();
    assert_eq!(b.get(r.id).await.unwrap(), r);
    assert!(b.record_effect(r.id, "k").await.unwrap());
    assert!(!a.record_effect(r.id, "k").await.unwrap());
}
