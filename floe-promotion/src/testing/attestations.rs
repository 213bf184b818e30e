//! Conformance suite of the [`AttestationWriter`] and [`verify_promotion`]: one public async
//! function per sentence of the writer's contract and per refusal of the verification, over
//! any registry and any key (a [`Signer`], its [`KeyVerifier`] and another key's verifier).
//! Run it with [`attestation_conformance!`](crate::attestation_conformance).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::attest::attach::envelopes;
use crate::attest::{
    AttestationWriter, KeyVerifier, REVOCATION_PREDICATE_TYPE, ResourceDescriptor, Signer,
    Statement, VSA_PREDICATE_TYPE, VerificationSummary, VerifyPolicy, policy_descriptor,
    verify_promotion,
};
use crate::config::{Environment, InMemoryConfig, PromotionSettings};
use crate::error::Error;
use crate::history::{AuditEvent, EventKind, EventRecord, GENESIS_HASH};
use crate::model::{Actor, ArtifactName, Digest, EnvName, Reference, Repository, Tag};
use crate::notify::Notifier;
use crate::registry::{ArtifactRegistry, Evidence, EvidenceKind, EvidenceStatus, RegistryExt};
use crate::testing::registry::{push_image, push_signature_tag};

/// The environments of the suite, each with its own repository below `base`.
pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// The manifest bytes the suite's policy descriptor names.
pub const POLICY_BYTES: &[u8] = b"artifacts: {promotion: {environments: [dev, staging, prod]}}";

/// The suite's keys: the signer, its verifier and another key's verifier.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Signs the attestations.
    pub signer: Arc<dyn Signer>,
    /// Verifies them.
    pub verifier: Arc<dyn KeyVerifier>,
    /// Another key, which must not verify them.
    pub other: Arc<dyn KeyVerifier>,
}

fn env(name: &str) -> EnvName {
    EnvName::new(name).expect("valid environment")
}

fn app() -> ArtifactName {
    ArtifactName::new("app").expect("valid artifact")
}

/// The repository of the artifact `app` in environment `name` below `base`.
pub fn env_repo(base: &Repository, name: &str) -> Repository {
    Repository::new(format!("{base}/{name}/app")).expect("valid repository")
}

fn config(base: &Repository) -> Arc<InMemoryConfig> {
    let envs = ENVIRONMENTS
        .iter()
        .map(|n| {
            let mut e = Environment::new(env(n));
            e.repository = Some(Repository::new(format!("{base}/{n}")).expect("valid"));
            e
        })
        .collect();
    Arc::new(InMemoryConfig::new(PromotionSettings::new(envs)).expect("valid config"))
}

/// A writer over `registry` with the suite's configuration and policy.
pub fn writer(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    signer: Arc<dyn Signer>,
) -> AttestationWriter {
    AttestationWriter::new(
        registry,
        config(base),
        signer,
        policy_descriptor("manifest.yaml", POLICY_BYTES),
    )
}

/// A committed event of `kind` about `app@digest` in `environment` at `time`.
pub fn event(
    kind: EventKind,
    environment: &str,
    digest: &Digest,
    time: DateTime<Utc>,
) -> AuditEvent {
    let mut r = EventRecord::new(kind, Actor::new("release-bot").expect("actor"), time);
    r.artifact = Some(app());
    r.version = Some(Tag::new("v1").expect("tag"));
    r.digest = Some(digest.clone());
    r.environment = Some(env(environment));
    r.reason = Some("suite".into());
    AuditEvent::seal(1, r, GENESIS_HASH.to_string())
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .expect("time")
}

async fn image(registry: &dyn ArtifactRegistry, repo: &Repository, salt: &str) -> Digest {
    push_image(registry, repo, salt, &[salt.as_bytes()])
        .await
        .digest()
        .clone()
}

/// The statements attached to `digest` in `repo` that verify with `key`, with their envelopes.
pub async fn statements(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    digest: &Digest,
    key: &dyn KeyVerifier,
) -> Vec<Statement> {
    envelopes(registry, repo, digest)
        .await
        .expect("read envelopes")
        .iter()
        .map(|f| {
            let payload = f
                .envelope
                .verify(key)
                .expect("the envelope verifies with the key");
            Statement::from_json(&payload).expect("an in-toto statement")
        })
        .collect()
}

/// The layers of the attestation tag of `digest` in `repo`, and the in-toto referrers.
async fn layout(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    digest: &Digest,
) -> (usize, usize) {
    let layers = match registry
        .resolve(
            repo,
            &Reference::Tag(Tag::new(digest.attestation_tag()).expect("tag")),
        )
        .await
    {
        Ok(m) => m.body().layers.len(),
        Err(Error::NotFound { .. }) => 0,
        Err(e) => panic!("resolve the attestation tag: {e}"),
    };
    let referrers = registry
        .referrers(repo, digest)
        .await
        .expect("referrers")
        .iter()
        .filter(|r| r.artifact_type.as_deref() == Some("application/vnd.in-toto+json"))
        .count();
    (layers, referrers)
}

/// A promotion, a rollback and a switch each attach a signed verification summary about the
/// digest in the environment's repository, with the fields the contract names, in cosign's
/// layout (appended) and as a referrer.
pub async fn success_events_attach_a_signed_summary(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let r = registry.as_ref();
    let repo = env_repo(base, "prod");
    let digest = image(r, &repo, "summary").await;
    let m = r
        .resolve(&repo, &Reference::Digest(digest.clone()))
        .await
        .expect("image");
    let sig = push_signature_tag(r, &repo, &m).await;
    let evidence = Evidence {
        kind: EvidenceKind::Tests,
        status: EvidenceStatus::Passed,
        environment: Some(env("staging")),
        created: t(0),
        actor: Some("ci".into()),
        details: serde_json::Value::Null,
    };
    let evidence_digest = r
        .attach_evidence(&repo, &digest, &evidence)
        .await
        .expect("evidence");
    let w = writer(registry.clone(), base, keys.signer.clone());
    let kinds = [
        EventKind::PromotionSucceeded,
        EventKind::RollbackSucceeded,
        EventKind::Switched,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let e = event(kind, "prod", &digest, t(i as i64 * 10));
        w.notify(&e)
            .await
            .unwrap_or_else(|err| panic!("{kind}: {err}"));
        assert_eq!(
            layout(r, &repo, &digest).await,
            (i + 1, i + 1),
            "{kind}: one layer appended, one referrer"
        );
    }
    let found = statements(r, &repo, &digest, keys.verifier.as_ref()).await;
    assert_eq!(found.len(), 3);
    for (i, s) in found.iter().enumerate() {
        assert_eq!(s.subject.len(), 1);
        assert!(s.names_digest(&digest));
        assert_eq!(s.predicate_type, VSA_PREDICATE_TYPE);
        let v = VerificationSummary::from_value(&s.predicate).expect("summary");
        assert!(v.verifier.id.starts_with("https://floe.dev/"));
        assert_eq!(v.verification_result, "PASSED");
        assert_eq!(v.verified_levels, vec!["FLOE_ENV_PROD".to_string()]);
        assert!(!v.verified_levels.iter().any(|l| l.starts_with("SLSA_")));
        assert_eq!(v.resource_uri, format!("{repo}@{digest}"));
        assert_eq!(v.policy.uri.as_deref(), Some("manifest.yaml"));
        assert_eq!(v.policy.sha256(), Some(Digest::of(POLICY_BYTES)));
        assert_eq!(v.slsa_version.as_deref(), Some("1.0"));
        assert!(
            [t(0), t(10), t(20)].contains(&v.time_verified),
            "timeVerified {} #{i}",
            v.time_verified
        );
        let inputs: Vec<Option<Digest>> = v
            .input_attestations
            .iter()
            .map(ResourceDescriptor::sha256)
            .collect();
        assert!(
            inputs.contains(&Some(sig.digest().clone())),
            "the signature is an input: {inputs:?}"
        );
        assert!(
            inputs.contains(&Some(evidence_digest.clone())),
            "the evidence is an input: {inputs:?}"
        );
    }
    // cosign's layout: DSSE layers with the annotations cosign reads.
    let att = r
        .resolve(
            &repo,
            &Reference::Tag(Tag::new(digest.attestation_tag()).expect("tag")),
        )
        .await
        .expect("attestation tag");
    let body = att.body();
    assert_eq!(
        body.config.as_ref().map(|c| c.media_type.as_str()),
        Some("application/vnd.oci.image.config.v1+json")
    );
    for layer in &body.layers {
        assert_eq!(layer.media_type, "application/vnd.dsse.envelope.v1+json");
        assert_eq!(
            layer.annotations.get("predicateType").map(String::as_str),
            Some(VSA_PREDICATE_TYPE)
        );
        assert_eq!(
            layer
                .annotations
                .get("dev.cosignproject.cosign/signature")
                .map(String::as_str),
            Some("")
        );
    }
}

/// Delivering the same event again writes nothing new.
pub async fn redelivery_writes_nothing_new(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let r = registry.as_ref();
    let repo = env_repo(base, "staging");
    let digest = image(r, &repo, "again").await;
    let w = writer(registry.clone(), base, keys.signer.clone());
    let e = event(EventKind::PromotionSucceeded, "staging", &digest, t(0));
    for _ in 0..3 {
        w.notify(&e).await.expect("notify");
    }
    assert_eq!(layout(r, &repo, &digest).await, (1, 1));
    assert_eq!(
        statements(r, &repo, &digest, keys.verifier.as_ref())
            .await
            .len(),
        1
    );
}

/// Events of other kinds write nothing and succeed.
pub async fn other_events_write_nothing(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let r = registry.as_ref();
    let repo = env_repo(base, "prod");
    let digest = image(r, &repo, "other-kinds").await;
    let w = writer(registry.clone(), base, keys.signer.clone());
    let tags_before = r.list_tags(&repo).await.expect("tags");
    for kind in EventKind::ALL {
        if matches!(
            kind,
            EventKind::PromotionSucceeded
                | EventKind::RollbackSucceeded
                | EventKind::Switched
                | EventKind::Revoked
                | EventKind::Unrevoked
        ) {
            continue;
        }
        w.notify(&event(kind, "prod", &digest, t(0)))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    assert_eq!(r.list_tags(&repo).await.expect("tags"), tags_before);
    assert_eq!(layout(r, &repo, &digest).await, (0, 0));
}

/// A digest no longer in its repository, or an environment the configuration does not know,
/// is skipped: `Ok`, nothing written.
pub async fn missing_subjects_are_skipped(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let r = registry.as_ref();
    let repo = env_repo(base, "prod");
    let present = image(r, &repo, "present").await;
    let absent = Digest::of(b"never pushed");
    let w = writer(registry.clone(), base, keys.signer.clone());
    w.notify(&event(EventKind::PromotionSucceeded, "prod", &absent, t(0)))
        .await
        .expect("a missing digest is skipped");
    w.notify(&event(EventKind::PromotionSucceeded, "qa", &present, t(0)))
        .await
        .expect("an unknown environment is skipped");
    w.notify(&event(EventKind::Revoked, "prod", &absent, t(0)))
        .await
        .expect("a revocation of a digest held nowhere is skipped");
    assert_eq!(layout(r, &repo, &present).await, (0, 0));
}

/// A revocation is attached in every environment's repository that holds the digest, and
/// only there; `verify_promotion` refuses the digest from then on, and accepts it again after
/// `unrevoked` is attested later.
pub async fn revocations_are_attached_where_the_digest_lives(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let r = registry.as_ref();
    let (dev, staging, prod) = (
        env_repo(base, "dev"),
        env_repo(base, "staging"),
        env_repo(base, "prod"),
    );
    let digest = image(r, &dev, "revoked").await;
    r.copy(&dev, &staging, &digest)
        .await
        .expect("copy to staging");
    let w = writer(registry.clone(), base, keys.signer.clone());
    w.notify(&event(
        EventKind::PromotionSucceeded,
        "staging",
        &digest,
        t(0),
    ))
    .await
    .expect("promotion");
    let policy = VerifyPolicy::new(env("staging")).at(t(100));
    verify_promotion(r, &staging, &digest, keys.verifier.as_ref(), &policy)
        .await
        .expect("promoted");

    w.notify(&event(EventKind::Revoked, "staging", &digest, t(50)))
        .await
        .expect("revoked");
    for repo in [&dev, &staging] {
        let kinds: Vec<String> = statements(r, repo, &digest, keys.verifier.as_ref())
            .await
            .into_iter()
            .map(|s| s.predicate_type)
            .collect();
        assert!(
            kinds.contains(&REVOCATION_PREDICATE_TYPE.to_string()),
            "{repo}: {kinds:?}"
        );
    }
    assert_eq!(
        layout(r, &prod, &digest).await,
        (0, 0),
        "prod does not hold the digest"
    );
    match verify_promotion(r, &staging, &digest, keys.verifier.as_ref(), &policy).await {
        Err(Error::Signature { message, .. }) => assert!(message.contains("revoked"), "{message}"),
        other => panic!("a revoked digest was admitted: {other:?}"),
    }

    w.notify(&event(EventKind::Unrevoked, "staging", &digest, t(60)))
        .await
        .expect("unrevoked");
    verify_promotion(r, &staging, &digest, keys.verifier.as_ref(), &policy)
        .await
        .expect("admitted again once the revocation is lifted");
}

fn refused(result: crate::Result<crate::attest::VerifiedPromotion>, what: &str, needle: &str) {
    match result {
        Err(Error::Signature { message, .. }) => {
            assert!(
                message.contains(needle),
                "{what}: {message:?} does not say {needle:?}"
            );
            assert!(!message.contains('\n'), "{what}: not one line: {message:?}");
        }
        other => panic!("{what}: expected a signature refusal, got {other:?}"),
    }
}

/// `verify_promotion` admits what the writer attested, and refuses another key, another
/// digest, another environment, a stale attestation, a tampered statement and a digest with no
/// attestation, each with one line.
pub async fn verification_refuses_what_an_admission_controller_must(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let r = registry.as_ref();
    let repo = env_repo(base, "prod");
    let digest = image(r, &repo, "verify").await;
    let other_digest = image(r, &repo, "verify-other").await;
    let w = writer(registry.clone(), base, keys.signer.clone());
    w.notify(&event(EventKind::PromotionSucceeded, "prod", &digest, t(0)))
        .await
        .expect("attest");
    let prod = VerifyPolicy::new(env("prod")).at(t(3600));
    let ok = verify_promotion(r, &repo, &digest, keys.verifier.as_ref(), &prod)
        .await
        .expect("admitted");
    assert_eq!(ok.level, "FLOE_ENV_PROD");
    assert_eq!(ok.time_verified, t(0));
    assert_eq!(ok.key, keys.verifier.as_ref().fingerprint());

    refused(
        verify_promotion(r, &repo, &digest, keys.other.as_ref(), &prod).await,
        "another key",
        "signed by the key",
    );
    refused(
        verify_promotion(r, &repo, &other_digest, keys.verifier.as_ref(), &prod).await,
        "no attestation",
        "no attestation",
    );
    refused(
        verify_promotion(
            r,
            &repo,
            &digest,
            keys.verifier.as_ref(),
            &VerifyPolicy::new(env("staging")).at(t(3600)),
        )
        .await,
        "another environment",
        "promoted to staging",
    );
    refused(
        verify_promotion(
            r,
            &repo,
            &digest,
            keys.verifier.as_ref(),
            &prod.clone().with_max_age(Duration::minutes(30)),
        )
        .await,
        "stale",
        "maximum age",
    );

    // This digest's signed statement copied onto another digest: its subject gives it away.
    let found = envelopes(r, &repo, &digest).await.expect("envelopes");
    crate::attest::attach::attach(
        r,
        &repo,
        &other_digest,
        &found[0].envelope,
        VSA_PREDICATE_TYPE,
        None,
        t(0),
    )
    .await
    .expect("attach");
    refused(
        verify_promotion(r, &repo, &other_digest, keys.verifier.as_ref(), &prod).await,
        "another digest",
        "another digest",
    );

    // A tampered statement: the level changed after signing.
    let mut tampered = found[0].envelope.clone();
    let mut statement: serde_json::Value =
        serde_json::from_slice(&tampered.payload_bytes().expect("payload")).expect("json");
    statement["predicate"]["verifiedLevels"] =
        serde_json::json!(["FLOE_ENV_PROD", "FLOE_ENV_TAMPERED"]);
    use base64::Engine as _;
    tampered.payload = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&statement).expect("json"));
    let fresh = image(r, &repo, "verify-tampered").await;
    crate::attest::attach::attach(r, &repo, &fresh, &tampered, VSA_PREDICATE_TYPE, None, t(0))
        .await
        .expect("attach");
    refused(
        verify_promotion(r, &repo, &fresh, keys.verifier.as_ref(), &prod).await,
        "tampered",
        "signed by the key",
    );
}

/// `name` is `attestations`.
pub async fn name_is_attestations(
    registry: Arc<dyn ArtifactRegistry>,
    base: &Repository,
    keys: &Keys,
) {
    let w = writer(registry, base, keys.signer.clone());
    assert_eq!(w.name(), "attestations");
}

/// Runs every case of the suite with `keys`, each in its own namespace below `base`.
#[macro_export]
macro_rules! attestation_conformance {
    ($setup:expr, $keys:expr) => {
        $crate::attestation_conformance!(@cases $setup, $keys;
            success_events_attach_a_signed_summary,
            redelivery_writes_nothing_new,
            other_events_write_nothing,
            missing_subjects_are_skipped,
            revocations_are_attached_where_the_digest_lives,
            verification_refuses_what_an_admission_controller_must,
            name_is_attestations
        );
    };
    (@cases $setup:expr, $keys:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (registry, base): (
                    ::std::sync::Arc<dyn $crate::ArtifactRegistry>,
                    $crate::Repository,
                ) = $setup.await;
                let base = $crate::Repository::new(format!("{}/{}", base, stringify!($case).replace('_', "-"))).unwrap();
                let keys: $crate::testing::attestations::Keys = $keys;
                $crate::testing::attestations::$case(registry, &base, &keys).await;
            }
        )*
    };
}
