//! `artifacts.promotion.attestation`: the raw section and its conversion into
//! [`AttestationSettings`].

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Loader;
use super::webhooks::env_name_ok;
use crate::config::AttestationSettings;
use crate::error::Result;

/// The `attestation` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttestation {
    key: Spanned<String>,
    #[serde(default)]
    key_password_env: Option<Spanned<String>>,
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
        Ok(settings)
    }
}
