//! The remote registry, built on first use: commands that never reach a registry (status,
//! history, locks, audit) do not pay for loading the system's TLS roots.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_promotion::registry::{
    ArtifactRegistry, CopyMode, CopyReport, Descriptor, Manifest, TransferObserver,
};
use floe_promotion::{Digest, Reference, Repository, Result, Tag, async_trait};
use floe_promotion_oci::{BlobStream, BlobStreams, OciLayoutRegistry, OciOptions, OciRegistry};
use tokio::sync::OnceCell;

/// An [`OciRegistry`] created with its options when a call first needs it. Clones share it.
#[derive(Debug, Clone)]
pub(crate) struct LazyRemote {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    options: OciOptions,
    observer: Option<Arc<dyn TransferObserver>>,
    registry: OnceCell<OciRegistry>,
}

impl LazyRemote {
    pub(crate) fn new(options: OciOptions, observer: Option<Arc<dyn TransferObserver>>) -> Self {
        LazyRemote {
            shared: Arc::new(Shared {
                options,
                observer,
                registry: OnceCell::new(),
            }),
        }
    }

    async fn get(&self) -> Result<&OciRegistry> {
        let shared = &self.shared;
        shared
            .registry
            .get_or_try_init(|| async {
                match &shared.observer {
                    Some(o) => OciRegistry::new_with_observer(shared.options.clone(), o.clone()),
                    None => OciRegistry::new(shared.options.clone()),
                }
            })
            .await
    }

    /// Starts getting ready for `repos` in the background ([`OciRegistry::prepare`]: the
    /// credentials, the registry's authentication answer, an open connection) and returns at
    /// once; nothing waits for it, and what fails there is found again by the real calls.
    /// `oci-layout:` locations need nothing and are skipped.
    pub(crate) fn prepare(&self, repos: Vec<Repository>) {
        // One task per registry host, its repositories in turn: the first asks the registry
        // how it authenticates, and the others reuse the answer.
        let mut by_host: BTreeMap<String, Vec<Repository>> = BTreeMap::new();
        for repo in repos {
            if OciLayoutRegistry::handles(&repo) {
                continue;
            }
            let host = repo
                .as_str()
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let same = by_host.entry(host).or_default();
            if !same.contains(&repo) {
                same.push(repo);
            }
        }
        for repos in by_host.into_values() {
            let this = self.clone();
            tokio::spawn(async move {
                let registry = match this.get().await {
                    Ok(registry) => registry,
                    Err(e) => {
                        tracing::debug!(error = %e, "no registry client to get ready");
                        return;
                    }
                };
                for repo in repos {
                    if let Err(e) = registry.prepare(&repo).await {
                        tracing::debug!(%repo, error = %e, "getting ready for a registry failed; the calls that need it will say why");
                        return;
                    }
                }
            });
        }
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

    async fn copy_known(
        &self,
        src: &Repository,
        dst: &Repository,
        manifest: &Manifest,
    ) -> Result<CopyReport> {
        self.get().await?.copy_known(src, dst, manifest).await
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
