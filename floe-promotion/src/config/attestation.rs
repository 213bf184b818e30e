//! `artifacts.promotion.attestation`: the key that signs what floe attests, and where audit
//! checkpoints go.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::Repository;

/// The signing key of attestations and audit checkpoints
/// (`artifacts.promotion.attestation: { key, key_password_env, checkpoints }`).
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
    /// Where signed audit checkpoints are stored, and how often they are taken
    /// (`checkpoints: { to, every }`).
    pub checkpoints: Option<CheckpointSettings>,
}

impl AttestationSettings {
    /// Settings for the key at `key`, unencrypted.
    pub fn new(key: impl Into<PathBuf>) -> Self {
        AttestationSettings {
            key: key.into(),
            key_password_env: None,
            checkpoints: None,
        }
    }

    /// The same settings, with the password read from `var`.
    pub fn with_password_env(mut self, var: impl Into<String>) -> Self {
        self.key_password_env = Some(var.into());
        self
    }

    /// The same settings, with audit checkpoints.
    pub fn with_checkpoints(mut self, checkpoints: CheckpointSettings) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }
}

/// `attestation.checkpoints: { to, every }`: where `floe audit checkpoint` stores signed
/// checkpoints by default, and, with `every: N`, a checkpoint taken automatically each time
/// the audit chain grew by N events since the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// Where checkpoints are stored.
    pub to: CheckpointLocation,
    /// Take one automatically every this many events (none: only on `floe audit checkpoint`).
    pub every: Option<u64>,
}

/// Where signed audit checkpoints are kept, outside the state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointLocation {
    /// A JSON Lines file of DSSE envelopes, one per checkpoint, appended.
    File(PathBuf),
    /// An OCI repository (a registry's `host/path`, or `oci-layout:DIR`): one artifact per
    /// checkpoint, tagged `checkpoint-<sequence>`.
    Repository(Repository),
}

impl CheckpointLocation {
    /// Parses a location as a user writes it: `oci://HOST/PATH` (a registry repository),
    /// `oci-layout:DIR` (an OCI image-layout directory) or a file path. Relative paths are
    /// resolved against `base` when given. Another `scheme://` URL, or an empty value, is
    /// refused, naming `what` (the flag or field).
    ///
    /// ```
    /// use floe_promotion::config::CheckpointLocation;
    /// let oci = CheckpointLocation::parse("--to", "oci://registry.example.com/audit", None).unwrap();
    /// assert_eq!(oci.to_string(), "oci://registry.example.com/audit");
    /// let file = CheckpointLocation::parse("--to", "checkpoints.jsonl", None).unwrap();
    /// assert_eq!(file, CheckpointLocation::File("checkpoints.jsonl".into()));
    /// assert!(CheckpointLocation::parse("--to", "https://example.com/x", None).is_err());
    /// ```
    pub fn parse(what: &'static str, value: &str, base: Option<&Path>) -> Result<Self> {
        let v = value.trim();
        let resolve = |p: &str| -> PathBuf {
            match base {
                Some(base) if Path::new(p).is_relative() => base.join(p),
                _ => PathBuf::from(p),
            }
        };
        let bad = |why: &str| Error::invalid(what, crate::Excerpt::new(v).to_string(), why);
        if v.is_empty() {
            return Err(bad(
                "an empty location: give a file, oci://HOST/PATH or oci-layout:DIR",
            ));
        }
        if let Some(dir) = v.strip_prefix("oci-layout:") {
            if dir.is_empty() {
                return Err(bad("oci-layout: needs a directory"));
            }
            let repo = format!("oci-layout:{}", resolve(dir).display());
            return Ok(CheckpointLocation::Repository(Repository::new(repo)?));
        }
        if let Some(rest) = v.strip_prefix("oci://") {
            let rest = rest.trim_end_matches('/');
            if rest.is_empty() || !rest.contains('/') {
                return Err(bad(
                    "oci:// needs a registry host and a repository path: oci://HOST/PATH",
                ));
            }
            return Ok(CheckpointLocation::Repository(Repository::new(rest)?));
        }
        if let Some((scheme, _)) = v.split_once("://") {
            // Only the scheme is quoted: the rest of a URL may hold credentials.
            return Err(Error::invalid(
                what,
                format!("{}://…", crate::Excerpt::new(scheme)),
                "not a checkpoint location: expected a file, oci://HOST/PATH or oci-layout:DIR",
            ));
        }
        Ok(CheckpointLocation::File(resolve(v)))
    }
}

impl fmt::Display for CheckpointLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointLocation::File(path) => write!(f, "{}", path.display()),
            CheckpointLocation::Repository(repo) if repo.as_str().starts_with("oci-layout:") => {
                write!(f, "{repo}")
            }
            CheckpointLocation::Repository(repo) => write!(f, "oci://{repo}"),
        }
    }
}
