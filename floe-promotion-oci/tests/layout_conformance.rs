//! The core's registry conformance suite against `OciLayoutRegistry`, each case on a fresh
//! temporary directory, once with hard links between layouts and once with streamed copies.

use std::sync::Arc;

use floe_promotion::registry::{CopyMode, CopyReport, Descriptor, Manifest};
use floe_promotion::{ArtifactRegistry, Digest, Reference, Repository, Result, Tag, async_trait};
use floe_promotion_oci::OciLayoutRegistry;
use tempfile::TempDir;

/// The registry under test, owning the temporary directory its layouts live in: the directory
/// is removed when the test case drops the registry.
#[derive(Debug)]
struct InTempDir {
    registry: OciLayoutRegistry,
    _dir: TempDir,
}

async fn setup(registry: OciLayoutRegistry) -> (Arc<dyn ArtifactRegistry>, Repository) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let base = OciLayoutRegistry::location(dir.path()).expect("location");
    (
        Arc::new(InTempDir {
            registry,
            _dir: dir,
        }),
        base,
    )
}

mod hard_links {
    use super::*;
    floe_promotion::registry_conformance!(setup(OciLayoutRegistry::new()));
}

mod streamed {
    use super::*;
    floe_promotion::registry_conformance!(setup(OciLayoutRegistry::new().with_hard_links(false)));
}

#[async_trait]
impl ArtifactRegistry for InTempDir {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        self.registry.resolve(repo, reference).await
    }
    async fn put_manifest(&self, repo: &Repository, tag: Option<&Tag>, m: &Manifest) -> Result<()> {
        self.registry.put_manifest(repo, tag, m).await
    }
    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        self.registry.push_blob(repo, data).await
    }
    async fn fetch_blob(&self, repo: &Repository, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        self.registry.fetch_blob(repo, digest, max).await
    }
    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        self.registry.copy(src, dst, digest).await
    }
    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        self.registry.list_tags(repo).await
    }
    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        self.registry.referrers(repo, subject).await
    }
    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        self.registry.copy_mode(src, dst)
    }
}
