//! Blobs as streams: what a copy between two kinds of storage (a layout directory and a remote
//! registry) moves, a chunk at a time.

use async_trait::async_trait;
use bytes::Bytes;
use floe_promotion::{ArtifactRegistry, Digest, Error, InMemoryRegistry, Repository, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use sha2::{Digest as _, Sha256};

/// The bytes of one blob, in chunks. An `Err` item ends the stream.
pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// Blobs read and written as streams, so that a blob of any size moves between two registries
/// of different kinds without being held in memory. [`RoutingRegistry`](crate::RoutingRegistry)
/// copies between a layout directory and a remote registry with it.
///
/// # Contract
///
/// - `blob_exists` says whether the blob `digest` is stored in the repository; a repository
///   that does not exist has no blobs.
/// - `open_blob` of a missing blob is [`Error::NotFound`], before any byte is read.
/// - The stream of `open_blob` yields the blob's bytes. When they are not `size` bytes hashing
///   to `digest`, it ends with an [`Error::Store`] naming the stored blob, never with a clean
///   end, and the chunk that would complete the blob is withheld.
/// - `push_blob_stream` stores the blob only once the stream gave exactly `size` bytes hashing
///   to `digest`. Bytes that do not match are refused with [`Error::Store`]; a stream that
///   fails makes the push fail with the stream's error. Either way nothing is stored:
///   `blob_exists` stays false and a later push starts afresh.
/// - `push_blob_stream` of a blob already stored succeeds and leaves it unchanged, and may do
///   so without reading the stream. Concurrent pushes of one blob all succeed.
/// - The stream is read once, so `push_blob_stream` does not retry a transfer that failed
///   after it started; the caller opens the source again.
/// - Memory stays flat: neither method holds a whole blob in memory (except backends that keep
///   every blob in memory anyway, such as [`InMemoryRegistry`]).
///
/// The conformance suite is the `blob_streams_conformance!` macro over the cases of
/// `testing::streams` (feature `testing`), one per sentence above.
#[async_trait]
pub trait BlobStreams: ArtifactRegistry {
    /// Whether the blob `digest` is stored in `repo`.
    async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool>;

    /// Opens the blob `digest` of `size` bytes for reading.
    async fn open_blob(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<BlobStream>;

    /// Stores the bytes of `stream` as the blob `digest` of `size` bytes.
    async fn push_blob_stream(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        stream: BlobStream,
    ) -> Result<()>;
}

/// Whether `bytes` are `size` bytes hashing to `digest`; the reason when not.
pub(crate) fn mismatch(bytes: &[u8], digest: &Digest, size: u64) -> Option<String> {
    let actual = Digest::of(bytes);
    if bytes.len() as u64 != size {
        Some(format!(
            "{} bytes where {size} were expected (they hash to {actual})",
            bytes.len()
        ))
    } else if actual != *digest {
        Some(format!("the bytes hash to {actual}, not to {digest}"))
    } else {
        None
    }
}

/// The in-memory registry keeps every blob in memory, so its streams are whole blobs: one chunk
/// out, all chunks collected in.
#[async_trait]
impl BlobStreams for InMemoryRegistry {
    async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool> {
        // A limit of zero answers "too large" for any non-empty blob without copying it.
        match self.fetch_blob(repo, digest, 0).await {
            Ok(_) | Err(Error::InvalidInput { .. }) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn open_blob(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<BlobStream> {
        let bytes = self.fetch_blob(repo, digest, u64::MAX).await?;
        let item = match mismatch(&bytes, digest, size) {
            None => Ok(Bytes::from(bytes)),
            Some(why) => Err(Error::Store {
                backend: "memory",
                location: format!("{repo}@{digest}"),
                message: why,
            }),
        };
        Ok(futures::stream::once(async move { item }).boxed())
    }

    async fn push_blob_stream(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        mut stream: BlobStream,
    ) -> Result<()> {
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
            if bytes.len() as u64 > size {
                break;
            }
        }
        if let Some(why) = mismatch(&bytes, digest, size) {
            return Err(Error::Store {
                backend: "memory",
                location: format!("{repo}@{digest}"),
                message: format!("refused the offered blob: {why}"),
            });
        }
        self.push_blob(repo, bytes).await.map(|_| ())
    }
}

/// Passes `stream` through, checking that it gives `size` bytes hashing to `digest`. When it
/// does not, the stream ends with `corrupt(reason)` in place of the chunk that would complete
/// (or overrun) the blob, or in place of its end when it is short.
pub(crate) fn verified(
    stream: BlobStream,
    digest: Digest,
    size: u64,
    corrupt: impl Fn(String) -> Error + Send + Sync + 'static,
) -> BlobStream {
    struct State<F> {
        stream: BlobStream,
        hasher: Sha256,
        received: u64,
        digest: Digest,
        size: u64,
        corrupt: F,
    }
    let state = State {
        stream,
        hasher: Sha256::new(),
        received: 0,
        digest,
        size,
        corrupt,
    };
    // `None` once the stream has ended, with an error or cleanly.
    futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        let chunk = match s.stream.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Some((Err(e), None)),
            // A non-empty blob was checked with its last chunk.
            None if s.received == s.size && (s.size > 0 || s.digest == Digest::of(b"")) => {
                return None;
            }
            None if s.received == s.size => {
                let why = format!("it is empty, which is not {}", s.digest);
                return Some((Err((s.corrupt)(why)), None));
            }
            None => {
                let why = format!(
                    "it ended after {} of the {} bytes of the blob",
                    s.received, s.size
                );
                return Some((Err((s.corrupt)(why)), None));
            }
        };
        s.received += chunk.len() as u64;
        if s.received > s.size {
            let why = format!("it holds more than the {} bytes of the blob", s.size);
            return Some((Err((s.corrupt)(why)), None));
        }
        s.hasher.update(&chunk);
        if s.received == s.size {
            let actual = format!(
                "sha256:{}",
                hex::encode(std::mem::take(&mut s.hasher).finalize())
            );
            if actual != s.digest.as_str() {
                let why = format!("its content hashes to {actual}, not to {}", s.digest);
                return Some((Err((s.corrupt)(why)), None));
            }
        }
        Some((Ok(chunk), Some(s)))
    })
    .boxed()
}
