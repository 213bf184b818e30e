//! The checkpoint-store conformance suite against the file store (a real file in a temporary
//! directory) and the registry store over the in-memory registry, through `Arc<dyn _>`; and
//! the file store's refusals of what it cannot read.

use std::sync::Arc;

use floe_promotion::checkpoint::{CheckpointStore, FileCheckpoints, RegistryCheckpoints};
use floe_promotion::testing::checkpoints::envelope;
use floe_promotion::{Error, InMemoryRegistry, Repository};

mod file {
    use super::*;

    floe_promotion::checkpoint_store_conformance!(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpoints::new(
            dir.path().join("audit/checkpoints.jsonl"),
        ));
        (store, dir)
    });
}

mod registry {
    use super::*;

    floe_promotion::checkpoint_store_conformance!(async {
        let store: Arc<dyn CheckpointStore> = Arc::new(RegistryCheckpoints::new(
            Arc::new(InMemoryRegistry::new()),
            Repository::new("mem/audit/checkpoints").expect("repo"),
        ));
        (store, ())
    });
}

/// Each line is one envelope, exactly as `Envelope::to_json` writes it.
#[tokio::test]
async fn the_file_is_json_lines_of_envelopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cp.jsonl");
    let store = FileCheckpoints::new(&path);
    store.put(1, &envelope(1, 0)).await.expect("put");
    store.put(2, &envelope(2, 0)).await.expect("put");
    let text = std::fs::read_to_string(&path).expect("read");
    let expected = format!(
        "{}\n{}\n",
        String::from_utf8(envelope(1, 0).to_json()).expect("utf8"),
        String::from_utf8(envelope(2, 0).to_json()).expect("utf8")
    );
    assert_eq!(text, expected);
}

/// A line that is not an envelope, or an envelope of something else, is refused naming the
/// file and the line; nothing is skipped.
#[tokio::test]
async fn unreadable_lines_are_refused_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cp.jsonl");
    let good = String::from_utf8(envelope(1, 0).to_json()).expect("utf8");
    let mut other = envelope(2, 0);
    other.payload_type = "application/vnd.in-toto+json".into();
    let other = String::from_utf8(other.to_json()).expect("utf8");
    for (bad, why) in [
        ("{not json", "not a DSSE envelope"),
        (other.as_str(), "does not hold a floe checkpoint"),
    ] {
        std::fs::write(&path, format!("{good}\n\n{bad}\n")).expect("write");
        let store = FileCheckpoints::new(&path);
        let e = store.list().await.expect_err("refused");
        let shown = e.to_string();
        assert!(matches!(e, Error::InvalidInput { .. }), "{shown}");
        assert!(
            shown.contains("cp.jsonl:line 3") && shown.contains(why),
            "{shown}"
        );
        // A put refuses to append to a file it cannot read, and leaves it as it was.
        let before = std::fs::read(&path).expect("read");
        assert!(store.put(5, &envelope(5, 0)).await.is_err());
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }
}

/// A last line a crash left without its newline was never acknowledged: `list` refuses it,
/// naming the line, and the next `put` cuts it off before appending.
#[tokio::test]
async fn an_interrupted_line_is_cut_off_by_the_next_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cp.jsonl");
    let store = FileCheckpoints::new(&path);
    store.put(1, &envelope(1, 0)).await.expect("put");
    let half = String::from_utf8(envelope(2, 0).to_json()).expect("utf8");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut f, &half.as_bytes()[..half.len() / 2]).expect("write");
    let e = store.list().await.expect_err("incomplete");
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("incomplete"),
        "{e}"
    );
    store
        .put(3, &envelope(3, 0))
        .await
        .expect("put after the crash");
    let seqs: Vec<u64> = store
        .list()
        .await
        .expect("list")
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(seqs, vec![1, 3]);
}

/// A tag `checkpoint-N` that holds something else is refused, naming the tag.
#[tokio::test]
async fn a_foreign_artifact_under_a_checkpoint_tag_is_refused() {
    let registry = Arc::new(InMemoryRegistry::new());
    let repo = Repository::new("mem/audit").expect("repo");
    registry
        .push_image(
            &repo,
            &floe_promotion::Tag::new("checkpoint-4").expect("tag"),
            &[b"x"],
        )
        .await
        .expect("push");
    let store = RegistryCheckpoints::new(registry, repo);
    let e = store.list().await.expect_err("refused");
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert!(e.to_string().contains("mem/audit:checkpoint-4"), "{e}");
    assert!(
        e.to_string().contains("not a floe checkpoint artifact"),
        "{e}"
    );
}
