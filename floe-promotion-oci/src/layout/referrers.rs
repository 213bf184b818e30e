//! Finding referrers: the manifests of `index.json` whose `subject` is a given digest.
//!
//! A layout has no referrers API; referrers are the manifests kept in `index.json` (floe, oras
//! and crane keep them there as untagged entries). Reading them means reading each entry's
//! manifest once: what a manifest refers to never changes for a digest, so the answer is
//! cached per digest, shared by all layouts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use floe_promotion::registry::{Descriptor, Manifest, SMALL_BLOB_LIMIT};
use floe_promotion::{Digest, Error, Result};

use super::index::ImageIndex;
use super::store::Layout;

/// Beyond this many cached manifests the cache starts over, bounding its memory.
const CACHE_LIMIT: usize = 100_000;

/// What a manifest says about its subject, keyed by the manifest's digest.
#[derive(Debug, Default)]
pub(super) struct SubjectCache {
    entries: Mutex<HashMap<Digest, Arc<Summary>>>,
}

#[derive(Debug)]
struct Summary {
    subject: Option<Digest>,
    /// The manifest as the referrers API describes it.
    descriptor: Descriptor,
}

/// The descriptor of a referrer, as the OCI referrers API reports it: the manifest's
/// `artifactType` (else its config's media type) and its annotations.
pub(super) fn referrer_descriptor(manifest: &Manifest) -> Descriptor {
    let body = manifest.body();
    let artifact_type = body
        .artifact_type
        .clone()
        .or_else(|| body.config.as_ref().map(|c| c.media_type.clone()));
    Descriptor {
        artifact_type,
        annotations: body.annotations.clone(),
        ..manifest.descriptor()
    }
}

impl SubjectCache {
    fn summary(
        &self,
        layout: &Layout,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Option<Arc<Summary>>> {
        if let Some(s) = self.lock().get(digest) {
            return Ok(Some(s.clone()));
        }
        let manifest = match layout.read_manifest(digest, Some(media_type)) {
            Ok(m) => m,
            Err(Error::NotFound { what }) => {
                tracing::warn!(layout = %layout.root().display(), "index.json entry skipped: {what}");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let summary = Arc::new(Summary {
            subject: manifest.body().subject.as_ref().map(|s| s.digest.clone()),
            descriptor: referrer_descriptor(&manifest),
        });
        let mut entries = self.lock();
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(digest.clone(), summary.clone());
        Ok(Some(summary))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Arc<Summary>>> {
        // Every mutation is a single insert or clear: a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every referrer in `index`, grouped by subject, each group sorted by digest.
    pub(super) fn referrers(
        &self,
        layout: &Layout,
        index: &ImageIndex,
    ) -> Result<BTreeMap<Digest, Vec<Descriptor>>> {
        let mut seen = HashSet::new();
        let mut out: BTreeMap<Digest, Vec<Descriptor>> = BTreeMap::new();
        for entry in &index.manifests {
            let Ok(digest) = Digest::new(entry.digest.clone()) else {
                continue;
            };
            if entry.size > SMALL_BLOB_LIMIT || !seen.insert(digest.clone()) {
                continue;
            }
            let Some(summary) = self.summary(layout, &digest, &entry.media_type)? else {
                continue;
            };
            if let Some(subject) = &summary.subject {
                out.entry(subject.clone())
                    .or_default()
                    .push(summary.descriptor.clone());
            }
        }
        for group in out.values_mut() {
            group.sort_by(|a, b| a.digest.cmp(&b.digest));
        }
        Ok(out)
    }
}
