//! Verified identity: the actor of a call is the identity of its bearer token, never a field
//! of the request.
//!
//! Two sources, tried in turn: static tokens from a file (stored as SHA-256), and OpenID
//! Connect ID tokens of trusted issuers.

mod oidc;
mod static_tokens;

use std::path::Path;

use floe_promotion::config::ServerSettings;
use floe_promotion::{Actor, Result};

pub use oidc::{OidcVerifier, Refused};
pub use static_tokens::StaticTokens;

/// Turns bearer tokens into actors.
#[derive(Debug, Default)]
pub struct IdentityVerifier {
    tokens: StaticTokens,
    issuers: Vec<OidcVerifier>,
}

impl IdentityVerifier {
    /// A verifier that knows no token: every mutating call is refused.
    pub fn new() -> IdentityVerifier {
        IdentityVerifier::default()
    }

    /// The sources the manifest's `server.identity` names (the token file is read now).
    pub fn from_settings(settings: &ServerSettings) -> Result<IdentityVerifier> {
        let tokens = match &settings.static_tokens {
            Some(path) => StaticTokens::from_file(Path::new(path))?,
            None => StaticTokens::default(),
        };
        Ok(IdentityVerifier {
            tokens,
            issuers: settings
                .oidc
                .iter()
                .cloned()
                .map(OidcVerifier::new)
                .collect(),
        })
    }

    /// Adds static tokens.
    pub fn with_static_tokens(mut self, tokens: StaticTokens) -> IdentityVerifier {
        self.tokens = tokens;
        self
    }

    /// Adds a trusted OIDC issuer.
    pub fn with_issuer(mut self, issuer: floe_promotion::config::OidcIssuer) -> IdentityVerifier {
        self.issuers.push(OidcVerifier::new(issuer));
        self
    }

    /// Whether any source is configured.
    pub fn is_configured(&self) -> bool {
        !self.tokens.is_empty() || !self.issuers.is_empty()
    }

    /// The actor `token` stands for. A JWT-shaped token is checked against each issuer; the
    /// refusal of the last one is returned.
    pub async fn verify(&self, token: &str) -> std::result::Result<Actor, Refused> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Refused("an empty bearer token".into()));
        }
        if let Some(actor) = self.tokens.verify(token) {
            return Ok(actor);
        }
        let mut refusal = Refused("unknown token".into());
        if token.split('.').count() == 3 {
            for issuer in &self.issuers {
                match issuer.verify(token).await {
                    Ok(actor) => return Ok(actor),
                    Err(e) => refusal = e,
                }
            }
        }
        Err(refusal)
    }
}
