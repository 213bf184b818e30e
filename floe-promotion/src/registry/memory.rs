use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    ArtifactRegistry, CopyMode, CopyReport, Descriptor, Manifest, ManifestBody, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::error::{Error, Result};
use crate::model::{Digest, Reference, Repository, Tag};

/// An [`ArtifactRegistry`] held in memory: one registry with any number of repositories.
///
/// Blobs are shared between repositories (a copy mounts them), manifests are stored byte for
/// byte. It is the fixture of the doc-tests and of embedders' unit tests.
///
/// ```
/// # tokio_test_block_on(async {
/// use floe_promotion::{ArtifactRegistry, InMemoryRegistry, Reference, Repository, Tag};
/// let registry = InMemoryRegistry::new();
/// let repo = Repository::new("mem/dev/app")?;
/// let pushed = registry.push_image(&repo, &Tag::new("v1")?, &[b"layer"]).await?;
/// let resolved = registry.resolve(&repo, &Reference::Tag(Tag::new("v1")?)).await?;
/// assert_eq!(resolved.digest(), pushed.digest());
/// # Ok::<(), floe_promotion::Error>(()) });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Debug, Default, Clone)]
pub struct InMemoryRegistry {
    inner: Arc<Mutex<Store>>,
}

#[derive(Debug, Default)]
struct Store {
    repos: HashMap<Repository, Repo>,
    blob_writes: u64,
}

#[derive(Debug, Default)]
struct Repo {
    manifests: HashMap<Digest, Manifest>,
    tags: BTreeMap<Tag, Digest>,
    blobs: HashMap<Digest, Arc<[u8]>>,
}

impl InMemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters here (every mutation is a single insert), so a poisoned lock is recovered.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes a small OCI image made of the given layers (and an empty config) and tags it.
    /// For tests and examples.
    pub async fn push_image(
        &self,
        repo: &Repository,
        tag: &Tag,
        layers: &[&[u8]],
    ) -> Result<Manifest> {
        let manifest = image_manifest(self, repo, layers, BTreeMap::new()).await?;
        self.put_manifest(repo, Some(tag), &manifest).await?;
        Ok(manifest)
    }

    /// Pushes an OCI image with manifest annotations and tags it. For tests and examples.
    pub async fn push_annotated_image(
        &self,
        repo: &Repository,
        tag: &Tag,
        layers: &[&[u8]],
        annotations: BTreeMap<String, String>,
    ) -> Result<Manifest> {
        let manifest = image_manifest(self, repo, layers, annotations).await?;
        self.put_manifest(repo, Some(tag), &manifest).await?;
        Ok(manifest)
    }

    /// Pushes an image index over manifests already in `repo` and tags it.
    pub async fn push_index(
        &self,
        repo: &Repository,
        tag: &Tag,
        children: &[Manifest],
    ) -> Result<Manifest> {
        let body = ManifestBody {
            schema_version: Some(2),
            media_type: Some(OCI_INDEX.into()),
            manifests: Some(children.iter().map(Manifest::descriptor).collect()),
            ..Default::default()
        };
        let bytes =
            serde_json::to_vec(&body).map_err(|e| Error::invalid("index", "", e.to_string()))?;
        let manifest = Manifest::from_bytes(bytes, Some(OCI_INDEX))?;
        self.put_manifest(repo, Some(tag), &manifest).await?;
        Ok(manifest)
    }

    /// How many times blob bytes were stored (pushes of new blobs); mounts do not count.
    pub fn blob_uploads(&self) -> u64 {
        self.lock().blob_writes
    }

    fn copy_one(
        store: &mut Store,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
        report: &mut CopyReport,
        seen: &mut HashSet<Digest>,
    ) -> Result<()> {
        if !seen.insert(digest.clone()) {
            return Ok(());
        }
        let source = store
            .repos
            .get(src)
            .ok_or_else(|| Error::not_found(format!("repository {src}")))?;
        let manifest = source
            .manifests
            .get(digest)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("{src}@{digest}")))?;
        let body = manifest.body();
        let mut blobs = Vec::new();
        for d in body.blobs() {
            let bytes = source
                .blobs
                .get(&d.digest)
                .cloned()
                .ok_or_else(|| Error::not_found(format!("blob {src}@{}", d.digest)))?;
            blobs.push((d.digest.clone(), bytes));
        }
        let signature = source.tags.get(&Tag::new(digest.signature_tag())?).cloned();
        let attestations = source
            .tags
            .get(&Tag::new(digest.attestation_tag())?)
            .cloned();
        let referrers: Vec<Digest> = source
            .manifests
            .values()
            .filter(|m| {
                m.body()
                    .subject
                    .as_ref()
                    .is_some_and(|s| &s.digest == digest)
            })
            .map(|m| m.digest().clone())
            .collect();
        let children: Vec<Digest> = body.children().iter().map(|c| c.digest.clone()).collect();

        for child in &children {
            Self::copy_one(store, src, dst, child, report, seen)?;
        }
        let target = store.repos.entry(dst.clone()).or_default();
        for (d, bytes) in blobs {
            if let std::collections::hash_map::Entry::Vacant(e) = target.blobs.entry(d) {
                e.insert(bytes);
                report.blobs_mounted += 1;
            } else {
                report.blobs_skipped += 1;
            }
        }
        if target.manifests.insert(digest.clone(), manifest).is_none() {
            report.manifests_copied += 1;
        }
        if let Some(sig) = signature {
            Self::copy_one(store, src, dst, &sig, report, seen)?;
            let target = store.repos.entry(dst.clone()).or_default();
            let tag = Tag::new(digest.signature_tag())?;
            if target.tags.insert(tag, sig).is_none() {
                report.signatures_copied += 1;
            }
        }
        // The attestation tag is appended to in each repository: copied only where there is
        // none yet, so the destination's own attestations are never replaced.
        if let Some(att) = attestations {
            let tag = Tag::new(digest.attestation_tag())?;
            if !store
                .repos
                .entry(dst.clone())
                .or_default()
                .tags
                .contains_key(&tag)
            {
                Self::copy_one(store, src, dst, &att, report, seen)?;
                let target = store.repos.entry(dst.clone()).or_default();
                target.tags.insert(tag, att);
                report.referrers_copied += 1;
            }
        }
        for r in referrers {
            let before = report.manifests_copied;
            Self::copy_one(store, src, dst, &r, report, seen)?;
            if report.manifests_copied > before {
                report.referrers_copied += 1;
            }
        }
        Ok(())
    }
}

async fn image_manifest(
    registry: &InMemoryRegistry,
    repo: &Repository,
    layers: &[&[u8]],
    annotations: BTreeMap<String, String>,
) -> Result<Manifest> {
    let config = registry.push_blob(repo, b"{}".to_vec()).await?;
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = registry.push_blob(repo, layer.to_vec()).await?;
        descriptors.push(Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest,
            size: layer.len() as u64,
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        });
    }
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: config,
            size: 2,
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        }),
        layers: descriptors,
        annotations,
        ..Default::default()
    };
    let bytes =
        serde_json::to_vec(&body).map_err(|e| Error::invalid("manifest", "", e.to_string()))?;
    Manifest::from_bytes(bytes, Some(OCI_MANIFEST))
}

#[async_trait]
impl ArtifactRegistry for InMemoryRegistry {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        let store = self.lock();
        let r = store
            .repos
            .get(repo)
            .ok_or_else(|| Error::not_found(format!("repository {repo}")))?;
        let digest = match reference {
            Reference::Digest(d) => d,
            Reference::Tag(t) => r
                .tags
                .get(t)
                .ok_or_else(|| Error::not_found(format!("{repo}:{t}")))?,
        };
        r.manifests
            .get(digest)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("{repo}@{digest}")))
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        let body = manifest.body();
        let mut store = self.lock();
        let r = store.repos.entry(repo.clone()).or_default();
        for d in body.blobs() {
            if !r.blobs.contains_key(&d.digest) {
                return Err(Error::not_found(format!(
                    "blob {repo}@{} referenced by manifest {}",
                    d.digest,
                    manifest.digest()
                )));
            }
        }
        for c in body.children() {
            if !r.manifests.contains_key(&c.digest) {
                return Err(Error::not_found(format!(
                    "manifest {repo}@{} referenced by index {}",
                    c.digest,
                    manifest.digest()
                )));
            }
        }
        r.manifests
            .insert(manifest.digest().clone(), manifest.clone());
        if let Some(tag) = tag {
            r.tags.insert(tag.clone(), manifest.digest().clone());
        }
        Ok(())
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        let digest = Digest::of(&data);
        let mut store = self.lock();
        let r = store.repos.entry(repo.clone()).or_default();
        if !r.blobs.contains_key(&digest) {
            r.blobs.insert(digest.clone(), data.into());
            store.blob_writes += 1;
        }
        Ok(digest)
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        let store = self.lock();
        let bytes = store
            .repos
            .get(repo)
            .and_then(|r| r.blobs.get(digest))
            .ok_or_else(|| Error::not_found(format!("blob {repo}@{digest}")))?;
        if bytes.len() as u64 > max_bytes {
            return Err(Error::invalid(
                "blob",
                format!("{repo}@{digest}"),
                format!(
                    "{} bytes is more than the limit of {max_bytes}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes.to_vec())
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        let mut store = self.lock();
        let mut report = CopyReport::default();
        if src == dst {
            let exists = store
                .repos
                .get(src)
                .is_some_and(|r| r.manifests.contains_key(digest));
            return if exists {
                Ok(report)
            } else {
                Err(Error::not_found(format!("{src}@{digest}")))
            };
        }
        // Copy into a scratch clone first so a failure leaves the destination unchanged.
        let mut seen = HashSet::new();
        let snapshot = store.repos.get(dst).map(|r| Repo {
            manifests: r.manifests.clone(),
            tags: r.tags.clone(),
            blobs: r.blobs.clone(),
        });
        let result = Self::copy_one(&mut store, src, dst, digest, &mut report, &mut seen);
        if result.is_err() {
            match snapshot {
                Some(r) => {
                    store.repos.insert(dst.clone(), r);
                }
                None => {
                    store.repos.remove(dst);
                }
            }
        }
        result.map(|()| report)
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        let store = self.lock();
        Ok(store
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        let store = self.lock();
        let Some(r) = store.repos.get(repo) else {
            return Ok(vec![]);
        };
        let mut out: Vec<Descriptor> = r
            .manifests
            .values()
            .filter_map(|m| {
                let body = m.body();
                let s = body.subject.as_ref()?;
                (&s.digest == subject).then(|| Descriptor {
                    artifact_type: body.artifact_type.clone(),
                    annotations: body.annotations.clone(),
                    ..m.descriptor()
                })
            })
            .collect();
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        if src == dst {
            CopyMode::TagOnly
        } else {
            CopyMode::Mount
        }
    }
}
