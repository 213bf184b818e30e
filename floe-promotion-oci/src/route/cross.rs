//! Copying between two kinds of storage (a layout directory and a remote registry): manifests
//! by their exact bytes, blobs streamed through [`BlobStreams`], attachments along.
//!
//! Order, as within one kind: index children before their index, blobs before their manifest,
//! then the manifest's signature tag, attestation tag and referrers. A copy that fails half-way
//! leaves at most manifests without a tag and blobs nothing refers to; it writes no tag but the
//! signature and attestation tags of manifests it completed.

use std::collections::HashSet;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use floe_promotion::registry::{CopyReport, Descriptor, Manifest};
use floe_promotion::{Digest, Error, Reference, Repository, Result, Tag};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};

use crate::stream::BlobStreams;

/// Blobs streamed at once.
const CONCURRENT_BLOBS: usize = 4;
/// Further attempts of a blob transfer that failed for a transient reason ([`Error::Unavailable`]):
/// a stream is read once, so the source is opened again for each.
const BLOB_RETRIES: usize = 2;

/// One side of the copy: a registry and a repository in it.
#[derive(Clone, Copy)]
pub(super) struct End<'a> {
    pub(super) registry: &'a dyn BlobStreams,
    pub(super) repo: &'a Repository,
}

impl End<'_> {
    /// The manifest at `reference`, or `None` when there is none.
    async fn find(&self, reference: Reference) -> Result<Option<Manifest>> {
        match self.registry.resolve(self.repo, &reference).await {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What a blob transfer did.
enum BlobMove {
    Skipped,
    Uploaded(u64),
}

struct CrossCopy<'a> {
    from: End<'a>,
    to: End<'a>,
    report: CopyReport,
    seen: HashSet<Digest>,
}

/// Copies `digest` from `from` to `to` (see `ArtifactRegistry::copy`).
pub(super) async fn copy(from: End<'_>, to: End<'_>, digest: &Digest) -> Result<CopyReport> {
    let mut job = CrossCopy {
        from,
        to,
        report: CopyReport::default(),
        seen: HashSet::new(),
    };
    job.copy_tree(digest.clone()).await?;
    Ok(job.report)
}

impl<'a> CrossCopy<'a> {
    /// Copies one manifest with what it needs and carries; returns whether its manifest was
    /// newly written to the destination.
    fn copy_tree(&mut self, digest: Digest) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            if !self.seen.insert(digest.clone()) {
                return Ok(false);
            }
            let manifest = self
                .from
                .registry
                .resolve(self.from.repo, &Reference::Digest(digest.clone()))
                .await?;
            let body = manifest.body();
            for child in body.children() {
                self.copy_tree(child.digest.clone()).await?;
            }
            let present = self
                .to
                .find(Reference::Digest(digest.clone()))
                .await?
                .is_some();
            if !present {
                self.copy_blobs(body.blobs().collect()).await?;
                self.to
                    .registry
                    .put_manifest(self.to.repo, None, &manifest)
                    .await?;
                self.report.manifests_copied += 1;
            } else if body.subject.is_some() {
                // Present already: make sure an interrupted earlier copy left it listed among
                // its subject's referrers (writing it again is idempotent).
                self.to
                    .registry
                    .put_manifest(self.to.repo, None, &manifest)
                    .await?;
            }
            self.copy_attachments(&digest).await?;
            Ok(!present)
        })
    }

    /// Makes every blob of a manifest present in the destination, a few streams at a time.
    async fn copy_blobs(&mut self, blobs: Vec<&Descriptor>) -> Result<()> {
        let mut unique: Vec<Descriptor> = Vec::new();
        for b in blobs {
            if !unique.iter().any(|x| x.digest == b.digest) {
                unique.push(b.clone());
            }
        }
        let (from, to) = (self.from, self.to);
        let moves: Vec<BlobMove> = futures::stream::iter(unique)
            .map(|blob| async move { copy_blob(from, to, &blob).await })
            .buffer_unordered(CONCURRENT_BLOBS)
            .try_collect()
            .await?;
        for m in moves {
            match m {
                BlobMove::Skipped => self.report.blobs_skipped += 1,
                BlobMove::Uploaded(bytes) => {
                    self.report.blobs_uploaded += 1;
                    self.report.bytes_uploaded += bytes;
                }
            }
        }
        Ok(())
    }

    /// Copies the cosign signature tag (`sha256-<hex>.sig`), the cosign attestation tag
    /// (`sha256-<hex>.att`) and the referrers of `digest`.
    async fn copy_attachments(&mut self, digest: &Digest) -> Result<()> {
        let tags = [
            (digest.signature_tag(), true),
            (format!("sha256-{}.att", digest.hex()), false),
        ];
        for (tag, is_signature) in tags {
            let tag = Tag::new(tag)?;
            let Some(attached) = self.from.find(Reference::Tag(tag.clone())).await? else {
                continue;
            };
            self.copy_tree(attached.digest().clone()).await?;
            let current = self.to.find(Reference::Tag(tag.clone())).await?;
            if current.as_ref().map(Manifest::digest) != Some(attached.digest()) {
                self.to
                    .registry
                    .put_manifest(self.to.repo, Some(&tag), &attached)
                    .await?;
                if is_signature {
                    self.report.signatures_copied += 1;
                } else {
                    self.report.referrers_copied += 1;
                }
            }
        }
        let referrers = self.from.registry.referrers(self.from.repo, digest).await?;
        for referrer in referrers {
            if self.copy_tree(referrer.digest).await? {
                self.report.referrers_copied += 1;
            }
        }
        Ok(())
    }
}

/// Makes one blob present in the destination: skipped when there, else streamed from the
/// source, the source opened again when a transient failure ends an attempt.
async fn copy_blob(from: End<'_>, to: End<'_>, blob: &Descriptor) -> Result<BlobMove> {
    if to.registry.blob_exists(to.repo, &blob.digest).await? {
        return Ok(BlobMove::Skipped);
    }
    let attempt = || async {
        let stream = from
            .registry
            .open_blob(from.repo, &blob.digest, blob.size)
            .await?;
        to.registry
            .push_blob_stream(to.repo, &blob.digest, blob.size, stream)
            .await
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_times(BLOB_RETRIES)
                .with_jitter(),
        )
        .when(|e| matches!(e, Error::Unavailable { .. }))
        .notify(|e, wait| tracing::debug!(blob = %blob.digest, error = %e, ?wait, "retrying the blob transfer"))
        .await?;
    Ok(BlobMove::Uploaded(blob.size))
}
