//! `--sign-with KEY` of `floe approve` and `floe reject`: an SSHSIG signature (namespace
//! `floe-approval`, as `ssh-keygen -Y sign` makes) over the request's vote message, made with
//! a private key file or by ssh-agent. The private key never appears in output or errors.

use std::path::Path;

use floe_promotion::config::AllowedSigners;
use floe_promotion::model::{VOTE_NAMESPACE, VoteMessage, VoteSignature};
use floe_promotion::{Error, Excerpt, Result};
use ssh_agent_client_rs::Client;
use ssh_key::{HashAlg, PrivateKey, PublicKey, SshSig};

/// The largest key file read.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Signs `message` as `sign_with` says: `agent`, a private key file, or a public key file
/// whose private key the agent holds. `signers` (the environment's file) picks the agent key
/// for `agent`.
pub(super) fn sign(
    sign_with: &str,
    message: &VoteMessage,
    signers: Option<&AllowedSigners>,
) -> Result<VoteSignature> {
    if sign_with == "agent" {
        return agent_sign(None, message, signers);
    }
    let path = Path::new(sign_with);
    let bytes = floe_promotion::input::read_bounded(path, MAX_KEY_BYTES, "signing key")?;
    let shown = Excerpt::path(path);
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid("--sign-with", &shown, "not an OpenSSH key file (text)"))?;
    if text
        .trim_start()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    {
        let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| {
            Error::invalid(
                "--sign-with",
                &shown,
                format!("not an OpenSSH private key: {e}"),
            )
        })?;
        if key.is_encrypted() {
            if agent_socket().is_none() {
                return Err(Error::invalid(
                    "--sign-with",
                    &shown,
                    "the key is passphrase-protected: add it to ssh-agent (ssh-add) and run with SSH_AUTH_SOCK set",
                ));
            }
            return agent_sign(Some(key.public_key()), message, signers);
        }
        return VoteSignature::sign(text.as_bytes(), message);
    }
    if text.trim_start().starts_with("-----BEGIN") {
        return Err(Error::invalid(
            "--sign-with",
            &shown,
            "not an OpenSSH key: convert it with `ssh-keygen -p -f KEY` (OpenSSH format) first",
        ));
    }
    let public = PublicKey::from_openssh(text.trim()).map_err(|_| {
        Error::invalid(
            "--sign-with",
            &shown,
            "neither an OpenSSH private key nor a public key (`ssh-ed25519 AAAA...`), nor `agent`",
        )
    })?;
    agent_sign(Some(&public), message, signers)
}

fn agent_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::io(
        format!("ssh-agent (SSH_AUTH_SOCK): {what}"),
        std::io::Error::other(e.to_string()),
    )
}

/// Signs with ssh-agent: `key` when given, else the first agent key `signers` lists.
fn agent_sign(
    key: Option<&PublicKey>,
    message: &VoteMessage,
    signers: Option<&AllowedSigners>,
) -> Result<VoteSignature> {
    let Some(socket) = agent_socket() else {
        return Err(Error::invalid(
            "--sign-with",
            "agent",
            "SSH_AUTH_SOCK is not set: start ssh-agent, or give a private key file",
        ));
    };
    let mut client = Client::connect(Path::new(&socket)).map_err(|e| agent_error("connect", e))?;
    // Plain keys only: a certificate's principal is not what the signers file lists.
    let held: Vec<PublicKey> = client
        .list_all_identities()
        .map_err(|e| agent_error("list keys", e))?
        .into_iter()
        .filter_map(|i| match i {
            ssh_agent_client_rs::Identity::PublicKey(k) => Some(k.into_owned()),
            ssh_agent_client_rs::Identity::Certificate(_) => None,
        })
        .collect();
    let chosen = match key {
        Some(k) => held
            .into_iter()
            .find(|h| h.key_data() == k.key_data())
            .ok_or_else(|| {
                Error::invalid(
                    "--sign-with",
                    k.fingerprint(HashAlg::Sha256).to_string(),
                    "ssh-agent does not hold this key (ssh-add it)",
                )
            })?,
        None => {
            let listed = |h: &PublicKey| {
                signers.is_some_and(|s| {
                    s.signers()
                        .iter()
                        .any(|l| l.key_openssh() == without_comment(h))
                })
            };
            let count = held.len();
            held.into_iter().find(|h| listed(h)).ok_or_else(|| {
                Error::invalid(
                    "--sign-with",
                    "agent",
                    match signers {
                        Some(s) => format!(
                            "none of the {count} keys ssh-agent holds is listed in {}",
                            Excerpt::path(s.file())
                        ),
                        None => "the environment lists no signers to choose an agent key by; give the public key file instead".to_string(),
                    },
                )
            })?
        }
    };
    let data = SshSig::signed_data(VOTE_NAMESPACE, HashAlg::Sha512, message.as_bytes())
        .map_err(|e| agent_error("prepare the signed data", e))?;
    let signature = client
        .sign(&chosen, &data)
        .map_err(|e| agent_error("sign", e))?;
    let sig = SshSig::new(
        chosen.key_data().clone(),
        VOTE_NAMESPACE,
        HashAlg::Sha512,
        signature,
    )
    .map_err(|e| agent_error("assemble the signature", e))?;
    VoteSignature::from_sshsig(&sig)
}

/// `SSH_AUTH_SOCK`, when set and not empty.
fn agent_socket() -> Option<std::ffi::OsString> {
    std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty())
}

fn without_comment(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    k.to_openssh().unwrap_or_default()
}
