//! Evidence that leaves the tool: keys that sign, DSSE envelopes and in-toto statements.
//!
//! The core defines what a signing key does ([`Signer`], [`KeyVerifier`]) and the formats that
//! carry signed statements ([`dsse::Envelope`], [`statement::Statement`]); it holds no
//! cryptography itself. `floe-promotion-oci` implements the keys with cosign's key files
//! (`CosignKeySigner`, `CosignKeyVerifier`), so an envelope made here verifies with
//! `cosign verify-attestation --key`.

pub mod dsse;
pub mod statement;

use std::fmt::Debug;

use crate::error::Result;

pub use dsse::{Envelope, EnvelopeSignature, pae};
pub use statement::{IN_TOTO_STATEMENT_V1, ResourceDescriptor, Statement};

/// A private key that signs messages (attestations, audit checkpoints).
///
/// # Contract
///
/// - `sign` returns a signature over exactly `message` that the matching [`KeyVerifier`]
///   accepts, and that it refuses for any other message.
/// - `public_key_pem` is the PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) of the
///   key that verifies the signatures, the form `cosign.pub` holds.
/// - `fingerprint` is `sha256:` and the hex SHA-256 of the public key's DER bytes: stable for one
///   key, different for another.
/// - The private key never appears in `Debug` output, errors or logs.
pub trait Signer: Send + Sync + Debug + 'static {
    /// Signs `message`, returning the raw signature bytes (DER for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;

    /// The public key, PEM.
    fn public_key_pem(&self) -> &str;

    /// `sha256:<hex>` of the public key's DER bytes.
    fn fingerprint(&self) -> &str;
}

/// A public key that checks signatures made by a [`Signer`].
///
/// # Contract
///
/// - `verify` is `Ok` only for a signature the matching private key made over exactly
///   `message`; another message, another key or altered signature bytes are
///   [`Error::Signature`](crate::Error::Signature), never a panic, whatever the bytes.
/// - `fingerprint` equals the matching [`Signer::fingerprint`].
pub trait KeyVerifier: Send + Sync + Debug + 'static {
    /// Checks `signature` over `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()>;

    /// `sha256:<hex>` of the public key's DER bytes.
    fn fingerprint(&self) -> &str;
}
