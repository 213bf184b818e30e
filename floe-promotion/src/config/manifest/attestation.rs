//! `artifacts.promotion.attestation`: the raw section and its conversion into
//! [`AttestationSettings`].

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Loader;
use super::webhooks::env_name_ok;
use crate::config::{AttestationSettings, CheckpointLocation, CheckpointSettings};
use crate::error::{Error, Result};

/// The `attestation` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttestation {
    key: Spanned<String>,
    #[serde(default)]
    key_password_env: Option<Spanned<String>>,
    #[serde(default)]
    checkpoints: Option<RawCheckpoints>,
}

/// `attestation.checkpoints` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoints {
    to: Spanned<String>,
    #[serde(default)]
    every: Option<Spanned<u64>>,
}

impl Loader<'_> {
    /// The attestation key settings; the password variable is checked for its name only, and
    /// read when something is signed.
    pub(super) fn attestation(&self, raw: &RawAttestation) -> Result<AttestationSettings> {
        const FIELD: &str = "artifacts.promotion.attestation";
        if raw.key.value.trim().is_empty() {
            return Err(self.at(&raw.key, format!("{FIELD}.key: an empty path")));
        }
        let mut settings = AttestationSettings::new(self.path(raw.key.value.trim()));
        if let Some(var) = &raw.key_password_env {
            let name = var.value.trim();
            if !env_name_ok(name) {
                return Err(self.at(
                    var,
                    format!(
                        "{FIELD}.key_password_env: {:?} is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)",
                        crate::Excerpt::new(name).to_string()
                    ),
                ));
            }
            settings = settings.with_password_env(name);
        }
        if let Some(checkpoints) = &raw.checkpoints {
            settings = settings.with_checkpoints(self.checkpoints(checkpoints)?);
        }
        Ok(settings)
    }

    /// `attestation.checkpoints: { to, every }`.
    fn checkpoints(&self, raw: &RawCheckpoints) -> Result<CheckpointSettings> {
        const FIELD: &str = "artifacts.promotion.attestation.checkpoints";
        let to = CheckpointLocation::parse("checkpoints.to", &raw.to.value, self.base.as_deref())
            .map_err(|e| {
            let why = match e {
                Error::InvalidInput { value, reason, .. } => format!("{value:?}: {reason}"),
                other => other.to_string(),
            };
            self.at(&raw.to, format!("{FIELD}.to: {why}"))
        })?;
        let every = match &raw.every {
            Some(n) if n.value == 0 => {
                return Err(self.at(
                    n,
                    format!(
                        "{FIELD}.every: 0 events; give at least 1, or leave it out to checkpoint only on floe audit checkpoint"
                    ),
                ));
            }
            Some(n) => Some(n.value),
            None => None,
        };
        Ok(CheckpointSettings { to, every })
    }
}
