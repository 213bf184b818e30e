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

/// The maps' hasher: foldhash, much cheaper than SipHash on the short keys here (names and
/// digests), and still seeded per process.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Store {
    /// Keyed by the repository's name, so a lookup borrows it instead of copying it.
    repos: FastMap<Box<str>, Repo>,
    blob_writes: u64,
}

impl Store {
    /// The repository `repo`, created empty if it does not exist yet.
    fn repo_mut(&mut self, repo: &Repository) -> &mut Repo {
        // Checked first so that the name is only copied when the repository is new.
        if !self.repos.contains_key(repo.as_str()) {
            self.repos.insert(repo.as_str().into(), Repo::default());
        }
        self.repos
            .get_mut(repo.as_str())
            .expect("the repository was inserted above")
    }
}

#[derive(Debug, Default)]
struct Repo {
    manifests: FastMap<Digest, Manifest>,
    /// Subject digest -> the manifests of this repository whose `subject` it is, in the
    /// order they were stored (the referrers API, without a scan of every manifest).
    referrers: FastMap<Digest, Vec<Digest>>,
    /// Each tag with the stored manifest it points at (shared), so that resolving a tag is
    /// one lookup; kept equal to `manifests[digest]` when a manifest is replaced or restored
    /// ([`Repo::put_stored`]). Sorted only when listed: lookups and writes are what
    /// promotions do.
    tags: FastMap<Tag, Manifest>,
    blobs: FastMap<Digest, Arc<[u8]>>,
}

impl Repo {
    /// Stores `manifest` under its digest; returns the manifest it replaced (same bytes,
    /// another media type) or `None` when the digest was new. Nothing is copied when the
    /// same manifest is stored already.
    fn store_manifest(&mut self, manifest: &Manifest) -> Option<Option<Manifest>> {
        match self.manifests.get(manifest.digest()) {
            Some(m) if m.media_type() == manifest.media_type() => None,
            Some(_) => Some(self.put_stored(manifest.clone())),
            None => {
                if let Some(subject) = &manifest.body().subject {
                    self.referrers
                        .entry(subject.digest.clone())
                        .or_default()
                        .push(manifest.digest().clone());
                }
                self.manifests
                    .insert(manifest.digest().clone(), manifest.clone());
                Some(None)
            }
        }
    }

    /// Stores `manifest` in place of the one stored under its digest (same bytes, another
    /// media type, or the one a failed copy replaced), which the tags pointing at that digest
    /// follow; returns the one replaced. Rare: the tags are scanned.
    fn put_stored(&mut self, manifest: Manifest) -> Option<Manifest> {
        for m in self.tags.values_mut() {
            if m.digest() == manifest.digest() {
                *m = manifest.clone();
            }
        }
        self.manifests.insert(manifest.digest().clone(), manifest)
    }

    /// Removes a manifest stored by [`Repo::store_manifest`] as new, from the referrer index
    /// too.
    fn remove_manifest(&mut self, digest: &Digest) {
        if let Some(m) = self.manifests.remove(digest)
            && let Some(subject) = &m.body().subject
            && let Some(list) = self.referrers.get_mut(&subject.digest)
        {
            list.retain(|d| d != digest);
            if list.is_empty() {
                self.referrers.remove(&subject.digest);
            }
        }
    }

    /// Points `tag` at `manifest`, which is stored in this repository; returns what it
    /// pointed at before (`Some(None)`: nothing), or `None` when it already pointed at that
    /// digest (nothing was written).
    fn set_tag(&mut self, tag: &Tag, manifest: &Manifest) -> Option<Option<Manifest>> {
        match self.tags.get_mut(tag) {
            Some(m) if m.digest() == manifest.digest() => None,
            Some(m) => Some(Some(std::mem::replace(m, manifest.clone()))),
            None => {
                self.tags.insert(tag.clone(), manifest.clone());
                Some(None)
            }
        }
    }
}

/// What a copy changed in an existing destination repository, to undo it when the copy
/// fails part-way (instead of a snapshot of the whole repository taken before every copy).
#[derive(Default)]
struct Journal {
    blobs: Vec<Digest>,
    /// A manifest stored, with the one it replaced (`None`: the digest was new).
    manifests: Vec<(Digest, Option<Manifest>)>,
    /// A tag written, with the manifest it pointed at before (`None`: it was new).
    tags: Vec<(Tag, Option<Manifest>)>,
}

impl Journal {
    /// Puts `repo` back as it was before the changes recorded here.
    fn undo(self, repo: &mut Repo) {
        for (tag, before) in self.tags.into_iter().rev() {
            match before {
                Some(m) => {
                    repo.tags.insert(tag, m);
                }
                None => {
                    repo.tags.remove(&tag);
                }
            }
        }
        // After the tags: a restored manifest is what the tags at its digest point at again.
        for (digest, before) in self.manifests.into_iter().rev() {
            match before {
                Some(m) => {
                    repo.put_stored(m);
                }
                None => repo.remove_manifest(&digest),
            }
        }
        for digest in self.blobs {
            repo.blobs.remove(&digest);
        }
    }
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
        copying: &mut Copying,
    ) -> Result<()> {
        if !copying.seen.insert(digest.clone()) {
            return Ok(());
        }
        let source = store
            .repos
            .get(src.as_str())
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
        let signature_tag = Tag::new(digest.signature_tag())?;
        let attestation_tag = Tag::new(digest.attestation_tag())?;
        let signature = source.tags.get(&signature_tag).cloned();
        let attestations = source.tags.get(&attestation_tag).cloned();
        let referrers: Vec<Digest> = source.referrers.get(digest).cloned().unwrap_or_default();
        let children: Vec<Digest> = body.children().iter().map(|c| c.digest.clone()).collect();

        for child in &children {
            Self::copy_one(store, src, dst, child, report, copying)?;
        }
        let target = store.repo_mut(dst);
        for (d, bytes) in blobs {
            if let std::collections::hash_map::Entry::Vacant(e) = target.blobs.entry(d) {
                copying.journal.blobs.push(e.key().clone());
                e.insert(bytes);
                report.blobs_mounted += 1;
            } else {
                report.blobs_skipped += 1;
            }
        }
        if let Some(before) = target.store_manifest(&manifest) {
            if before.is_none() {
                report.manifests_copied += 1;
            }
            copying.journal.manifests.push((digest.clone(), before));
        }
        if let Some(sig) = signature {
            Self::copy_one(store, src, dst, sig.digest(), report, copying)?;
            let target = store.repo_mut(dst);
            let sig = target.manifests.get(sig.digest()).cloned().unwrap_or(sig);
            if let Some(before) = target.set_tag(&signature_tag, &sig) {
                if before.is_none() {
                    report.signatures_copied += 1;
                }
                copying.journal.tags.push((signature_tag, before));
            }
        }
        // The attestation tag is appended to in each repository: copied only where there is
        // none yet, so the destination's own attestations are never replaced.
        if let Some(att) = attestations
            && !store.repo_mut(dst).tags.contains_key(&attestation_tag)
        {
            Self::copy_one(store, src, dst, att.digest(), report, copying)?;
            let target = store.repo_mut(dst);
            let att = target.manifests.get(att.digest()).cloned().unwrap_or(att);
            target.tags.insert(attestation_tag.clone(), att);
            copying.journal.tags.push((attestation_tag, None));
            report.referrers_copied += 1;
        }
        for r in referrers {
            let before = report.manifests_copied;
            Self::copy_one(store, src, dst, &r, report, copying)?;
            if report.manifests_copied > before {
                report.referrers_copied += 1;
            }
        }
        Ok(())
    }
}

/// The state of one [`ArtifactRegistry::copy`]: the manifests visited and what was changed.
#[derive(Default)]
struct Copying {
    seen: FastSet<Digest>,
    journal: Journal,
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
            .get(repo.as_str())
            .ok_or_else(|| Error::not_found(format!("repository {repo}")))?;
        match reference {
            Reference::Digest(d) => r.manifests.get(d),
            Reference::Tag(t) => r.tags.get(t),
        }
        .cloned()
        .ok_or_else(|| Error::not_found(format!("{repo}{reference}")))
    }

    // Without building the "not found" error `resolve` would give.
    async fn resolve_tag(&self, repo: &Repository, tag: &Tag) -> Result<Option<Manifest>> {
        let store = self.lock();
        Ok(store
            .repos
            .get(repo.as_str())
            .and_then(|r| r.tags.get(tag))
            .cloned())
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        let body = manifest.body();
        let mut store = self.lock();
        let r = store.repo_mut(repo);
        // A manifest stored already had its blobs and children checked then, and nothing is
        // ever removed from a repository (a failed copy only removes what it added): a tag
        // write of a stored manifest, what a promotion does, needs no check.
        if let Some(stored) = r
            .manifests
            .get(manifest.digest())
            .filter(|m| m.media_type() == manifest.media_type())
        {
            if let Some(tag) = tag {
                let stored = stored.clone();
                r.set_tag(tag, &stored);
            }
            return Ok(());
        }
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
        r.store_manifest(manifest);
        if let Some(tag) = tag {
            r.set_tag(tag, manifest);
        }
        Ok(())
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        let digest = Digest::of(&data);
        let mut store = self.lock();
        let r = store.repo_mut(repo);
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
            .get(repo.as_str())
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
                .get(src.as_str())
                .is_some_and(|r| r.manifests.contains_key(digest));
            return if exists {
                Ok(report)
            } else {
                Err(Error::not_found(format!("{src}@{digest}")))
            };
        }
        // What the copy changes is journaled, so a failure leaves the destination unchanged.
        let existed = store.repos.contains_key(dst.as_str());
        let mut copying = Copying::default();
        let result = Self::copy_one(&mut store, src, dst, digest, &mut report, &mut copying);
        if result.is_err() {
            if existed {
                copying.journal.undo(store.repo_mut(dst));
            } else {
                store.repos.remove(dst.as_str());
            }
        }
        result.map(|()| report)
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        let store = self.lock();
        Ok(store
            .repos
            .get(repo.as_str())
            .map(|r| {
                let mut tags: Vec<Tag> = r.tags.keys().cloned().collect();
                tags.sort_unstable();
                tags
            })
            .unwrap_or_default())
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        let store = self.lock();
        let Some(r) = store.repos.get(repo.as_str()) else {
            return Ok(vec![]);
        };
        let mut out: Vec<Descriptor> = r
            .referrers
            .get(subject)
            .into_iter()
            .flatten()
            .filter_map(|d| r.manifests.get(d))
            .map(|m| {
                let body = m.body();
                Descriptor {
                    artifact_type: body.artifact_type.clone(),
                    annotations: body.annotations.clone(),
                    ..m.descriptor()
                }
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

#[cfg(test)]
mod tests;
