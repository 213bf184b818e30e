//! Cosign key files as signing keys: the `Signer`/`KeyVerifier` conformance suite over real
//! keys (generated, encrypted as cosign does, loaded back from files), and the refusals of
//! key loading.

use std::io::Write as _;

use floe_promotion::Error;
use floe_promotion::attest::{Envelope, Signer};
use floe_promotion::config::AttestationSettings;
use floe_promotion::testing::signing;
use floe_promotion_oci::{CosignKeySigner, CosignKeyVerifier, generate_key_pair};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write key file");
    path
}

#[test]
fn cosign_keys_pass_the_signing_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (private, public) = generate_key_pair(b"s3cret").expect("generate");
    assert!(
        private.contains("ENCRYPTED SIGSTORE PRIVATE KEY"),
        "{private}"
    );
    let key = write(dir.path(), "floe.key", &private);
    let pubkey = write(dir.path(), "floe.pub", &public);
    let signer = CosignKeySigner::from_file(&key, Some(b"s3cret")).expect("load the key");
    let verifier = CosignKeyVerifier::from_file(&pubkey).expect("load the public key");
    let (_, other_public) = generate_key_pair(b"other").expect("generate");
    let other = CosignKeyVerifier::from_pem("other.pub", other_public.as_bytes()).expect("other");
    assert_eq!(signer.public_key_pem().trim(), public.trim());
    signing::run_all(&signer, &verifier, &other, Some(&private));
}

#[test]
fn unencrypted_pkcs8_keys_sign_too() {
    let (private, _) = generate_key_pair(b"pw").expect("generate");
    let encrypted =
        CosignKeySigner::from_pem("floe.key", private.as_bytes(), Some(b"pw")).expect("decrypt");
    // Re-export the same key unencrypted through sigstore, as an operator's PKCS#8 file.
    let pair = sigstore::crypto::signing_key::SigStoreKeyPair::from_encrypted_pem(
        private.as_bytes(),
        b"pw",
    )
    .expect("decrypt with sigstore");
    let plain = pair.private_key_to_pem().expect("export");
    let signer = CosignKeySigner::from_pem("plain.key", plain.as_bytes(), None).expect("load");
    assert_eq!(signer.fingerprint(), encrypted.fingerprint());
    let verifier = CosignKeyVerifier::from_pem("floe.pub", encrypted.public_key_pem().as_bytes())
        .expect("pub");
    let envelope = Envelope::sign("text/plain", b"hello", &signer).expect("sign");
    assert_eq!(envelope.verify(&verifier).expect("verify"), b"hello");
}

#[test]
fn key_loading_refusals_name_the_key_and_never_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (private, public) = generate_key_pair(b"right-password").expect("generate");
    let key = write(dir.path(), "floe.key", &private);

    let wrong = CosignKeySigner::from_pem("floe.key", private.as_bytes(), Some(b"wrong-password"))
        .expect_err("a wrong password must be refused");
    let text = wrong.to_string();
    assert!(matches!(wrong, Error::InvalidInput { .. }), "{wrong:?}");
    assert!(
        text.contains("floe.key") && text.contains("wrong password"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-password") && !text.contains("right-password"),
        "{text}"
    );

    let missing = CosignKeySigner::from_pem("floe.key", private.as_bytes(), None)
        .expect_err("an encrypted key without a password must be refused");
    assert!(
        missing.to_string().contains("key_password_env"),
        "{missing}"
    );

    let settings =
        AttestationSettings::new(&key).with_password_env("FLOE_TEST_UNSET_VARIABLE_7731");
    let unset = CosignKeySigner::from_settings(&settings)
        .expect_err("an unset password variable must be refused");
    assert!(unset.to_string().contains("floe.key"), "{unset}");
    assert!(
        unset.to_string().contains("FLOE_TEST_UNSET_VARIABLE_7731"),
        "{unset}"
    );

    let absent = CosignKeySigner::from_file(&dir.path().join("nope.key"), None)
        .expect_err("a missing file must be refused");
    assert!(absent.to_string().contains("nope.key"), "{absent}");

    let public_as_private = CosignKeySigner::from_pem("floe.pub", public.as_bytes(), None)
        .expect_err("a public key is no signing key");
    assert!(
        public_as_private.to_string().contains("floe.pub"),
        "{public_as_private}"
    );

    for garbage in [&b""[..], b"not a key", &[0xFF, 0x00, 0xFE][..]] {
        assert!(CosignKeyVerifier::from_pem("x.pub", garbage).is_err());
        assert!(CosignKeySigner::from_pem("x.key", garbage, None).is_err());
    }
}
