//! `artifacts.promotion.attestation`: the key that signs what floe attests.

use std::path::PathBuf;

/// The signing key of attestations and audit checkpoints
/// (`artifacts.promotion.attestation: { key, key_password_env }`).
///
/// The key is a cosign key file (`cosign generate-key-pair`, or `floe keygen`): an encrypted
/// PEM private key, decrypted with the password read from the environment variable
/// `key_password_env` when the key is first used, or an unencrypted PKCS#8 PEM key when no
/// variable is named. Nothing reads the file until something is signed, so commands that sign
/// nothing need neither the file nor the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationSettings {
    /// The private key file, resolved against the manifest's directory.
    pub key: PathBuf,
    /// The environment variable holding the key's password, if the key is encrypted.
    pub key_password_env: Option<String>,
}

impl AttestationSettings {
    /// Settings for the key at `key`, unencrypted.
    pub fn new(key: impl Into<PathBuf>) -> Self {
        AttestationSettings {
            key: key.into(),
            key_password_env: None,
        }
    }

    /// The same settings, with the password read from `var`.
    pub fn with_password_env(mut self, var: impl Into<String>) -> Self {
        self.key_password_env = Some(var.into());
        self
    }
}
