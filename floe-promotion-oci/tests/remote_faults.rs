//! Network faults between two real registries, injected by a loopback [`FaultProxy`] in front
//! of one of them, during a cross-registry copy (blobs streamed from the source into the
//! destination):
//!
//! - a slow upload whose bytes keep flowing is not cut by the request timeout: it only has to
//!   make progress (issue 8, defect 1);
//! - a source that serves corrupted blob bytes gives an error naming the source repository and
//!   the blob, not a bad-input error blamed on the destination, is not retried, and the
//!   destination never completes the blob (defect 2);
//! - a source that stalls mid-blob is reported unavailable at the source, and a destination
//!   that stops reading the upload is reported unavailable at the destination (defect 3);
//! - the proxy's `drop_response`: the registry applies a request whose answer is lost, on every
//!   retry.

use std::time::{Duration, Instant};

use floe_promotion::registry::Manifest;
use floe_promotion::{ArtifactName, ArtifactRegistry, Digest, Error, Reference, Repository, Tag};
use floe_promotion_oci::testing::{
    FaultProxy, TestRegistry, push_generated_image, skopeo_raw_manifest,
};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").unwrap()).unwrap()
}

/// A client for `hosts` (plain HTTP) with `request_timeout` and `retries`.
fn client(hosts: &[String], request_timeout: Duration, retries: u32) -> OciRegistry {
    OciRegistry::new(OciOptions {
        insecure_hosts: hosts.to_vec(),
        credentials: CredentialSource::Anonymous,
        request_timeout,
        retries,
        retry_backoff: Duration::from_millis(50),
        ..OciOptions::default()
    })
    .unwrap()
}

/// The manifest's largest layer.
fn layer(manifest: &Manifest) -> Digest {
    manifest
        .body()
        .blobs()
        .max_by_key(|b| b.size)
        .unwrap()
        .digest
        .clone()
}

/// The request-line pattern of a blob download (and HEAD) of `digest`.
fn blob_path(digest: &Digest) -> String {
    format!("/blobs/{digest}")
}

/// How many downloads (`GET`) of `digest` went through `proxy`.
fn downloads(proxy: &FaultProxy, digest: &Digest) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|line| line.starts_with("GET ") && line.contains(&blob_path(digest)))
        .count()
}

/// Defect 1: with a 2 s request timeout, a 16 MiB layer uploaded through a proxy that lets
/// 2 MiB/s through takes about 8 s of steady progress. (The layer is larger than what the
/// client's and the kernel's buffers take at once, about 4.5 MiB on loopback, so the body
/// itself flows at the throttled pace for seconds, in steps of about 1.4 MiB.) It succeeds in one attempt, and the
/// destination serves the same digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_that_keeps_moving_outlives_the_request_timeout() {
    let (src, dst) = (TestRegistry::start(), TestRegistry::start());
    let proxy = FaultProxy::start(&dst.host());
    let src_repo = app(&src.namespace("slow"));
    let manifest = push_generated_image(&src.client(), &src_repo, None, &[16 * MIB], 81).await;
    let layer = layer(&manifest);
    let dst_repo = app(&dst.namespace("slow"));

    let request_timeout = Duration::from_secs(2);
    let registry = client(&[src.host(), proxy.host()], request_timeout, 0);
    proxy.throttle_upload(2 * MIB as u64);
    let started = Instant::now();
    let copied = registry
        .copy(&src_repo, &proxy.repository(&dst_repo), manifest.digest())
        .await;
    let took = started.elapsed();
    proxy.clear();
    let report = copied.unwrap_or_else(|e| panic!("the slow copy failed after {took:?}: {e}"));
    assert_eq!(report.blobs_uploaded, 2, "{report:?}");
    assert!(
        took >= request_timeout * 3,
        "the upload should take well over the request timeout: {took:?}"
    );
    assert_eq!(
        proxy.requests_matching(&format!("PUT {}", dst_repo_path(&dst_repo))),
        3,
        "one upload per blob and one manifest, no retry: {:#?}",
        proxy.requests()
    );

    // The destination serves the exact manifest and the layer bytes.
    let at = format!("{dst_repo}@{}", manifest.digest());
    assert_eq!(skopeo_raw_manifest(&at), manifest.bytes());
    let bytes = dst
        .client()
        .fetch_blob(&dst_repo, &layer, 32 * MIB as u64)
        .await
        .unwrap();
    assert_eq!(Digest::of(&bytes), layer);
}

/// `/v2/<repository path>`, the start of the request paths for `repo`.
fn dst_repo_path(repo: &Repository) -> String {
    let (_, path) = repo.as_str().split_once('/').unwrap();
    format!("/v2/{path}/")
}

/// Defect 2: the source serves a layer whose bytes do not match its digest. The copy fails
/// with a store error naming the source repository and the blob (not the destination), the
/// download is not retried, and the destination never completed the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_source_blob_is_blamed_on_the_source_and_never_lands() {
    let (src, dst) = (TestRegistry::start(), TestRegistry::start());
    let proxy = FaultProxy::start(&src.host());
    let src_repo = app(&src.namespace("corrupt"));
    let manifest = push_generated_image(&src.client(), &src_repo, None, &[256 * KIB], 82).await;
    let layer = layer(&manifest);
    let dst_repo = app(&dst.namespace("corrupt"));

    let registry = client(&[proxy.host(), dst.host()], Duration::from_secs(5), 2);
    proxy.corrupt_response(&blob_path(&layer));
    let via_proxy = proxy.repository(&src_repo);
    let err = registry
        .copy(&via_proxy, &dst_repo, manifest.digest())
        .await
        .unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    match &err {
        Error::Store {
            backend, location, ..
        } => {
            assert_eq!(*backend, "oci");
            assert_eq!(location, &format!("{via_proxy}@{layer}"), "{text}");
        }
        other => panic!("expected a store error naming the source blob, got {other:?}"),
    }
    assert!(text.contains("digest"), "{text}");
    assert!(
        !text.contains(&dst.host()),
        "blames the destination: {text}"
    );
    assert_eq!(
        downloads(&proxy, &layer),
        1,
        "a corrupt blob is not downloaded again: {:#?}",
        proxy.requests()
    );

    // The destination has no such blob, and never acknowledged an upload of it.
    let missing = dst.client().fetch_blob(&dst_repo, &layer, MIB as u64).await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    let completed: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|r| r.is_blob_upload() && r.uri.contains(layer.as_str()) && r.status == 201)
        .collect();
    assert!(completed.is_empty(), "{completed:?}");
}

/// Defect 3: the source stops sending a layer after 64 KiB and keeps the connection open.
/// With a 1 s request timeout and one retry, the copy fails within seconds, unavailable at
/// the source, saying it was reading the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_is_blamed_on_the_source() {
    let (src, dst) = (TestRegistry::start(), TestRegistry::start());
    let proxy = FaultProxy::start(&src.host());
    let src_repo = app(&src.namespace("stall-src"));
    let manifest = push_generated_image(&src.client(), &src_repo, None, &[MIB], 83).await;
    let layer = layer(&manifest);
    let dst_repo = app(&dst.namespace("stall-src"));

    let registry = client(&[proxy.host(), dst.host()], Duration::from_secs(1), 1);
    proxy.stall_downstream_after(&blob_path(&layer), 64 * KIB as u64);
    let started = Instant::now();
    let err = registry
        .copy(&proxy.repository(&src_repo), &dst_repo, manifest.digest())
        .await
        .unwrap_err();
    let took = started.elapsed();
    proxy.clear();
    eprintln!("after {took:?}: {err}");
    match &err {
        Error::Unavailable { registry, message } => {
            assert_eq!(registry, &proxy.host(), "{err}");
            assert!(
                message.contains(&format!("reading blob {}", proxy.repository(&src_repo))),
                "{message}"
            );
            assert!(message.contains("from the source"), "{message}");
            assert!(message.contains(layer.as_str()), "{message}");
            assert!(message.contains("after 2 attempts"), "{message}");
        }
        other => panic!("expected the source to be unavailable, got {other:?}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(downloads(&proxy, &layer), 2);
}

/// The symmetric case: the destination stops reading an 8 MiB upload after 512 KiB (more than
/// the client's and the kernel's buffers hold). The copy fails within seconds, unavailable at
/// the destination, saying it was uploading the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_reading_is_blamed_on_the_destination() {
    let (src, dst) = (TestRegistry::start(), TestRegistry::start());
    let proxy = FaultProxy::start(&dst.host());
    let src_repo = app(&src.namespace("stall-dst"));
    let manifest = push_generated_image(&src.client(), &src_repo, None, &[8 * MIB], 84).await;
    let layer = layer(&manifest);
    let dst_repo = app(&dst.namespace("stall-dst"));

    let registry = client(&[src.host(), proxy.host()], Duration::from_secs(1), 1);
    proxy.stall_upstream_after("/blobs/uploads/", 512 * KIB as u64);
    let started = Instant::now();
    let err = registry
        .copy(&src_repo, &proxy.repository(&dst_repo), manifest.digest())
        .await
        .unwrap_err();
    let took = started.elapsed();
    proxy.clear();
    eprintln!("after {took:?}: {err}");
    match &err {
        Error::Unavailable { registry, message } => {
            assert_eq!(registry, &proxy.host(), "{err}");
            assert!(message.contains("upload"), "{message}");
            assert!(message.contains(layer.as_str()), "{message}");
        }
        other => panic!("expected the destination to be unavailable, got {other:?}"),
    }
    assert!(!err.to_string().contains(&src.host()), "{err}");
    assert!(took < Duration::from_secs(12), "{took:?}");
}

/// `drop_response`: every push of the tag reaches the registry, which applies it, but no
/// answer comes back; the client retries and reports the registry unavailable. Once cleared,
/// requests get their answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_response_loses_every_answer_but_the_registry_applies_the_request() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(&registry.host());
    let repo = app(&registry.namespace("lost"));
    let manifest = push_generated_image(&registry.client(), &repo, None, &[KIB], 85).await;
    let tag = Tag::new("latest-staging").unwrap();

    let pattern = format!("PUT {}manifests/latest-staging", dst_repo_path(&repo));
    proxy.drop_response(&pattern);
    let through = client(&[proxy.host()], Duration::from_secs(2), 2);
    let err = through
        .put_manifest(&proxy.repository(&repo), Some(&tag), &manifest)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(proxy.dropped_responses(), 3, "{:#?}", proxy.requests());
    assert_eq!(proxy.requests_matching(&pattern), 3);

    // Applied all the same.
    let resolved = registry
        .client()
        .resolve(&repo, &Reference::Tag(tag.clone()))
        .await
        .unwrap();
    assert_eq!(resolved.digest(), manifest.digest());

    proxy.clear();
    through
        .put_manifest(&proxy.repository(&repo), Some(&tag), &manifest)
        .await
        .unwrap();
    assert_eq!(proxy.dropped_responses(), 3);
}

/// A dropped proxy closes its port and its connections.
#[test]
fn a_dropped_proxy_stops_listening() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(&registry.host());
    let host = proxy.host();
    let mut open = std::net::TcpStream::connect(&host).unwrap();
    drop(proxy);
    assert!(std::net::TcpStream::connect(&host).is_err());
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let read = std::io::Read::read(&mut open, &mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the connection stays open: {read:?}"
    );
}
