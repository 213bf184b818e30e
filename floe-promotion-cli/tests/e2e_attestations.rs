//! End to end against a real `docker-registry`: `floe keygen` makes the key, promotions
//! dev -> staging -> prod with `attestation:` configured attach signed summaries (skopeo reads
//! cosign's `.att` manifest), `floe verify` admits the digest for prod and staging and refuses
//! another key, another environment, a stale attestation and, after `floe revoke`, the
//! revoked digest.

mod common;

use common::{Workspace, push, three_env_manifest};
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::{TestRegistry, skopeo_raw_manifest};

const PASSWORD: (&str, &str) = ("FLOE_KEY_PASSWORD", "correct horse battery staple");

#[test]
fn promotions_are_attested_and_floe_verify_checks_them() {
    let registry = TestRegistry::shared();
    let ns = registry.namespace("e2e-att");
    let manifest = three_env_manifest(&registry.host(), ns.as_ref(), &[]).replacen(
        "  promotion:\n",
        "  promotion:\n    attestation: {key: keys/floe.key, key_password_env: FLOE_KEY_PASSWORD}\n",
        1,
    );
    let ws = Workspace::new(&manifest);

    // keygen: the pair, then a refusal to overwrite it.
    let Output::Keygen(k) = ws
        .run_env(
            &[
                "--output",
                "json",
                "keygen",
                "--out",
                "keys/floe",
                "--password-env",
                PASSWORD.0,
            ],
            &[PASSWORD],
        )
        .ok()
        .output()
    else {
        panic!("not a keygen output")
    };
    assert!(k.fingerprint.starts_with("sha256:"));
    let key = std::fs::read_to_string(ws.join("keys/floe.key")).unwrap();
    assert!(key.contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{key}");
    let line = ws
        .run_env(
            &["keygen", "--out", "keys/floe", "--password-env", PASSWORD.0],
            &[PASSWORD],
        )
        .one_error_line(exit::USAGE);
    assert!(line.contains("never overwrites"), "{line}");
    assert_eq!(
        std::fs::read_to_string(ws.join("keys/floe.key")).unwrap(),
        key
    );
    ws.run(&[
        "keygen",
        "--out",
        "keys/nopass",
        "--password-env",
        "FLOE_UNSET_VAR",
    ])
    .expect(exit::USAGE);
    assert!(!ws.join("keys/nopass.key").exists());

    let digest = push(&format!("{ns}/dev/app"), "v1", 91, None);
    for (from, to) in [("dev", "staging"), ("staging", "prod")] {
        ws.run_env(
            &[
                "promote", "app:v1", "--from", from, "--to", to, "--actor", "ci",
            ],
            &[PASSWORD],
        )
        .ok();
    }

    // cosign's layout, as skopeo reads it: the staging summary travelled, prod's was appended.
    let prod = format!("{ns}/prod/app");
    let raw = skopeo_raw_manifest(&format!("{prod}:{}", digest.attestation_tag()));
    let att: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let layers = att["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{att}");
    for layer in layers {
        assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
        assert_eq!(
            layer["annotations"]["predicateType"],
            "https://slsa.dev/verification_summary/v1"
        );
        assert_eq!(
            layer["annotations"]["dev.cosignproject.cosign/signature"],
            ""
        );
    }

    let image = format!("{prod}@{digest}");
    let Output::AttestationVerified(v) = ws
        .run(&[
            "--output",
            "json",
            "verify",
            &image,
            "--env",
            "prod",
            "--key",
            "keys/floe.pub",
            "--max-age",
            "1h",
        ])
        .ok()
        .output()
    else {
        panic!("not a verify output")
    };
    assert_eq!(v.level, "FLOE_ENV_PROD");
    assert_eq!(v.digest, digest);
    assert_eq!(v.key, k.fingerprint);
    // By artifact name, through the manifest; the staging summary is there too.
    ws.run(&[
        "verify",
        &format!("app@{digest}"),
        "--env",
        "staging",
        "--key",
        "keys/floe.pub",
    ])
    .ok();

    // Refusals, each one line, exit 6.
    ws.run_env(
        &[
            "keygen",
            "--out",
            "keys/other",
            "--password-env",
            PASSWORD.0,
        ],
        &[PASSWORD],
    )
    .ok();
    let line = ws
        .run(&["verify", &image, "--env", "prod", "--key", "keys/other.pub"])
        .one_error_line(exit::SIGNATURE);
    assert!(line.contains("signed by the key"), "{line}");
    let line = ws
        .run(&[
            "verify",
            &format!("{ns}/dev/app@{digest}"),
            "--env",
            "prod",
            "--key",
            "keys/floe.pub",
        ])
        .one_error_line(exit::SIGNATURE);
    assert!(line.contains("no attestation"), "{line}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let line = ws
        .run(&[
            "verify",
            &image,
            "--env",
            "prod",
            "--key",
            "keys/floe.pub",
            "--max-age",
            "10ms",
        ])
        .one_error_line(exit::SIGNATURE);
    assert!(line.contains("maximum age"), "{line}");

    // A revocation is attested where the digest lives; verify refuses it from then on.
    ws.run_env(
        &[
            "revoke",
            &format!("app@{digest}"),
            "--reason",
            "CVE-2026-9",
            "--actor",
            "sec",
        ],
        &[PASSWORD],
    )
    .ok();
    let line = ws
        .run(&["verify", &image, "--env", "prod", "--key", "keys/floe.pub"])
        .one_error_line(exit::SIGNATURE);
    assert!(
        line.contains("revoked") && line.contains("CVE-2026-9"),
        "{line}"
    );
    let raw = skopeo_raw_manifest(&format!("{ns}/dev/app:{}", digest.attestation_tag()));
    let dev_att: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        dev_att["layers"][0]["annotations"]["predicateType"],
        "https://floe.dev/revocation/v1"
    );
}
