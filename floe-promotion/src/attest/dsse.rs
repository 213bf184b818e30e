//! DSSE (Dead Simple Signing Envelope) v1: the envelope cosign and in-toto use to sign a
//! statement, with its pre-authentication encoding.
//!
//! The signature is made over `PAE(payloadType, payload)`:
//! `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, where `LEN` is the byte length in
//! ASCII decimal. The envelope carries the payload base64-encoded (standard alphabet, padded).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{KeyVerifier, Signer};
use crate::error::{Error, Result};
use crate::model::Digest;

/// The payload type of an in-toto statement inside an envelope.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The media type of a DSSE envelope stored as an OCI layer (cosign's attestation layout).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// The pre-authentication encoding that a DSSE signature covers.
///
/// ```
/// use floe_promotion::attest::pae;
/// assert_eq!(pae("http://example.com/HelloWorld", b"hello world"),
///            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec());
/// ```
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature of an [`Envelope`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// An unauthenticated hint naming the key; cosign writes `""` for key-based signatures,
    /// and so does floe.
    #[serde(default)]
    pub keyid: String,
    /// The base64 signature over [`pae`] of the payload.
    pub sig: String,
}

/// A DSSE envelope, serialised as DSSE's JSON (`payloadType`, `payload`, `signatures`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload's type, e.g. [`IN_TOTO_PAYLOAD_TYPE`].
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// The signatures over the pre-authentication encoding.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Signs `payload` with `signer`.
    pub fn sign(payload_type: &str, payload: &[u8], signer: &dyn Signer) -> Result<Envelope> {
        let signature = signer.sign(&pae(payload_type, payload))?;
        Ok(Envelope {
            payload_type: payload_type.to_string(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: STANDARD.encode(signature),
            }],
        })
    }

    /// Parses an envelope from JSON; the error says what is wrong with it.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(
                "DSSE envelope",
                String::from_utf8_lossy(bytes),
                format!("not a DSSE envelope: {e}"),
            )
        })
    }

    /// The envelope as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // An envelope of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The decoded payload, unverified.
    pub fn payload_bytes(&self) -> Result<Vec<u8>> {
        STANDARD
            .decode(self.payload.as_bytes())
            .map_err(|e| Error::invalid("DSSE payload", &self.payload, format!("not base64: {e}")))
    }

    /// Returns the payload when one of the signatures verifies with `key`; otherwise
    /// [`Error::Signature`] naming the SHA-256 of the payload.
    pub fn verify(&self, key: &dyn KeyVerifier) -> Result<Vec<u8>> {
        let payload = self.payload_bytes()?;
        let fail = |message: String| Error::Signature {
            digest: Digest::of(&payload),
            message,
        };
        if self.signatures.is_empty() {
            return Err(fail("the envelope carries no signature".into()));
        }
        let message = pae(&self.payload_type, &payload);
        let mut last = String::new();
        for s in &self.signatures {
            let Ok(sig) = STANDARD.decode(s.sig.as_bytes()) else {
                last = "a signature is not base64".into();
                continue;
            };
            match key.verify(&message, &sig) {
                Ok(()) => return Ok(payload),
                Err(e) => last = e.to_string(),
            }
        }
        Err(fail(format!(
            "no signature verifies with the key {}: {last}",
            key.fingerprint()
        )))
    }
}
