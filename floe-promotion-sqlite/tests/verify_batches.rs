//! `verify` checks events in batches on several threads: on a history of many batches, edits
//! at and around batch boundaries (and in several batches at once) are still reported at the
//! first bad event, with the events before it counted, exactly as in `tests/tamper.rs`.

use std::path::Path;

use chrono::Duration;
use floe_promotion::history::{EventKind, EventRecord, HistoryStore, VerifyReport};
use floe_promotion::testing::history::{base_time, record};
use floe_promotion_sqlite::SqliteStore;
use rusqlite::Connection;

/// More events than the pool of batches holds (batches of 1,024 rows, a few per worker), so
/// batches are reused while checking.
const EVENTS: u64 = 9_000;

/// Sequence numbers at the start, at batch boundaries (multiples of 1,024 and one after) and
/// at the end.
const PLACES: [i64; 9] = [1, 2, 1023, 1024, 1025, 2048, 2049, 7169, 9000];

async fn many() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("floe.db"))
        .await
        .expect("open");
    let records: Vec<EventRecord> = (0..EVENTS)
        .map(|i| {
            let kind = if i % 3 == 0 {
                EventKind::PromotionSucceeded
            } else {
                EventKind::PromotionRequested
            };
            record(
                kind,
                ["dev", "staging", "prod"][(i % 3) as usize],
                &format!("app-{}", i % 7),
                &format!("v{i}"),
                base_time() + Duration::seconds(i as i64),
            )
        })
        .collect();
    for chunk in records.chunks(1000) {
        store.append_batch(chunk.to_vec()).await.expect("append");
    }
    assert_intact(&store).await;
    (store, dir)
}

async fn assert_intact(store: &SqliteStore) {
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, EVENTS);
}

/// A connection with the append-only triggers dropped, as a tamperer would.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("raw connection");
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS events_are_append_only_update; \
         DROP TRIGGER IF EXISTS events_are_append_only_delete;",
    )
    .expect("drop triggers");
    conn
}

async fn first_break(store: &SqliteStore) -> (u64, String, VerifyReport) {
    let report = store.verify().await.expect("verify runs");
    let b = report
        .first_break
        .clone()
        .unwrap_or_else(|| panic!("the tampering is not detected: {report:?}"));
    assert_eq!(report.head, None, "a broken chain has no head");
    (b.seq, b.problem, report)
}

/// Changes the actor in an event's content (its hash no longer matches); returns the old one.
fn change_content(conn: &Connection, seq: i64) -> String {
    let old: String = conn
        .query_row("SELECT content FROM events WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .expect("content");
    let new = old.replace("\"id\":\"ci\"", "\"id\":\"mallory\"");
    assert_ne!(new, old);
    conn.execute(
        "UPDATE events SET content = ?1 WHERE seq = ?2",
        rusqlite::params![new, seq],
    )
    .expect("tamper");
    old
}

fn restore_content(conn: &Connection, seq: i64, old: &str) {
    conn.execute(
        "UPDATE events SET content = ?1 WHERE seq = ?2",
        rusqlite::params![old, seq],
    )
    .expect("restore");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_changed_event_is_named_in_any_batch() {
    let (store, dir) = many().await;
    let conn = raw(&dir.path().join("floe.db"));
    for seq in PLACES {
        let old = change_content(&conn, seq);
        let (found, problem, report) = first_break(&store).await;
        assert_eq!(found, seq as u64, "{problem}");
        assert!(problem.contains("changed"), "{seq}: {problem}");
        assert_eq!(
            report.events,
            seq as u64 - 1,
            "the events before it verified"
        );
        assert!(report.first_break.and_then(|b| b.id).is_some());
        restore_content(&conn, seq, &old);
        assert_intact(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_several_edits_in_several_batches_the_first_is_named() {
    let (store, dir) = many().await;
    let conn = raw(&dir.path().join("floe.db"));
    // Edited in the reverse of sequence order, then in order.
    for edits in [[8000, 5000, 3000, 1025], [1025, 3000, 5000, 8000]] {
        let olds: Vec<(i64, String)> = edits
            .iter()
            .map(|&seq| (seq, change_content(&conn, seq)))
            .collect();
        let (found, problem, report) = first_break(&store).await;
        assert_eq!(found, 1025, "{problem}");
        assert_eq!(report.events, 1024);
        for (seq, old) in olds {
            restore_content(&conn, seq, &old);
        }
        assert_intact(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_links_deleted_rows_and_columns_at_batch_boundaries_are_named() {
    let (store, dir) = many().await;
    let conn = raw(&dir.path().join("floe.db"));
    for seq in PLACES {
        // A link: the prev_hash of the event.
        let old: String = conn
            .query_row("SELECT prev_hash FROM events WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .expect("prev_hash");
        conn.execute(
            "UPDATE events SET prev_hash = ?1 WHERE seq = ?2",
            rusqlite::params!["0".repeat(64).replacen('0', "1", 1), seq],
        )
        .expect("tamper");
        let (found, problem, _) = first_break(&store).await;
        assert_eq!(found, seq as u64, "{problem}");
        assert!(problem.contains("prev_hash"), "{seq}: {problem}");
        conn.execute(
            "UPDATE events SET prev_hash = ?1 WHERE seq = ?2",
            rusqlite::params![old, seq],
        )
        .expect("restore");

        // An indexed column.
        conn.execute(
            "UPDATE events SET time_ms = time_ms + 1 WHERE seq = ?1",
            [seq],
        )
        .expect("tamper");
        let (found, problem, _) = first_break(&store).await;
        assert_eq!(found, seq as u64, "{problem}");
        assert!(problem.contains("time_ms"), "{seq}: {problem}");
        conn.execute(
            "UPDATE events SET time_ms = time_ms - 1 WHERE seq = ?1",
            [seq],
        )
        .expect("restore");

        // The row itself.
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE saved AS SELECT * FROM events WHERE seq = {seq}; \
             DELETE FROM events WHERE seq = {seq};"
        ))
        .expect("tamper");
        let (found, problem, report) = first_break(&store).await;
        assert_eq!(found, seq as u64, "{problem}");
        assert!(problem.contains("missing"), "{seq}: {problem}");
        assert_eq!(report.events, seq as u64 - 1);
        conn.execute_batch("INSERT INTO events SELECT * FROM saved; DROP TABLE saved;")
            .expect("restore");
        assert_intact(&store).await;
    }
}
