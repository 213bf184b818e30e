//! Attestations on a registry, laid out as cosign lays them out, and read back.
//!
//! One signed statement is written twice, so both kinds of readers find it:
//!
//! - **cosign's attestation tag** `sha256-<hex>.att` (what `cosign verify-attestation` and the
//!   Sigstore policy-controller read): an OCI image manifest whose config is an OCI image
//!   config and whose layers are DSSE envelopes (`application/vnd.dsse.envelope.v1+json`),
//!   each annotated with `predicateType` and `dev.cosignproject.cosign/signature: ""` (the
//!   signature is inside the envelope). A new attestation is appended to the layers already
//!   there, as `cosign attest` does.
//! - **an OCI 1.1 referrer**: a manifest with `subject` set to the digest, `artifactType`
//!   `application/vnd.in-toto+json` (cosign's choice for attestation referrers), an empty
//!   config and the same envelope as its one layer. Referrers are immutable, so one
//!   attestation can never be lost to another's append.
//!
//! floe adds the annotation `dev.floe.event` (the id of the audit event the statement comes
//! from) to both, so writing the attestation of the same event again writes nothing.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::dsse::{DSSE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::error::{Error, Result};
use crate::model::{Digest, Reference, Repository, Tag};
use crate::registry::{
    ArtifactRegistry, Descriptor, Manifest, OCI_EMPTY, OCI_MANIFEST, SMALL_BLOB_LIMIT,
};

/// The layer and manifest annotation naming a statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// cosign's signature annotation; empty for attestations (the signature is in the envelope).
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The annotation naming the audit event an attestation was made from.
pub const EVENT_ANNOTATION: &str = "dev.floe.event";

/// The media type of the config of cosign's attestation manifests.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How many times an append to the attestation tag is tried when another writer's append
/// replaced it in between.
const APPEND_ATTEMPTS: usize = 4;

/// What [`attach`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The envelope blob's digest.
    pub envelope: Digest,
    /// The attestation tag's manifest after the append (`sha256-<hex>.att`).
    pub attestation_manifest: Digest,
    /// The referrer manifest.
    pub referrer: Digest,
    /// Whether anything was written (false: this event's attestation was there already).
    pub written: bool,
}

/// One envelope found on a digest, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundEnvelope {
    /// The envelope.
    pub envelope: Envelope,
    /// The envelope blob's digest.
    pub digest: Digest,
    /// Where it was found: `sha256-<hex>.att` or the referrer manifest's digest.
    pub found_in: String,
}

/// Attaches a signed statement (`envelope`, whose statement has `predicate_type`) to `subject`
/// in `repo`: appended to the attestation tag and written as a referrer. With `event`, the
/// attestation of that event is written once: a second call finds it and writes nothing.
/// A subject missing from the repository is [`Error::NotFound`].
pub async fn attach(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    subject: &Digest,
    envelope: &Envelope,
    predicate_type: &str,
    event: Option<&str>,
    created: chrono::DateTime<chrono::Utc>,
) -> Result<Attached> {
    let target = registry
        .resolve(repo, &Reference::Digest(subject.clone()))
        .await?;
    let bytes = envelope.to_json();
    let size = bytes.len() as u64;
    let envelope_digest = registry.push_blob(repo, bytes).await?;
    let mut annotations = BTreeMap::from([
        (
            PREDICATE_TYPE_ANNOTATION.to_string(),
            predicate_type.to_string(),
        ),
        (COSIGN_SIGNATURE_ANNOTATION.to_string(), String::new()),
    ]);
    if let Some(id) = event {
        annotations.insert(EVENT_ANNOTATION.to_string(), id.to_string());
    }
    let layer = Descriptor {
        media_type: DSSE_MEDIA_TYPE.to_string(),
        digest: envelope_digest.clone(),
        size,
        annotations,
        artifact_type: None,
        platform: None,
    };
    let (attestation_manifest, appended) = append_to_tag(registry, repo, subject, &layer).await?;
    let (referrer, referred) = write_referrer(
        registry,
        repo,
        &target,
        &layer,
        predicate_type,
        event,
        created,
    )
    .await?;
    Ok(Attached {
        envelope: envelope_digest,
        attestation_manifest,
        referrer,
        written: appended || referred,
    })
}

/// Whether `layer` is already among `layers`: the same event, or the same envelope.
fn holds(layers: &[Value], layer: &Descriptor) -> bool {
    let event = layer.annotations.get(EVENT_ANNOTATION);
    layers.iter().any(|l| {
        l.get("digest").and_then(Value::as_str) == Some(layer.digest.as_str())
            || event.is_some_and(|id| {
                l.pointer("/annotations/dev.floe.event")
                    .and_then(Value::as_str)
                    == Some(id)
            })
    })
}

fn bad_manifest(repo: &Repository, tag: &Tag, why: impl std::fmt::Display) -> Error {
    Error::Store {
        backend: "attestations",
        location: format!("{repo}:{tag}"),
        message: format!("the attestation manifest cannot be extended: {why}"),
    }
}

/// Appends `layer` to the attestation tag's manifest (creating it), keeping every member of
/// the manifest already there; tried again when another writer replaced it meanwhile.
async fn append_to_tag(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    subject: &Digest,
    layer: &Descriptor,
) -> Result<(Digest, bool)> {
    let tag = Tag::new(subject.attestation_tag())?;
    for _ in 0..APPEND_ATTEMPTS {
        let existing = match registry.resolve(repo, &Reference::Tag(tag.clone())).await {
            Ok(m) => Some(m),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut manifest: Value = match &existing {
            Some(m) => {
                serde_json::from_slice(m.bytes()).map_err(|e| bad_manifest(repo, &tag, e))?
            }
            None => json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST}),
        };
        let mut layers: Vec<Value> = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if holds(&layers, layer) {
            let digest = existing
                .map(|m| m.digest().clone())
                .unwrap_or_else(|| layer.digest.clone());
            return Ok((digest, false));
        }
        layers.push(serde_json::to_value(layer).map_err(|e| bad_manifest(repo, &tag, e))?);
        let config = image_config(registry, repo, &manifest, &layers).await?;
        let config_size = config.len() as u64;
        let config_digest = registry.push_blob(repo, config).await?;
        let object = manifest
            .as_object_mut()
            .ok_or_else(|| bad_manifest(repo, &tag, "not a JSON object"))?;
        object.insert(
            "config".into(),
            json!({"mediaType": OCI_IMAGE_CONFIG, "size": config_size, "digest": config_digest}),
        );
        object.insert("layers".into(), Value::Array(layers));
        let bytes = serde_json::to_vec(&manifest).map_err(|e| bad_manifest(repo, &tag, e))?;
        let written = Manifest::from_bytes(bytes, Some(OCI_MANIFEST))?;
        registry.put_manifest(repo, Some(&tag), &written).await?;
        // Read back: a concurrent append may have replaced ours; then append again to theirs.
        let now = registry.resolve(repo, &Reference::Tag(tag.clone())).await?;
        let now_layers: Vec<Value> = serde_json::from_slice::<Value>(now.bytes())
            .ok()
            .and_then(|v| v.get("layers").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        if holds(&now_layers, layer) {
            return Ok((now.digest().clone(), true));
        }
    }
    Err(Error::Conflict(format!(
        "{repo}:{tag} kept changing while an attestation was appended to it; retried {APPEND_ATTEMPTS} times"
    )))
}

/// The OCI image config of an attestation manifest with `layers`: the one there, with its
/// `rootfs.diff_ids` listing the layers (the envelopes are uncompressed, so a layer's diff id
/// is its digest), as go-containerregistry's append writes it.
async fn image_config(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    manifest: &Value,
    layers: &[Value],
) -> Result<Vec<u8>> {
    let mut config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "os": "",
        "config": {},
    });
    if let Some(digest) = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .and_then(|d| Digest::new(d).ok())
        && let Ok(bytes) = registry.fetch_blob(repo, &digest, SMALL_BLOB_LIMIT).await
        && let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&bytes)
    {
        config = v;
    }
    let diff_ids: Vec<Value> = layers
        .iter()
        .filter_map(|l| l.get("digest").cloned())
        .collect();
    if let Some(object) = config.as_object_mut() {
        object.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
    }
    Ok(serde_json::to_vec(&config).unwrap_or_default())
}

/// Writes the referrer manifest of `layer` unless one for the same event (or envelope) is
/// there.
async fn write_referrer(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    target: &Manifest,
    layer: &Descriptor,
    predicate_type: &str,
    event: Option<&str>,
    created: chrono::DateTime<chrono::Utc>,
) -> Result<(Digest, bool)> {
    for referrer in registry.referrers(repo, target.digest()).await? {
        if referrer.artifact_type.as_deref() != Some(IN_TOTO_PAYLOAD_TYPE) {
            continue;
        }
        let manifest = registry
            .resolve(repo, &Reference::Digest(referrer.digest.clone()))
            .await?;
        let layers: Vec<Value> = serde_json::from_slice::<Value>(manifest.bytes())
            .ok()
            .and_then(|v| v.get("layers").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        let same_event = event.is_some()
            && manifest
                .body()
                .annotations
                .get(EVENT_ANNOTATION)
                .map(String::as_str)
                == event;
        if same_event || holds(&layers, layer) {
            return Ok((manifest.digest().clone(), false));
        }
    }
    let empty = registry.push_blob(repo, b"{}".to_vec()).await?;
    let mut annotations = BTreeMap::from([
        (
            "org.opencontainers.image.created".to_string(),
            created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        (
            PREDICATE_TYPE_ANNOTATION.to_string(),
            predicate_type.to_string(),
        ),
    ]);
    if let Some(id) = event {
        annotations.insert(EVENT_ANNOTATION.to_string(), id.to_string());
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO_PAYLOAD_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [layer],
        "subject": target.descriptor(),
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| {
        Error::invalid(
            "attestation referrer",
            target.digest().to_string(),
            e.to_string(),
        )
    })?;
    let manifest = Manifest::from_bytes(bytes, Some(OCI_MANIFEST))?;
    registry.put_manifest(repo, None, &manifest).await?;
    Ok((manifest.digest().clone(), true))
}

/// Every DSSE envelope attached to `subject` in `repo`, from the attestation tag and from
/// the in-toto referrers, each once (by blob digest), unverified. Layers that are not DSSE
/// envelopes, or whose blob is not one, are skipped: anyone who can push may add garbage,
/// and garbage must not hide a valid attestation.
pub async fn envelopes(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    subject: &Digest,
) -> Result<Vec<FoundEnvelope>> {
    let mut layers: Vec<(Descriptor, String)> = Vec::new();
    let tag = Tag::new(subject.attestation_tag())?;
    match registry.resolve(repo, &Reference::Tag(tag.clone())).await {
        Ok(m) => {
            for l in &m.body().layers {
                layers.push((l.clone(), tag.to_string()));
            }
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    for referrer in registry.referrers(repo, subject).await? {
        if referrer.artifact_type.as_deref() != Some(IN_TOTO_PAYLOAD_TYPE) {
            continue;
        }
        let m = registry
            .resolve(repo, &Reference::Digest(referrer.digest.clone()))
            .await?;
        for l in &m.body().layers {
            layers.push((l.clone(), referrer.digest.to_string()));
        }
    }
    let mut out: Vec<FoundEnvelope> = Vec::new();
    for (layer, found_in) in layers {
        if layer.media_type != DSSE_MEDIA_TYPE || out.iter().any(|f| f.digest == layer.digest) {
            continue;
        }
        let bytes = match registry
            .fetch_blob(repo, &layer.digest, SMALL_BLOB_LIMIT)
            .await
        {
            Ok(b) => b,
            Err(Error::NotFound { .. } | Error::InvalidInput { .. }) => continue,
            Err(e) => return Err(e),
        };
        if let Ok(envelope) = Envelope::from_json(&bytes) {
            out.push(FoundEnvelope {
                envelope,
                digest: layer.digest,
                found_in,
            });
        }
    }
    Ok(out)
}
