//! End to end: `floe serve` verifies OIDC ID tokens against an issuer's JWKS, served by a
//! small axum server on loopback; the tests sign their own RS256 and ES256 tokens.
//!
//! Expired, wrong-audience, wrong-issuer, unsigned (`alg: none`), tampered, HMAC-signed with
//! the public key, and unknown-key tokens are refused (401); a valid token without the group
//! an approval rule asks for is refused (403); a valid token's vote is recorded as the
//! token's subject and promotes.

mod common;
mod serving;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Workspace, push, three_env_manifest};
use floe_promotion_oci::testing::TestRegistry;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use serving::{Served, client, get, post, token_entry};

const AUDIENCE: &str = "floe-api";
const CI: &str = "ci-token-0123456789";

struct Keys {
    rsa: EncodingKey,
    rsa_public_pem: String,
    ec: EncodingKey,
    /// A key the issuer does not publish.
    stranger: EncodingKey,
    set: JwkSet,
}

fn keys() -> Keys {
    let mut rng = rsa::rand_core::OsRng;
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
    let pem = rsa_key.to_pkcs8_pem(LineEnding::LF).expect("PEM");
    let rsa = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA encoding key");
    let rsa_public_pem = rsa_key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public PEM");
    let ec_pair = rcgen::KeyPair::generate().expect("P-256 key");
    let ec = EncodingKey::from_ec_pem(ec_pair.serialize_pem().as_bytes()).expect("EC key");
    let stranger_pair = rcgen::KeyPair::generate().expect("P-256 key");
    let stranger =
        EncodingKey::from_ec_pem(stranger_pair.serialize_pem().as_bytes()).expect("EC key");
    let mut rsa_jwk = Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("JWK");
    rsa_jwk.common.key_id = Some("rsa-1".into());
    let mut ec_jwk = Jwk::from_encoding_key(&ec, Algorithm::ES256).expect("JWK");
    ec_jwk.common.key_id = Some("ec-1".into());
    Keys {
        rsa,
        rsa_public_pem,
        ec,
        stranger,
        set: JwkSet {
            keys: vec![rsa_jwk, ec_jwk],
        },
    }
}

/// Serves the discovery document and the key set on a loopback port; returns the issuer URL.
async fn issuer(set: JwkSet) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/keys")});
    let set = serde_json::to_value(set).expect("JWKS");
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/keys",
            axum::routing::get(move || async move { axum::Json(set) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(iss: &str, sub: &str, groups: &[&str]) -> Value {
    json!({"iss": iss, "aud": AUDIENCE, "sub": sub, "groups": groups, "iat": now(), "exp": now() + 600})
}

fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).expect("signing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_are_verified_against_the_issuer_s_keys() {
    let keys = keys();
    let iss = issuer(keys.set.clone()).await;
    let registry = TestRegistry::shared();
    let ns = registry.namespace("serve-oidc");
    let mut manifest = three_env_manifest(
        &registry.host(),
        ns.as_ref(),
        &[(
            "prod",
            "approval:\n  rules:\n    - { name: release, required: 1, groups: [release-managers] }\n  timeout: 1h",
        )],
    );
    manifest.push_str(&format!(
        "    server:\n      identity:\n        static_tokens: tokens.yaml\n        oidc:\n          - issuer: {iss}\n            audience: {AUDIENCE}\n"
    ));
    let ws = Workspace::new(&manifest);
    ws.write(
        "tokens.yaml",
        &format!("tokens:\n{}", token_entry(CI, "ci", &["ci"])),
    );
    push(&format!("{ns}/dev/app"), "v1", 1, None);
    let served = Served::start(&ws);
    let http = client();
    let promotions = served.url("/api/v1/promotions");
    let body =
        |from: &str, to: &str| json!({"artifact": "app", "version": "v1", "from": from, "to": to});
    post(&http, &promotions, Some(CI), body("dev", "staging"))
        .await
        .expect(200);
    post(&http, &promotions, Some(CI), body("staging", "prod"))
        .await
        .error(202, "approval_pending");
    let list = get(&http, &served.url("/api/v1/approvals?status=pending"))
        .await
        .json();
    let id = list["requests"][0]["id"]
        .as_str()
        .expect("request id")
        .to_string();
    let approve = served.url(&format!("/api/v1/approvals/{id}/approve"));

    // Refused tokens: each a 401 that names no token.
    let mut expired = claims(&iss, "ann", &["release-managers"]);
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    let mut wrong_aud = claims(&iss, "ann", &["release-managers"]);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_iss = claims("https://evil.example.com", "ann", &["release-managers"]);
    let good = claims(&iss, "ann", &["release-managers"]);
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    // Signed for someone without the group, then the payload swapped for one with it.
    let signed = sign(
        &keys.rsa,
        Algorithm::RS256,
        "rsa-1",
        &claims(&iss, "ann", &[]),
    );
    let parts: Vec<&str> = signed.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(good.to_string()),
        parts[2]
    );
    let hmac_confused = sign(
        &EncodingKey::from_secret(keys.rsa_public_pem.as_bytes()),
        Algorithm::HS256,
        "rsa-1",
        &good,
    );
    let refused = [
        (
            "expired",
            sign(&keys.rsa, Algorithm::RS256, "rsa-1", &expired),
        ),
        (
            "wrong audience",
            sign(&keys.rsa, Algorithm::RS256, "rsa-1", &wrong_aud),
        ),
        (
            "wrong issuer",
            sign(&keys.rsa, Algorithm::RS256, "rsa-1", &wrong_iss),
        ),
        ("unsigned", unsigned),
        ("tampered", tampered),
        ("HMAC with the public key", hmac_confused),
        (
            "unknown key",
            sign(&keys.stranger, Algorithm::ES256, "ec-2", &good),
        ),
        (
            "EC key named as the RSA key",
            sign(&keys.ec, Algorithm::ES256, "rsa-1", &good),
        ),
    ];
    for (what, token) in &refused {
        let answer = post(&http, &approve, Some(token), json!({})).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
        assert!(
            !answer.text.contains(token.as_str()),
            "{what}: the token is echoed"
        );
    }

    // Valid but without the group the rule asks for: 403.
    let outsider = sign(
        &keys.ec,
        Algorithm::ES256,
        "ec-1",
        &claims(&iss, "olaf", &["dev"]),
    );
    post(&http, &approve, Some(&outsider), json!({}))
        .await
        .error(403, "authorization");

    // Valid with the group (ES256): the vote is ann's, and it promotes.
    let ann = sign(&keys.ec, Algorithm::ES256, "ec-1", &good);
    let outcome = post(&http, &approve, Some(&ann), json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(outcome["executed"]["to"], "prod", "{outcome}");
    let decided = get(&http, &served.url("/api/v1/history?kind=approval_decided"))
        .await
        .json();
    assert_eq!(decided["events"][0]["actor"]["id"], "ann", "{decided}");
    assert_eq!(
        decided["events"][0]["actor"]["groups"],
        json!(["release-managers"])
    );
    // RS256 works too (a lock, which any identity may take here).
    let rs = sign(
        &keys.rsa,
        Algorithm::RS256,
        "rsa-1",
        &claims(&iss, "rita", &[]),
    );
    let lock = serving::call(
        &http,
        reqwest::Method::PUT,
        &served.url("/api/v1/environments/dev/lock"),
        Some(&rs),
        Some(json!({"reason": "maintenance"})),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(lock["owner"], "rita");
    assert_eq!(served.terminate(), Some(0));
}
