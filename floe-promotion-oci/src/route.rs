//! One registry over both kinds of location: `oci-layout:<dir>` and remote registries.

mod cross;

use async_trait::async_trait;
use floe_promotion::registry::{ArtifactRegistry, CopyMode, CopyReport, Descriptor, Manifest};
use floe_promotion::{Digest, Reference, Repository, Result, Tag};

use crate::layout::OciLayoutRegistry;
use crate::stream::{BlobStream, BlobStreams};

/// Sends each call to the layout backend for `oci-layout:` locations and to the remote backend
/// for every other location, so environments of one manifest may live in folders or in
/// registries.
///
/// A copy between a layout directory and a remote registry (either way, e.g. an air-gapped
/// hand-over from a directory into a registry) streams every blob through [`BlobStreams`]
/// with flat memory, skipping blobs the destination has; it writes each manifest's exact
/// bytes (index children first, so digests are kept) and brings the cosign signature tag
/// `sha256-<hex>.sig`, the attestation tag `sha256-<hex>.att` and the referrers along. A blob
/// whose bytes do not match its digest stops the copy before the manifest that needs it is
/// written. Copies within one kind of location are the backend's own.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use floe_promotion::{ArtifactRegistry, InMemoryRegistry, Reference, Repository, Tag};
/// use floe_promotion_oci::{OciLayoutRegistry, RoutingRegistry};
///
/// let dir = tempfile::tempdir().unwrap();
/// let remote = InMemoryRegistry::new(); // an `OciRegistry` in real use
/// let router = RoutingRegistry::new(OciLayoutRegistry::new(), remote.clone());
/// let dev = OciLayoutRegistry::location(dir.path().join("dev/app"))?;
/// let staging = Repository::new("registry.example.com/staging/app")?;
///
/// let config = router.push_blob(&dev, b"{}".to_vec()).await?;
/// let manifest = floe_promotion::registry::Manifest::from_bytes(
///     format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[]}}"#).into_bytes(),
///     None,
/// )?;
/// router.put_manifest(&dev, Some(&Tag::new("v1")?), &manifest).await?;
///
/// let report = router.copy(&dev, &staging, manifest.digest()).await?;
/// assert_eq!(report.blobs_uploaded, 1);
/// let copied = remote.resolve(&staging, &Reference::Digest(manifest.digest().clone())).await?;
/// assert_eq!(copied.bytes(), manifest.bytes());
/// # Ok::<(), floe_promotion::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct RoutingRegistry<L, R> {
    layout: L,
    remote: R,
}

impl<L: BlobStreams, R: BlobStreams> RoutingRegistry<L, R> {
    /// Routes `oci-layout:` locations to `layout` and the rest to `remote`.
    pub fn new(layout: L, remote: R) -> Self {
        RoutingRegistry { layout, remote }
    }

    fn pick(&self, repo: &Repository) -> &dyn BlobStreams {
        if OciLayoutRegistry::handles(repo) {
            &self.layout
        } else {
            &self.remote
        }
    }
}

#[async_trait]
impl<L: BlobStreams, R: BlobStreams> ArtifactRegistry for RoutingRegistry<L, R> {
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
            let from = cross::End {
                registry: self.pick(src),
                repo: src,
            };
            let to = cross::End {
                registry: self.pick(dst),
                repo: dst,
            };
            return cross::copy(from, to, digest).await;
        }
        self.pick(src).copy(src, dst, digest).await
    }

    async fn copy_known(
        &self,
        src: &Repository,
        dst: &Repository,
        manifest: &Manifest,
    ) -> Result<CopyReport> {
        if OciLayoutRegistry::handles(src) != OciLayoutRegistry::handles(dst) {
            return self.copy(src, dst, manifest.digest()).await;
        }
        self.pick(src).copy_known(src, dst, manifest).await
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

#[async_trait]
impl<L: BlobStreams, R: BlobStreams> BlobStreams for RoutingRegistry<L, R> {
    async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool> {
        self.pick(repo).blob_exists(repo, digest).await
    }

    async fn open_blob(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<BlobStream> {
        self.pick(repo).open_blob(repo, digest, size).await
    }

    async fn push_blob_stream(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        stream: BlobStream,
    ) -> Result<()> {
        self.pick(repo)
            .push_blob_stream(repo, digest, size, stream)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_promotion::testing::registry::{push_image, push_referrer, push_signature_tag};
    use floe_promotion::{Error, InMemoryRegistry};

    fn router() -> (
        RoutingRegistry<InMemoryRegistry, InMemoryRegistry>,
        InMemoryRegistry,
        InMemoryRegistry,
    ) {
        let (layout, remote) = (InMemoryRegistry::new(), InMemoryRegistry::new());
        (
            RoutingRegistry::new(layout.clone(), remote.clone()),
            layout,
            remote,
        )
    }

    #[tokio::test]
    async fn routes_by_location() {
        let (router, layout, remote) = router();
        let folder = Repository::new("oci-layout:/tmp/x/app").unwrap();
        let reg = Repository::new("registry.example.com/app").unwrap();
        router.push_blob(&folder, b"a".to_vec()).await.unwrap();
        router.push_blob(&reg, b"b".to_vec()).await.unwrap();
        assert!(
            layout
                .blob_exists(&folder, &Digest::of(b"a"))
                .await
                .unwrap()
        );
        assert!(
            !remote
                .blob_exists(&folder, &Digest::of(b"a"))
                .await
                .unwrap()
        );
        assert!(remote.blob_exists(&reg, &Digest::of(b"b")).await.unwrap());
        assert!(router.blob_exists(&reg, &Digest::of(b"b")).await.unwrap());
        assert!(
            !router
                .blob_exists(&folder, &Digest::of(b"b"))
                .await
                .unwrap()
        );
        assert_eq!(router.copy_mode(&folder, &reg), CopyMode::Stream);
        assert_eq!(router.copy_mode(&reg, &folder), CopyMode::Stream);
    }

    #[tokio::test]
    async fn copies_across_kinds_with_attachments_both_ways() {
        let (router, _, remote) = router();
        let folder = Repository::new("oci-layout:/tmp/x/app").unwrap();
        let reg = Repository::new("registry.example.com/app").unwrap();
        let image = push_image(&router, &folder, "one", &[b"layer a", b"layer b"]).await;
        push_signature_tag(&router, &folder, &image).await;
        let evidence = push_referrer(&router, &folder, &image, "application/x-test", b"ok").await;

        let report = router.copy(&folder, &reg, image.digest()).await.unwrap();
        assert_eq!(report.manifests_copied, 3, "{report:?}");
        assert_eq!(report.signatures_copied, 1, "{report:?}");
        assert_eq!(report.referrers_copied, 1, "{report:?}");
        assert_eq!(report.blobs_mounted, 0, "{report:?}");
        let copied = remote
            .resolve(&reg, &Reference::Digest(image.digest().clone()))
            .await
            .unwrap();
        assert_eq!(copied.bytes(), image.bytes());
        let sig = Tag::new(image.digest().signature_tag()).unwrap();
        assert_eq!(remote.list_tags(&reg).await.unwrap(), vec![sig]);
        let referrers = remote.referrers(&reg, image.digest()).await.unwrap();
        assert_eq!(referrers.len(), 1);
        assert_eq!(&referrers[0].digest, evidence.digest());

        let again = router.copy(&folder, &reg, image.digest()).await.unwrap();
        assert_eq!(again.manifests_copied, 0, "{again:?}");
        assert_eq!(again.blobs_uploaded, 0, "{again:?}");
        assert_eq!(again.signatures_copied, 0, "{again:?}");

        // And back into another folder.
        let other = Repository::new("oci-layout:/tmp/y/app").unwrap();
        let back = router.copy(&reg, &other, image.digest()).await.unwrap();
        assert_eq!(back.manifests_copied, 3, "{back:?}");
        assert_eq!(back.signatures_copied, 1, "{back:?}");
        assert_eq!(back.referrers_copied, 1, "{back:?}");
    }

    #[tokio::test]
    async fn a_missing_source_is_not_found_and_writes_nothing() {
        let (router, _, remote) = router();
        let folder = Repository::new("oci-layout:/tmp/x/app").unwrap();
        let reg = Repository::new("registry.example.com/app").unwrap();
        let err = router
            .copy(&folder, &reg, &Digest::of(b"nothing"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert!(remote.list_tags(&reg).await.unwrap().is_empty());
    }
}
