//! Signing keys and cosign signatures for tests: a throwaway key, its payloads, and signature
//! manifests pushed beside an image.

use super::*;

/// A P-256 key pair for signing test fixtures the way `cosign sign --key` does.
pub struct TestSigningKey {
    signer: sigstore::crypto::SigStoreSigner,
    public_pem: String,
}

impl std::fmt::Debug for TestSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSigningKey").finish_non_exhaustive()
    }
}

impl TestSigningKey {
    /// A fresh ECDSA P-256 key pair.
    pub fn generate() -> Self {
        let signer = sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1
            .create_signer()
            .unwrap_or_else(|e| panic!("generating a P-256 key: {e}"));
        let public_pem = signer
            .to_sigstore_keypair()
            .and_then(|k| k.public_key_to_pem())
            .unwrap_or_else(|e| panic!("encoding the public key: {e}"));
        TestSigningKey { signer, public_pem }
    }

    /// The public key, PEM (what `cosign.pub` holds).
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The base64 signature of `payload`, as cosign stores it in the layer annotation.
    pub fn sign(&self, payload: &[u8]) -> String {
        use base64::Engine as _;
        let signature = self
            .signer
            .sign(payload)
            .unwrap_or_else(|e| panic!("signing: {e}"));
        base64::engine::general_purpose::STANDARD.encode(signature)
    }
}

/// A cosign simple-signing payload naming `digest`, with `annotations` in `optional`.
pub fn simple_signing_payload(
    docker_reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let optional = if annotations.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(annotations).unwrap_or(serde_json::Value::Null)
    };
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": crate::SIGNATURE_TYPE,
        },
        "optional": optional,
    }))
    .unwrap_or_else(|e| panic!("payload: {e}"))
}

/// One layer of a cosign signature manifest: who signs, which digest the payload names, and
/// the payload's annotations.
#[derive(Debug)]
pub struct SignatureLayerSpec<'a> {
    /// The signing key.
    pub key: &'a TestSigningKey,
    /// The digest the signed payload names.
    pub signed_digest: Digest,
    /// Annotations in the payload's `optional` section.
    pub annotations: BTreeMap<String, String>,
}

impl<'a> SignatureLayerSpec<'a> {
    /// A layer by `key` naming `digest`, without annotations.
    pub fn new(key: &'a TestSigningKey, digest: &Digest) -> Self {
        SignatureLayerSpec {
            key,
            signed_digest: digest.clone(),
            annotations: BTreeMap::new(),
        }
    }
}

/// Pushes a cosign signature manifest with `layers` for `subject` into `repo`, tagged
/// `sha256-<hex>.sig`, the way `cosign sign --key` lays it out.
pub async fn push_cosign_signature(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    subject: &Digest,
    layers: &[SignatureLayerSpec<'_>],
) -> Manifest {
    let config = b"{\"architecture\":\"\",\"config\":{},\"created\":\"0001-01-01T00:00:00Z\",\"history\":[{\"created\":\"0001-01-01T00:00:00Z\"}],\"os\":\"\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".to_vec();
    let config_len = config.len();
    let config_digest = registry
        .push_blob(repo, config)
        .await
        .unwrap_or_else(|e| panic!("push signature config: {e}"));
    let mut descriptors = Vec::new();
    for layer in layers {
        let payload =
            simple_signing_payload(repo.as_str(), &layer.signed_digest, &layer.annotations);
        let signature = layer.key.sign(&payload);
        let size = payload.len();
        let digest = registry
            .push_blob(repo, payload)
            .await
            .unwrap_or_else(|e| panic!("push signature payload: {e}"));
        descriptors.push(serde_json::json!({
            "mediaType": crate::SIMPLE_SIGNING_MEDIA_TYPE,
            "size": size,
            "digest": digest.as_str(),
            "annotations": {crate::SIGNATURE_ANNOTATION: signature},
        }));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config_len,
            "digest": config_digest.as_str(),
        },
        "layers": descriptors,
    });
    let manifest = Manifest::from_bytes(body.to_string().into_bytes(), Some(OCI_MANIFEST))
        .unwrap_or_else(|e| panic!("signature manifest: {e}"));
    let tag = Tag::new(subject.signature_tag()).unwrap_or_else(|e| panic!("signature tag: {e}"));
    registry
        .put_manifest(repo, Some(&tag), &manifest)
        .await
        .unwrap_or_else(|e| panic!("put signature manifest to {repo}: {e}"));
    manifest
}
