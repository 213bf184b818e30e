//! OpenID Connect ID tokens verified against the issuer's keys (JWKS).
//!
//! Only asymmetric algorithms are accepted, and each only with a key of its own family: an
//! unsigned token (`alg: none`) and an HMAC token "signed" with a public key are refused
//! before any key is looked at. Issuer, audience and expiry are always checked.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use floe_promotion::Actor;
use floe_promotion::config::OidcIssuer;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// The algorithms an ID token may be signed with: asymmetric only.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Keys are fetched again at most this often when a token names a key not in the set.
const REFRESH_AFTER: Duration = Duration::from_secs(30);

/// Keys are fetched again after this long in any case, so a key the issuer withdrew stops
/// being trusted.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// Leeway for clock skew on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 30;

/// Why a token was refused (said to the caller; never holds the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// One trusted issuer and its cached keys.
#[derive(Debug)]
pub struct OidcVerifier {
    issuer: OidcIssuer,
    http: reqwest::Client,
    keys: Mutex<Option<(JwkSet, Instant)>>,
}

impl OidcVerifier {
    /// A verifier for `issuer`; its keys are fetched on first use.
    pub fn new(issuer: OidcIssuer) -> OidcVerifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        OidcVerifier {
            issuer,
            http,
            keys: Mutex::new(None),
        }
    }

    /// The issuer this verifier trusts.
    pub fn issuer(&self) -> &OidcIssuer {
        &self.issuer
    }

    async fn get_json(&self, url: &str) -> Result<Value, Refused> {
        let unavailable = |e: String| Refused(format!("the issuer's keys are unavailable: {e}"));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))
    }

    async fn fetch_keys(&self) -> Result<JwkSet, Refused> {
        let uri = match &self.issuer.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.issuer.trim_end_matches('/')
                );
                self.get_json(&discovery)
                    .await?
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Refused("the issuer's discovery document has no jwks_uri".into())
                    })?
            }
        };
        serde_json::from_value(self.get_json(&uri).await?)
            .map_err(|e| Refused(format!("the issuer's key set is not a JWKS: {e}")))
    }

    /// The key for `kid` (or the only key when the token names none), fetching the set again
    /// when it is unknown and the cached set is old enough.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, Refused> {
        let pick = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(kid) => set.find(kid).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        let cached = {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.as_ref().map(|(set, at)| (pick(set), at.elapsed()))
        };
        match cached {
            Some((Some(key), age)) if age < MAX_AGE => return Ok(key),
            Some((None, age)) if age < REFRESH_AFTER => {
                return Err(Refused(
                    "the token's key is not among the issuer's keys".into(),
                ));
            }
            _ => {}
        }
        let set = self.fetch_keys().await?;
        let key = pick(&set);
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = Some((set, Instant::now()));
        key.ok_or_else(|| Refused("the token's key is not among the issuer's keys".into()))
    }

    /// The identity in `token`, when it is an ID token of this issuer for this audience,
    /// unexpired and signed by one of the issuer's keys.
    pub async fn verify(&self, token: &str) -> Result<Actor, Refused> {
        // An unknown or missing algorithm (`none`) does not even parse as a header.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refused(format!("not a signed JWT: {e}")))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(Refused(format!(
                "algorithm {:?} is not accepted (asymmetric signatures only)",
                header.alg
            )));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| Refused(format!("the issuer's key is unusable: {e}")))?;
        // The key decides the family: an RSA key never verifies an EC or HMAC token.
        if key.family() != header.alg.family() {
            return Err(Refused(
                "the token's algorithm does not match the key".into(),
            ));
        }
        if let Some(alg) = jwk.common.key_algorithm
            && format!("{alg:?}") != format!("{:?}", header.alg)
        {
            return Err(Refused(
                "the token's algorithm does not match the key".into(),
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer.issuer]);
        validation.set_audience(&[&self.issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Refused(format!("invalid token: {e}")))?;
        let claims = data.claims;
        let id = claims
            .get(&self.issuer.actor_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Refused(format!(
                    "the token has no {} claim to name the actor",
                    self.issuer.actor_claim
                ))
            })?;
        let groups: Vec<String> = match claims.get(&self.issuer.groups_claim) {
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => vec![],
        };
        Actor::new(format!("{}{id}", self.issuer.actor_prefix))
            .map(|a| a.with_groups(groups))
            .map_err(|e| Refused(format!("the token's actor is not usable: {e}")))
    }
}
