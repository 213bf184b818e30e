//! A missing, read-only, locked, corrupt, foreign or newer-schema database file gives a clear
//! error naming the file, never a panic.

use std::time::Duration;

use chrono::Utc;
use floe_promotion::history::{EventKind, HistoryExt, HistoryQuery, HistoryStore};
use floe_promotion::state::LeaseHolder;
use floe_promotion::testing::history::{base_time, record};
use floe_promotion::{EnvName, Error, LockStore};
use floe_promotion_sqlite::{SCHEMA_VERSION, SHORT_LIVED_WAL_PAGES, SqliteOptions, SqliteStore};
use rusqlite::Connection;

fn message(e: &Error) -> String {
    e.to_string()
}

async fn open_err(path: &std::path::Path, options: SqliteOptions) -> Error {
    SqliteStore::open_with(path, options)
        .await
        .expect_err("opening must fail")
}

/// A database with two events, closed again.
async fn two_events(path: &std::path::Path) {
    let store = SqliteStore::open(path).await.expect("open");
    store
        .append_batch(vec![
            record(
                EventKind::PromotionRequested,
                "prod",
                "app",
                "v1",
                base_time(),
            ),
            record(
                EventKind::PromotionSucceeded,
                "prod",
                "app",
                "v1",
                base_time(),
            ),
        ])
        .await
        .expect("append");
}

#[tokio::test]
async fn open_creates_the_file_and_reopens_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("new.db");
    two_events(&path).await;
    assert!(path.is_file());
    let again = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(again.path(), path);
    assert_eq!(again.verify().await.expect("verify").events, 2);
    let version: i64 = Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("version");
    assert_eq!(version, i64::from(SCHEMA_VERSION));
    let mode: String = Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

/// A new file appears complete or not at all: it is built beside the path and renamed into
/// place, so no `.creating` file is left behind, and a leftover of a creation that crashed
/// (here: garbage) is replaced rather than opened. An empty file at the path (as `touch`
/// leaves it) becomes a complete database.
#[tokio::test]
async fn a_new_file_is_built_aside_and_renamed_into_place() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.db");
    let creating = dir.path().join("state.db.creating");
    std::fs::write(&creating, b"half-written garbage from a crashed creation").expect("write");
    std::fs::write(dir.path().join("state.db.creating-wal"), b"junk").expect("write");
    let store = SqliteStore::open(&path).await.expect("open");
    assert!(!creating.exists(), "the temporary file was renamed away");
    assert!(!dir.path().join("state.db.creating-wal").exists());
    store.check_integrity().await.expect("integrity");
    assert_eq!(store.verify().await.expect("verify").events, 0);
    drop(store);

    let touched = dir.path().join("touched.db");
    std::fs::write(&touched, b"").expect("touch");
    two_events(&touched).await;
    let again = SqliteStore::open(&touched).await.expect("reopen");
    assert_eq!(again.verify().await.expect("verify").events, 2);
    assert!(!dir.path().join("touched.db.creating").exists());
}

/// Closing does not copy the WAL into the database file (two fsyncs and an unlink a command
/// would pay at exit): the committed events stay in `<database>-wal`, where every later open,
/// read-write, read-only or by another SQLite program, reads them.
#[tokio::test]
async fn closing_leaves_the_committed_wal_for_the_next_open() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.db");
    two_events(&path).await;
    let wal = dir.path().join("state.db-wal");
    let wal_len = std::fs::metadata(&wal).expect("the WAL is kept").len();
    assert!(wal_len > 0, "the WAL holds the commits");
    let read_only = SqliteStore::open_read_only(&path).await.expect("read-only");
    assert_eq!(read_only.verify().await.expect("verify").events, 2);
    drop(read_only);
    let other: i64 = Connection::open(&path)
        .and_then(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))
        .expect("another connection");
    assert_eq!(other, 2);
    let again = SqliteStore::open(&path).await.expect("reopen");
    again
        .append(record(EventKind::Locked, "prod", "app", "v2", base_time()))
        .await
        .expect("append after reopen");
    assert_eq!(again.verify().await.expect("verify").events, 3);
}

/// Deleting only the database file leaves its WAL behind; a new file at the same path starts
/// empty and sound instead of having the old WAL's frames replayed into it.
#[tokio::test]
async fn a_wal_left_by_a_deleted_database_is_not_replayed_into_a_new_one() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state.db");
    two_events(&path).await;
    assert!(dir.path().join("state.db-wal").is_file());
    std::fs::remove_file(&path).expect("delete the database file only");
    let fresh = SqliteStore::open(&path).await.expect("a new database");
    assert_eq!(fresh.verify().await.expect("verify").events, 0);
    fresh.check_integrity().await.expect("integrity");
    fresh
        .append(record(EventKind::Locked, "prod", "app", "v1", base_time()))
        .await
        .expect("append");
    drop(fresh);
    let again = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(again.verify().await.expect("verify").events, 1);
}

#[tokio::test]
async fn missing_directory_is_not_found() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("no/such/dir/floe.db");
    let err = open_err(&path, SqliteOptions::default()).await;
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(message(&err).contains("no/such/dir"), "{err}");
    assert!(!path.exists());
}

#[tokio::test]
async fn missing_file_read_only_is_not_found() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("absent.db");
    let err = SqliteStore::open_read_only(&path)
        .await
        .expect_err("missing");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(message(&err).contains("absent.db"), "{err}");
    assert!(!path.exists(), "read-only open creates nothing");
}

#[tokio::test]
async fn directory_path_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let err = open_err(dir.path(), SqliteOptions::default()).await;
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(message(&err).contains("directory"), "{err}");
}

#[tokio::test]
async fn not_a_database_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        "these are not the tables you are looking for\n".repeat(100),
    )
    .expect("write");
    for options in [
        SqliteOptions::default(),
        SqliteOptions::default().read_only(true),
    ] {
        let err = open_err(&path, options).await;
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        let m = message(&err);
        assert!(
            m.contains("notes.db") && m.contains("not a SQLite database"),
            "{m}"
        );
    }
}

#[tokio::test]
async fn corrupt_database_is_reported() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("corrupt.db");
    two_events(&path).await;
    // Overwrite the schema page after the 100-byte header.
    let mut bytes = std::fs::read(&path).expect("read");
    assert!(bytes.len() > 4096);
    for b in &mut bytes[100..4000] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).expect("write");
    let err = open_err(&path, SqliteOptions::default()).await;
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let m = message(&err);
    assert!(m.contains("corrupt.db") && m.contains("corrupt"), "{m}");
}

#[tokio::test]
async fn newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("future.db");
    two_events(&path).await;
    Connection::open(&path)
        .and_then(|c| c.pragma_update(None, "user_version", 99))
        .expect("bump version");
    for options in [
        SqliteOptions::default(),
        SqliteOptions::default().read_only(true),
    ] {
        let err = open_err(&path, options).await;
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        let m = message(&err);
        assert!(
            m.contains("future.db")
                && m.contains("schema version 99")
                && m.contains(&format!("up to {SCHEMA_VERSION}")),
            "{m}"
        );
    }
    let version: i64 = Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("version");
    assert_eq!(version, 99, "the file was not touched");
}

#[tokio::test]
async fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let tables = dir.path().join("tables.db");
    Connection::open(&tables)
        .and_then(|c| c.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY);"))
        .expect("create");
    let err = open_err(&tables, SqliteOptions::default()).await;
    assert!(
        message(&err).contains("not a floe-promotion database"),
        "{err}"
    );
    assert!(message(&err).contains("tables.db"), "{err}");

    let app = dir.path().join("app.db");
    Connection::open(&app)
        .and_then(|c| c.pragma_update(None, "application_id", 1234))
        .expect("create");
    let err = open_err(&app, SqliteOptions::default()).await;
    assert!(message(&err).contains("application_id"), "{err}");
}

#[tokio::test]
async fn locked_database_is_unavailable_naming_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("busy.db");
    two_events(&path).await;
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions::default().busy_timeout(Duration::from_millis(200)),
    )
    .await
    .expect("open");
    let holder = Connection::open(&path).expect("raw");
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let err = store
        .append(record(EventKind::Locked, "prod", "app", "v1", base_time()))
        .await
        .expect_err("busy");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let m = message(&err);
    assert!(m.contains("busy.db") && m.contains("locked"), "{m}");
    let err = store
        .acquire_lease(
            &EnvName::new("prod").expect("env"),
            &LeaseHolder::named("me"),
            chrono::Duration::minutes(1),
            Utc::now(),
        )
        .await
        .expect_err("busy");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    // Readers are not blocked by a writer in WAL mode.
    assert_eq!(
        store
            .query(&HistoryQuery::default())
            .await
            .expect("read")
            .len(),
        2
    );
    holder.execute_batch("COMMIT").expect("release");
    let e = store
        .append(record(EventKind::Locked, "prod", "app", "v1", base_time()))
        .await
        .expect("append after the lock is released");
    assert_eq!(e.seq, 3);
}

#[tokio::test]
async fn read_only_store_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ro.db");
    two_events(&path).await;
    let store = SqliteStore::open_read_only(&path)
        .await
        .expect("open read-only");
    assert_eq!(
        store
            .query(&HistoryQuery::default())
            .await
            .expect("query")
            .len(),
        2
    );
    assert!(store.verify().await.expect("verify").is_intact());
    let err = store
        .append(record(EventKind::Locked, "prod", "app", "v1", base_time()))
        .await
        .expect_err("read-only");
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(
        message(&err).contains("read-only") && message(&err).contains("ro.db"),
        "{err}"
    );
}

#[tokio::test]
async fn read_only_open_of_a_plain_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("empty.db");
    Connection::open(&path)
        .and_then(|c| c.execute_batch("PRAGMA user_version = 0; VACUUM;"))
        .expect("create");
    let err = SqliteStore::open_read_only(&path)
        .await
        .expect_err("no schema");
    assert!(message(&err).contains("no schema"), "{err}");
}

#[tokio::test]
async fn integrity_check_passes_on_a_healthy_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ok.db");
    two_events(&path).await;
    let store = SqliteStore::open(&path).await.expect("open");
    store.check_integrity().await.expect("integrity");
}

/// The frames in the WAL of a new database at `path` after 200 commits made through a store
/// opened with `options`.
async fn wal_frames_after_200_commits(path: &std::path::Path, options: SqliteOptions) -> i64 {
    let store = SqliteStore::open_with(path, options).await.expect("open");
    for i in 0..200 {
        store
            .append(record(
                EventKind::Locked,
                "prod",
                "app",
                &format!("v{i}"),
                base_time(),
            ))
            .await
            .expect("append");
    }
    drop(store);
    // The second column is the number of frames in the WAL since it last started over.
    Connection::open(path)
        .and_then(|c| c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)))
        .expect("read the WAL")
}

/// Each process reads every frame written since the last checkpoint when it opens the file:
/// with `wal_autocheckpoint(n)` the WAL is copied into the file once it holds n pages, so
/// after hundreds of commits it holds no more than that and one commit's pages; by default
/// (1,000 pages, as in SQLite) it keeps growing.
#[tokio::test]
async fn the_wal_is_copied_into_the_file_at_the_pages_asked_for() {
    let dir = tempfile::tempdir().expect("dir");
    let short = SqliteOptions::default().wal_autocheckpoint(SHORT_LIVED_WAL_PAGES);
    let pages = i64::from(SHORT_LIVED_WAL_PAGES);
    let frames = wal_frames_after_200_commits(&dir.path().join("short.db"), short).await;
    assert!((1..=pages + 20).contains(&frames), "{frames} frames");
    let frames =
        wal_frames_after_200_commits(&dir.path().join("default.db"), SqliteOptions::default())
            .await;
    assert!(frames > pages + 20, "{frames} frames by default");
}
