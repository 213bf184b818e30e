//! `CosignVerifier` and the signature gate against a real registry: signatures by the trusted
//! key pass; unsigned images, wrong keys, signatures made for another digest and the
//! mixed-layers attack fail; signatures still verify after promotion to another repository
//! and another registry; signatures made by sigstore's own signing flow verify.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::gate::{
    GateContext, GateStatus, PromotionGate, SignatureEnforcement, SignatureGate, SignatureVerifier,
};
use floe_promotion::registry::Manifest;
use floe_promotion::{
    Actor, ArtifactName, ArtifactRegistry, DefaultPromotionManager, EnvName, Error,
    InMemoryHistory, InMemoryRegistry, PromotionRequest, Promotions, Reference, Repository, Tag,
};
use floe_promotion_oci::testing::{
    SignatureLayerSpec, TestRegistry, TestSigningKey, push_cosign_signature, push_generated_image,
};
use floe_promotion_oci::{CosignVerifier, OciRegistry};

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").unwrap()).unwrap()
}

struct Fixture {
    client: Arc<OciRegistry>,
    repo: Repository,
    image: Manifest,
    other: Manifest,
    trusted: TestSigningKey,
    attacker: TestSigningKey,
    verifier: CosignVerifier,
}

async fn fixture(name: &str) -> Fixture {
    let registry = TestRegistry::shared();
    let client = Arc::new(registry.client());
    let repo = app(&registry.namespace(name));
    let image = push_generated_image(client.as_ref(), &repo, Some(&tag("v1")), &[1000], 1).await;
    let other = push_generated_image(client.as_ref(), &repo, Some(&tag("v2")), &[1000], 2).await;
    let trusted = TestSigningKey::generate();
    let attacker = TestSigningKey::generate();
    let verifier = CosignVerifier::from_named_pem("cosign.pub", trusted.public_key_pem()).unwrap();
    Fixture {
        client,
        repo,
        image,
        other,
        trusted,
        attacker,
        verifier,
    }
}

impl Fixture {
    async fn verify(&self) -> floe_promotion::gate::SignatureReport {
        self.verifier
            .verify(self.client.as_ref(), &self.repo, self.image.digest())
            .await
            .unwrap()
    }

    async fn gate(&self, enforcement: SignatureEnforcement) -> (GateStatus, String) {
        let gate = SignatureGate::new(Arc::new(self.verifier.clone()), enforcement);
        let ctx = GateContext {
            artifact: ArtifactName::new("app").unwrap(),
            version: tag("v1"),
            digest: self.image.digest().clone(),
            manifest: self.image.clone(),
            source: self.repo.clone(),
            from: EnvName::new("dev").unwrap(),
            to: EnvName::new("staging").unwrap(),
            actor: Actor::new("ci").unwrap(),
            now: Utc::now(),
            registry: self.client.clone(),
            history: Arc::new(InMemoryHistory::new()),
        };
        let outcome = gate.evaluate(&ctx).await.unwrap();
        (outcome.status, outcome.message)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_with_the_trusted_key_passes_the_gate() {
    let f = fixture("sig-ok").await;
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[SignatureLayerSpec::new(&f.trusted, f.image.digest())],
    )
    .await;
    let report = f.verify().await;
    assert!(report.verified, "{}", report.message);
    assert!(report.message.contains("cosign.pub"), "{}", report.message);
    let (status, message) = f.gate(SignatureEnforcement::Enforce).await;
    assert_eq!(status, GateStatus::Passed, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_fails_under_enforce_warns_under_warn_and_passes_under_off() {
    let f = fixture("sig-none").await;
    let report = f.verify().await;
    assert!(!report.verified);
    assert!(report.message.contains("unsigned"), "{}", report.message);
    let (status, message) = f.gate(SignatureEnforcement::Enforce).await;
    assert_eq!(status, GateStatus::Failed, "{message}");
    assert!(message.contains("unsigned"), "{message}");
    let (status, message) = f.gate(SignatureEnforcement::Warn).await;
    assert_eq!(status, GateStatus::Warned, "{message}");
    let (status, message) = f.gate(SignatureEnforcement::Off).await;
    assert_eq!(status, GateStatus::Passed, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_by_another_key_fails() {
    let f = fixture("sig-wrong-key").await;
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[SignatureLayerSpec::new(&f.attacker, f.image.digest())],
    )
    .await;
    let report = f.verify().await;
    assert!(!report.verified, "{}", report.message);
    assert!(
        report.message.contains("any trusted key"),
        "{}",
        report.message
    );
    let (status, _) = f.gate(SignatureEnforcement::Enforce).await;
    assert_eq!(status, GateStatus::Failed);
}

/// A valid signature by the trusted key, made for another digest, copied to this digest's
/// signature tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_made_for_another_digest_fails() {
    let f = fixture("sig-other-digest").await;
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[SignatureLayerSpec::new(&f.trusted, f.other.digest())],
    )
    .await;
    let report = f.verify().await;
    assert!(!report.verified, "{}", report.message);
    assert!(
        report.message.contains("another digest")
            && report.message.contains(f.other.digest().as_str()),
        "{}",
        report.message
    );
    let (status, _) = f.gate(SignatureEnforcement::Enforce).await;
    assert_eq!(status, GateStatus::Failed);
}

/// The mixed-layers attack: one layer names the right digest but is signed by an untrusted
/// key, another is signed by the trusted key but names another digest. Each condition holds
/// on some layer, none holds all: not verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_layers_attack_fails() {
    let f = fixture("sig-mixed").await;
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[
            SignatureLayerSpec::new(&f.attacker, f.image.digest()),
            SignatureLayerSpec::new(&f.trusted, f.other.digest()),
        ],
    )
    .await;
    let report = f.verify().await;
    assert!(!report.verified, "{}", report.message);
    assert!(
        report.message.contains("layer 1") && report.message.contains("layer 2"),
        "{}",
        report.message
    );
    let (status, _) = f.gate(SignatureEnforcement::Enforce).await;
    assert_eq!(status, GateStatus::Failed);
}

/// Required annotations must be on the trusted layer itself: an attacker layer that carries
/// them does not lend them to a trusted layer that lacks them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_annotations_must_be_on_the_trusted_layer() {
    let f = fixture("sig-annotations").await;
    let wanted: BTreeMap<String, String> = [("env".to_string(), "prod-ready".to_string())].into();
    let verifier = f.verifier.clone().with_required_annotations(wanted.clone());
    let mut attacker_layer = SignatureLayerSpec::new(&f.attacker, f.image.digest());
    attacker_layer.annotations = wanted.clone();
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[
            attacker_layer,
            SignatureLayerSpec::new(&f.trusted, f.image.digest()),
        ],
    )
    .await;
    let report = verifier
        .verify(f.client.as_ref(), &f.repo, f.image.digest())
        .await
        .unwrap();
    assert!(!report.verified, "{}", report.message);
    assert!(
        report.message.contains("env=prod-ready"),
        "{}",
        report.message
    );

    let mut trusted_layer = SignatureLayerSpec::new(&f.trusted, f.image.digest());
    trusted_layer.annotations = wanted;
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[trusted_layer],
    )
    .await;
    let report = verifier
        .verify(f.client.as_ref(), &f.repo, f.image.digest())
        .await
        .unwrap();
    assert!(report.verified, "{}", report.message);
}

/// After a mount to another repository and a stream to another registry, the signature tag
/// travelled and still verifies there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_in_the_destination_after_promotion() {
    let f = fixture("sig-travel").await;
    push_cosign_signature(
        f.client.as_ref(),
        &f.repo,
        f.image.digest(),
        &[SignatureLayerSpec::new(&f.trusted, f.image.digest())],
    )
    .await;
    let registry = TestRegistry::shared();
    let other = TestRegistry::start();
    let client =
        OciRegistry::new(registry.oci_options().with_insecure_hosts([other.host()])).unwrap();
    let same_registry = app(&registry.namespace("sig-travel-prod"));
    let other_registry = app(&other.namespace("sig-travel-prod"));
    for dst in [&same_registry, &other_registry] {
        let before = f
            .verifier
            .verify(&client, dst, f.image.digest())
            .await
            .unwrap();
        assert!(!before.verified, "{dst}: {}", before.message);
        let report = client.copy(&f.repo, dst, f.image.digest()).await.unwrap();
        assert_eq!(report.signatures_copied, 1, "{dst}: {report:?}");
        let after = f
            .verifier
            .verify(&client, dst, f.image.digest())
            .await
            .unwrap();
        assert!(after.verified, "{dst}: {}", after.message);
    }
}

/// A signature pushed by sigstore's own cosign signing flow (the layout cosign writes)
/// verifies, and sigstore's own key verification agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_made_by_sigstore_verify() {
    use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraint};
    use sigstore::cosign::{Constraint, CosignCapabilities, SignatureLayer};
    use sigstore::crypto::SigningScheme;
    use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

    let registry = TestRegistry::shared();
    let client = registry.client();
    let repo = app(&registry.namespace("sigstore"));
    let image = push_generated_image(&client, &repo, Some(&tag("v1")), &[1000], 5).await;

    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .unwrap();
    let pem = signer
        .to_sigstore_keypair()
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let mut cosign = sigstore::cosign::ClientBuilder::default()
        .with_oci_client_config(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![registry.host()]),
            ..Default::default()
        })
        .build()
        .unwrap();
    let reference: OciReference = format!("{repo}:v1").parse().unwrap();
    let (sig_ref, source_digest) = cosign
        .triangulate(&reference, &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(source_digest, image.digest().as_str());
    let mut layer = SignatureLayer::new_unsigned(&reference, &source_digest).unwrap();
    assert!(
        sigstore::cosign::constraint::PrivateKeySigner::new_with_signer(signer)
            .add_constraint(&mut layer)
            .unwrap()
    );
    cosign
        .push_signature(None, &Auth::Anonymous, &sig_ref, vec![layer])
        .await
        .unwrap();

    let verifier = CosignVerifier::from_named_pem("cosign.pub", &pem).unwrap();
    let report = verifier
        .verify(&client, &repo, image.digest())
        .await
        .unwrap();
    assert!(report.verified, "{}", report.message);

    let layers = cosign
        .trusted_signature_layers(&Auth::Anonymous, &reference)
        .await
        .unwrap();
    let constraints: Vec<Box<dyn VerificationConstraint>> = vec![Box::new(
        PublicKeyVerifier::try_from(pem.as_bytes()).unwrap(),
    )];
    assert!(sigstore::cosign::verify_constraints(&layers, constraints.iter()).is_ok());

    // A key sigstore did not sign with is refused by both.
    let stranger = TestSigningKey::generate();
    let verifier = CosignVerifier::from_named_pem("other.pub", stranger.public_key_pem()).unwrap();
    assert!(
        !verifier
            .verify(&client, &repo, image.digest())
            .await
            .unwrap()
            .verified
    );
}

/// The verifier reads through any `ArtifactRegistry`: here the in-memory one.
#[tokio::test]
async fn verifies_through_any_registry_backend() {
    let registry = InMemoryRegistry::new();
    let repo = Repository::new("mem/dev/app").unwrap();
    let image = push_generated_image(&registry, &repo, Some(&tag("v1")), &[10], 1).await;
    let key = TestSigningKey::generate();
    push_cosign_signature(
        &registry,
        &repo,
        image.digest(),
        &[SignatureLayerSpec::new(&key, image.digest())],
    )
    .await;
    let verifier = CosignVerifier::from_pem_strings(&[key.public_key_pem()]).unwrap();
    assert!(
        verifier
            .verify(&registry, &repo, image.digest())
            .await
            .unwrap()
            .verified
    );
}

/// End to end through the manager with `signature_enforcement: enforce`: a signed image goes
/// dev (one registry) → staging (another) → prod, the prod gate checking the signature that
/// travelled to staging; an unsigned image is stopped at the first gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_enforces_signatures_across_registries() {
    let a = TestRegistry::shared();
    let b = TestRegistry::start();
    let client: Arc<dyn ArtifactRegistry> =
        Arc::new(OciRegistry::new(a.oci_options().with_insecure_hosts([b.host()])).unwrap());
    let (dev, staging, prod) = (
        a.namespace("e2e-dev"),
        b.namespace("e2e-staging"),
        b.namespace("e2e-prod"),
    );
    let key = TestSigningKey::generate();
    let signed =
        push_generated_image(client.as_ref(), &app(&dev), Some(&tag("v1")), &[5000], 21).await;
    push_cosign_signature(
        client.as_ref(),
        &app(&dev),
        signed.digest(),
        &[SignatureLayerSpec::new(&key, signed.digest())],
    )
    .await;
    push_generated_image(client.as_ref(), &app(&dev), Some(&tag("v2")), &[5000], 22).await;

    let envs = vec![
        Environment::new(EnvName::new("dev").unwrap()).with_repository(dev.clone()),
        Environment::new(EnvName::new("staging").unwrap()).with_repository(staging.clone()),
        Environment::new(EnvName::new("prod").unwrap()).with_repository(prod.clone()),
    ];
    let mut settings = PromotionSettings::new(envs);
    settings.signature_enforcement = SignatureEnforcement::Enforce;
    let manager = DefaultPromotionManager::builder()
        .config(Arc::new(InMemoryConfig::new(settings).unwrap()))
        .registry(client.clone())
        .signature_verifier(Arc::new(
            CosignVerifier::from_pem_strings(&[key.public_key_pem()]).unwrap(),
        ))
        .build()
        .unwrap();
    let actor = Actor::new("ci").unwrap();
    manager
        .promote(PromotionRequest::new("app", "v1", "dev", "staging", actor.clone()).unwrap())
        .await
        .unwrap();
    let record = manager
        .promote(PromotionRequest::new("app", "v1", "staging", "prod", actor.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(&record.digest, signed.digest());
    let in_prod = client
        .resolve(&app(&prod), &Reference::Tag(tag("v1-prod")))
        .await
        .unwrap();
    assert_eq!(in_prod.digest(), signed.digest());

    match manager
        .promote(PromotionRequest::new("app", "v2", "dev", "staging", actor).unwrap())
        .await
    {
        Err(Error::GateFailed { failed }) => {
            assert!(
                failed
                    .iter()
                    .any(|g| g.gate == "signature" && g.message.contains("unsigned")),
                "{failed:?}"
            );
        }
        other => panic!("expected the signature gate to fail, got {other:?}"),
    }
    assert!(matches!(
        client
            .resolve(&app(&staging), &Reference::Tag(tag("v2-staging")))
            .await,
        Err(Error::NotFound { .. })
    ));
}
