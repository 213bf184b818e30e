//! Tamper detection: rows edited with raw SQL behind the library's back (another connection,
//! or the `sqlite3` shell) are caught by `verify`, which names the first bad event.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Duration;
use floe_promotion::history::{
    EventKind, EventRecord, HistoryStore, VerifyReport, canonical_json, event_hash,
};
use floe_promotion::testing::history::{base_time, record, rich_record};
use floe_promotion_sqlite::SqliteStore;
use rusqlite::{Connection, params};

const EVENTS: u64 = 12;

/// A store with 12 events, several of which make versions current, and its path.
async fn twelve() -> (SqliteStore, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("floe.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let records: Vec<EventRecord> = (0..EVENTS)
        .map(|i| {
            if i == 5 {
                rich_record(base_time() + Duration::seconds(5))
            } else {
                let kind = if i % 2 == 0 {
                    EventKind::PromotionSucceeded
                } else {
                    EventKind::PromotionRequested
                };
                let env = if i % 3 == 0 { "prod" } else { "staging" };
                record(
                    kind,
                    env,
                    "app",
                    &format!("v{i}"),
                    base_time() + Duration::seconds(i as i64),
                )
            }
        })
        .collect();
    store
        .append_batch(records[..4].to_vec())
        .await
        .expect("append");
    store
        .append_batch(records[4..].to_vec())
        .await
        .expect("append");
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, EVENTS);
    (store, path, dir)
}

/// A connection of our own, with the append-only triggers dropped, as a tamperer would.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("raw connection");
    conn.execute_batch(
        "DROP TRIGGER events_are_append_only_update; DROP TRIGGER events_are_append_only_delete;",
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

fn content(conn: &Connection, seq: i64) -> String {
    conn.query_row("SELECT content FROM events WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .expect("content")
}

#[tokio::test]
async fn the_library_refuses_updates_and_deletes() {
    let (_store, path, _dir) = twelve().await;
    let conn = Connection::open(&path).expect("raw");
    let update = conn.execute("UPDATE events SET kind = 'locked' WHERE seq = 3", []);
    assert!(format!("{update:?}").contains("append-only"), "{update:?}");
    let delete = conn.execute("DELETE FROM events WHERE seq = 3", []);
    assert!(format!("{delete:?}").contains("append-only"), "{delete:?}");
}

#[tokio::test]
async fn changed_content_is_detected() {
    let (store, path, _dir) = twelve().await;
    let conn = raw(&path);
    let n = conn
        .execute(
            "UPDATE events SET content = replace(content, '\"id\":\"alice\"', '\"id\":\"mallory\"') WHERE seq = 6",
            [],
        )
        .expect("tamper");
    assert_eq!(n, 1);
    assert!(content(&conn, 6).contains("mallory"));
    let (seq, problem, report) = first_break(&store).await;
    assert_eq!(seq, 6);
    assert!(problem.contains("changed"), "{problem}");
    assert_eq!(report.events, 5, "the events before it verified");
    assert!(
        report.first_break.and_then(|b| b.id).is_some(),
        "names the event id"
    );
}

#[tokio::test]
async fn changed_content_with_recomputed_hash_breaks_the_next_link() {
    let (store, path, _dir) = twelve().await;
    let conn = raw(&path);
    let (old, prev): (String, String) = conn
        .query_row(
            "SELECT content, prev_hash FROM events WHERE seq = 4",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    let mut rec: EventRecord = serde_json::from_str(&old).expect("record");
    rec.reason = Some("rewritten".into());
    let new = String::from_utf8(canonical_json(4, &rec)).expect("utf-8");
    conn.execute(
        "UPDATE events SET content = ?1, hash = ?2 WHERE seq = 4",
        params![new, event_hash(&prev, 4, &rec)],
    )
    .expect("tamper");
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 5);
    assert!(problem.contains("prev_hash"), "{problem}");
}

#[tokio::test]
async fn changed_indexed_columns_are_detected() {
    let edits = [
        ("environment", "'qa'"),
        ("environment", "NULL"),
        ("artifact", "'other'"),
        ("version", "'v999'"),
        ("digest", "NULL"),
        ("kind", "'switched'"),
        ("time_ms", "time_ms + 1"),
    ];
    for (column, value) in edits {
        let (store, path, _dir) = twelve().await;
        let conn = raw(&path);
        conn.execute(
            &format!("UPDATE events SET {column} = {value} WHERE seq = 7"),
            [],
        )
        .expect("tamper");
        let (seq, problem, _) = first_break(&store).await;
        assert_eq!(seq, 7, "{column}");
        assert!(
            problem.contains(column.trim_end_matches("_ms")),
            "{column}: {problem}"
        );
    }
}

#[tokio::test]
async fn changed_hash_or_prev_hash_is_detected() {
    for (column, seq) in [("hash", 3), ("prev_hash", 9), ("hash", EVENTS as i64)] {
        let (store, path, _dir) = twelve().await;
        let conn = raw(&path);
        conn.execute(
            &format!(
                "UPDATE events SET {column} = CASE WHEN substr({column}, 1, 1) = 'a' THEN 'b' \
                 ELSE 'a' END || substr({column}, 2) WHERE seq = ?1"
            ),
            [seq],
        )
        .expect("tamper");
        let (found, problem, _) = first_break(&store).await;
        // A changed hash no longer matches its own content; a changed prev_hash no longer
        // links.
        assert_eq!(found as i64, seq, "{column} of {seq}: {problem}");
        let word = if column == "hash" {
            "changed"
        } else {
            "prev_hash"
        };
        assert!(problem.contains(word), "{column} of {seq}: {problem}");
    }
}

#[tokio::test]
async fn deleted_row_is_detected() {
    let (store, path, _dir) = twelve().await;
    raw(&path)
        .execute("DELETE FROM events WHERE seq = 8", [])
        .expect("tamper");
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 8);
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn deleted_last_rows_are_detected() {
    let (store, path, _dir) = twelve().await;
    raw(&path)
        .execute("DELETE FROM events WHERE seq > 10", [])
        .expect("tamper");
    let (seq, problem, report) = first_break(&store).await;
    assert_eq!(seq, 11);
    assert!(problem.contains("missing"), "{problem}");
    assert_eq!(report.events, 10);
}

#[tokio::test]
async fn inserted_row_at_the_end_is_detected() {
    let (store, path, _dir) = twelve().await;
    let conn = raw(&path);
    // A well-formed 13th event, correctly chained, but not appended by the library.
    let (prev,): (String,) = conn
        .query_row("SELECT hash FROM events WHERE seq = 12", [], |r| {
            Ok((r.get(0)?,))
        })
        .expect("head");
    let rec = record(
        EventKind::PromotionSucceeded,
        "prod",
        "app",
        "v666",
        base_time(),
    );
    conn.execute(
        "INSERT INTO events (seq, content, prev_hash, hash, time_ms, kind, environment, artifact, version, digest) \
         VALUES (13, ?1, ?2, ?3, ?4, 'promotion_succeeded', 'prod', 'app', 'v666', ?5)",
        params![
            String::from_utf8(canonical_json(13, &rec)).expect("utf-8"),
            prev,
            event_hash(&prev, 13, &rec),
            rec.time.timestamp_millis(),
            rec.digest.as_ref().map(|d| d.to_string()),
        ],
    )
    .expect("tamper");
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 13);
    assert!(problem.contains("inserted"), "{problem}");
    // The library refuses to append over a forged row rather than fork the chain.
    let err = store
        .append_batch(vec![record(
            EventKind::Locked,
            "prod",
            "app",
            "v1",
            base_time(),
        )])
        .await
        .expect_err("append over a forged row");
    assert!(
        matches!(err, floe_promotion::Error::Integrity { seq: 13, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn inserted_row_in_the_middle_is_detected() {
    let (store, path, _dir) = twelve().await;
    let conn = raw(&path);
    // Make room after event 4 and copy event 2 into the gap.
    conn.execute_batch(
        "UPDATE events SET seq = -seq WHERE seq > 4;
         UPDATE events SET seq = 1 - seq WHERE seq < 0;
         INSERT INTO events SELECT 5, content, prev_hash, hash, time_ms, kind, environment, artifact, version, digest FROM events WHERE seq = 2;",
    )
    .expect("tamper");
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 5);
    assert!(problem.contains("prev_hash"), "{problem}");
}

#[tokio::test]
async fn reordered_rows_are_detected() {
    let (store, path, _dir) = twelve().await;
    raw(&path)
        .execute_batch(
            "UPDATE events SET seq = -1 WHERE seq = 3;
             UPDATE events SET seq = 3 WHERE seq = 9;
             UPDATE events SET seq = 9 WHERE seq = -1;",
        )
        .expect("tamper");
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 3);
    assert!(problem.contains("prev_hash"), "{problem}");
}

#[tokio::test]
async fn reordered_contents_are_detected() {
    // Swapping whole rows' contents keeps every hash consistent with its own row's
    // prev_hash only if the tamperer recomputes them; without it, the content check fails.
    let (store, path, _dir) = twelve().await;
    raw(&path)
        .execute_batch(
            "UPDATE events SET content = (SELECT content FROM events WHERE seq = 10) WHERE seq = 2;",
        )
        .expect("tamper");
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 2);
    assert!(problem.contains("changed"), "{problem}");
}

#[tokio::test]
async fn changed_current_version_table_is_detected() {
    let (store, path, _dir) = twelve().await;
    let conn = Connection::open(&path).expect("raw");
    conn.execute(
        "UPDATE current SET seq = 1 WHERE environment = 'staging'",
        [],
    )
    .expect("tamper");
    let (_, problem, _) = first_break(&store).await;
    assert!(problem.contains("current-version"), "{problem}");
}

#[tokio::test]
async fn a_consistent_rewrite_changes_the_head() {
    // Documented limit: a tamperer who rewrites the last event and the chain head together
    // produces a chain that verifies; only a head hash kept elsewhere shows it.
    let (store, path, _dir) = twelve().await;
    let before = store.verify().await.expect("verify").head.expect("head");
    let conn = raw(&path);
    let (old, prev): (String, String) = conn
        .query_row(
            "SELECT content, prev_hash FROM events WHERE seq = 12",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    let mut rec: EventRecord = serde_json::from_str(&old).expect("record");
    rec.reason = Some("rewritten".into());
    let hash = event_hash(&prev, 12, &rec);
    conn.execute(
        "UPDATE events SET content = ?1, hash = ?2 WHERE seq = 12",
        params![
            String::from_utf8(canonical_json(12, &rec)).expect("utf-8"),
            hash
        ],
    )
    .expect("tamper");
    conn.execute("UPDATE chain_head SET head_hash = ?1", [&hash])
        .expect("tamper head");
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact());
    assert_ne!(
        report.head,
        Some(before),
        "the head hash no longer matches the recorded one"
    );
}

#[tokio::test]
async fn edit_with_the_sqlite3_shell_is_detected() {
    let (store, path, _dir) = twelve().await;
    let sql = "DROP TRIGGER events_are_append_only_update; \
               UPDATE events SET content = replace(content, 'v4', 'v5') WHERE seq = 5;";
    let shell = Command::new("sqlite3").arg(&path).arg(sql).output();
    match shell {
        Ok(out) => assert!(
            out.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            // Without the shell, make the same edit through another connection.
            eprintln!("sqlite3 shell not available ({e}); editing through a raw connection");
            Connection::open(&path)
                .and_then(|c| c.execute_batch(sql))
                .expect("tamper");
        }
    }
    let (seq, problem, _) = first_break(&store).await;
    assert_eq!(seq, 5);
    assert!(problem.contains("changed"), "{problem}");
}
