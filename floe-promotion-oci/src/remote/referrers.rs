//! Referrers: the referrers API where the registry has it, else the referrers tag schema
//! (`sha256-<hex>` tag holding an OCI index of referrer descriptors), which this client also
//! writes, because registries without the API (distribution 2.8) do not.

use floe_promotion::registry::{Descriptor, Manifest, ManifestBody, OCI_INDEX};
use floe_promotion::{Digest, Error, Reference, Result, Tag};

use super::Inner;
use super::error::classify;
use super::location::RemoteRepo;

/// The referrers index entry of `manifest`: its descriptor, with `artifactType` (the
/// manifest's, else its config's media type) and its annotations.
pub(super) fn entry_for(manifest: &Manifest, body: &ManifestBody) -> Descriptor {
    Descriptor {
        artifact_type: body
            .artifact_type
            .clone()
            .or_else(|| body.config.as_ref().map(|c| c.media_type.clone())),
        annotations: body.annotations.clone(),
        ..manifest.descriptor()
    }
}

impl Inner {
    /// Adds `entry` to the referrers fallback index of `subject` in `r`, keeping the entries
    /// already there (unknown fields included), sorted by digest.
    pub(super) async fn add_referrer(
        &self,
        r: &RemoteRepo,
        subject: &Digest,
        entry: Descriptor,
    ) -> Result<()> {
        let _serialised = self.index_lock(r, subject).lock().await;
        let tag = Tag::new(subject.referrers_tag())?;
        let mut entries: Vec<serde_json::Value> =
            match self.resolve(r, &Reference::Tag(tag.clone())).await {
                Ok(index) => {
                    let value: serde_json::Value =
                        serde_json::from_slice(index.bytes()).map_err(|e| Error::Store {
                            backend: "oci",
                            location: r.at_tag(&tag),
                            message: format!("the referrers index is not JSON: {e}"),
                        })?;
                    value
                        .get("manifests")
                        .and_then(|m| m.as_array())
                        .cloned()
                        .unwrap_or_default()
                }
                Err(Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
        let digest_of = |v: &serde_json::Value| {
            v.get("digest")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string()
        };
        if entries
            .iter()
            .any(|e| digest_of(e) == entry.digest.as_str())
        {
            return Ok(());
        }
        let value = serde_json::to_value(&entry).map_err(|e| {
            Error::invalid(
                "referrer descriptor",
                entry.digest.to_string(),
                e.to_string(),
            )
        })?;
        entries.push(value);
        entries.sort_by_key(|e| digest_of(e));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        });
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| Error::invalid("referrers index", subject.to_string(), e.to_string()))?;
        let index = Manifest::from_bytes(bytes, Some(OCI_INDEX))?;
        self.push_manifest_raw(r, Some(&tag), &index).await
    }

    /// The referrers of `subject` in `r`, sorted by digest.
    pub(super) async fn referrers(
        &self,
        r: &RemoteRepo,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>> {
        self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let oref = r.digest_ref(subject);
        let target = format!("referrers of {}", r.at_digest(subject));
        let index = self
            .retry(
                r.host(),
                &format!("listing {target}"),
                self.timeout(),
                || async {
                    clients
                        .client
                        .pull_referrers(&oref, None)
                        .await
                        .map_err(|e| classify(&e, r.host(), "referrers", &r.at_digest(subject)))
                },
            )
            .await;
        let index = match index {
            Ok(index) => index,
            Err(Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out: Vec<Descriptor> = Vec::new();
        for entry in index.manifests {
            let Ok(digest) = Digest::new(entry.digest.as_str()) else {
                tracing::warn!(repository = %r, digest = %entry.digest, "skipping a referrer with an unsupported digest");
                continue;
            };
            if out.iter().any(|d| d.digest == digest) {
                continue;
            }
            out.push(Descriptor {
                media_type: entry.media_type,
                digest,
                size: u64::try_from(entry.size).unwrap_or(0),
                annotations: entry.annotations.unwrap_or_default(),
                artifact_type: entry.artifact_type,
                platform: entry.platform.and_then(|p| serde_json::to_value(p).ok()),
            });
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }
}
