//! Checkpoints in an OCI repository: one artifact per checkpoint, tagged
//! `checkpoint-<sequence>`, through any [`ArtifactRegistry`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{CHECKPOINT_ARTIFACT_TYPE, CheckpointStore, StoredCheckpoint, claimed_sequence};
use crate::attest::Envelope;
use crate::attest::dsse::DSSE_MEDIA_TYPE;
use crate::error::{Error, Result};
use crate::model::{Reference, Repository, Tag};
use crate::registry::{
    ArtifactRegistry, Descriptor, Manifest, ManifestBody, OCI_EMPTY, OCI_MANIFEST, SMALL_BLOB_LIMIT,
};

/// The tag prefix of checkpoint artifacts: `checkpoint-<sequence>`.
pub const CHECKPOINT_TAG_PREFIX: &str = "checkpoint-";

/// Checkpoints in an OCI repository.
///
/// Each checkpoint is an OCI image manifest with `artifactType`
/// [`CHECKPOINT_ARTIFACT_TYPE`], the empty config, and one layer: the DSSE envelope (media
/// type `application/vnd.dsse.envelope.v1+json`); annotations carry the time, the sequence and
/// the head for people browsing the repository (the signed envelope is what counts). It is
/// tagged `checkpoint-<sequence>` and listed by those tags, so it works with any registry and
/// with OCI layout directories (`oci-layout:DIR`), whatever [`ArtifactRegistry`] routes there.
#[derive(Clone, Debug)]
pub struct RegistryCheckpoints {
    registry: Arc<dyn ArtifactRegistry>,
    repository: Repository,
}

impl RegistryCheckpoints {
    /// Checkpoints in `repository`, reached through `registry`.
    pub fn new(registry: Arc<dyn ArtifactRegistry>, repository: Repository) -> Self {
        RegistryCheckpoints {
            registry,
            repository,
        }
    }

    /// The repository.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    fn tag(sequence: u64) -> Result<Tag> {
        Tag::new(format!("{CHECKPOINT_TAG_PREFIX}{sequence}"))
    }

    fn location(&self, sequence: u64) -> String {
        format!("{}:{CHECKPOINT_TAG_PREFIX}{sequence}", self.describe())
    }

    /// The checkpoint tagged for `sequence`, `None` when there is no such tag.
    async fn read(&self, sequence: u64) -> Result<Option<StoredCheckpoint>> {
        let location = self.location(sequence);
        let manifest = match self
            .registry
            .resolve(&self.repository, &Reference::Tag(Self::tag(sequence)?))
            .await
        {
            Ok(m) => m,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |why: String| Error::invalid("checkpoint", location.clone(), why);
        let body = manifest.body();
        if body.artifact_type.as_deref() != Some(CHECKPOINT_ARTIFACT_TYPE) {
            return Err(bad(format!(
                "not a floe checkpoint artifact (artifactType {:?}, expected {CHECKPOINT_ARTIFACT_TYPE})",
                body.artifact_type.as_deref().unwrap_or("")
            )));
        }
        let layer = match body.layers.as_slice() {
            [layer] if layer.media_type == DSSE_MEDIA_TYPE => layer,
            _ => {
                return Err(bad(format!(
                    "expected one layer of type {DSSE_MEDIA_TYPE}, the signed envelope"
                )));
            }
        };
        let bytes = self
            .registry
            .fetch_blob(&self.repository, &layer.digest, SMALL_BLOB_LIMIT)
            .await?;
        let envelope = Envelope::from_json(&bytes)
            .map_err(|e| bad(format!("the layer is not a DSSE envelope: {e}")))?;
        if claimed_sequence(&envelope).is_none() {
            return Err(bad("the envelope does not hold a floe checkpoint".into()));
        }
        Ok(Some(StoredCheckpoint {
            sequence,
            envelope,
            location,
        }))
    }

    /// The sequences of the checkpoint tags, ascending.
    async fn sequences(&self) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = self
            .registry
            .list_tags(&self.repository)
            .await?
            .iter()
            .filter_map(|t| t.as_str().strip_prefix(CHECKPOINT_TAG_PREFIX))
            .filter(|n| !n.starts_with('0') || *n == "0")
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[async_trait]
impl CheckpointStore for RegistryCheckpoints {
    async fn put(&self, sequence: u64, envelope: &Envelope) -> Result<String> {
        if let Some(existing) = self.read(sequence).await? {
            if existing.envelope == *envelope {
                return Ok(existing.location);
            }
            return Err(Error::Conflict(format!(
                "checkpoint {sequence} is already stored at {} with another signature or time; it is kept",
                existing.location
            )));
        }
        let json = envelope.to_json();
        let size = json.len() as u64;
        let mut annotations = BTreeMap::new();
        if let Ok(payload) = envelope.payload_bytes()
            && let Ok(c) = serde_json::from_slice::<super::Checkpoint>(&payload)
        {
            annotations.insert(
                "org.opencontainers.image.created".to_string(),
                c.time.to_rfc3339(),
            );
            annotations.insert("dev.floe.checkpoint.head".into(), c.head);
        }
        annotations.insert("dev.floe.checkpoint.sequence".into(), sequence.to_string());
        let descriptor = |media_type: &str, digest, size| Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        };
        let body = ManifestBody {
            schema_version: Some(2),
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(CHECKPOINT_ARTIFACT_TYPE.into()),
            config: Some(descriptor(OCI_EMPTY, crate::Digest::of(b"{}"), 2)),
            layers: vec![descriptor(DSSE_MEDIA_TYPE, crate::Digest::of(&json), size)],
            manifests: None,
            subject: None,
            annotations,
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| {
            Error::invalid(
                "checkpoint manifest",
                self.location(sequence),
                e.to_string(),
            )
        })?;
        let manifest = Manifest::from_bytes(bytes, Some(OCI_MANIFEST))?;
        let tag = Self::tag(sequence)?;
        // A registry may briefly not know a blob another writer is committing at the same
        // time (distribution 2.8 does, for the empty config two checkpoints share): the
        // manifest is refused as naming an unknown blob, and pushing again settles it.
        let mut attempt = 0;
        loop {
            self.registry
                .push_blob(&self.repository, json.clone())
                .await?;
            self.registry
                .push_blob(&self.repository, b"{}".to_vec())
                .await?;
            match self
                .registry
                .put_manifest(&self.repository, Some(&tag), &manifest)
                .await
            {
                Err(Error::NotFound { .. }) if attempt < 4 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                result => break result?,
            }
        }
        Ok(self.location(sequence))
    }

    async fn list(&self) -> Result<Vec<StoredCheckpoint>> {
        let mut out = Vec::new();
        for sequence in self.sequences().await? {
            // A tag removed between the listing and the read is simply gone.
            if let Some(c) = self.read(sequence).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn latest(&self) -> Result<Option<StoredCheckpoint>> {
        for sequence in self.sequences().await?.into_iter().rev() {
            if let Some(c) = self.read(sequence).await? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        crate::config::CheckpointLocation::Repository(self.repository.clone()).to_string()
    }
}
