//! Signed approval votes: the canonical message a voter signs, the SSH signature over it, and
//! what is recorded of an accepted one.
//!
//! The message binds the request id, the environment, the artifact, the version, the digest
//! and the decision, one `key: value` line each, so a signature made for one vote verifies for
//! no other. The signature is an SSHSIG in namespace `floe-approval`, the format of
//! `ssh-keygen -Y sign`; anyone can check a recorded vote with
//! `ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n floe-approval -s SIG < MESSAGE`.

use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, LineEnding, PrivateKey, SshSig};
use uuid::Uuid;

use super::{ArtifactName, Digest, EnvName, Tag};
use crate::error::{Error, Result};

/// The SSHSIG namespace of approval votes.
pub const VOTE_NAMESPACE: &str = "floe-approval";

/// The largest armored signature accepted (an RSA-16384 SSHSIG is under 4 KiB).
const MAX_SIGNATURE_CHARS: usize = 16 * 1024;

/// What a vote decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteDecision {
    /// A vote for.
    Approve,
    /// A vote against (final).
    Reject,
}

impl VoteDecision {
    /// `approve` or `reject`, as written in the message.
    pub fn as_str(self) -> &'static str {
        match self {
            VoteDecision::Approve => "approve",
            VoteDecision::Reject => "reject",
        }
    }
}

impl std::fmt::Display for VoteDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical text a voter signs: one `key: value` line each, in this order, LF endings.
///
/// ```text
/// floe-approval-vote: v1
/// request: 3f0c6c1e-...
/// environment: prod
/// artifact: app
/// version: v1.2.3
/// digest: sha256:...
/// decision: approve
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteMessage(String);

impl VoteMessage {
    /// The message of a vote `decision` on request `request` into `environment` of
    /// `artifact:version` at `digest`.
    pub fn new(
        request: Uuid,
        environment: &EnvName,
        artifact: &ArtifactName,
        version: &Tag,
        digest: &Digest,
        decision: VoteDecision,
    ) -> Self {
        VoteMessage(format!(
            "floe-approval-vote: v1\nrequest: {request}\nenvironment: {environment}\nartifact: {artifact}\nversion: {version}\ndigest: {digest}\ndecision: {decision}\n"
        ))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bytes that are signed.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Display for VoteMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An armored SSH signature (`-----BEGIN SSH SIGNATURE-----`) over a [`VoteMessage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VoteSignature(String);

impl VoteSignature {
    /// Takes an armored signature as `ssh-keygen -Y sign` writes it; refuses text that is not
    /// one. Who signed and over what is checked when the vote is cast.
    pub fn from_armored(armored: &str) -> Result<Self> {
        let text = armored.trim();
        if text.len() > MAX_SIGNATURE_CHARS {
            return Err(Error::invalid(
                "vote signature",
                &text[..64.min(text.len())],
                format!("longer than {MAX_SIGNATURE_CHARS} characters"),
            ));
        }
        SshSig::from_pem(text.as_bytes()).map_err(|e| {
            Error::invalid(
                "vote signature",
                text.lines().next().unwrap_or_default(),
                format!("not an SSH signature (-----BEGIN SSH SIGNATURE-----): {e}"),
            )
        })?;
        Ok(VoteSignature(format!("{text}\n")))
    }

    /// Signs `message` in namespace `floe-approval` with an OpenSSH private key (the text of
    /// `id_ed25519`, for example), SHA-512 as `ssh-keygen -Y sign` does. An encrypted key is
    /// refused (load it into ssh-agent instead); the key never appears in an error.
    pub fn sign(private_key_openssh: &[u8], message: &VoteMessage) -> Result<Self> {
        let key = PrivateKey::from_openssh(private_key_openssh).map_err(|e| {
            Error::invalid(
                "signing key",
                "(private key)",
                format!("not an OpenSSH private key: {e}"),
            )
        })?;
        if key.is_encrypted() {
            return Err(Error::invalid(
                "signing key",
                "(private key)",
                "the key is passphrase-protected: add it to ssh-agent (ssh-add) and sign with the agent",
            ));
        }
        let sig = key
            .sign(VOTE_NAMESPACE, HashAlg::Sha512, message.as_bytes())
            .map_err(|e| {
                Error::invalid(
                    "signing key",
                    "(private key)",
                    format!("cannot sign with it: {e}"),
                )
            })?;
        Self::from_sshsig(&sig)
    }

    /// The armored form of a signature made elsewhere (an ssh-agent, for example).
    pub fn from_sshsig(sig: &SshSig) -> Result<Self> {
        let text = sig.to_pem(LineEnding::LF).map_err(|e| {
            Error::invalid(
                "vote signature",
                "(signature)",
                format!("cannot encode: {e}"),
            )
        })?;
        Self::from_armored(&text)
    }

    /// The armored text, ending in a newline.
    pub fn armored(&self) -> &str {
        &self.0
    }
}

/// An accepted signed vote as recorded in the vote's `approval_decided` event: enough to
/// verify it again without floe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVote {
    /// The principal of the key that signed (the vote's actor).
    pub principal: String,
    /// The exact message signed ([`VoteMessage`]).
    pub message: String,
    /// The armored SSHSIG signature.
    pub signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(decision: VoteDecision) -> VoteMessage {
        VoteMessage::new(
            Uuid::nil(),
            &EnvName::new("prod").unwrap(),
            &ArtifactName::new("app").unwrap(),
            &Tag::new("v1").unwrap(),
            &Digest::of(b"app"),
            decision,
        )
    }

    #[test]
    fn the_message_is_one_line_per_field() {
        let m = message(VoteDecision::Reject);
        let lines: Vec<&str> = m.as_str().lines().collect();
        assert_eq!(lines[0], "floe-approval-vote: v1");
        assert_eq!(lines[1], format!("request: {}", Uuid::nil()));
        assert_eq!(lines[2], "environment: prod");
        assert_eq!(lines[5], format!("digest: {}", Digest::of(b"app")));
        assert_eq!(lines[6], "decision: reject");
        assert!(m.as_str().ends_with('\n'));
        assert_ne!(m, message(VoteDecision::Approve));
    }

    #[test]
    fn text_that_is_not_a_signature_is_refused() {
        for bad in [
            "",
            "hello",
            "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----",
        ] {
            let e = VoteSignature::from_armored(bad).unwrap_err();
            assert!(e.to_string().contains("not an SSH signature"), "{e}");
        }
        let e = VoteSignature::sign(b"not a key", &message(VoteDecision::Approve)).unwrap_err();
        assert!(e.to_string().contains("not an OpenSSH private key"), "{e}");
    }
}
