//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.
//!
//! The key is the configured secret: `whsec_<base64>` (the form Standard Webhooks libraries
//! generate and accept) is base64-decoded and the bytes are the key; any other string is used
//! as is, its UTF-8 bytes the key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The HMAC key of an endpoint. `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// The key of a configured secret: `whsec_<base64>` decoded, anything else as bytes. A
    /// `whsec_` secret whose rest is not base64, or an empty secret, is an error that never
    /// quotes the secret.
    pub fn from_secret(secret: &str) -> Result<SigningKey, String> {
        let key = match secret.strip_prefix("whsec_") {
            Some(b64) => STANDARD.decode(b64.trim()).map_err(|_| {
                "the secret starts with whsec_ but the rest is not base64 (Standard Webhooks form: whsec_<base64 key>)".to_string()
            })?,
            None => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(SigningKey(key))
    }

    /// The `webhook-signature` value of a message: `v1,<base64 HMAC-SHA256 of
    /// "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_decoded_and_raw_ones_used_as_is() {
        let decoded = SigningKey::from_secret("whsec_c2VjcmV0").expect("base64");
        let raw = SigningKey::from_secret("secret").expect("raw");
        assert_eq!(decoded.sign("m", 1, b"{}"), raw.sign("m", 1, b"{}"));
        assert!(SigningKey::from_secret("whsec_!!!").is_err());
        assert!(SigningKey::from_secret("").is_err());
        assert_eq!(format!("{decoded:?}"), "SigningKey(<redacted>)");
    }

    #[test]
    fn a_known_vector() {
        // HMAC-SHA256("secret", "m.1.{}"), computed independently with Python's hmac module.
        let key = SigningKey::from_secret("secret").expect("raw");
        assert_eq!(
            key.sign("m", 1, b"{}"),
            "v1,JF6NGCkoKSuLqYWpcgqDSZzwpiy7/gAgJdt2WoY4jq0="
        );
    }
}
