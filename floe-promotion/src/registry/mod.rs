//! Where artifacts live: the [`ArtifactRegistry`] trait and its in-memory implementation.
//!
//! Implementations: [`InMemoryRegistry`] here; `OciRegistry` (remote registries) and
//! `OciLayoutRegistry` (OCI image-layout directories) in the `floe-promotion-oci` crate.

mod evidence;
mod manifest;
mod memory;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Digest, Reference, Repository, Tag};

pub use evidence::{EVIDENCE_ARTIFACT_TYPE, Evidence, EvidenceKind, EvidenceStatus, RegistryExt};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, MANIFEST_MEDIA_TYPES, Manifest,
    ManifestBody, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST,
};
pub use memory::InMemoryRegistry;

/// The largest blob [`ArtifactRegistry::fetch_blob`] is asked for by the library (evidence
/// payloads, signature payloads): 4 MiB.
pub const SMALL_BLOB_LIMIT: u64 = 4 * 1024 * 1024;

/// How a copy between two repositories moves blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyMode {
    /// Same repository: nothing is copied, only tags are written.
    TagOnly,
    /// Same registry, other repository: blobs are mounted, never re-uploaded.
    Mount,
    /// Other registry or storage: blobs are streamed.
    Stream,
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Manifests written to the destination (the artifact, index children, signatures, referrers).
    pub manifests_copied: u64,
    /// Blobs mounted from the source repository.
    pub blobs_mounted: u64,
    /// Blobs whose bytes were uploaded.
    pub blobs_uploaded: u64,
    /// Blobs already present in the destination.
    pub blobs_skipped: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Signature manifests (`sha256-<hex>.sig`) copied.
    pub signatures_copied: u64,
    /// Referrers (evidence, attestations) copied.
    pub referrers_copied: u64,
}

impl CopyReport {
    /// Adds another report's counts to this one.
    pub fn add(&mut self, other: &CopyReport) {
        self.manifests_copied += other.manifests_copied;
        self.blobs_mounted += other.blobs_mounted;
        self.blobs_uploaded += other.blobs_uploaded;
        self.blobs_skipped += other.blobs_skipped;
        self.bytes_uploaded += other.bytes_uploaded;
        self.signatures_copied += other.signatures_copied;
        self.referrers_copied += other.referrers_copied;
    }
}

/// Receives the progress of blob transfers made by a registry's `copy`, for progress bars.
///
/// # Contract
///
/// - `blob_started` is called once before a blob's bytes move, with its size;
///   `blob_progress` then reports bytes as they move (the sum never exceeds the size), and
///   `blob_finished` is called once when the blob is complete or abandoned.
/// - Mounted and skipped blobs are not reported.
/// - Calls come from the copying task and must return quickly.
pub trait TransferObserver: Send + Sync + Debug + 'static {
    /// A blob starts to move.
    fn blob_started(&self, digest: &Digest, size: u64);
    /// `bytes` more bytes of the blob moved.
    fn blob_progress(&self, digest: &Digest, bytes: u64);
    /// The blob is done.
    fn blob_finished(&self, digest: &Digest);
}

/// Storage of OCI manifests, blobs and tags, addressed by [`Repository`] locations.
///
/// # Contract
///
/// - `resolve` returns the manifest's exact stored bytes, its media type and the SHA-256 digest
///   of those bytes; a missing repository, tag or digest is [`Error::NotFound`](crate::Error::NotFound).
/// - `resolve_tag` returns what `resolve` of the tag returns, with `None` for a missing
///   repository or tag instead of [`Error::NotFound`](crate::Error::NotFound) (a promotion asks
///   so of tags that are expected not to exist yet).
/// - `put_manifest` stores the bytes unchanged, so resolving the tag afterwards yields the same
///   digest; with no tag the manifest is stored by digest only.
/// - `put_manifest` refuses a manifest whose blobs or child manifests are not in the repository,
///   with [`Error::NotFound`](crate::Error::NotFound), and writes nothing.
/// - `put_manifest` of a manifest with a `subject` makes it one of the subject's `referrers`.
/// - `put_manifest` moves an existing tag; enforcing immutable tags is the caller's job.
/// - `push_blob` stores bytes under their digest and is idempotent.
/// - `fetch_blob` returns the bytes of a blob; it is [`Error::NotFound`](crate::Error::NotFound)
///   when absent and [`Error::InvalidInput`](crate::Error::InvalidInput) when larger than `max_bytes`.
/// - `copy` makes the manifest with `digest` (and its blobs, its index children, its cosign
///   signature tag `sha256-<hex>.sig` and its referrers) resolvable by digest in `dst`, with
///   identical bytes; it also writes the cosign attestation tag `sha256-<hex>.att` when `dst`
///   has none (attestations are appended per repository, so the destination's are never
///   replaced); it writes no other tag, is idempotent, and copying into the same
///   repository changes nothing. A missing source is [`Error::NotFound`](crate::Error::NotFound).
/// - `copy_known` of a manifest resolved from `src` leaves `dst` exactly as `copy` of its
///   digest does, and writes those bytes.
/// - `list_tags` returns every tag of the repository once, sorted; an unknown repository has none.
/// - `referrers` lists the descriptors of manifests whose `subject` is `subject`, sorted by digest.
/// - `copy_mode` says, without I/O, how `copy` would move blobs between two repositories.
/// - All methods are safe to call concurrently.
#[async_trait]
pub trait ArtifactRegistry: Send + Sync + Debug + 'static {
    /// Resolves a tag or digest to the manifest stored there.
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest>;

    /// Resolves a tag, `None` when the repository or the tag does not exist.
    async fn resolve_tag(&self, repo: &Repository, tag: &Tag) -> Result<Option<Manifest>> {
        match self.resolve(repo, &Reference::Tag(tag.clone())).await {
            Ok(m) => Ok(Some(m)),
            Err(crate::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a manifest's exact bytes, under `tag` when given.
    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()>;

    /// Stores a blob and returns its digest.
    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest>;

    /// Reads a small blob (at most `max_bytes`).
    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>>;

    /// Copies a manifest, with everything it needs and everything attached to it, to `dst`.
    async fn copy(&self, src: &Repository, dst: &Repository, digest: &Digest)
    -> Result<CopyReport>;

    /// [`copy`](Self::copy) of `manifest`, already resolved from `src` (its exact bytes): a
    /// backend may write those bytes instead of reading them again, which saves a promotion
    /// a round trip. The default calls `copy` with the manifest's digest.
    async fn copy_known(
        &self,
        src: &Repository,
        dst: &Repository,
        manifest: &Manifest,
    ) -> Result<CopyReport> {
        self.copy(src, dst, manifest.digest()).await
    }

    /// Lists the tags of a repository.
    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>>;

    /// Lists the manifests attached to `subject`.
    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>>;

    /// How `copy` would move blobs from `src` to `dst`.
    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        if src == dst {
            CopyMode::TagOnly
        } else {
            CopyMode::Stream
        }
    }
}
