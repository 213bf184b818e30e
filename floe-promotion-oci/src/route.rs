//! One registry over both kinds of location: `oci-layout:<dir>` and remote registries.

use async_trait::async_trait;
use floe_promotion::registry::{ArtifactRegistry, CopyMode, CopyReport, Descriptor, Manifest};
use floe_promotion::{Digest, Error, Reference, Repository, Result, Tag};

use crate::layout::OciLayoutRegistry;

/// Sends each call to the layout backend for `oci-layout:` locations and to the remote backend
/// for every other location, so environments of one manifest may live in folders or in
/// registries.
///
/// A copy between a layout directory and a remote registry is refused with
/// [`Error::NotSupported`]: promotion copies within one kind of storage.
#[derive(Debug, Clone)]
pub struct RoutingRegistry<L, R> {
    layout: L,
    remote: R,
}

impl<L: ArtifactRegistry, R: ArtifactRegistry> RoutingRegistry<L, R> {
    /// Routes `oci-layout:` locations to `layout` and the rest to `remote`.
    pub fn new(layout: L, remote: R) -> Self {
        RoutingRegistry { layout, remote }
    }

    fn pick(&self, repo: &Repository) -> &dyn ArtifactRegistry {
        if OciLayoutRegistry::handles(repo) {
            &self.layout
        } else {
            &self.remote
        }
    }
}

#[async_trait]
impl<L: ArtifactRegistry, R: ArtifactRegistry> ArtifactRegistry for RoutingRegistry<L, R> {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        self.pick(repo).resolve(repo, reference).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        self.pick(repo).put_manifest(repo, tag, manifest).await
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        self.pick(repo).push_blob(repo, data).await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        self.pick(repo).fetch_blob(repo, digest, max_bytes).await
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        if OciLayoutRegistry::handles(src) != OciLayoutRegistry::handles(dst) {
            return Err(Error::not_supported(
                "copy between an OCI layout directory and a remote registry",
                format!("{src} -> {dst}: keep an artifact's environments in one kind of storage"),
            ));
        }
        self.pick(src).copy(src, dst, digest).await
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        self.pick(repo).list_tags(repo).await
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.pick(repo).referrers(repo, subject).await
    }

    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        if OciLayoutRegistry::handles(src) != OciLayoutRegistry::handles(dst) {
            CopyMode::Stream
        } else {
            self.pick(src).copy_mode(src, dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_promotion::InMemoryRegistry;

    #[tokio::test]
    async fn routes_by_location_and_refuses_mixed_copies() {
        let layout = InMemoryRegistry::new();
        let remote = InMemoryRegistry::new();
        let router = RoutingRegistry::new(layout.clone(), remote.clone());
        let folder = Repository::new("oci-layout:/tmp/x/app").unwrap();
        let reg = Repository::new("registry.example.com/app").unwrap();
        router.push_blob(&folder, b"a".to_vec()).await.unwrap();
        router.push_blob(&reg, b"b".to_vec()).await.unwrap();
        assert!(
            layout
                .fetch_blob(&folder, &Digest::of(b"a"), 10)
                .await
                .is_ok()
        );
        assert!(
            remote
                .fetch_blob(&folder, &Digest::of(b"a"), 10)
                .await
                .is_err()
        );
        assert!(remote.fetch_blob(&reg, &Digest::of(b"b"), 10).await.is_ok());
        let err = router
            .copy(&folder, &reg, &Digest::of(b"a"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    }
}
