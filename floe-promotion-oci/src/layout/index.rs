//! The layout's `index.json`: its entries, tags and the edits floe makes to it.
//!
//! Fields floe does not know (top-level or per entry, e.g. `platform`, `urls`) are kept as read,
//! so rewriting an index written by another tool loses nothing.

use std::collections::BTreeMap;

use floe_promotion::registry::{Manifest, OCI_INDEX};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The annotation naming an entry's tag, as skopeo, oras and crane write it for `oci:<dir>:<tag>`.
pub(super) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `index.json`: an OCI image index whose entries are the layout's tagged and untagged manifests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ImageIndex {
    #[serde(default = "schema_version_2")]
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    pub(super) manifests: Vec<IndexEntry>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

fn schema_version_2() -> u32 {
    2
}

/// One descriptor of `index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IndexEntry {
    #[serde(default)]
    pub(super) media_type: String,
    /// Kept as a string: an entry with another algorithm is skipped, not an unreadable index.
    pub(super) digest: String,
    pub(super) size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) artifact_type: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl IndexEntry {
    /// The untagged entry of a manifest. Referrers carry their `artifactType` (the manifest's
    /// `artifactType`, else its config's media type, as the referrers API reports it).
    pub(super) fn of(manifest: &Manifest) -> Self {
        let body = manifest.body();
        let artifact_type = body.artifact_type.clone().or_else(|| {
            body.subject
                .as_ref()
                .and(body.config.as_ref())
                .map(|c| c.media_type.clone())
        });
        IndexEntry {
            media_type: manifest.media_type().to_string(),
            digest: manifest.digest().to_string(),
            size: manifest.bytes().len() as u64,
            annotations: BTreeMap::new(),
            artifact_type,
            other: Map::new(),
        }
    }

    /// This entry, tagged `tag`.
    pub(super) fn tagged(mut self, tag: &str) -> Self {
        self.annotations
            .insert(REF_NAME.to_string(), tag.to_string());
        self
    }

    /// The tag this entry carries, if any.
    pub(super) fn tag(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// An edit of `index.json`.
#[derive(Clone, Debug)]
pub(super) enum IndexChange {
    /// Point `tag` at the entry's manifest, replacing the tag's previous entry.
    Tag(String, IndexEntry),
    /// Keep the manifest in the index (so layout tools do not collect it) without a tag, unless
    /// an entry for its digest already exists.
    Untagged(IndexEntry),
}

impl Default for ImageIndex {
    fn default() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            other: Map::new(),
        }
    }
}

impl ImageIndex {
    /// The entry tagged `tag` (the first one, if a foreign tool wrote several).
    pub(super) fn tagged(&self, tag: &str) -> Option<&IndexEntry> {
        self.manifests.iter().find(|e| e.tag() == Some(tag))
    }

    /// The first entry for `digest`, tagged or not.
    pub(super) fn entry_for(&self, digest: &str) -> Option<&IndexEntry> {
        self.manifests.iter().find(|e| e.digest == digest)
    }

    /// Applies `change`; returns whether the index changed.
    pub(super) fn apply(&mut self, change: &IndexChange) -> bool {
        match change {
            IndexChange::Tag(tag, entry) => {
                let positions: Vec<usize> = self
                    .manifests
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.tag() == Some(tag.as_str()))
                    .map(|(i, _)| i)
                    .collect();
                match positions.as_slice() {
                    [] => {
                        self.manifests.push(entry.clone());
                        true
                    }
                    [only] if self.manifests[*only] == *entry => false,
                    [first, rest @ ..] => {
                        self.manifests[*first] = entry.clone();
                        for i in rest.iter().rev() {
                            self.manifests.remove(*i);
                        }
                        true
                    }
                }
            }
            IndexChange::Untagged(entry) => {
                if self.entry_for(&entry.digest).is_some() {
                    false
                } else {
                    self.manifests.push(entry.clone());
                    true
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str) -> IndexEntry {
        IndexEntry {
            media_type: "m".into(),
            digest: digest.into(),
            size: 1,
            annotations: BTreeMap::new(),
            artifact_type: None,
            other: Map::new(),
        }
    }

    #[test]
    fn keeps_unknown_fields() {
        let text = r#"{"schemaVersion":2,"x-top":1,"manifests":[{"mediaType":"m","digest":"sha256:00","size":3,"platform":{"os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}"#;
        let index: ImageIndex = serde_json::from_str(text).unwrap();
        let back: Value = serde_json::to_value(&index).unwrap();
        assert_eq!(back["x-top"], 1);
        assert_eq!(back["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(index.tagged("v1").unwrap().digest, "sha256:00");
        assert!(back.get("mediaType").is_none());
    }

    #[test]
    fn tag_replaces_in_place_and_dedups() {
        let mut index = ImageIndex::default();
        assert!(index.apply(&IndexChange::Tag("v1".into(), entry("a").tagged("v1"))));
        assert!(index.apply(&IndexChange::Untagged(entry("b"))));
        assert!(!index.apply(&IndexChange::Tag("v1".into(), entry("a").tagged("v1"))));
        index.manifests.push(entry("c").tagged("v1"));
        assert!(index.apply(&IndexChange::Tag("v1".into(), entry("d").tagged("v1"))));
        let digests: Vec<&str> = index.manifests.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(digests, ["d", "b"]);
    }

    #[test]
    fn untagged_entry_only_once() {
        let mut index = ImageIndex::default();
        assert!(index.apply(&IndexChange::Tag("v1".into(), entry("a").tagged("v1"))));
        assert!(!index.apply(&IndexChange::Untagged(entry("a"))));
        assert!(index.apply(&IndexChange::Untagged(entry("b"))));
        assert!(!index.apply(&IndexChange::Untagged(entry("b"))));
        assert_eq!(index.manifests.len(), 2);
    }
}
