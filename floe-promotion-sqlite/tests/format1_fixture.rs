//! A SQLite state file written by the first release (audit format 1), committed as made by
//! the quick start plus a few locks, must open and verify with every later release.

use floe_promotion::HistoryStore;
use floe_promotion_sqlite::SqliteStore;

/// The head hash `floe audit verify` printed when the fixture was made.
const HEAD: &str = "f5f7154f37cab2b9852ea2ab2d12caf2577e40c15a9774831884fff1deccf16e";

#[tokio::test]
async fn the_format_1_state_file_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/format1-state.db"
        ),
        &path,
    )
    .unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 13);
    assert_eq!(report.head.as_deref(), Some(HEAD));
}
