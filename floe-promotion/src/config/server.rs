//! The `floe serve` settings (`artifacts.promotion.server`): where verified identities come
//! from and the TLS certificate.
//!
//! The settings only name things: the server crate fetches the issuers' keys and reads the
//! token file when it starts, so loading a manifest never reaches the network.

use std::path::PathBuf;

/// `artifacts.promotion.server`: the settings of `floe serve`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSettings {
    /// OpenID Connect issuers whose ID tokens are accepted as bearer tokens.
    pub oidc: Vec<OidcIssuer>,
    /// A file of static tokens, each stored as its SHA-256 with an actor and groups.
    pub static_tokens: Option<PathBuf>,
    /// The certificate and key to serve HTTPS with (plain HTTP without).
    pub tls: Option<TlsFiles>,
}

/// An OpenID Connect issuer trusted for ID tokens (what CI systems hand their jobs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcIssuer {
    /// The `iss` a token must carry, exactly.
    pub issuer: String,
    /// The `aud` a token must carry (one of its audiences).
    pub audience: String,
    /// Where the issuer's keys are (JWKS); default: the `jwks_uri` of the issuer's
    /// `/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// The claim that names the actor (default `sub`).
    pub actor_claim: String,
    /// The claim that lists the actor's groups, a string or a list of strings (default
    /// `groups`); a token without it has no groups.
    pub groups_claim: String,
    /// A prefix put before the actor id, so identities of two issuers cannot collide
    /// (default none).
    pub actor_prefix: String,
}

impl OidcIssuer {
    /// An issuer with an audience, the `sub` claim as actor and `groups` as groups.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        OidcIssuer {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_uri: None,
            actor_claim: "sub".into(),
            groups_claim: "groups".into(),
            actor_prefix: String::new(),
        }
    }
}

/// A PEM certificate chain and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}
