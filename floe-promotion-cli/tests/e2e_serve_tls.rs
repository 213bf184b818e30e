//! End to end: `floe serve` speaks HTTPS when the manifest names a certificate (generated here
//! with rcgen); a client that trusts it gets answers, plain HTTP gets none.

mod common;
mod serving;

use common::Workspace;
use serving::Served;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = dir.path().join("dev");
    std::fs::create_dir_all(&layout).expect("mkdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("certificate");
    let ws = Workspace::new(&format!(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:{}\n    server:\n      tls: {{ cert: tls/cert.pem, key: tls/key.pem }}\n",
        layout.display()
    ));
    ws.write("tls/cert.pem", &certified.cert.pem());
    ws.write("tls/key.pem", &certified.signing_key.serialize_pem());
    let served = Served::start(&ws);
    assert!(
        served.base.starts_with("https://127.0.0.1:"),
        "{}",
        served.base
    );

    let trusting = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("PEM"),
        )
        .no_proxy()
        .build()
        .expect("client");
    let answer = trusting
        .get(served.url("/healthz"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "ok\n");
    let envs = trusting
        .get(served.url("/api/v1/environments"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(envs.status(), 200);

    // Plain HTTP to the same port is no conversation; an untrusting client refuses the cert.
    let plain = served.base.replacen("https://", "http://", 1);
    let http = serving::client();
    assert!(http.get(format!("{plain}/healthz")).send().await.is_err());
    assert!(http.get(served.url("/healthz")).send().await.is_err());
    assert_eq!(served.terminate(), Some(0));
}
