//! Audit format 2 in SQLite: a file written by the first release (format 1) is upgraded in
//! place without rewriting its events, new events are appended in format 2 to the same chain,
//! and the mixed chain verifies and names the first edited event of either format. Stored
//! bytes are hashed as they are: a member this release does not know verifies.

use std::path::{Path, PathBuf};

use chrono::Duration;
use floe_promotion::history::{
    AUDIT_FORMAT, EventKind, ExportFormat, FORMAT_1, FORMAT_2, HistoryQuery, HistoryStore,
    VerifyReport, canonical_json_v1, content_hash, verify_export,
};
use floe_promotion::testing::history::{base_time, record, rich_record};
use floe_promotion_sqlite::{SCHEMA_VERSION, SqliteStore};
use rusqlite::{Connection, params};
use serde_json::{Map, Value};

/// The head hash of the format-1 fixture (13 events).
const FORMAT1_HEAD: &str = "f5f7154f37cab2b9852ea2ab2d12caf2577e40c15a9774831884fff1deccf16e";

/// A copy of the format-1 fixture, not yet opened by this release.
fn fixture_copy() -> (PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("state.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/format1-state.db"
        ),
        &path,
    )
    .expect("copy the fixture");
    (path, dir)
}

type Row = (i64, String, String, String);

fn rows(path: &Path) -> Vec<Row> {
    let conn = Connection::open(path).expect("raw connection");
    let mut stmt = conn
        .prepare("SELECT seq, content, prev_hash, hash FROM events ORDER BY seq")
        .expect("select");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn pragma(path: &Path, name: &str) -> i64 {
    Connection::open(path)
        .expect("raw")
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .expect("pragma")
}

/// A connection with the append-only triggers dropped, as a tamperer would.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("raw connection");
    conn.execute_batch(
        "DROP TRIGGER events_are_append_only_update; DROP TRIGGER events_are_append_only_delete;",
    )
    .expect("drop triggers");
    conn
}

/// The fixture upgraded by opening it, plus `n` events appended by this release.
async fn mixed(n: u64) -> (SqliteStore, PathBuf, tempfile::TempDir) {
    let (path, dir) = fixture_copy();
    let store = SqliteStore::open(&path).await.expect("open and upgrade");
    let records = (0..n)
        .map(|i| {
            if i == 1 {
                rich_record(base_time() + Duration::seconds(1))
            } else {
                record(
                    EventKind::PromotionSucceeded,
                    "prod",
                    "demo",
                    &format!("v2.{i}"),
                    base_time() + Duration::seconds(i as i64),
                )
            }
        })
        .collect();
    store.append_batch(records).await.expect("append");
    (store, path, dir)
}

fn broken_at(report: &VerifyReport) -> (u64, &str) {
    let b = report
        .first_break
        .as_ref()
        .unwrap_or_else(|| panic!("not detected: {report:?}"));
    (b.seq, b.problem.as_str())
}

#[tokio::test]
async fn the_upgrade_keeps_format_1_rows_and_records_where_format_2_starts() {
    let (path, _dir) = fixture_copy();
    assert_eq!(pragma(&path, "user_version"), 1);
    let before = rows(&path);
    assert_eq!(before.len(), 13);
    let store = SqliteStore::open(&path).await.expect("open and upgrade");
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    assert_eq!(rows(&path), before, "no stored event was rewritten");
    let since: (i64, i64) = Connection::open(&path)
        .expect("raw")
        .query_row("SELECT format, since_seq FROM audit_format", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("audit_format row");
    assert_eq!(since, (2, 14));
    // Opened again: no second migration, nothing changes.
    drop(store);
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(rows(&path), before);
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.as_deref(), Some(FORMAT1_HEAD));
    // The events read back in their format.
    let all = store.query(&HistoryQuery::default()).await.expect("query");
    assert!(all.iter().all(|e| e.format == FORMAT_1));
    assert_eq!(all[12].hash, FORMAT1_HEAD);
}

#[tokio::test]
async fn a_mixed_chain_verifies_in_the_store_and_in_its_export() {
    let (store, path, _dir) = mixed(5).await;
    let all = store.query(&HistoryQuery::default()).await.expect("query");
    assert_eq!(all.len(), 18);
    assert_eq!(
        all[13].prev_hash, FORMAT1_HEAD,
        "the new events continue the chain"
    );
    assert!(all[..13].iter().all(|e| e.format == FORMAT_1));
    assert!(all[13..].iter().all(|e| e.format == AUDIT_FORMAT));
    for (e, (seq, content, prev, hash)) in all.iter().zip(rows(&path)) {
        assert_eq!(
            (e.seq as i64, &e.content, &e.prev_hash, &e.hash),
            (seq, &content, &prev, &hash)
        );
        assert_eq!(e.hash, content_hash(&e.prev_hash, e.content.as_bytes()));
    }
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 18);
    assert_eq!(report.head.as_deref(), Some(all[17].hash.as_str()));

    let mut out = Vec::new();
    store
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    let exported = verify_export(out.as_slice(), true).expect("verify export");
    assert_eq!(exported, report);
    // A time-filtered export takes the other path (parsed rows) and verifies as an excerpt.
    let mut out = Vec::new();
    store
        .export(
            &HistoryQuery {
                until: Some(base_time() + Duration::hours(1)),
                ..Default::default()
            },
            ExportFormat::Jsonl,
            &mut out,
        )
        .await
        .expect("export");
    let excerpt = verify_export(out.as_slice(), false).expect("verify excerpt");
    assert!(excerpt.is_intact(), "{excerpt:?}");
    assert_eq!(excerpt.events, 5);
}

#[tokio::test]
async fn edits_of_format_1_and_format_2_events_are_named() {
    // Event 5 of the fixture (format 1) and event 15 (format 2, the rich record).
    for (seq, from, to) in [
        (5, "\"id\":\"release-manager\"", "\"id\":\"eve\""),
        (15, "\"id\":\"alice\"", "\"id\":\"eve\""),
    ] {
        let (store, path, _dir) = mixed(5).await;
        let conn = raw(&path);
        let before: String = conn
            .query_row("SELECT content FROM events WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .expect("content");
        assert!(before.contains(from), "{before}");
        conn.execute(
            "UPDATE events SET content = replace(content, ?1, ?2) WHERE seq = ?3",
            params![from, to, seq],
        )
        .expect("tamper");
        let report = store.verify().await.expect("verify");
        let (found, problem) = broken_at(&report);
        assert_eq!(found, seq as u64, "{problem}");
        assert!(problem.contains("changed"), "{problem}");
        assert_eq!(report.events, seq as u64 - 1);
    }
}

#[tokio::test]
async fn an_event_in_the_wrong_format_for_its_position_is_a_break() {
    let (store, path, _dir) = mixed(2).await;
    // Event 15 rewritten in format 1, correctly hashed, with the chain head moved along: the
    // file says format 2 starts at 14.
    let all = store.query(&HistoryQuery::default()).await.expect("query");
    let e = &all[14];
    let content = String::from_utf8(canonical_json_v1(15, &e.record)).expect("utf-8");
    let hash = content_hash(&e.prev_hash, content.as_bytes());
    let conn = raw(&path);
    conn.execute(
        "UPDATE events SET content = ?1, hash = ?2 WHERE seq = 15",
        params![content, hash],
    )
    .expect("tamper");
    conn.execute("UPDATE chain_head SET head_hash = ?1", [&hash])
        .expect("tamper head");
    let report = store.verify().await.expect("verify");
    let (seq, problem) = broken_at(&report);
    assert_eq!(seq, 15);
    assert!(problem.contains("format 1"), "{problem}");
}

#[tokio::test]
async fn a_format_2_event_with_an_unknown_member_verifies() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("floe.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let stored = store
        .append_batch(
            (0..3)
                .map(|i| rich_record(base_time() + Duration::seconds(i)))
                .collect(),
        )
        .await
        .expect("append");
    assert!(stored.iter().all(|e| e.format == FORMAT_2));
    // The last event as a later release would write it, with a member this one does not know.
    let last = &stored[2];
    let mut members: Map<String, Value> = serde_json::from_str(&last.content).expect("json");
    members.insert(
        "rollout".into(),
        serde_json::json!({"weight": 0.25, "steps": [1, 2.5, -3]}),
    );
    let content = serde_jcs::to_string(&members).expect("jcs");
    let hash = content_hash(&last.prev_hash, content.as_bytes());
    let conn = raw(&path);
    conn.execute(
        "UPDATE events SET content = ?1, hash = ?2 WHERE seq = 3",
        params![content, hash],
    )
    .expect("write the event");
    conn.execute("UPDATE chain_head SET head_hash = ?1", [&hash])
        .expect("move the head");

    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.as_deref(), Some(hash.as_str()));
    let read = store.query(&HistoryQuery::default()).await.expect("query");
    assert_eq!(
        read[2].content, content,
        "the stored bytes are returned as they are"
    );
    assert_eq!(read[2].record, last.record);
    let mut out = Vec::new();
    store
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    assert!(
        std::str::from_utf8(&out)
            .expect("utf-8")
            .contains("\"rollout\":{\"steps\":[1,2.5,-3],\"weight\":0.25}")
    );
    assert_eq!(verify_export(out.as_slice(), true).expect("verify"), report);

    // The member is covered by the hash.
    conn.execute(
        "UPDATE events SET content = replace(content, '0.25', '0.5') WHERE seq = 3",
        [],
    )
    .expect("tamper");
    let report = store.verify().await.expect("verify");
    assert_eq!(broken_at(&report).0, 3);
}

#[tokio::test]
async fn non_canonical_stored_bytes_are_a_break() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("floe.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let stored = store
        .append_batch(
            (0..3)
                .map(|i| rich_record(base_time() + Duration::seconds(i)))
                .collect(),
        )
        .await
        .expect("append");
    // The same members, keys sorted by UTF-8 bytes (serde_json) and a space added: hashed
    // again, linked, and the head moved, but not the canonical form.
    let e = &stored[2];
    let v: Value = serde_json::from_str(&e.content).expect("json");
    let content = serde_json::to_string(&v)
        .expect("json")
        .replacen(':', ": ", 1);
    let hash = content_hash(&e.prev_hash, content.as_bytes());
    let conn = raw(&path);
    conn.execute(
        "UPDATE events SET content = ?1, hash = ?2 WHERE seq = 3",
        params![content, hash],
    )
    .expect("tamper");
    conn.execute("UPDATE chain_head SET head_hash = ?1", [&hash])
        .expect("tamper head");
    let report = store.verify().await.expect("verify");
    let (seq, problem) = broken_at(&report);
    assert_eq!(seq, 3);
    assert!(problem.contains("not canonical"), "{problem}");
}
