//! Audit checkpoints in the CLI: the store a location names, the keys, and the outbox
//! consumer that checkpoints every N events when the manifest asks for it.

use std::sync::Arc;

use floe_promotion::attest::{KeyVerifier, Signer};
use floe_promotion::checkpoint::{
    CheckpointKeys, CheckpointNotifier, CheckpointStore, FileCheckpoints, RegistryCheckpoints,
};
use floe_promotion::config::{AttestationSettings, CheckpointLocation, PromotionSettings};
use floe_promotion::{ArtifactRegistry, HistoryStore, Notifier, Result};
use floe_promotion_oci::{CosignKeySigner, CosignKeyVerifier};

/// The store at `location`: a JSON Lines file, or an OCI repository reached through
/// `registry` (a remote registry or a layout directory).
pub(crate) fn store(
    location: &CheckpointLocation,
    registry: Arc<dyn ArtifactRegistry>,
) -> Arc<dyn CheckpointStore> {
    match location {
        CheckpointLocation::File(path) => Arc::new(FileCheckpoints::new(path)),
        CheckpointLocation::Repository(repo) => {
            Arc::new(RegistryCheckpoints::new(registry, repo.clone()))
        }
    }
}

/// The verifying key of `signer`, from its public key.
pub(crate) fn own_key(signer: &dyn Signer) -> Result<Arc<dyn KeyVerifier>> {
    Ok(Arc::new(CosignKeyVerifier::from_pem(
        "the attestation key's public key",
        signer.public_key_pem().as_bytes(),
    )?))
}

/// The keys of `attestation`, loaded (and decrypted) when the first checkpoint is signed.
fn lazy_keys(attestation: AttestationSettings) -> CheckpointKeys {
    Arc::new(move || {
        let signer: Arc<dyn Signer> = Arc::new(CosignKeySigner::from_settings(&attestation)?);
        let key = own_key(signer.as_ref())?;
        Ok((signer, key))
    })
}

/// The automatic checkpointer, when `attestation.checkpoints.every` is set.
pub(crate) fn notifier(
    settings: &PromotionSettings,
    history: Arc<dyn HistoryStore>,
    registry: Arc<dyn ArtifactRegistry>,
) -> Option<Arc<dyn Notifier>> {
    let attestation = settings.attestation.as_ref()?;
    let checkpoints = attestation.checkpoints.as_ref()?;
    let every = checkpoints.every?;
    Some(Arc::new(CheckpointNotifier::new(
        history,
        store(&checkpoints.to, registry),
        every,
        lazy_keys(attestation.clone()),
    )))
}
