//! Conformance suite of [`Signer`] and [`KeyVerifier`]: one public function per sentence of
//! their contracts, given a signer, its matching verifier and the verifier of another key.

use crate::Error;
use crate::attest::{Envelope, KeyVerifier, Signer};

/// Messages the suite signs: empty, text, binary and large.
fn messages() -> Vec<Vec<u8>> {
    vec![
        vec![],
        b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec(),
        (0..=255u8).collect(),
        vec![0xA5; 1 << 20],
    ]
}

/// `sign` returns a signature over exactly `message` that the matching verifier accepts, and
/// that it refuses for any other message.
pub fn signature_verifies_for_its_message_only(signer: &dyn Signer, verifier: &dyn KeyVerifier) {
    for message in messages() {
        let sig = signer.sign(&message).expect("sign");
        verifier
            .verify(&message, &sig)
            .unwrap_or_else(|e| panic!("own signature refused ({} bytes): {e}", message.len()));
        let mut other = message.clone();
        other.push(b'x');
        assert!(
            matches!(verifier.verify(&other, &sig), Err(Error::Signature { .. })),
            "a signature verified for another message"
        );
        let mut flipped = message.clone();
        if let Some(first) = flipped.first_mut() {
            *first ^= 1;
            assert!(
                matches!(
                    verifier.verify(&flipped, &sig),
                    Err(Error::Signature { .. })
                ),
                "a signature verified for a message with one bit changed"
            );
        }
    }
}

/// `public_key_pem` is the SubjectPublicKeyInfo PEM of the verifying key.
pub fn public_key_is_spki_pem(signer: &dyn Signer) {
    let pem = signer.public_key_pem();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----")
            && pem.trim_end().ends_with("-----END PUBLIC KEY-----"),
        "not a SubjectPublicKeyInfo PEM: {pem}"
    );
}

/// `fingerprint` is `sha256:<hex>` of the public key, stable for one key and different for
/// another; the verifier's equals the signer's.
pub fn fingerprints_identify_the_key(
    signer: &dyn Signer,
    verifier: &dyn KeyVerifier,
    other: &dyn KeyVerifier,
) {
    let f = signer.fingerprint();
    assert!(
        f.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
        "not sha256:<hex>: {f}"
    );
    assert_eq!(f, signer.fingerprint(), "fingerprint not stable");
    assert_eq!(f, verifier.fingerprint(), "the verifier names another key");
    assert_ne!(f, other.fingerprint(), "two keys share a fingerprint");
}

/// The private key never appears in `Debug` output; `private_key_pem` is the key's PEM text as
/// loaded, when the caller has it (pass `None` otherwise).
pub fn debug_hides_the_private_key(signer: &dyn Signer, private_key_pem: Option<&str>) {
    let shown = format!("{signer:?}");
    assert!(
        !shown.contains("PRIVATE KEY"),
        "Debug shows key material: {shown}"
    );
    if let Some(pem) = private_key_pem {
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            assert!(
                !shown.contains(line),
                "Debug shows a line of the private key"
            );
        }
    }
}

/// A signature by another key, altered signature bytes and garbage are
/// [`Error::Signature`], never a panic.
pub fn other_keys_and_garbage_are_refused(
    signer: &dyn Signer,
    verifier: &dyn KeyVerifier,
    other: &dyn KeyVerifier,
) {
    let message = b"floe checkpoint 42";
    let sig = signer.sign(message).expect("sign");
    assert!(
        matches!(other.verify(message, &sig), Err(Error::Signature { .. })),
        "another key accepted the signature"
    );
    let mut altered = sig.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    assert!(matches!(
        verifier.verify(message, &altered),
        Err(Error::Signature { .. })
    ));
    for garbage in [&[][..], &[0u8; 3][..], &[0xFF; 512][..]] {
        assert!(matches!(
            verifier.verify(message, garbage),
            Err(Error::Signature { .. })
        ));
    }
}

/// A DSSE envelope made with the signer verifies with the matching key and returns the
/// payload; with another key, another payload or payload type it is refused.
pub fn envelopes_round_trip(
    signer: &dyn Signer,
    verifier: &dyn KeyVerifier,
    other: &dyn KeyVerifier,
) {
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
    let envelope =
        Envelope::sign("application/vnd.in-toto+json", payload, signer).expect("sign envelope");
    let parsed = Envelope::from_json(&envelope.to_json()).expect("parse envelope");
    assert_eq!(parsed.verify(verifier).expect("verify"), payload.to_vec());
    assert!(matches!(parsed.verify(other), Err(Error::Signature { .. })));
    let mut retyped = parsed.clone();
    retyped.payload_type = "text/plain".into();
    assert!(matches!(
        retyped.verify(verifier),
        Err(Error::Signature { .. })
    ));
    let mut swapped = parsed.clone();
    swapped.payload = Envelope::sign("application/vnd.in-toto+json", b"{}", signer)
        .expect("sign")
        .payload;
    assert!(matches!(
        swapped.verify(verifier),
        Err(Error::Signature { .. })
    ));
    let mut unsigned = parsed;
    unsigned.signatures.clear();
    assert!(matches!(
        unsigned.verify(verifier),
        Err(Error::Signature { .. })
    ));
}

/// Runs the whole suite.
pub fn run_all(
    signer: &dyn Signer,
    verifier: &dyn KeyVerifier,
    other: &dyn KeyVerifier,
    private_key_pem: Option<&str>,
) {
    signature_verifies_for_its_message_only(signer, verifier);
    public_key_is_spki_pem(signer);
    fingerprints_identify_the_key(signer, verifier, other);
    debug_hides_the_private_key(signer, private_key_pem);
    other_keys_and_garbage_are_refused(signer, verifier, other);
    envelopes_round_trip(signer, verifier, other);
}
