//! Cosign key-based signature verification.

/// The `SignatureVerifier` for cosign key-based signatures.
#[derive(Debug, Clone, Default)]
pub struct CosignVerifier {}
