//! Conformance suite of [`CheckpointStore`]: one public async function per sentence of its
//! contract. Run it with [`checkpoint_store_conformance!`](crate::checkpoint_store_conformance).
//!
//! Stores keep envelopes and never check signatures, so the suite's envelopes carry a
//! placeholder signature; what is signed is tested where real keys are.

use std::sync::Arc;

use crate::Error;
use crate::attest::{Envelope, EnvelopeSignature};
use crate::checkpoint::{CHECKPOINT_PAYLOAD_TYPE, Checkpoint, CheckpointStore};

/// An envelope holding a checkpoint of event `sequence`; `variant` changes its time and
/// signature, so two variants of one sequence differ.
pub fn envelope(sequence: u64, variant: u8) -> Envelope {
    use base64::Engine as _;
    let checkpoint = Checkpoint {
        sequence,
        head: format!("{:064x}", sequence * 7 + u64::from(variant)),
        time: chrono::DateTime::from_timestamp(1_790_000_000 + i64::from(variant), 0)
            .unwrap_or_default(),
        key: format!("sha256:{}", "ab".repeat(32)),
        chain: Some("cd".repeat(32)),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    Envelope {
        payload_type: CHECKPOINT_PAYLOAD_TYPE.into(),
        payload: b64.encode(checkpoint.to_payload()),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: b64.encode([variant; 70]),
        }],
    }
}

/// `put` stores the envelope unchanged, and `list` then returns it with an equal envelope and
/// the location `put` returned.
pub async fn put_then_list_returns_it(store: Arc<dyn CheckpointStore>) {
    let e = envelope(5, 0);
    let location = store.put(5, &e).await.expect("put");
    let listed = store.list().await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].sequence, 5);
    assert_eq!(listed[0].envelope, e, "the envelope changed in the store");
    assert_eq!(listed[0].location, location);
}

/// `put` of a stored sequence with an equal envelope changes nothing and returns the stored
/// location; with another envelope it is a conflict and the stored one is kept.
pub async fn put_is_idempotent_and_never_replaces(store: Arc<dyn CheckpointStore>) {
    let first = envelope(9, 1);
    let location = store.put(9, &first).await.expect("put");
    assert_eq!(store.put(9, &first).await.expect("again"), location);
    let other = envelope(9, 2);
    let refused = store.put(9, &other).await;
    assert!(
        matches!(&refused, Err(Error::Conflict(m)) if m.contains('9')),
        "{refused:?}"
    );
    let listed = store.list().await.expect("list");
    assert_eq!(listed.len(), 1, "a duplicate was stored: {listed:?}");
    assert_eq!(
        listed[0].envelope, first,
        "the stored checkpoint was replaced"
    );
}

/// `list` returns every checkpoint once, by ascending sequence, with distinct locations that
/// name the store; a store never written to lists nothing.
pub async fn list_is_ordered_with_distinct_locations(store: Arc<dyn CheckpointStore>) {
    assert!(store.list().await.expect("empty list").is_empty());
    for seq in [30, 10, 1000, 20] {
        store.put(seq, &envelope(seq, 0)).await.expect("put");
    }
    let listed = store.list().await.expect("list");
    let seqs: Vec<u64> = listed.iter().map(|c| c.sequence).collect();
    assert_eq!(seqs, vec![10, 20, 30, 1000]);
    let describe = store.describe();
    let mut locations: Vec<&str> = listed.iter().map(|c| c.location.as_str()).collect();
    for l in &locations {
        assert!(
            l.contains(&describe),
            "{l} does not name the store {describe}"
        );
    }
    locations.sort_unstable();
    locations.dedup();
    assert_eq!(locations.len(), 4, "locations are not distinct");
    for c in &listed {
        assert_eq!(c.envelope, envelope(c.sequence, 0));
    }
}

/// `latest` is the checkpoint with the highest sequence, `None` for an empty store.
pub async fn latest_is_the_highest(store: Arc<dyn CheckpointStore>) {
    assert!(store.latest().await.expect("latest").is_none());
    for seq in [2, 11, 3] {
        store.put(seq, &envelope(seq, 0)).await.expect("put");
    }
    let latest = store.latest().await.expect("latest").expect("some");
    assert_eq!(latest.sequence, 11);
    assert_eq!(latest.envelope, envelope(11, 0));
    assert_eq!(Some(latest), store.list().await.expect("list").pop());
}

/// Concurrent `put`s of different sequences are all stored.
pub async fn concurrent_puts_are_all_stored(store: Arc<dyn CheckpointStore>) {
    let tasks: Vec<_> = (1..=8u64)
        .map(|seq| {
            let store = store.clone();
            tokio::spawn(async move { store.put(seq * 100, &envelope(seq * 100, 0)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("put");
    }
    let seqs: Vec<u64> = store
        .list()
        .await
        .expect("list")
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(seqs, (1..=8).map(|s| s * 100).collect::<Vec<_>>());
}

/// Runs the [`CheckpointStore`] conformance suite, one `#[tokio::test]` per case. `$setup` is
/// an expression (awaited) giving `(Arc<dyn CheckpointStore>, guard)` for an empty store; the
/// guard lives as long as the case. (That unreadable entries are refused, naming them, is
/// tested per backend: how to corrupt one depends on the backend.)
#[macro_export]
macro_rules! checkpoint_store_conformance {
    ($setup:expr) => {
        $crate::checkpoint_store_conformance!(@cases $setup;
            put_then_list_returns_it,
            put_is_idempotent_and_never_replaces,
            list_is_ordered_with_distinct_locations,
            latest_is_the_highest,
            concurrent_puts_are_all_stored
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $setup.await;
                $crate::testing::checkpoints::$case(store).await;
                drop(guard);
            }
        )*
    };
}
