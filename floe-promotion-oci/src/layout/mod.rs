//! OCI image-layout directories: an environment in a folder, with no server.
//!
//! A repository location `oci-layout:<dir>` names one [OCI image layout]: the directory holds
//! `oci-layout` (`{"imageLayoutVersion":"1.0.0"}`), `index.json` and `blobs/sha256/<hex>`, the
//! format skopeo, oras and crane read and write as `oci:<dir>:<tag>`. `<dir>` is absolute or
//! relative to the process's working directory.
//!
//! - **Tags** are `index.json` entries annotated `org.opencontainers.image.ref.name = <tag>`, as
//!   skopeo writes them. Moving a tag replaces its entry.
//! - **Untagged manifests** (`put_manifest` without a tag, copied artifacts, referrers) get an
//!   entry without that annotation, which keeps layout tools from garbage-collecting them;
//!   referrer entries carry their `artifactType`. Index children get no entry of their own.
//! - **Referrers** are the manifests of `index.json` whose `subject` is the digest.
//! - **Writes** go to a temporary file that is flushed and renamed into place, so a reader never
//!   sees a partial blob or index and reads take no lock. Blobs are checked against their digest
//!   as they are written. Updates of `index.json` are read-modify-write under an exclusive lock
//!   of `<dir>/.floe.lock`, which serialises writers in threads and in separate processes. Tools
//!   other than floe do not take that lock.
//! - **Copies** between layouts hard-link blobs (reported as mounted) and fall back to a
//!   streamed, digest-checked copy across file systems (reported as uploaded).
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

mod copy;
mod index;
mod location;
mod referrers;
mod store;
mod stream;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use floe_promotion::registry::{CopyMode, CopyReport, Descriptor, Manifest};
use floe_promotion::{ArtifactRegistry, Digest, Error, Reference, Repository, Result, Tag};

use index::{IndexChange, IndexEntry};
use referrers::SubjectCache;
use store::Layout;

/// The [`ArtifactRegistry`] over OCI image-layout directories (`oci-layout:<dir>`).
///
/// One repository is one layout directory, created on the first write. Every method runs its
/// file I/O on tokio's blocking pool. Clones share one cache of what each manifest refers to.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use floe_promotion::{ArtifactRegistry, Reference, Tag};
/// use floe_promotion_oci::OciLayoutRegistry;
///
/// let dir = tempfile::tempdir().unwrap();
/// let registry = OciLayoutRegistry::new();
/// let dev = OciLayoutRegistry::location(dir.path().join("dev/app"))?;
/// let prod = OciLayoutRegistry::location(dir.path().join("prod/app"))?;
///
/// let config = registry.push_blob(&dev, b"{}".to_vec()).await?;
/// let manifest = floe_promotion::registry::Manifest::from_bytes(
///     format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[]}}"#).into_bytes(),
///     None,
/// )?;
/// registry.put_manifest(&dev, Some(&Tag::new("v1")?), &manifest).await?;
///
/// registry.copy(&dev, &prod, manifest.digest()).await?;
/// registry.put_manifest(&prod, Some(&Tag::new("v1-prod")?), &manifest).await?;
/// let got = registry.resolve(&prod, &Reference::Tag(Tag::new("v1-prod")?)).await?;
/// assert_eq!(got.digest(), manifest.digest());
/// # Ok::<(), floe_promotion::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct OciLayoutRegistry {
    hard_links: bool,
    cache: Arc<SubjectCache>,
}

impl std::fmt::Debug for OciLayoutRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciLayoutRegistry")
            .field("hard_links", &self.hard_links)
            .finish_non_exhaustive()
    }
}

impl Default for OciLayoutRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl OciLayoutRegistry {
    /// The prefix of the repository locations this registry serves.
    pub const SCHEME: &'static str = location::SCHEME;

    /// A registry that hard-links blobs between layouts on the same file system.
    pub fn new() -> Self {
        OciLayoutRegistry {
            hard_links: true,
            cache: Arc::default(),
        }
    }

    /// Whether copies hard-link blobs (the default). Without hard links every copied blob is
    /// streamed, so no two layouts share a file.
    pub fn with_hard_links(mut self, hard_links: bool) -> Self {
        self.hard_links = hard_links;
        self
    }

    /// Whether `repo` is an `oci-layout:` location, i.e. one this registry serves.
    pub fn handles(repo: &Repository) -> bool {
        repo.as_str().starts_with(Self::SCHEME)
    }

    /// The repository location `oci-layout:<dir>` of a layout directory. Refuses paths that
    /// are not UTF-8 or not valid locations (spaces, control characters).
    pub fn location(dir: impl AsRef<Path>) -> Result<Repository> {
        let dir = dir.as_ref();
        let Some(s) = dir.to_str() else {
            return Err(Error::invalid(
                "layout directory",
                dir.display().to_string(),
                "the path is not valid UTF-8",
            ));
        };
        Repository::new(format!("{}{s}", Self::SCHEME))
    }

    /// The directory an `oci-layout:<dir>` location names, as written.
    pub fn layout_dir(repo: &Repository) -> Result<PathBuf> {
        location::layout_dir(repo)
    }
}

/// Runs blocking file I/O on tokio's blocking pool.
async fn blocking<T, F>(repo: &Repository, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store {
            backend: "oci-layout",
            location: repo.to_string(),
            message: format!("file operation did not complete: {e}"),
        })?
}

fn parse_entry_digest(layout: &Layout, tag: &str, digest: &str) -> Result<Digest> {
    Digest::new(digest).map_err(|e| Error::Store {
        backend: "oci-layout",
        location: layout.root().join("index.json").display().to_string(),
        message: format!("entry of tag {tag}: {e}"),
    })
}

#[async_trait]
impl ArtifactRegistry for OciLayoutRegistry {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        let layout = Layout::open(repo)?;
        let reference = reference.clone();
        blocking(repo, move || {
            let index = layout.read_index()?;
            match reference {
                Reference::Tag(tag) => {
                    let entry = index
                        .as_ref()
                        .and_then(|i| i.tagged(tag.as_str()))
                        .ok_or_else(|| Error::not_found(format!("{}:{tag}", layout.repo())))?;
                    let digest = parse_entry_digest(&layout, tag.as_str(), &entry.digest)?;
                    layout.read_manifest(&digest, Some(&entry.media_type))
                }
                Reference::Digest(digest) => {
                    let hint = index
                        .as_ref()
                        .and_then(|i| i.entry_for(digest.as_str()))
                        .map(|e| e.media_type.as_str());
                    layout.read_manifest(&digest, hint)
                }
            }
        })
        .await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        let layout = Layout::open(repo)?;
        let tag = tag.cloned();
        let manifest = manifest.clone();
        blocking(repo, move || {
            let body = manifest.body();
            for blob in body.blobs() {
                if !layout.has_blob(&blob.digest)? {
                    return Err(Error::not_found(format!(
                        "blob {}@{} referenced by manifest {}",
                        layout.repo(),
                        blob.digest,
                        manifest.digest()
                    )));
                }
            }
            for child in body.children() {
                if !layout.has_blob(&child.digest)? {
                    return Err(Error::not_found(format!(
                        "manifest {}@{} referenced by index {}",
                        layout.repo(),
                        child.digest,
                        manifest.digest()
                    )));
                }
            }
            layout.ensure()?;
            if layout.write_blob(manifest.digest(), manifest.bytes())? {
                layout.sync_blobs()?;
            }
            let entry = IndexEntry::of(&manifest);
            let change = match tag {
                Some(tag) => {
                    let entry = entry.tagged(tag.as_str());
                    IndexChange::Tag(tag.into(), entry)
                }
                None => IndexChange::Untagged(entry),
            };
            layout.update_index(&[change])?;
            Ok(())
        })
        .await
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        let layout = Layout::open(repo)?;
        blocking(repo, move || {
            let digest = Digest::of(&data);
            layout.ensure()?;
            if layout.write_blob(&digest, &data)? {
                layout.sync_blobs()?;
            }
            Ok(digest)
        })
        .await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        let layout = Layout::open(repo)?;
        let digest = digest.clone();
        blocking(repo, move || layout.read_blob(&digest, max_bytes)).await
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        let (from, to) = (Layout::open(src)?, Layout::open(dst)?);
        let digest = digest.clone();
        let (link, cache) = (self.hard_links, self.cache.clone());
        blocking(dst, move || copy::copy(&from, &to, &digest, link, &cache)).await
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        let layout = Layout::open(repo)?;
        blocking(repo, move || {
            let Some(index) = layout.read_index()? else {
                return Ok(Vec::new());
            };
            let tags: BTreeSet<Tag> = index
                .manifests
                .iter()
                .filter_map(IndexEntry::tag)
                // Names that are not plain tags (e.g. full references some tools write)
                // cannot be asked for by tag, so they are not listed.
                .filter_map(|t| Tag::new(t).ok())
                .collect();
            Ok(tags.into_iter().collect())
        })
        .await
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        let layout = Layout::open(repo)?;
        let subject = subject.clone();
        let cache = self.cache.clone();
        blocking(repo, move || {
            let Some(index) = layout.read_index()? else {
                return Ok(Vec::new());
            };
            Ok(cache
                .referrers(&layout, &index)?
                .remove(&subject)
                .unwrap_or_default())
        })
        .await
    }

    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        if src == dst {
            return CopyMode::TagOnly;
        }
        match (location::layout_dir(src), location::layout_dir(dst)) {
            (Ok(a), Ok(b)) if location::same_dir(&a, &b) => CopyMode::TagOnly,
            _ if self.hard_links => CopyMode::Mount,
            _ => CopyMode::Stream,
        }
    }
}
