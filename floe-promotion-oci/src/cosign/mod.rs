//! Cosign key-based signature verification, offline: [`CosignVerifier`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use floe_promotion::gate::{SignatureReport, SignatureVerifier};
use floe_promotion::input::read_bounded;
use floe_promotion::{ArtifactRegistry, Digest, Error, Reference, Repository, Result, Tag};
use serde::Deserialize;
use sigstore::crypto::{CosignVerificationKey, Signature};

/// The media type of a cosign simple-signing layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` of a cosign image signature payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Layers of a signature manifest looked at, at most.
const MAX_LAYERS: usize = 64;
/// The largest simple-signing payload read (cosign's are well under 1 KiB).
const MAX_PAYLOAD: u64 = 256 * 1024;
/// The largest trusted key file read (a PEM public key is under 2 KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// The [`SignatureVerifier`] for cosign signatures made with a key (`cosign sign --key`),
/// checked offline: no Rekor, no Fulcio.
///
/// The signature manifest is read from the `sha256-<hex>.sig` tag next to the artifact through
/// the [`ArtifactRegistry`] given to [`verify`](SignatureVerifier::verify), so it works for
/// remote registries and OCI layout directories alike. A digest is verified only when **one
/// layer** of that manifest satisfies every condition at once:
///
/// - the layer is a simple-signing payload whose bytes match the layer digest;
/// - its `dev.cosignproject.cosign/signature` annotation verifies against a trusted key;
/// - the signed payload's `critical.type` is a cosign image signature and its
///   `critical.image.docker-manifest-digest` is exactly the digest being verified;
/// - the payload's `optional` section carries every required annotation.
///
/// Conditions are never combined across layers: a layer signed by an untrusted key that names
/// the right digest, next to a trusted layer made for another digest, does not verify.
/// (sigstore's `verify_constraints` checks each constraint against *any* layer, which is why it
/// is not used here.)
///
/// ```no_run
/// # fn demo() -> floe_promotion::Result<()> {
/// use std::sync::Arc;
/// use floe_promotion::gate::{SignatureEnforcement, SignatureGate};
/// use floe_promotion_oci::CosignVerifier;
///
/// let verifier = CosignVerifier::from_pem_files(&["keys/cosign.pub".into()])?;
/// let gate = SignatureGate::new(Arc::new(verifier), SignatureEnforcement::Enforce);
/// # let _ = gate; Ok(()) }
/// ```
#[derive(Clone)]
pub struct CosignVerifier {
    keys: Vec<TrustedKey>,
    required_annotations: BTreeMap<String, String>,
}

#[derive(Clone)]
struct TrustedKey {
    name: String,
    key: CosignVerificationKey,
}

impl fmt::Debug for CosignVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignVerifier")
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("required_annotations", &self.required_annotations)
            .finish()
    }
}

impl CosignVerifier {
    /// Trusts the PEM public keys (`cosign.pub`) in `paths`. An unreadable file, one larger than
    /// 64 KiB (refused after reading that much) or one that is not a supported public key
    /// (ECDSA P-256/384/521, RSA, Ed25519) is an error naming it.
    pub fn from_pem_files(paths: &[PathBuf]) -> Result<Self> {
        let mut keys = Vec::with_capacity(paths.len());
        for path in paths {
            keys.push(read_key_file(path)?);
        }
        Self::with_keys(keys)
    }

    /// Trusts PEM public keys given as text, named `key 1`, `key 2`... in messages.
    pub fn from_pem_strings<S: AsRef<str>>(pems: &[S]) -> Result<Self> {
        let mut keys = Vec::with_capacity(pems.len());
        for (i, pem) in pems.iter().enumerate() {
            let name = format!("key {}", i + 1);
            keys.push(parse_key(&name, pem.as_ref().as_bytes())?);
        }
        Self::with_keys(keys)
    }

    /// Trusts one PEM public key given as text, named `name` in messages.
    pub fn from_named_pem(name: impl Into<String>, pem: &str) -> Result<Self> {
        let name = name.into();
        Self::with_keys(vec![parse_key(&name, pem.as_bytes())?])
    }

    /// Also requires these annotations (`cosign sign -a KEY=VALUE`) in the signed payload, on
    /// the same layer as the trusted signature.
    pub fn with_required_annotations<I, K, V>(mut self, annotations: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.required_annotations
            .extend(annotations.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The names of the trusted keys (file paths, or `key N`).
    pub fn key_names(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.name.as_str()).collect()
    }

    fn with_keys(keys: Vec<TrustedKey>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::invalid(
                "trusted_keys",
                "[]",
                "signature verification needs at least one trusted public key",
            ));
        }
        Ok(CosignVerifier {
            keys,
            required_annotations: BTreeMap::new(),
        })
    }

    /// Checks one layer; `Ok(key name)` when every condition holds on it, else why not.
    async fn check_layer(
        &self,
        registry: &dyn ArtifactRegistry,
        repo: &Repository,
        digest: &Digest,
        layer: &floe_promotion::registry::Descriptor,
    ) -> Result<std::result::Result<String, String>> {
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
            return Ok(Err(format!(
                "media type {} is not cosign simple signing",
                layer.media_type
            )));
        }
        let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            return Ok(Err(format!("no {SIGNATURE_ANNOTATION} annotation")));
        };
        if layer.size > MAX_PAYLOAD {
            return Ok(Err(format!("payload of {} bytes is too large", layer.size)));
        }
        let payload = match registry.fetch_blob(repo, &layer.digest, MAX_PAYLOAD).await {
            Ok(p) => p,
            Err(Error::NotFound { .. }) => {
                return Ok(Err(format!("payload blob {} is missing", layer.digest)));
            }
            Err(Error::InvalidInput { reason, .. }) => return Ok(Err(reason)),
            Err(e) => return Err(e),
        };
        if Digest::of(&payload) != layer.digest {
            return Ok(Err("payload bytes do not match the layer digest".into()));
        }
        let Some(key) = self.keys.iter().find(|k| {
            k.key
                .verify_signature(
                    Signature::Base64Encoded(signature.trim().as_bytes()),
                    &payload,
                )
                .is_ok()
        }) else {
            return Ok(Err("signature does not verify with any trusted key".into()));
        };
        let parsed: Payload = match serde_json::from_slice(&payload) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Err(format!(
                    "signed by {} but the payload is not a simple-signing document: {e}",
                    key.name
                )));
            }
        };
        if parsed.critical.type_name != SIGNATURE_TYPE {
            return Ok(Err(format!(
                "signed by {} but the payload type is {:?}, not {SIGNATURE_TYPE:?}",
                key.name, parsed.critical.type_name
            )));
        }
        if parsed.critical.image.docker_manifest_digest != digest.as_str() {
            return Ok(Err(format!(
                "signed by {} for another digest ({})",
                key.name, parsed.critical.image.docker_manifest_digest
            )));
        }
        let optional = parsed.optional.unwrap_or_default();
        for (k, v) in &self.required_annotations {
            let found = optional.get(k).and_then(|x| x.as_str());
            if found != Some(v.as_str()) {
                return Ok(Err(format!(
                    "signed by {} for this digest but without the required annotation {k}={v}",
                    key.name
                )));
            }
        }
        Ok(Ok(key.name.clone()))
    }
}

fn read_key_file(path: &Path) -> Result<TrustedKey> {
    let bytes = read_bounded(path, MAX_KEY_FILE, "trusted key")?;
    parse_key(&path.display().to_string(), &bytes)
}

fn parse_key(name: &str, pem: &[u8]) -> Result<TrustedKey> {
    let key = CosignVerificationKey::try_from_pem(pem).map_err(|e| {
        Error::invalid(
            "trusted key",
            name,
            format!("not a PEM public key cosign can use (ECDSA, RSA, Ed25519): {e}"),
        )
    })?;
    Ok(TrustedKey {
        name: name.to_string(),
        key,
    })
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type")]
    type_name: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

#[async_trait]
impl SignatureVerifier for CosignVerifier {
    async fn verify(
        &self,
        registry: &dyn ArtifactRegistry,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<SignatureReport> {
        let tag = Tag::new(digest.signature_tag())?;
        let manifest = match registry.resolve(repo, &Reference::Tag(tag.clone())).await {
            Ok(m) => m,
            Err(Error::NotFound { .. }) => {
                return Ok(SignatureReport {
                    verified: false,
                    message: format!("unsigned: no cosign signature {repo}:{tag}"),
                });
            }
            Err(e) => return Err(e),
        };
        let body = manifest.body();
        if body.layers.is_empty() {
            return Ok(SignatureReport {
                verified: false,
                message: format!("the signature manifest {repo}:{tag} has no layers"),
            });
        }
        let mut reasons = Vec::new();
        for (i, layer) in body.layers.iter().take(MAX_LAYERS).enumerate() {
            match self.check_layer(registry, repo, digest, layer).await? {
                Ok(key) => {
                    return Ok(SignatureReport {
                        verified: true,
                        message: format!(
                            "signed by {key} for {digest} (layer {} of {repo}:{tag})",
                            i + 1
                        ),
                    });
                }
                Err(reason) => reasons.push(format!("layer {}: {reason}", i + 1)),
            }
        }
        Ok(SignatureReport {
            verified: false,
            message: format!(
                "no layer of {repo}:{tag} is a signature of {digest} by a trusted key: {}",
                reasons.join("; ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.pub");
        let err = CosignVerifier::from_pem_files(&[missing]).unwrap_err();
        assert!(err.to_string().contains("absent.pub"), "{err}");
        let garbage = dir.path().join("garbage.pub");
        std::fs::write(
            &garbage,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let err = CosignVerifier::from_pem_files(&[garbage]).unwrap_err();
        assert!(err.to_string().contains("garbage.pub"), "{err}");
        assert!(CosignVerifier::from_pem_files(&[]).is_err());
    }

    #[test]
    fn generated_public_keys_load() {
        let signer = sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1
            .create_signer()
            .unwrap();
        let pem = signer
            .to_sigstore_keypair()
            .unwrap()
            .public_key_to_pem()
            .unwrap();
        let v = CosignVerifier::from_pem_strings(&[pem]).unwrap();
        assert_eq!(v.key_names(), ["key 1"]);
        assert!(format!("{v:?}").contains("key 1"));
    }
}
