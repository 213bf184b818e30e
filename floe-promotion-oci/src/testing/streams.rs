//! Conformance suite of [`BlobStreams`]: one public async function per sentence of the trait's
//! contract. Run it with [`blob_streams_conformance!`](crate::blob_streams_conformance).
//!
//! Each case gets a registry and a repository (`repo`) no other case uses.

use bytes::Bytes;
use floe_promotion::{Digest, Error, Repository};
use futures::StreamExt;

use super::pseudo_random_bytes;
use crate::stream::{BlobStream, BlobStreams};

/// A blob of several chunks of any reader or writer (600 KiB), unique per `seed`.
fn blob(seed: u64) -> Vec<u8> {
    pseudo_random_bytes(600 * 1024 + 17, seed)
}

/// `data` as a stream of 100 KiB chunks.
fn chunks(data: &[u8]) -> BlobStream {
    let parts: Vec<floe_promotion::Result<Bytes>> = data
        .chunks(100 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts).boxed()
}

/// Reads a stream to its end: the bytes before the end, and the error that ended it, if any.
async fn drain(mut stream: BlobStream) -> (Vec<u8>, Option<Error>) {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => out.extend_from_slice(&c),
            Err(e) => {
                assert!(
                    stream.next().await.is_none(),
                    "a blob stream goes on after an error"
                );
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

async fn exists(registry: &dyn BlobStreams, repo: &Repository, digest: &Digest) -> bool {
    registry
        .blob_exists(repo, digest)
        .await
        .unwrap_or_else(|e| panic!("blob_exists {repo}@{digest}: {e}"))
}

/// `blob_exists` says whether the blob is stored; a repository that does not exist has none.
pub async fn blob_exists_reports_stored_blobs(registry: &dyn BlobStreams, repo: &Repository) {
    let data = blob(1);
    let digest = Digest::of(&data);
    assert!(!exists(registry, repo, &digest).await, "before the push");
    registry.push_blob(repo, data).await.expect("push_blob");
    assert!(exists(registry, repo, &digest).await, "after the push");
    assert!(!exists(registry, repo, &Digest::of(b"never pushed")).await);
    let nowhere = repo
        .join(&floe_promotion::ArtifactName::new("never-created").unwrap())
        .unwrap();
    assert!(
        !exists(registry, &nowhere, &digest).await,
        "unknown repository"
    );
}

/// `open_blob` of a missing blob is `NotFound`, before any byte is read.
pub async fn open_missing_is_not_found(registry: &dyn BlobStreams, repo: &Repository) {
    let digest = Digest::of(b"missing blob");
    match registry.open_blob(repo, &digest, 12).await {
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("open of a missing blob: expected NotFound, got {e}"),
        Ok(_) => panic!("open of a missing blob succeeded"),
    }
}

/// The stream of `open_blob` yields the blob's bytes.
pub async fn open_streams_the_bytes(registry: &dyn BlobStreams, repo: &Repository) {
    let data = blob(2);
    let digest = registry.push_blob(repo, data.clone()).await.expect("push");
    let stream = registry
        .open_blob(repo, &digest, data.len() as u64)
        .await
        .expect("open");
    let (bytes, error) = drain(stream).await;
    assert!(error.is_none(), "reading a good blob failed: {error:?}");
    assert!(bytes == data, "the stream gave other bytes");
}

/// When the stored bytes are not `size` bytes hashing to `digest`, the read fails with
/// `Error::Store` (from `open_blob` or as the stream's last item), never with a clean end, and
/// the chunk that would complete the blob is withheld.
pub async fn open_of_a_blob_that_does_not_match_fails(
    registry: &dyn BlobStreams,
    repo: &Repository,
) {
    let data = blob(3);
    let digest = registry.push_blob(repo, data.clone()).await.expect("push");
    for size in [data.len() as u64 - 1, data.len() as u64 + 1] {
        let error = match registry.open_blob(repo, &digest, size).await {
            Err(e) => e,
            Ok(stream) => {
                let (bytes, error) = drain(stream).await;
                // Too small a size: the chunk that overruns it is withheld.
                let most = size.min(data.len() as u64 + 1) - 1;
                assert!(
                    bytes.len() as u64 <= most,
                    "size {size}: {} bytes came out before the failure",
                    bytes.len()
                );
                error.unwrap_or_else(|| panic!("size {size}: the stream ended cleanly"))
            }
        };
        assert!(
            matches!(error, Error::Store { .. }),
            "size {size}: expected a Store error, got {error}"
        );
        assert!(
            error.to_string().contains(digest.as_str()) || error.to_string().contains(digest.hex()),
            "size {size}: the error does not name the blob: {error}"
        );
    }
}

/// `push_blob_stream` stores the blob once the stream gave exactly `size` bytes hashing to
/// `digest`.
pub async fn push_stream_stores_the_blob(registry: &dyn BlobStreams, repo: &Repository) {
    let data = blob(4);
    let digest = Digest::of(&data);
    registry
        .push_blob_stream(repo, &digest, data.len() as u64, chunks(&data))
        .await
        .expect("push_blob_stream");
    assert!(exists(registry, repo, &digest).await);
    let back = registry
        .fetch_blob(repo, &digest, data.len() as u64)
        .await
        .expect("fetch");
    assert!(back == data, "other bytes were stored");
}

/// Bytes that do not match (another digest, too few, too many) are refused with
/// `Error::Store` and nothing is stored; a later push starts afresh.
pub async fn push_stream_refuses_bytes_that_do_not_match(
    registry: &dyn BlobStreams,
    repo: &Repository,
) {
    let data = blob(5);
    let digest = Digest::of(&data);
    let size = data.len() as u64;
    let mut altered = data.clone();
    altered[size as usize / 2] ^= 0xff;
    let offers: [(&str, Vec<u8>); 3] = [
        ("altered", altered),
        ("short", data[..data.len() - 1].to_vec()),
        ("long", [data.as_slice(), b"x"].concat()),
    ];
    for (what, offer) in offers {
        match registry
            .push_blob_stream(repo, &digest, size, chunks(&offer))
            .await
        {
            Err(Error::Store { .. }) => {}
            Err(e) => panic!("{what} bytes: expected a Store error, got {e}"),
            Ok(()) => panic!("{what} bytes were accepted"),
        }
        assert!(
            !exists(registry, repo, &digest).await,
            "{what} bytes left a blob"
        );
    }
    registry
        .push_blob_stream(repo, &digest, size, chunks(&data))
        .await
        .expect("a good push after refused ones");
    assert!(exists(registry, repo, &digest).await);
}

/// A stream that fails makes the push fail with the stream's error, and nothing is stored.
pub async fn push_stream_fails_with_the_stream_error(
    registry: &dyn BlobStreams,
    repo: &Repository,
) {
    let data = blob(6);
    let digest = Digest::of(&data);
    let first: floe_promotion::Result<Bytes> = Ok(Bytes::copy_from_slice(&data[..1000]));
    let failure: floe_promotion::Result<Bytes> = Err(Error::Unavailable {
        registry: "the source".into(),
        message: "connection reset while reading".into(),
    });
    let stream = futures::stream::iter([first, failure]).boxed();
    match registry
        .push_blob_stream(repo, &digest, data.len() as u64, stream)
        .await
    {
        Err(Error::Unavailable { message, .. }) => {
            assert!(message.contains("connection reset"), "{message}");
        }
        Err(e) => panic!("expected the stream's error, got {e}"),
        Ok(()) => panic!("a failing stream was accepted"),
    }
    assert!(!exists(registry, repo, &digest).await);
}

/// A push of a blob already stored succeeds and leaves it unchanged; concurrent pushes of one
/// blob all succeed.
pub async fn push_stream_of_a_present_blob_and_concurrent_pushes(
    registry: &dyn BlobStreams,
    repo: &Repository,
) {
    let data = blob(7);
    let digest = Digest::of(&data);
    let size = data.len() as u64;
    let pushes = (0..4).map(|_| registry.push_blob_stream(repo, &digest, size, chunks(&data)));
    for outcome in futures::future::join_all(pushes).await {
        outcome.expect("a concurrent push");
    }
    registry
        .push_blob_stream(repo, &digest, size, chunks(&data))
        .await
        .expect("pushing a present blob again");
    let back = registry
        .fetch_blob(repo, &digest, size)
        .await
        .expect("fetch");
    assert!(back == data, "the blob changed");
}

/// Expands the [`BlobStreams`] conformance suite into one `#[tokio::test]` per case. `$setup`
/// is an expression whose value is a future of `(Arc<dyn BlobStreams>, Repository, guard)`,
/// where the guard (any value, e.g. a temporary directory) lives until the case ends.
#[macro_export]
macro_rules! blob_streams_conformance {
    ($setup:expr) => {
        $crate::blob_streams_conformance!(@cases $setup;
            blob_exists_reports_stored_blobs,
            open_missing_is_not_found,
            open_streams_the_bytes,
            open_of_a_blob_that_does_not_match_fails,
            push_stream_stores_the_blob,
            push_stream_refuses_bytes_that_do_not_match,
            push_stream_fails_with_the_stream_error,
            push_stream_of_a_present_blob_and_concurrent_pushes
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (registry, repo, _guard): (
                    ::std::sync::Arc<dyn $crate::BlobStreams>,
                    ::floe_promotion::Repository,
                    _,
                ) = $setup.await;
                $crate::testing::streams::$case(registry.as_ref(), &repo).await;
            }
        )*
    };
}
