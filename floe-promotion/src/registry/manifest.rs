use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI empty descriptor's media type (`{}`), used as the config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Every manifest media type the library reads.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A manifest exactly as stored: its bytes, their digest and its media type.
///
/// Tags are always written with these bytes, so the digest is identical in every environment.
/// A clone shares the manifest (one reference count): promotions pass it from the registry to
/// their evaluation, gates and writes.
#[derive(Clone)]
pub struct Manifest {
    inner: Arc<Inner>,
}

#[derive(PartialEq, Eq)]
struct Inner {
    digest: Digest,
    media_type: String,
    bytes: Arc<[u8]>,
    body: ManifestBody,
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner == other.inner
    }
}

impl Eq for Manifest {}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("digest", &self.inner.digest)
            .field("media_type", &self.inner.media_type)
            .field("len", &self.inner.bytes.len())
            .finish()
    }
}

impl Manifest {
    /// Wraps raw manifest bytes. The media type is taken from `media_type` when given, else from
    /// the body's `mediaType`, else guessed from its shape (`manifests` means an index).
    /// Refuses bytes that are not a JSON object.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>, media_type: Option<&str>) -> Result<Self> {
        let bytes = bytes.into();
        let body: ManifestBody = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(
                "manifest",
                format!("{} bytes", bytes.len()),
                format!("not an OCI or Docker manifest: {e}"),
            )
        })?;
        let media_type = match media_type {
            Some(m) => m.to_string(),
            None => body.media_type.clone().unwrap_or_else(|| {
                if body.manifests.is_some() {
                    OCI_INDEX.to_string()
                } else {
                    OCI_MANIFEST.to_string()
                }
            }),
        };
        Ok(Manifest {
            inner: Arc::new(Inner {
                digest: Digest::of(&bytes),
                media_type,
                bytes,
                body,
            }),
        })
    }

    /// The digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.inner.digest
    }

    /// The media type.
    pub fn media_type(&self) -> &str {
        &self.inner.media_type
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.inner.bytes
    }

    /// Whether this is an image index or manifest list.
    pub fn is_index(&self) -> bool {
        self.inner.media_type == OCI_INDEX || self.inner.media_type == DOCKER_MANIFEST_LIST
    }

    /// The parsed body (parsed once, when the value was built).
    pub fn body(&self) -> &ManifestBody {
        &self.inner.body
    }

    /// A descriptor of this manifest, for use as a `subject` or index entry.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.inner.media_type.clone(),
            digest: self.inner.digest.clone(),
            size: self.inner.bytes.len() as u64,
            annotations: BTreeMap::new(),
            artifact_type: None,
            platform: None,
        }
    }
}

/// A reference to content: media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Artifact type, on referrer descriptors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Platform, on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

/// The fields of an image manifest or index that promotion reads. Unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBody {
    /// `schemaVersion`, 2 for every supported type.
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// `mediaType`, when the body states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `artifactType`, for OCI artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob (image manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// The layer blobs (image manifests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Descriptor>,
    /// The child manifests (indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<Descriptor>>,
    /// The manifest this one refers to (referrers such as signatures and evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ManifestBody {
    /// The blobs this manifest references directly (config first, then layers).
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }

    /// The child manifests of an index (empty for an image manifest).
    pub fn children(&self) -> &[Descriptor] {
        self.manifests.as_deref().unwrap_or(&[])
    }

    /// Sum of the sizes of the referenced blobs (config and layers), for size policies;
    /// `u64::MAX` when the sizes a manifest states add up to more.
    pub fn blob_size(&self) -> u64 {
        self.blobs().fold(0, |sum, d| sum.saturating_add(d.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_body_or_shape() {
        let m = Manifest::from_bytes(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#.to_vec(),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type(), DOCKER_MANIFEST);
        let m =
            Manifest::from_bytes(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(), None).unwrap();
        assert!(m.is_index());
        assert!(Manifest::from_bytes(b"not json".to_vec(), None).is_err());
    }

    #[test]
    fn digest_is_of_the_exact_bytes() {
        let a = br#"{"schemaVersion":2}"#.to_vec();
        let b = br#"{ "schemaVersion": 2 }"#.to_vec();
        let ma = Manifest::from_bytes(a.clone(), None).unwrap();
        let mb = Manifest::from_bytes(b, None).unwrap();
        assert_ne!(ma.digest(), mb.digest());
        assert_eq!(ma.digest(), &Digest::of(&a));
    }
}
