//! How blobs that stream out of a registry are downloaded, through a loopback [`FaultProxy`]
//! that records each request's headers:
//!
//! - a cross-registry copy asks for a blob with content as the range `bytes=0-` (the whole
//!   blob), which oci-client does not hash a second time; the copy's own check of the bytes is
//!   the one check, and it still refuses a corrupted blob before its last byte goes on;
//! - a registry that ignores ranges answers with the whole blob (200), which is copied and
//!   checked the same way;
//! - an empty blob, of which no range can be served, is asked for whole;
//! - `BlobStreams::open_blob` (a registry read into another kind of backend) asks the same way
//!   and its stream still ends in an error for bytes that do not match.

use std::time::Duration;

use floe_promotion::registry::Manifest;
use floe_promotion::{ArtifactName, ArtifactRegistry, Digest, Error, Repository};
use floe_promotion_oci::testing::{FaultProxy, TestRegistry, push_generated_image};
use floe_promotion_oci::{BlobStreams, CredentialSource, OciOptions, OciRegistry};
use futures::StreamExt;

const KIB: usize = 1024;
const MIB: u64 = 1024 * 1024;

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").unwrap()).unwrap()
}

/// A client for `hosts` (plain HTTP), without retries.
fn client(hosts: &[String]) -> OciRegistry {
    OciRegistry::new(OciOptions {
        insecure_hosts: hosts.to_vec(),
        credentials: CredentialSource::Anonymous,
        request_timeout: Duration::from_secs(5),
        retries: 0,
        ..OciOptions::default()
    })
    .unwrap()
}

/// The heads of the downloads (`GET`) of `digest` that went through `proxy`, lower-cased.
fn download_heads(proxy: &FaultProxy, digest: &Digest) -> Vec<String> {
    proxy
        .request_heads()
        .into_iter()
        .filter(|h| h.starts_with("GET ") && h.contains(&format!("/blobs/{digest}")))
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

/// The status lines of the answers to the downloads of `digest` that went through `proxy`.
fn download_statuses(proxy: &FaultProxy, digest: &Digest) -> Vec<String> {
    proxy
        .answers()
        .into_iter()
        .filter(|(line, _)| line.starts_with("GET ") && line.contains(&format!("/blobs/{digest}")))
        .map(|(_, status)| status)
        .collect()
}

/// The manifest's blobs: its config and layers.
fn blobs(manifest: &Manifest) -> Vec<(Digest, u64)> {
    manifest
        .body()
        .blobs()
        .map(|b| (b.digest.clone(), b.size))
        .collect()
}

/// A source registry behind a proxy, an image of `layers` pushed to it, and a destination.
struct Setup {
    src: TestRegistry,
    dst: TestRegistry,
    proxy: FaultProxy,
    src_repo: Repository,
    dst_repo: Repository,
    manifest: Manifest,
}

async fn setup(name: &str, layers: &[usize], seed: u64) -> Setup {
    let (src, dst) = (TestRegistry::start(), TestRegistry::start());
    let proxy = FaultProxy::start(&src.host());
    let src_repo = app(&src.namespace(name));
    let manifest = push_generated_image(&src.client(), &src_repo, None, layers, seed).await;
    let dst_repo = app(&dst.namespace(name));
    Setup {
        src,
        dst,
        proxy,
        src_repo,
        dst_repo,
        manifest,
    }
}

impl Setup {
    fn registry(&self) -> OciRegistry {
        client(&[self.proxy.host(), self.dst.host()])
    }

    async fn copy(&self) -> floe_promotion::Result<floe_promotion::registry::CopyReport> {
        self.registry()
            .copy(
                &self.proxy.repository(&self.src_repo),
                &self.dst_repo,
                self.manifest.digest(),
            )
            .await
    }

    /// Every blob of the manifest is in the destination, with its exact bytes.
    async fn assert_landed(&self) {
        for (digest, size) in blobs(&self.manifest) {
            let bytes = self
                .dst
                .client()
                .fetch_blob(&self.dst_repo, &digest, size + 1)
                .await
                .unwrap_or_else(|e| panic!("{digest} in the destination: {e}"));
            assert_eq!(Digest::of(&bytes), digest);
            assert_eq!(bytes.len() as u64, size);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_blob_is_asked_for_as_the_whole_range_once() {
    let s = setup("ranged", &[256 * KIB], 91).await;
    let report = s.copy().await.unwrap();
    assert_eq!(report.blobs_uploaded, 2, "{report:?}");
    for (digest, _) in blobs(&s.manifest) {
        let heads = download_heads(&s.proxy, &digest);
        assert_eq!(heads.len(), 1, "one download of {digest}: {heads:#?}");
        assert!(
            heads[0].contains("\r\nrange: bytes=0-\r\n"),
            "the download of {digest} asks for the whole range: {}",
            heads[0]
        );
        let statuses = download_statuses(&s.proxy, &digest);
        assert_eq!(statuses, ["HTTP/1.1 206 Partial Content"], "{digest}");
    }
    s.assert_landed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_ignores_ranges_is_copied_from_whole() {
    let s = setup("no-ranges", &[256 * KIB], 92).await;
    s.proxy.ignore_ranges("/blobs/");
    let report = s.copy().await.unwrap();
    assert_eq!(report.blobs_uploaded, 2, "{report:?}");
    for (digest, _) in blobs(&s.manifest) {
        let statuses = download_statuses(&s.proxy, &digest);
        assert_eq!(statuses, ["HTTP/1.1 200 OK"], "{digest}");
    }
    s.assert_landed().await;
}

/// With the range answered (206) or ignored (200), a corrupted blob is refused, blamed on the
/// source, and never completed in the destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_blob_is_refused_whether_or_not_the_range_is_served() {
    for (ignore, seed) in [(false, 93), (true, 94)] {
        let s = setup(&format!("corrupt-{ignore}"), &[256 * KIB], seed).await;
        let layer = s.manifest.body().layers.first().unwrap().digest.clone();
        if ignore {
            s.proxy.ignore_ranges("/blobs/");
        }
        s.proxy.corrupt_response(&format!("/blobs/{layer}"));
        let err = s.copy().await.unwrap_err();
        let expected = if ignore {
            "200 OK"
        } else {
            "206 Partial Content"
        };
        let statuses = download_statuses(&s.proxy, &layer);
        assert_eq!(statuses, [format!("HTTP/1.1 {expected}")], "{layer}");
        let via_proxy = s.proxy.repository(&s.src_repo);
        match &err {
            Error::Store { location, .. } => {
                assert_eq!(location, &format!("{via_proxy}@{layer}"), "{err}")
            }
            other => panic!("ranges ignored: {ignore}: expected a store error, got {other:?}"),
        }
        assert!(err.to_string().contains("digest"), "{err}");
        let missing = s.dst.client().fetch_blob(&s.dst_repo, &layer, MIB).await;
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "ranges ignored: {ignore}: {missing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_blob_is_asked_for_whole() {
    let s = setup("empty", &[0, 4 * KIB], 95).await;
    let empty = s.manifest.body().layers[0].digest.clone();
    s.copy().await.unwrap();
    let heads = download_heads(&s.proxy, &empty);
    assert_eq!(heads.len(), 1, "one download of the empty blob: {heads:#?}");
    assert!(
        !heads[0].contains("\r\nrange:"),
        "no range of an empty blob can be served: {}",
        heads[0]
    );
    assert_eq!(download_statuses(&s.proxy, &empty), ["HTTP/1.1 200 OK"]);
    s.assert_landed().await;
}

/// `open_blob` streams the whole blob from one ranged download, and a corrupted one ends in a
/// store error naming the stored blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_blob_asks_for_the_whole_range_and_checks_the_bytes() {
    let s = setup("open", &[256 * KIB], 96).await;
    let registry = s.registry();
    let via_proxy = s.proxy.repository(&s.src_repo);
    let layer = s.manifest.body().layers[0].clone();

    let read = |registry: OciRegistry| {
        let (repo, digest) = (via_proxy.clone(), layer.digest.clone());
        async move {
            let mut stream = registry.open_blob(&repo, &digest, layer.size).await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?);
            }
            Ok::<_, Error>(bytes)
        }
    };
    let bytes = read(registry.clone()).await.unwrap();
    assert_eq!(Digest::of(&bytes), layer.digest);
    let heads = download_heads(&s.proxy, &layer.digest);
    assert_eq!(heads.len(), 1, "{heads:#?}");
    assert!(heads[0].contains("\r\nrange: bytes=0-\r\n"), "{}", heads[0]);

    s.proxy
        .corrupt_response(&format!("/blobs/{}", layer.digest));
    match read(registry).await {
        Err(Error::Store { location, .. }) => {
            assert_eq!(location, format!("{via_proxy}@{}", layer.digest))
        }
        other => panic!("expected a store error for the corrupted blob, got {other:?}"),
    }
    drop(s.src);
}
