//! The remote registry, built on first use: commands that never reach a registry (status,
//! history, locks, audit) do not pay for loading the system's TLS roots.

use std::sync::Arc;

use floe_promotion::registry::{
    ArtifactRegistry, CopyMode, CopyReport, Descriptor, Manifest, TransferObserver,
};
use floe_promotion::{Digest, Reference, Repository, Result, Tag, async_trait};
use floe_promotion_oci::{BlobStream, BlobStreams, OciOptions, OciRegistry};
use tokio::sync::OnceCell;

/// An [`OciRegistry`] created with its options when a call first needs it.
#[derive(Debug)]
pub(crate) struct LazyRemote {
    options: OciOptions,
    observer: Option<Arc<dyn TransferObserver>>,
    registry: OnceCell<OciRegistry>,
}

impl LazyRemote {
    pub(crate) fn new(options: OciOptions, observer: Option<Arc<dyn TransferObserver>>) -> Self {
        LazyRemote {
            options,
            observer,
            registry: OnceCell::new(),
        }
    }

    async fn get(&self) -> Result<&OciRegistry> {
        self.registry
            .get_or_try_init(|| async {
                match &self.observer {
                    Some(o) => OciRegistry::new_with_observer(self.options.clone(), o.clone()),
                    None => OciRegistry::new(self.options.clone()),
                }
            })
            .await
    }
}

#[async_trait]
impl ArtifactRegistry for LazyRemote {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        self.get().await?.resolve(repo, reference).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        self.get().await?.put_manifest(repo, tag, manifest).await
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        self.get().await?.push_blob(repo, data).await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        self.get().await?.fetch_blob(repo, digest, max_bytes).await
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        self.get().await?.copy(src, dst, digest).await
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        self.get().await?.list_tags(repo).await
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.get().await?.referrers(repo, subject).await
    }

    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        OciRegistry::copy_mode_between(src, dst)
    }
}

#[async_trait]
impl BlobStreams for LazyRemote {
    async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool> {
        self.get().await?.blob_exists(repo, digest).await
    }

    async fn open_blob(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<BlobStream> {
        self.get().await?.open_blob(repo, digest, size).await
    }

    async fn push_blob_stream(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        stream: BlobStream,
    ) -> Result<()> {
        self.get()
            .await?
            .push_blob_stream(repo, digest, size, stream)
            .await
    }
}
