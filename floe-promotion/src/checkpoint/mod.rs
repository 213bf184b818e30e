//! Signed audit checkpoints: evidence, kept outside the state, of what the audit chain held.
//!
//! The hash chain proves that no event was changed *unless the whole chain after it was
//! rewritten consistently*, head row included: whoever can write the state can do that. A
//! checkpoint closes the gap. It is a [`Checkpoint`] — the sequence number of an event, that
//! event's hash (the chain's head when it was taken), the time, the signing key's fingerprint
//! and the hash of the first event (which chain it is) — signed as a DSSE envelope
//! ([`Envelope`], payload type [`CHECKPOINT_PAYLOAD_TYPE`]) with the attestation key and
//! stored somewhere the state's writers cannot reach: a [`CheckpointStore`].
//!
//! - [`take_checkpoint`] signs the current head (after checking the chain up to it) and stores
//!   it; [`checkpoint_event`] signs a given event; [`CheckpointNotifier`] does so every N
//!   events, as an outbox consumer.
//! - [`verify_checkpoints`] checks a history against a list of stored checkpoints: every
//!   signature verifies with the key, the chain verifies, and the event at each checkpoint's
//!   sequence exists with exactly the checkpointed hash. A rewrite below a checkpoint fails,
//!   naming the checkpoint (sequence, time, where it is stored) and the first event that
//!   differs, as closely as the checkpoints pin it.
//!
//! Stores: [`FileCheckpoints`] (a JSON Lines file of envelopes, appended with fsync) and
//! [`RegistryCheckpoints`] (an OCI repository through any [`ArtifactRegistry`]: each checkpoint
//! an artifact of type [`CHECKPOINT_ARTIFACT_TYPE`] with the envelope as its layer, tagged
//! `checkpoint-<sequence>`; remote registries and layout directories alike).
//!
//! [`ArtifactRegistry`]: crate::ArtifactRegistry

mod file;
mod notifier;
mod registry;
mod take;
mod verify;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::attest::{Envelope, KeyVerifier};
use crate::error::{Error, Result};
use crate::model::Digest;

pub use file::FileCheckpoints;
pub use notifier::{CHECKPOINT_NOTIFIER, CheckpointKeys, CheckpointNotifier};
pub use registry::{CHECKPOINT_TAG_PREFIX, RegistryCheckpoints};
pub use take::{TakenCheckpoint, checkpoint_event, take_checkpoint};
pub use verify::{CheckpointMismatch, CheckpointReport, verify_checkpoints};

/// The DSSE payload type of a signed checkpoint.
pub const CHECKPOINT_PAYLOAD_TYPE: &str = "application/vnd.dev.floe.checkpoint.v1+json";

/// The OCI `artifactType` of a checkpoint pushed to a repository.
pub const CHECKPOINT_ARTIFACT_TYPE: &str = "application/vnd.dev.floe.checkpoint.v1";

/// What a checkpoint attests: the audit chain held `head` as the hash of event `sequence`.
///
/// Signed as the JSON payload of a DSSE envelope:
/// `{"sequence":42,"head":"<hex>","time":"<RFC 3339>","key":"sha256:<hex>","chain":"<hex>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number of the checkpointed event.
    pub sequence: u64,
    /// That event's hash (`hex(SHA-256(prev_hash ‖ content))`).
    pub head: String,
    /// When the checkpoint was taken.
    pub time: DateTime<Utc>,
    /// The fingerprint of the signing key (`sha256:<hex>` of its public key).
    pub key: String,
    /// The hash of event 1: which chain this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

impl Checkpoint {
    /// The payload signed: the checkpoint as JSON.
    pub fn to_payload(&self) -> Vec<u8> {
        // Strings, a number and a time always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Signs the checkpoint as a DSSE envelope of type [`CHECKPOINT_PAYLOAD_TYPE`].
    pub fn sign(&self, signer: &dyn crate::attest::Signer) -> Result<Envelope> {
        Envelope::sign(CHECKPOINT_PAYLOAD_TYPE, &self.to_payload(), signer)
    }
}

/// A checkpoint as a [`CheckpointStore`] holds it: the envelope and where it is, not yet
/// verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The sequence the store files it under (its tag, or its payload read unverified); must
    /// agree with the signed payload.
    pub sequence: u64,
    /// The signed envelope, exactly as stored.
    pub envelope: Envelope,
    /// Where it is stored: `FILE:line N`, `REPOSITORY:checkpoint-N`.
    pub location: String,
}

/// A checkpoint whose signature verified, with where it was stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCheckpoint {
    /// What it attests.
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// Where it was stored.
    pub location: String,
}

impl StoredCheckpoint {
    /// Checks the envelope with `key` and reads the checkpoint: the signature must verify,
    /// the payload type must be [`CHECKPOINT_PAYLOAD_TYPE`], the payload a [`Checkpoint`] at
    /// the sequence the store filed it under, naming `key`'s fingerprint. Every refusal names
    /// the checkpoint's location; a bad signature is [`Error::Signature`].
    pub fn open(&self, key: &dyn KeyVerifier) -> Result<VerifiedCheckpoint> {
        let payload = self.envelope.verify(key).map_err(|e| match e {
            Error::Signature { digest, message } => Error::Signature {
                digest,
                message: format!(
                    "checkpoint {} at {}: {message} (signed by another key, or altered)",
                    self.sequence, self.location
                ),
            },
            other => other,
        })?;
        let bad = |why: String| Error::invalid("checkpoint", self.location.clone(), why);
        if self.envelope.payload_type != CHECKPOINT_PAYLOAD_TYPE {
            return Err(bad(format!(
                "the envelope holds {:?}, not a floe checkpoint ({CHECKPOINT_PAYLOAD_TYPE})",
                crate::Excerpt::new(&self.envelope.payload_type).to_string()
            )));
        }
        let checkpoint: Checkpoint = serde_json::from_slice(&payload)
            .map_err(|e| bad(format!("the signed payload is not a checkpoint: {e}")))?;
        if checkpoint.sequence != self.sequence {
            return Err(bad(format!(
                "filed as checkpoint {} but the signed payload is for event {}",
                self.sequence, checkpoint.sequence
            )));
        }
        if checkpoint.key != key.fingerprint() {
            return Err(Error::Signature {
                digest: Digest::of(&payload),
                message: format!(
                    "checkpoint {} at {} names the key {}, not {}",
                    self.sequence,
                    self.location,
                    checkpoint.key,
                    key.fingerprint()
                ),
            });
        }
        Ok(VerifiedCheckpoint {
            checkpoint,
            location: self.location.clone(),
        })
    }
}

/// The sequence a checkpoint envelope's payload claims, read without verifying it (stores
/// that file checkpoints by their payload use it); `None` when it is not a checkpoint.
pub fn claimed_sequence(envelope: &Envelope) -> Option<u64> {
    #[derive(Deserialize)]
    struct Claim {
        sequence: u64,
    }
    if envelope.payload_type != CHECKPOINT_PAYLOAD_TYPE {
        return None;
    }
    let payload = envelope.payload_bytes().ok()?;
    serde_json::from_slice::<Claim>(&payload)
        .ok()
        .map(|c| c.sequence)
}

/// Where signed checkpoints are kept, outside the state they attest.
///
/// # Contract
///
/// - `put` stores the envelope unchanged under `sequence` and durably before it returns (a
///   file is synced to disk, a registry acknowledged the push), and returns where it is;
///   `list` then returns it with an equal envelope and that location.
/// - `put` of a sequence already stored with an equal envelope changes nothing and returns
///   the stored location (a retried put); with another envelope it is
///   [`Error::Conflict`] naming the sequence, and the stored one is
///   kept.
/// - `list` returns every stored checkpoint once, by ascending sequence, each with a location
///   that names the store ([`CheckpointStore::describe`]) and the entry, distinct per
///   checkpoint; a store never written to lists nothing.
/// - `latest` is the checkpoint with the highest sequence (the last of `list`), `None` for an
///   empty store.
/// - An entry that cannot be read (not an envelope, not a checkpoint) is
///   [`Error::InvalidInput`] naming its location; nothing is
///   skipped silently.
/// - Concurrent `put`s of different sequences, from tasks or processes, are all stored.
#[async_trait]
pub trait CheckpointStore: Send + Sync + Debug + 'static {
    /// Stores a signed checkpoint of event `sequence`; returns its location.
    async fn put(&self, sequence: u64, envelope: &Envelope) -> Result<String>;

    /// Every stored checkpoint, by ascending sequence.
    async fn list(&self) -> Result<Vec<StoredCheckpoint>>;

    /// The checkpoint with the highest sequence.
    async fn latest(&self) -> Result<Option<StoredCheckpoint>> {
        Ok(self.list().await?.pop())
    }

    /// The store, for messages: a file path, `oci://HOST/PATH` or `oci-layout:DIR`.
    fn describe(&self) -> String;
}
