//! Retries, timeouts and misbehaving registries, against a scripted HTTP server on loopback
//! that counts the requests it gets (the interaction under test): 5xx answers and silence are
//! retried with backoff up to the configured count, 4xx answers are not retried, and a push
//! answered without a `Location` header is an error, not a panic.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use floe_promotion::{ArtifactRegistry, Error, Reference, Repository, Tag};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};

#[derive(Clone, Copy)]
enum Script {
    /// Answer every request with this status and an OCI error body.
    Status(u16),
    /// Read the request and never answer (for 3 s, then close).
    Silence,
    /// Answer every request with `201 Created` and no `Location` header.
    CreatedWithoutLocation,
}

/// Serves `script` on a free loopback port; returns the host and the count of manifest
/// requests received. The server thread ends by itself after 30 s.
fn scripted_server(script: Script) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                stream.set_nonblocking(false).ok();
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                if request_line.contains("/manifests/") {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                let mut stream = reader.into_inner();
                match script {
                    Script::Status(code) => {
                        // The error codes registries send with these statuses.
                        let error_code = match code {
                            401 => "UNAUTHORIZED",
                            403 => "DENIED",
                            404 => "MANIFEST_UNKNOWN",
                            400..=499 => "NAME_INVALID",
                            _ => "UNKNOWN",
                        };
                        let body = format!(
                            r#"{{"errors":[{{"code":"{error_code}","message":"scripted failure"}}]}}"#
                        );
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Script::Silence => std::thread::sleep(Duration::from_secs(3)),
                    Script::CreatedWithoutLocation => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    (host, count)
}

fn client(host: &str) -> OciRegistry {
    OciRegistry::new(OciOptions {
        insecure_hosts: vec![host.to_string()],
        credentials: CredentialSource::Anonymous,
        request_timeout: Duration::from_millis(300),
        retries: 2,
        retry_backoff: Duration::from_millis(20),
        ..OciOptions::default()
    })
    .unwrap()
}

async fn resolve(host: &str) -> Result<(), Error> {
    let repo = Repository::new(format!("{host}/floe/app")).unwrap();
    client(host)
        .resolve(&repo, &Reference::Tag(Tag::new("v1").unwrap()))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_unavailable() {
    for code in [500, 503] {
        let (host, count) = scripted_server(Script::Status(code));
        let err = resolve(&host).await.unwrap_err();
        match &err {
            Error::Unavailable { registry, message } => {
                assert_eq!(registry, &host);
                assert!(message.contains(&code.to_string()), "{message}");
                assert!(
                    message.contains(&format!("{host}/floe/app:v1")),
                    "{message}"
                );
                assert!(message.contains("after 3 attempts"), "{message}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(count.load(Ordering::SeqCst), 3, "HTTP {code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    for (code, unauthorized) in [(400, false), (403, true), (404, false)] {
        let (host, count) = scripted_server(Script::Status(code));
        let err = resolve(&host).await.unwrap_err();
        assert!(
            !matches!(err, Error::Unavailable { .. }),
            "HTTP {code}: {err:?}"
        );
        assert_eq!(
            matches!(err, Error::Unauthorized { .. }),
            unauthorized,
            "HTTP {code}: {err:?}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1, "HTTP {code}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_a_timeout() {
    let (host, count) = scripted_server(Script::Silence);
    let started = Instant::now();
    let err = resolve(&host).await.unwrap_err();
    let took = started.elapsed();
    match &err {
        Error::Unavailable { registry, message } => {
            assert_eq!(registry, &host);
            assert!(
                message.contains("no answer within") || message.contains("timed out"),
                "{message}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Three attempts of at most twice the 300 ms request timeout, and the backoff between.
    assert!(took >= Duration::from_millis(1800), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let host = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let err = resolve(&host).await.unwrap_err();
    match &err {
        Error::Unavailable { registry, message } => {
            assert_eq!(registry, &host);
            assert!(message.contains("after 3 attempts"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Backoff 20 ms then 40 ms.
    assert!(started.elapsed() >= Duration::from_millis(60));
}

/// oci-client `expect`s a `Location` header when a manifest pushed by digest is answered
/// without one; `OciRegistry` turns that into an error naming the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_answered_without_location_is_an_error_not_a_panic() {
    let (host, count) = scripted_server(Script::CreatedWithoutLocation);
    let repo = Repository::new(format!("{host}/floe/app")).unwrap();
    let manifest = floe_promotion::registry::Manifest::from_bytes(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.to_vec(),
        None,
    )
    .unwrap();
    let err = client(&host)
        .put_manifest(&repo, None, &manifest)
        .await
        .unwrap_err();
    match &err {
        Error::Store {
            location, message, ..
        } => {
            assert!(location.contains(manifest.digest().as_str()), "{location}");
            assert!(message.contains("Location"), "{message}");
        }
        other => panic!("expected a Store error, got {other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 1, "not retried");
    // With a tag, oci-client works around the missing header itself.
    client(&host)
        .put_manifest(&repo, Some(&Tag::new("v1").unwrap()), &manifest)
        .await
        .unwrap();
}
