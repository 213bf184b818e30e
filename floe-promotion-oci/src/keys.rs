//! Cosign key files as floe's signing keys: [`CosignKeySigner`] (a private key that signs
//! attestations and audit checkpoints) and [`CosignKeyVerifier`] (its public key).
//!
//! The files are the ones `cosign generate-key-pair` writes (`cosign.key`, an encrypted PEM,
//! and `cosign.pub`) or [`generate_key_pair`] makes; unencrypted PKCS#8 PEM private keys are
//! accepted too. ECDSA P-256 (cosign's default), P-384 and Ed25519 keys sign; RSA keys are
//! refused.

use std::fmt;
use std::path::Path;

use floe_promotion::attest::{KeyVerifier, Signer};
use floe_promotion::config::AttestationSettings;
use floe_promotion::input::read_bounded;
use floe_promotion::{Digest, Error, Excerpt, Result};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::signing_key::ecdsa::ECDSAKeys;
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature, SigningScheme};

/// The largest key file read (a PEM key is a few KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// `sha256:<hex>` of the DER bytes inside a PEM public key.
fn fingerprint_of_pem(public_pem: &str) -> Result<String> {
    let block = pem::parse(public_pem.as_bytes())
        .map_err(|e| Error::invalid("public key", public_pem, format!("not PEM: {e}")))?;
    Ok(Digest::of(block.contents()).to_string())
}

/// A cosign private key that signs: [`Signer`] for attestations and checkpoints.
pub struct CosignKeySigner {
    signer: SigStoreSigner,
    public_pem: String,
    fingerprint: String,
}

impl fmt::Debug for CosignKeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignKeySigner")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl CosignKeySigner {
    /// A signer from a PEM private key: encrypted (`ENCRYPTED SIGSTORE PRIVATE KEY` or
    /// `ENCRYPTED COSIGN PRIVATE KEY`, decrypted with `password`) or plain PKCS#8.
    /// `what` names the key in errors (a file name); no error carries key material or the
    /// password.
    pub fn from_pem(what: &str, pem: &[u8], password: Option<&[u8]>) -> Result<Self> {
        let encrypted = pem.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED");
        let bad = |why: String| Error::invalid("signing key", what, why);
        let pair = match (encrypted, password) {
            (true, Some(password)) => {
                SigStoreKeyPair::from_encrypted_pem(pem, password).map_err(|_| {
                    bad("cannot decrypt it: wrong password, or not a cosign private key".into())
                })?
            }
            (true, None) => {
                return Err(bad(
                    "the key is encrypted: name the variable holding its password in attestation.key_password_env"
                        .into(),
                ));
            }
            (false, _) => SigStoreKeyPair::from_pem(pem).map_err(|_| {
                bad("not a PEM private key (cosign's encrypted key or PKCS#8)".into())
            })?,
        };
        let scheme = match &pair {
            SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => SigningScheme::ECDSA_P256_SHA256_ASN1,
            SigStoreKeyPair::ECDSA(ECDSAKeys::P384(_)) => SigningScheme::ECDSA_P384_SHA384_ASN1,
            SigStoreKeyPair::ED25519(_) => SigningScheme::ED25519,
            other => {
                return Err(bad(format!(
                    "a {other} is not supported: use an ECDSA P-256 (cosign's default), P-384 or Ed25519 key"
                )));
            }
        };
        let signer = pair
            .to_sigstore_signer(&scheme)
            .map_err(|e| bad(format!("cannot sign with it: {e}")))?;
        let public_pem = pair
            .public_key_to_pem()
            .map_err(|e| bad(format!("cannot derive its public key: {e}")))?;
        let fingerprint = fingerprint_of_pem(&public_pem)?;
        Ok(CosignKeySigner {
            signer,
            public_pem,
            fingerprint,
        })
    }

    /// A signer from a key file, decrypted with `password` when it is encrypted.
    pub fn from_file(path: &Path, password: Option<&[u8]>) -> Result<Self> {
        let pem = read_bounded(path, MAX_KEY_FILE, "attestation.key")?;
        Self::from_pem(&Excerpt::path(path), &pem, password)
    }

    /// The signer the manifest configures: the key file of `settings`, its password read
    /// from the environment variable `key_password_env` names.
    pub fn from_settings(settings: &AttestationSettings) -> Result<Self> {
        let password = match &settings.key_password_env {
            None => None,
            Some(var) => match std::env::var_os(var) {
                Some(v) if !v.is_empty() => Some(v.into_encoded_bytes()),
                _ => {
                    return Err(Error::invalid(
                        "signing key",
                        Excerpt::path(&settings.key),
                        format!(
                            "the environment variable {var} (attestation.key_password_env) is not set; it holds the key's password"
                        ),
                    ));
                }
            },
        };
        Self::from_file(&settings.key, password.as_deref())
    }
}

impl Signer for CosignKeySigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.signer.sign(message).map_err(|e| {
            Error::invalid(
                "signing key",
                &self.fingerprint,
                format!("signing failed: {e}"),
            )
        })
    }

    fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// A cosign public key (`cosign.pub`) that checks what a [`CosignKeySigner`] signed.
#[derive(Clone)]
pub struct CosignKeyVerifier {
    key: CosignVerificationKey,
    fingerprint: String,
}

impl fmt::Debug for CosignKeyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignKeyVerifier")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl CosignKeyVerifier {
    /// A verifier from a PEM public key; `what` names it in errors.
    pub fn from_pem(what: &str, pem: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::invalid("public key", what, "not UTF-8 PEM text"))?;
        let key = CosignVerificationKey::try_from_pem(pem).map_err(|e| {
            Error::invalid("public key", what, format!("not a PEM public key: {e}"))
        })?;
        let fingerprint = fingerprint_of_pem(text)
            .map_err(|_| Error::invalid("public key", what, "not a PEM public key"))?;
        Ok(CosignKeyVerifier { key, fingerprint })
    }

    /// A verifier from a public key file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let pem = read_bounded(path, MAX_KEY_FILE, "--key")?;
        Self::from_pem(&Excerpt::path(path), &pem)
    }
}

impl KeyVerifier for CosignKeyVerifier {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        self.key
            .verify_signature(Signature::Raw(signature), message)
            .map_err(|_| Error::Signature {
                digest: Digest::of(message),
                message: format!(
                    "the signature does not verify with the key {}",
                    self.fingerprint
                ),
            })
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// A new ECDSA P-256 key pair in cosign's format: the private key PEM encrypted with
/// `password` (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt and secretbox, as
/// `cosign generate-key-pair` writes it) and the public key PEM.
pub fn generate_key_pair(password: &[u8]) -> Result<(String, String)> {
    let fail = |e: sigstore::errors::SigstoreError| {
        Error::invalid(
            "signing key",
            "new P-256 key",
            format!("generation failed: {e}"),
        )
    };
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .map_err(fail)?;
    let pair = signer.to_sigstore_keypair().map_err(fail)?;
    let private = pair.private_key_to_encrypted_pem(password).map_err(fail)?;
    let public = pair.public_key_to_pem().map_err(fail)?;
    Ok((private.to_string(), public))
}
