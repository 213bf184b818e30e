use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A content digest, `sha256:` followed by 64 lowercase hex digits.
///
/// The identity of an artifact: promotion resolves it once and binds every check and every
/// written tag to it.
///
/// ```
/// use floe_promotion::Digest;
/// let d: Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse()?;
/// assert_eq!(d.hex().len(), 64);
/// assert!("sha256:XYZ".parse::<Digest>().is_err());
/// # Ok::<(), floe_promotion::Error>(())
/// ```
///
/// The string is kept behind an [`Arc`]: a clone shares it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(Arc<str>);

impl Digest {
    /// Validates a digest string.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(Error::invalid(
                "digest",
                s,
                "expected sha256:<64 hex digits>",
            ));
        };
        if !is_sha256_hex(hex) {
            return Err(Error::invalid(
                "digest",
                s,
                "expected sha256:<64 lowercase hex digits>",
            ));
        }
        Ok(Digest(Arc::from(s)))
    }

    /// Whether [`Digest::new`] accepts `s`, without copying it.
    pub(crate) fn is_valid(s: &str) -> bool {
        s.strip_prefix("sha256:").is_some_and(is_sha256_hex)
    }

    /// The SHA-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut text = [0u8; 7 + 64];
        text[..7].copy_from_slice(b"sha256:");
        match hex::encode_to_slice(Sha256::digest(bytes), &mut text[7..]) {
            // Hex digits and the prefix are ASCII.
            Ok(()) => Digest(Arc::from(String::from_utf8_lossy(&text).as_ref())),
            Err(_) => unreachable!("32 bytes are 64 hex digits"),
        }
    }

    /// The full string, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The tag under which cosign stores this digest's signature: `sha256-<hex>.sig`.
    pub fn signature_tag(&self) -> String {
        format!("sha256-{}.sig", self.hex())
    }

    /// The tag under which cosign stores this digest's attestations: `sha256-<hex>.att`.
    pub fn attestation_tag(&self) -> String {
        format!("sha256-{}.att", self.hex())
    }

    /// The tag of the referrers fallback index for this digest: `sha256-<hex>`.
    pub fn referrers_tag(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// A short form for messages: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

/// 64 lowercase hex digits.
fn is_sha256_hex(hex: &str) -> bool {
    // Every byte is looked at (no early exit), so that the loop is vectorised: `verify` checks
    // the digest of every stored event.
    hex.len() == 64
        && hex
            .bytes()
            .fold(true, |ok, b| ok & matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &*self.0)
    }
}

impl FromStr for Digest {
    type Err = Error;
    /// Validates `s` before copying it, once.
    fn from_str(s: &str) -> Result<Self> {
        if Digest::is_valid(s) {
            Ok(Digest(Arc::from(s)))
        } else {
            Digest::new(s)
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Digest::new(s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0.as_ref().to_owned()
    }
}

// As a JSON string, exactly as the `String` it held before it was shared.
impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_string(crate::model::names::StrVisitor::<Digest>::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_is_known() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn refuses_bad_digests() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ",
        ] {
            let err = Digest::new(bad).unwrap_err();
            assert!(err.to_string().contains("invalid digest"), "{err}");
        }
    }

    #[test]
    fn tags_derive_from_hex() {
        let d = Digest::of(b"x");
        assert_eq!(d.signature_tag(), format!("sha256-{}.sig", d.hex()));
        assert_eq!(d.referrers_tag(), format!("sha256-{}", d.hex()));
        assert_eq!(d.short().len(), 12);
    }
}
