//! Evidence (test and policy results) attached to a digest on a registry without the referrers
//! API (distribution 2.8): written as referrers listed in the `sha256-<hex>` tag-schema index
//! (read back here by skopeo), read by the evidence gate, and carried along by promotion.

use std::sync::Arc;

use chrono::Utc;
use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::registry::{EVIDENCE_ARTIFACT_TYPE, Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::{
    Actor, ArtifactName, ArtifactRegistry, DefaultPromotionManager, EnvName, Error,
    PromotionRequest, Promotions, RegistryExt, Repository, Tag,
};
use floe_promotion_oci::testing::{TestRegistry, push_generated_image, skopeo_raw_manifest};

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").unwrap()).unwrap()
}

fn evidence(kind: EvidenceKind, status: EvidenceStatus) -> Evidence {
    Evidence {
        kind,
        status,
        environment: Some(EnvName::new("dev").unwrap()),
        created: Utc::now(),
        actor: Some("ci".into()),
        details: serde_json::json!({"passed": 42, "failed": 0}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_listed_in_the_tag_schema_index() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let repo = app(&registry.namespace("evidence"));
    let image = push_generated_image(&client, &repo, Some(&tag("v1")), &[100], 1).await;
    let tests = evidence(EvidenceKind::Tests, EvidenceStatus::Passed);
    let policy = evidence(EvidenceKind::Policy, EvidenceStatus::Failed);
    let tests_digest = client
        .attach_evidence(&repo, image.digest(), &tests)
        .await
        .unwrap();
    let policy_digest = client
        .attach_evidence(&repo, image.digest(), &policy)
        .await
        .unwrap();

    // The fallback index, as an independent client sees it.
    let raw = skopeo_raw_manifest(&format!("{repo}:{}", image.digest().referrers_tag()));
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for (digest, kind) in [(&tests_digest, "tests"), (&policy_digest, "policy")] {
        let entry = entries
            .iter()
            .find(|e| e["digest"] == digest.as_str())
            .unwrap_or_else(|| panic!("{digest} not in {index}"));
        assert_eq!(entry["artifactType"], EVIDENCE_ARTIFACT_TYPE);
        assert_eq!(entry["annotations"]["dev.floe.evidence.kind"], kind);
    }

    let mut read = client.evidence(&repo, image.digest()).await.unwrap();
    read.sort_by_key(|e| e.kind.to_string());
    let mut expected = vec![tests, policy];
    expected.sort_by_key(|e| e.kind.to_string());
    assert_eq!(read, expected);
}

/// With the `tests` gate on, a promotion passes only with passed test evidence on the digest,
/// and the evidence travels: the next promotion reads it in the environment it arrived in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tests_gate_reads_evidence_that_travels_with_the_artifact() {
    let a = TestRegistry::shared();
    let b = TestRegistry::start();
    let client: Arc<dyn ArtifactRegistry> = Arc::new(
        floe_promotion_oci::OciRegistry::new(a.oci_options().with_insecure_hosts([b.host()]))
            .unwrap(),
    );
    let (dev, staging, prod) = (
        a.namespace("ev-dev"),
        b.namespace("ev-staging"),
        b.namespace("ev-prod"),
    );
    let tested =
        push_generated_image(client.as_ref(), &app(&dev), Some(&tag("v1")), &[100], 2).await;
    client
        .attach_evidence(
            &app(&dev),
            tested.digest(),
            &evidence(EvidenceKind::Tests, EvidenceStatus::Passed),
        )
        .await
        .unwrap();
    push_generated_image(client.as_ref(), &app(&dev), Some(&tag("v2")), &[100], 3).await;

    let mut envs = vec![
        Environment::new(EnvName::new("dev").unwrap()).with_repository(dev.clone()),
        Environment::new(EnvName::new("staging").unwrap()).with_repository(staging.clone()),
        Environment::new(EnvName::new("prod").unwrap()).with_repository(prod.clone()),
    ];
    envs[1].gates.tests = true;
    envs[2].gates.tests = true;
    let manager = DefaultPromotionManager::builder()
        .config(Arc::new(
            InMemoryConfig::new(PromotionSettings::new(envs)).unwrap(),
        ))
        .registry(client.clone())
        .build()
        .unwrap();
    let actor = Actor::new("ci").unwrap();
    manager
        .promote(PromotionRequest::new("app", "v1", "dev", "staging", actor.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        client
            .evidence(&app(&staging), tested.digest())
            .await
            .unwrap()
            .len(),
        1
    );
    manager
        .promote(PromotionRequest::new("app", "v1", "staging", "prod", actor.clone()).unwrap())
        .await
        .unwrap();

    match manager
        .promote(PromotionRequest::new("app", "v2", "dev", "staging", actor).unwrap())
        .await
    {
        Err(Error::GateFailed { failed }) => assert!(
            failed
                .iter()
                .any(|g| g.gate == "tests" && g.message.contains("no tests evidence")),
            "{failed:?}"
        ),
        other => panic!("expected the tests gate to fail, got {other:?}"),
    }
}
