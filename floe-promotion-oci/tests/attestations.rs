//! Signed promotion and revocation attestations with real cosign keys: the core's attestation
//! suite (the writer's contract and the refusals of `verify_promotion`) against the in-memory
//! registry, a real registry and OCI layout directories; a produced attestation checked by
//! independent implementations (Python `cryptography`, sigstore's verification key); and a
//! registry failure during delivery, which leaves the promotion recorded and writes the
//! attestation on the next delivery.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use floe_promotion::attest::attach::envelopes;
use floe_promotion::attest::{KeyVerifier, Signer, pae};
use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::history::EventKind;
use floe_promotion::testing::attestations::{Keys, env_repo, event, writer};
use floe_promotion::{
    Actor, ArtifactName, ArtifactRegistry, DefaultPromotionManager, Digest, EnvName,
    InMemoryRegistry, PromotionRequest, Promotions, Reference, Repository, Tag,
};
use floe_promotion_oci::testing::{TestRegistry, push_generated_image, skopeo_raw_manifest};
use floe_promotion_oci::{CosignKeySigner, CosignKeyVerifier, OciLayoutRegistry, OciRegistry};
use sigstore::crypto::{CosignVerificationKey, Signature, SigningScheme};

/// A fresh unencrypted P-256 key (no scrypt: quick in debug builds), as PEM.
fn new_key() -> (Arc<CosignKeySigner>, Arc<CosignKeyVerifier>, String) {
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .expect("signer");
    let pair = signer.to_sigstore_keypair().expect("key pair");
    let private = pair.private_key_to_pem().expect("private pem");
    let public = pair.public_key_to_pem().expect("public pem");
    let signer = CosignKeySigner::from_pem("test.key", private.as_bytes(), None).expect("load key");
    let verifier = CosignKeyVerifier::from_pem("test.pub", public.as_bytes()).expect("load pub");
    (Arc::new(signer), Arc::new(verifier), public)
}

/// The suite's keys, made once per test binary.
fn keys() -> Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (signer, verifier, _) = new_key();
        let (_, other, _) = new_key();
        Keys {
            signer,
            verifier,
            other,
        }
    })
    .clone()
}

mod in_memory {
    use super::*;
    floe_promotion::attestation_conformance!(
        async {
            let registry: Arc<dyn ArtifactRegistry> = Arc::new(InMemoryRegistry::new());
            (registry, Repository::new("mem/attestations").unwrap())
        },
        keys()
    );
}

mod remote {
    use super::*;
    floe_promotion::attestation_conformance!(
        async {
            let registry = TestRegistry::shared();
            let client: Arc<dyn ArtifactRegistry> = Arc::new(registry.client());
            (client, registry.namespace("att"))
        },
        keys()
    );
}

mod layout {
    use super::*;

    /// The layout registry owning its temporary directory.
    #[derive(Debug)]
    struct InTempDir {
        registry: OciLayoutRegistry,
        _dir: tempfile::TempDir,
    }

    #[floe_promotion::async_trait]
    impl ArtifactRegistry for InTempDir {
        async fn resolve(
            &self,
            repo: &Repository,
            reference: &Reference,
        ) -> floe_promotion::Result<floe_promotion::registry::Manifest> {
            self.registry.resolve(repo, reference).await
        }
        async fn put_manifest(
            &self,
            repo: &Repository,
            tag: Option<&Tag>,
            manifest: &floe_promotion::registry::Manifest,
        ) -> floe_promotion::Result<()> {
            self.registry.put_manifest(repo, tag, manifest).await
        }
        async fn push_blob(
            &self,
            repo: &Repository,
            data: Vec<u8>,
        ) -> floe_promotion::Result<Digest> {
            self.registry.push_blob(repo, data).await
        }
        async fn fetch_blob(
            &self,
            repo: &Repository,
            digest: &Digest,
            max_bytes: u64,
        ) -> floe_promotion::Result<Vec<u8>> {
            self.registry.fetch_blob(repo, digest, max_bytes).await
        }
        async fn copy(
            &self,
            src: &Repository,
            dst: &Repository,
            digest: &Digest,
        ) -> floe_promotion::Result<floe_promotion::registry::CopyReport> {
            self.registry.copy(src, dst, digest).await
        }
        async fn list_tags(&self, repo: &Repository) -> floe_promotion::Result<Vec<Tag>> {
            self.registry.list_tags(repo).await
        }
        async fn referrers(
            &self,
            repo: &Repository,
            subject: &Digest,
        ) -> floe_promotion::Result<Vec<floe_promotion::registry::Descriptor>> {
            self.registry.referrers(repo, subject).await
        }
    }

    async fn setup() -> (Arc<dyn ArtifactRegistry>, Repository) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let base = OciLayoutRegistry::location(dir.path()).expect("location");
        (
            Arc::new(InTempDir {
                registry: OciLayoutRegistry::new(),
                _dir: dir,
            }),
            base,
        )
    }

    floe_promotion::attestation_conformance!(setup(), keys());
}

/// Pushes an image to the prod repository of `base` and attests its promotion there;
/// returns the digest.
async fn attested(client: &OciRegistry, base: &Repository, keys: &Keys) -> (Repository, Digest) {
    let repo = env_repo(base, "prod");
    let image = push_generated_image(client, &repo, Some(&Tag::new("v1").unwrap()), &[64], 7).await;
    let w = writer(Arc::new(client.clone()), base, keys.signer.clone());
    floe_promotion::Notifier::notify(
        &w,
        &event(
            EventKind::PromotionSucceeded,
            "prod",
            image.digest(),
            chrono::Utc::now(),
        ),
    )
    .await
    .expect("attest");
    (repo, image.digest().clone())
}

/// What the independent checker reads.
const PY_CHECK: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

public_pem, digest, env_level, repo = sys.argv[1:5]
key = serialization.load_pem_public_key(open(public_pem, "rb").read())
manifest = json.loads(sys.stdin.buffer.read())
checked = 0
for layer_path in sys.argv[5:]:
    envelope = json.load(open(layer_path))
    payload = base64.b64decode(envelope["payload"])
    ptype = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    key.verify(sig, pae, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1", statement["_type"]
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert [s["digest"]["sha256"] for s in statement["subject"]] == [digest.split(":")[1]]
    p = statement["predicate"]
    assert p["verificationResult"] == "PASSED"
    assert env_level in p["verifiedLevels"], p["verifiedLevels"]
    assert not any(l.startswith("SLSA_") for l in p["verifiedLevels"])
    assert p["resourceUri"] == repo + "@" + digest, p["resourceUri"]
    assert p["verifier"]["id"].startswith("https://")
    assert len(p["policy"]["digest"]["sha256"]) == 64
    from datetime import datetime
    datetime.strptime(p["timeVerified"], "%Y-%m-%dT%H:%M:%S.%fZ")
    checked += 1
for layer in manifest["layers"]:
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert layer["annotations"]["dev.cosignproject.cosign/signature"] == ""
print("verified", checked)
"#;

/// A produced attestation, as skopeo reads it from the registry, verified by Python's
/// `cryptography` (ECDSA P-256 over the DSSE pre-authentication encoding, computed there) and
/// its statement's fields checked there; then by sigstore's `CosignVerificationKey`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_implementations_verify_a_produced_attestation() {
    let registry = TestRegistry::shared();
    let client = registry.client();
    let base = registry.namespace("att-indep");
    let (signer, verifier, public_pem) = new_key();
    let (other_signer, _, _) = new_key();
    let keys = Keys {
        signer: signer.clone(),
        verifier: verifier.clone(),
        other: Arc::new(
            CosignKeyVerifier::from_pem("o", other_signer.public_key_pem().as_bytes()).unwrap(),
        ),
    };
    let (repo, digest) = attested(&client, &base, &keys).await;

    // The attestation tag as an independent client sees it.
    let raw = skopeo_raw_manifest(&format!("{repo}:{}", digest.attestation_tag()));
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let dir = tempfile::tempdir().unwrap();
    let pub_path = dir.path().join("floe.pub");
    std::fs::write(&pub_path, &public_pem).unwrap();
    let mut layer_paths = Vec::new();
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let d = Digest::new(layer["digest"].as_str().unwrap()).unwrap();
        let bytes = client.fetch_blob(&repo, &d, 1 << 20).await.unwrap();
        let path = dir.path().join(format!("layer-{i}.json"));
        std::fs::write(&path, &bytes).unwrap();
        layer_paths.push(path);
    }
    assert_eq!(layer_paths.len(), 1);
    let run = |key: &std::path::Path| {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c")
            .arg(PY_CHECK)
            .arg(key)
            .arg(digest.as_str())
            .arg("FLOE_ENV_PROD")
            .arg(repo.as_str())
            .args(&layer_paths)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("python3 (scripts/registry-deps.sh installs it)");
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&pub_path);
    assert!(
        out.status.success(),
        "python rejected the attestation: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified 1");
    // The same checker refuses another key: it can fail.
    let other_path = dir.path().join("other.pub");
    std::fs::write(&other_path, other_signer.public_key_pem()).unwrap();
    let out = run(&other_path);
    assert!(!out.status.success(), "python accepted another key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidSignature"));

    // sigstore's own verification key, over the PAE it is given.
    let found = envelopes(&client, &repo, &digest).await.unwrap();
    assert_eq!(found.len(), 1);
    let envelope = &found[0].envelope;
    let payload = envelope.payload_bytes().unwrap();
    let sig = base64_decode(&envelope.signatures[0].sig);
    let key = CosignVerificationKey::try_from_pem(public_pem.as_bytes()).unwrap();
    key.verify_signature(Signature::Raw(&sig), &pae(&envelope.payload_type, &payload))
        .expect("sigstore verifies the DSSE signature");
    let mut altered = payload.clone();
    altered.push(b' ');
    assert!(
        key.verify_signature(Signature::Raw(&sig), &pae(&envelope.payload_type, &altered))
            .is_err()
    );
    assert_eq!(verifier.fingerprint(), signer.fingerprint());
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// A registry down while the outbox is delivered: the promotion stays recorded, the writer's
/// queue stops at the event, and the next delivery, with the registry back, writes the
/// attestation; `verify_promotion` then admits the digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_failure_during_attestation_retries_on_the_next_delivery() {
    let registry = TestRegistry::start();
    let client = OciRegistry::new(floe_promotion_oci::OciOptions {
        retries: 0,
        request_timeout: Duration::from_secs(3),
        ..registry.oci_options()
    })
    .unwrap();
    let base = registry.namespace("att-fault");
    let keys = keys();
    let envs: Vec<Environment> = ["dev", "staging"]
        .iter()
        .map(|n| {
            let mut e = Environment::new(EnvName::new(*n).unwrap());
            e.repository = Some(Repository::new(format!("{base}/{n}")).unwrap());
            e
        })
        .collect();
    let config = Arc::new(InMemoryConfig::new(PromotionSettings::new(envs)).unwrap());
    let shared: Arc<dyn ArtifactRegistry> = Arc::new(client.clone());
    let app = ArtifactName::new("app").unwrap();
    let dev = config_repo(&base, "dev");
    push_generated_image(&client, &dev, Some(&Tag::new("v1").unwrap()), &[32], 3).await;
    let attestations = Arc::new(floe_promotion::attest::AttestationWriter::new(
        shared.clone(),
        config.clone(),
        keys.signer.clone(),
        floe_promotion::attest::policy_descriptor("manifest.yaml", b"environments"),
    ));
    let manager = DefaultPromotionManager::builder()
        .config(config.clone())
        .registry(shared.clone())
        .manual_delivery()
        .notifier(attestations)
        .notification_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let actor = Actor::new("ci").unwrap();
    let req = PromotionRequest::new("app", "v1", "dev", "staging", actor).unwrap();
    let outcome = manager.promote(req).await.expect("promote");
    let digest = outcome.digest.clone();

    registry.kill();
    let report = manager
        .deliver_notifications()
        .await
        .expect("delivery runs");
    let att = report
        .iter()
        .find(|d| d.notifier == "attestations")
        .unwrap();
    assert!(
        att.error.is_some(),
        "the dead registry was not noticed: {att:?}"
    );
    let stopped_at = att.cursor;
    let staging = EnvName::new("staging").unwrap();
    let running = manager
        .history_store()
        .deployments(Some(&staging))
        .await
        .unwrap();
    assert!(
        running
            .iter()
            .any(|d| d.artifact == app && d.digest == digest),
        "the promotion was undone: {running:?}"
    );

    registry.restart();
    let report = manager
        .deliver_notifications()
        .await
        .expect("delivery runs");
    let att = report
        .iter()
        .find(|d| d.notifier == "attestations")
        .unwrap();
    assert_eq!(att.error, None, "{att:?}");
    assert!(
        att.cursor > stopped_at,
        "the queue did not move on: {att:?}"
    );
    let repo = config_repo(&base, "staging");
    let policy = floe_promotion::attest::VerifyPolicy::new(staging.clone());
    let ok = floe_promotion::attest::verify_promotion(
        &client,
        &repo,
        &digest,
        keys.verifier.as_ref(),
        &policy,
    )
    .await
    .expect("attested on the retry");
    assert_eq!(ok.level, "FLOE_ENV_STAGING");
}

fn config_repo(base: &Repository, env: &str) -> Repository {
    Repository::new(format!("{base}/{env}/app")).unwrap()
}
