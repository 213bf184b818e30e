//! Static bearer tokens from a file, stored as their SHA-256.
//!
//! ```yaml
//! tokens:
//!   - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     actor: alice
//!     groups: [release-managers]
//! ```
//!
//! The file never holds a token, only its hash (`printf %s "$TOKEN" | sha256sum`): reading
//! the file gives nobody a way in.

use std::path::Path;

use floe_promotion::{Actor, Error, Result};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The largest token file read: 1 MiB.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tokens: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    sha256: String,
    actor: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// The static tokens: SHA-256 digests, each with the identity it stands for.
#[derive(Clone, Default)]
pub struct StaticTokens {
    entries: Vec<([u8; 32], Actor)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl StaticTokens {
    /// Reads a token file; every problem is a configuration error naming the file and the
    /// entry.
    pub fn from_file(path: &Path) -> Result<StaticTokens> {
        let config_error = |message: String| Error::Config {
            file: Some(path.to_path_buf()),
            location: None,
            message,
        };
        let bytes = floe_promotion::input::read_bounded(path, MAX_FILE_BYTES, "token file")
            .map_err(|e| config_error(format!("cannot read the token file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| config_error("the token file is not UTF-8".into()))?;
        StaticTokens::parse(&text).map_err(config_error)
    }

    /// Parses the YAML of a token file.
    pub fn parse(text: &str) -> std::result::Result<StaticTokens, String> {
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        let mut entries = Vec::new();
        for (i, t) in raw.tokens.into_iter().enumerate() {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut digest).map_err(|_| {
                format!("tokens[{i}].sha256: expected 64 hexadecimal digits (the SHA-256 of the token, never the token)")
            })?;
            let actor = Actor::new(t.actor.trim())
                .map_err(|e| format!("tokens[{i}].actor: {e}"))?
                .with_groups(t.groups);
            entries.push((digest, actor));
        }
        Ok(StaticTokens { entries })
    }

    /// Adds a token (its SHA-256 is kept, not the token).
    pub fn with_token(mut self, token: &str, actor: Actor) -> StaticTokens {
        self.entries
            .push((Sha256::digest(token.as_bytes()).into(), actor));
        self
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity of `token`, if it is one of them (compared in constant time).
    pub fn verify(&self, token: &str) -> Option<Actor> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (d, actor) in &self.entries {
            if bool::from(d.ct_eq(&digest)) && found.is_none() {
                found = Some(actor.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_hash_and_others_are_not() {
        let text = format!(
            "tokens:\n  - sha256: {}\n    actor: alice\n    groups: [ops]\n",
            hex::encode(Sha256::digest(b"s3cret-token"))
        );
        let tokens = StaticTokens::parse(&text).unwrap();
        let alice = tokens.verify("s3cret-token").unwrap();
        assert_eq!(alice.id, "alice");
        assert_eq!(alice.groups, vec!["ops".to_string()]);
        assert!(tokens.verify("s3cret-tokeN").is_none());
        assert!(tokens.verify("").is_none());
    }

    #[test]
    fn a_plain_token_in_place_of_a_hash_is_refused_naming_the_entry() {
        let e = StaticTokens::parse("tokens:\n  - sha256: hunter2\n    actor: bob\n")
            .err()
            .unwrap();
        assert!(e.contains("tokens[0].sha256"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
