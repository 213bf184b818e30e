//! Signed audit checkpoints with real cosign keys: taking and verifying them, a consistent
//! rewrite of the chain that only checkpoints catch, another key refused, automatic
//! checkpoints from the outbox; and the checkpoint-store conformance suite against OCI layout
//! directories and a real registry, with skopeo reading a pushed checkpoint artifact.

use std::sync::Arc;
use std::time::Duration;

use floe_promotion::attest::{KeyVerifier, Signer};
use floe_promotion::checkpoint::{
    CHECKPOINT_ARTIFACT_TYPE, CheckpointNotifier, CheckpointStore, FileCheckpoints,
    RegistryCheckpoints, StoredCheckpoint, TakenCheckpoint, take_checkpoint, verify_checkpoints,
};
use floe_promotion::history::{EventKind, EventRecord};
use floe_promotion::notify::{Dispatcher, InMemoryCursors};
use floe_promotion::{
    Actor, ArtifactRegistry, Error, HistoryExt, HistoryStore, InMemoryHistory, Repository,
};
use floe_promotion_oci::testing::{TestRegistry, skopeo_raw_manifest};
use floe_promotion_oci::{
    CosignKeySigner, CosignKeyVerifier, OciLayoutRegistry, generate_key_pair,
};

fn keys() -> (Arc<CosignKeySigner>, Arc<CosignKeyVerifier>) {
    let (private, public) = generate_key_pair(b"pw").expect("generate");
    let signer =
        CosignKeySigner::from_pem("floe.key", private.as_bytes(), Some(b"pw")).expect("key");
    let verifier = CosignKeyVerifier::from_pem("floe.pub", public.as_bytes()).expect("pub");
    (Arc::new(signer), Arc::new(verifier))
}

async fn append(history: &InMemoryHistory, n: usize) {
    for i in 0..n {
        let mut r = EventRecord::new(
            EventKind::Locked,
            Actor::new("ops").expect("actor"),
            chrono::Utc::now(),
        );
        r.environment = Some(floe_promotion::EnvName::new("prod").expect("env"));
        r.reason = Some(format!("maintenance {i}"));
        history.append(r).await.expect("append");
    }
}

/// Signs a checkpoint over the head of `history` into `store`, now.
async fn take(
    history: &dyn HistoryStore,
    store: &dyn CheckpointStore,
    signer: &dyn Signer,
    key: &dyn KeyVerifier,
) -> floe_promotion::Result<TakenCheckpoint> {
    take_checkpoint(history, store, signer, key, chrono::Utc::now()).await
}

/// The checkpoints `store` holds.
async fn listed(store: &dyn CheckpointStore) -> Vec<StoredCheckpoint> {
    store.list().await.expect("list")
}

/// A fresh key pair, a history of some events and a checkpoint file in a temporary directory.
struct Journal {
    signer: Arc<CosignKeySigner>,
    key: Arc<CosignKeyVerifier>,
    history: InMemoryHistory,
    store: FileCheckpoints,
    _dir: tempfile::TempDir,
}

impl Journal {
    /// `events` events, checkpoints in the file `file`, none taken yet.
    async fn new(file: &str, events: usize) -> Journal {
        let (signer, key) = keys();
        let history = InMemoryHistory::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileCheckpoints::new(dir.path().join(file));
        append(&history, events).await;
        Journal {
            signer,
            key,
            history,
            store,
            _dir: dir,
        }
    }

    /// Signs a checkpoint over the history's head with the journal's own key.
    async fn checkpoint(&self) -> floe_promotion::Result<TakenCheckpoint> {
        take(
            &self.history,
            &self.store,
            self.signer.as_ref(),
            self.key.as_ref(),
        )
        .await
    }
}

/// A checkpoint store in repository `repo` of `registry`.
fn registry_store(
    registry: Arc<dyn ArtifactRegistry>,
    repo: Repository,
) -> Arc<dyn CheckpointStore> {
    Arc::new(RegistryCheckpoints::new(registry, repo))
}

/// The chain rewritten from event `k` consistently, head included: the same events with event
/// `k`'s reason changed, appended afresh so every hash from `k` on is recomputed and the chain
/// verifies on its own.
async fn rewritten_from(history: &InMemoryHistory, k: u64) -> InMemoryHistory {
    let rewritten = InMemoryHistory::new();
    for e in history.query(&Default::default()).await.expect("query") {
        let mut record = e.record.clone();
        if e.seq == k {
            record.reason = Some("nothing to see here".into());
        }
        rewritten.append(record).await.expect("append");
    }
    rewritten
}

#[tokio::test]
async fn a_consistent_rewrite_below_a_checkpoint_is_caught_and_named() {
    let j = Journal::new("checkpoints.jsonl", 10).await;
    let first = j.checkpoint().await.expect("checkpoint 10");
    assert!(first.created);
    assert_eq!(first.checkpoint.checkpoint.sequence, 10);
    assert_eq!(first.checkpoint.checkpoint.key, j.signer.fingerprint());
    append(&j.history, 10).await;
    j.checkpoint().await.expect("checkpoint 20");
    // Taking it again signs nothing new.
    let again = j.checkpoint().await.expect("again");
    assert!(!again.created);
    append(&j.history, 5).await;

    let listed = listed(&j.store).await;
    let report = verify_checkpoints(&j.history, &listed, j.key.as_ref())
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.checked, report.matched), (2, 2));

    let history = rewritten_from(&j.history, 14).await;
    assert!(
        history.verify().await.expect("verify").is_intact(),
        "the rewrite is consistent"
    );
    let report = verify_checkpoints(&history, &listed, j.key.as_ref())
        .await
        .expect("verify");
    assert!(!report.is_intact());
    assert!(report.chain.is_intact());
    assert_eq!(report.matched, 1);
    let m = report.mismatch.expect("mismatch");
    assert_eq!(m.checkpoint.checkpoint.sequence, 20);
    assert_eq!((m.first_differing, m.exact), (11, false));
    assert!(
        m.checkpoint.location.ends_with("checkpoints.jsonl:line 2"),
        "{}",
        m.checkpoint.location
    );
    for needle in [
        "checkpoint 20",
        "checkpoints.jsonl:line 2",
        "one of events 11 to 20",
        "checkpoint 10 still matches",
    ] {
        assert!(
            m.problem.contains(needle),
            "{needle:?} missing: {}",
            m.problem
        );
    }
    // No new checkpoint is signed over the rewritten chain.
    let refused = take(&history, &j.store, j.signer.as_ref(), j.key.as_ref()).await;
    assert!(
        matches!(&refused, Err(Error::Integrity { seq: 20, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_rewrite_from_the_first_event_and_removed_events_are_named_exactly() {
    let j = Journal::new("cp.jsonl", 4).await;
    j.checkpoint().await.expect("checkpoint");
    let listed = listed(&j.store).await;

    let rewritten = InMemoryHistory::new();
    append(&rewritten, 6).await;
    let m = verify_checkpoints(&rewritten, &listed, j.key.as_ref())
        .await
        .expect("verify")
        .mismatch
        .expect("another chain");
    assert_eq!((m.first_differing, m.exact), (1, true), "{}", m.problem);
    assert!(m.problem.contains("event 1"), "{}", m.problem);

    j.history.tamper(|events| events.truncate(3));
    let m = verify_checkpoints(&j.history, &listed, j.key.as_ref())
        .await
        .expect("verify")
        .mismatch
        .expect("removed");
    assert_eq!(m.found, None);
    // Events 1 to 3 may have been rewritten as well: nothing pins them.
    assert_eq!((m.first_differing, m.exact), (1, false));
    assert!(m.problem.contains("has only 3 events"), "{}", m.problem);
}

#[tokio::test]
async fn a_checkpoint_signed_by_another_key_is_refused() {
    let j = Journal::new("cp.jsonl", 3).await;
    let (_, other) = keys();
    j.checkpoint().await.expect("checkpoint");
    let listed = listed(&j.store).await;
    let e = verify_checkpoints(&j.history, &listed, other.as_ref())
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::Signature { .. }), "{e}");
    assert!(
        e.to_string().contains("checkpoint 3 at") && e.to_string().contains("cp.jsonl:line 1"),
        "{e}"
    );
    // A signer with someone else's verifying key is refused before anything is signed.
    let e = take(&j.history, &j.store, j.signer.as_ref(), other.as_ref())
        .await
        .expect_err("mismatched keys");
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    // An altered payload under the original signature is refused too.
    let mut forged = listed.clone();
    let payload = forged[0].envelope.payload_bytes().expect("payload");
    let text = String::from_utf8(payload)
        .expect("utf8")
        .replace("\"sequence\":3", "\"sequence\":2");
    use base64::Engine as _;
    forged[0].envelope.payload = base64::engine::general_purpose::STANDARD.encode(text);
    let e = verify_checkpoints(&j.history, &forged, j.key.as_ref())
        .await
        .expect_err("forged");
    assert!(matches!(e, Error::Signature { .. }), "{e}");
    // No checkpoint at all proves nothing.
    let e = verify_checkpoints(&j.history, &[], j.key.as_ref())
        .await
        .expect_err("none");
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
}

#[tokio::test]
async fn the_outbox_consumer_checkpoints_every_n_events() {
    let (signer, key) = keys();
    let history = Arc::new(InMemoryHistory::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FileCheckpoints::new(dir.path().join("auto.jsonl")));
    let (s, k) = (signer.clone(), key.clone());
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = loads.clone();
    let notifier = CheckpointNotifier::new(
        history.clone(),
        store.clone(),
        4,
        Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok((
                s.clone() as Arc<dyn Signer>,
                k.clone() as Arc<dyn KeyVerifier>,
            ))
        }),
    );
    assert_eq!(floe_promotion::Notifier::name(&notifier), "checkpoints");
    let dispatcher = Dispatcher::new(
        history.clone(),
        Arc::new(InMemoryCursors::new()),
        vec![Arc::new(notifier)],
        Duration::from_secs(10),
    );
    append(&history, 3).await;
    dispatcher.deliver().await.expect("deliver");
    assert!(listed(store.as_ref()).await.is_empty());
    assert_eq!(
        loads.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the key was loaded for nothing"
    );
    append(&history, 7).await;
    dispatcher.deliver().await.expect("deliver");
    let seqs: Vec<u64> = listed(store.as_ref())
        .await
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(seqs, vec![4, 8]);
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    let report = verify_checkpoints(
        history.as_ref(),
        &listed(store.as_ref()).await,
        key.as_ref(),
    )
    .await
    .expect("verify");
    assert!(report.is_intact(), "{report:?}");
}

mod layout {
    use super::*;
    floe_promotion::checkpoint_store_conformance!(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = OciLayoutRegistry::location(dir.path().join("audit")).expect("location");
        (
            registry_store(Arc::new(OciLayoutRegistry::new()), repo),
            dir,
        )
    });
}

mod remote {
    use super::*;
    floe_promotion::checkpoint_store_conformance!(async {
        let registry = TestRegistry::shared();
        let store = registry_store(
            Arc::new(registry.client()),
            registry.namespace("checkpoints"),
        );
        (store, ())
    });
}

/// A checkpoint pushed to a real registry is an OCI artifact skopeo reads: the floe
/// artifactType, the envelope as its one layer, tagged checkpoint-N; it verifies from there.
#[tokio::test]
async fn a_pushed_checkpoint_is_an_oci_artifact_skopeo_reads() {
    let (signer, key) = keys();
    let registry = TestRegistry::shared();
    let repo: Repository = registry.namespace("audit");
    let store = registry_store(Arc::new(registry.client()), repo.clone());
    let history = InMemoryHistory::new();
    append(&history, 6).await;
    let taken = take(&history, store.as_ref(), signer.as_ref(), key.as_ref())
        .await
        .expect("checkpoint");
    assert_eq!(
        taken.checkpoint.location,
        format!("oci://{repo}:checkpoint-6")
    );
    let raw = skopeo_raw_manifest(&format!("{repo}:checkpoint-6"));
    let manifest: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(manifest["artifactType"], CHECKPOINT_ARTIFACT_TYPE);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(manifest["annotations"]["dev.floe.checkpoint.sequence"], "6");
    let report = verify_checkpoints(&history, &listed(store.as_ref()).await, key.as_ref())
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
}
