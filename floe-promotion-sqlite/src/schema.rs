//! The database schema and its versioned migrations.
//!
//! The schema version lives in `PRAGMA user_version` and the file is marked with
//! `PRAGMA application_id`. Migrations run in order, each in the same `BEGIN IMMEDIATE`
//! transaction that reads the version, so two processes opening a new file at once migrate it
//! once. A file with a newer version than this build knows is refused, never modified.

use floe_promotion::history::GENESIS_HASH;
use floe_promotion::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::errors::store_err;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 7;

/// `PRAGMA application_id` of floe-promotion databases ("FLOE").
pub const APPLICATION_ID: i32 = 0x464c_4f45;

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
    -- The head of the hash chain, updated in the transaction that appends, so that removing
    -- the last events is detected by `verify`.
    CREATE TABLE chain_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        count INTEGER NOT NULL,
        head_hash TEXT NOT NULL
    );
    INSERT INTO chain_head (id, count, head_hash) VALUES (1, 0, 'GENESIS');

    -- One row per audit event. `content` holds the exact bytes that were hashed (the
    -- canonical JSON of seq and record); the other columns are copies for indexed queries,
    -- checked against `content` by `verify`.
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        content TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        environment TEXT,
        artifact TEXT,
        version TEXT,
        digest TEXT
    );
    -- Indexes for the history of an environment, an artifact (and its versions), a digest,
    -- and time ranges. Kind and version filters ride on these or scan: they are rarely
    -- asked alone, and every index slows appends.
    CREATE INDEX events_by_environment ON events (environment, seq);
    CREATE INDEX events_by_artifact ON events (artifact, seq);
    CREATE INDEX events_by_digest ON events (digest, seq);
    CREATE INDEX events_by_time ON events (time_ms, seq);

    -- Nothing updates or deletes events through the library; these stop accidents. Deliberate
    -- edits (dropping the triggers) are what `verify` detects.
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

    -- The event that made each (environment, artifact) current, maintained on append.
    CREATE TABLE current (
        environment TEXT NOT NULL,
        artifact TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (environment, artifact)
    ) WITHOUT ROWID;

    CREATE TABLE locks (
        environment TEXT PRIMARY KEY,
        body TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE leases (
        environment TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX approvals_by_status ON approvals (status);
    "#,
    // Version 2: release state (approvals, canaries, blue-green switches as state machines).
    // Self-contained: it creates only its own tables.
    r#"
    -- One row per release process. `body` is the whole record as JSON and is what is read;
    -- the other columns are copies of its fields for the indexed lookups by target and by
    -- kind and status, written from the body in the same statement.
    CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        environment TEXT NOT NULL,
        artifact TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX releases_by_target ON releases (environment, artifact);
    CREATE INDEX releases_by_kind_status ON releases (kind, status);

    -- The effect keys recorded per release; the rowid keeps the recording order.
    CREATE TABLE release_effects (
        release_id TEXT NOT NULL,
        effect_key TEXT NOT NULL,
        UNIQUE (release_id, effect_key)
    );
    "#,
    // Version 3: the notification outbox's delivery cursors. Self-contained.
    r#"
    -- The sequence number of the last event each notifier acknowledged.
    CREATE TABLE outbox_cursors (
        consumer TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // Version 4: audit format 2 (RFC 8785 canonical JSON with the format in each event).
    // Events already stored keep their format-1 bytes untouched; this records where format 2
    // starts (after the events the file has now), so that `verify` knows which format each
    // event must be in. Bumping the version also makes releases that write only format 1
    // refuse the file instead of appending to it.
    r#"
    CREATE TABLE audit_format (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        format INTEGER NOT NULL,
        since_seq INTEGER NOT NULL
    );
    INSERT INTO audit_format (id, format, since_seq) SELECT 1, 2, count + 1 FROM chain_head;
    "#,
    // Version 5: holds on automatic promotion, one row per (environment, holder).
    // Self-contained.
    r#"
    CREATE TABLE holds (
        environment TEXT NOT NULL,
        holder TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (environment, holder)
    ) WITHOUT ROWID;
    "#,
    // Version 6: webhook delivery outcomes (the dead-letter list). Self-contained.
    r#"
    -- The latest delivery outcome per endpoint and event; a redelivery replaces its row.
    CREATE TABLE webhook_deliveries (
        webhook TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        http_status INTEGER,
        error TEXT,
        time TEXT NOT NULL,
        PRIMARY KEY (seq, webhook)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (status, seq);
    "#,
    // Version 7: revoked digests, one row each. Self-contained.
    r#"
    CREATE TABLE revocations (
        digest TEXT PRIMARY KEY,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
];

fn pragma_i64(conn: &Connection, file: &str, name: &str) -> Result<i64> {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .map_err(|e| {
            crate::errors::sql_err(
                file,
                &format!("reading PRAGMA {name}"),
                Default::default(),
                e,
            )
        })
}

/// Refuses a file that belongs to another application or has a newer schema.
fn check_identity(file: &str, app_id: i64, version: i64) -> Result<()> {
    if app_id != 0 && app_id != i64::from(APPLICATION_ID) {
        return Err(store_err(
            file,
            format!(
                "not a floe-promotion database (application_id is {app_id:#x}, expected {APPLICATION_ID:#x})"
            ),
        ));
    }
    if version > i64::from(SCHEMA_VERSION) {
        return Err(store_err(
            file,
            format!(
                "the database has schema version {version}, but this build supports versions up to \
                 {SCHEMA_VERSION}; use a newer floe-promotion"
            ),
        ));
    }
    Ok(())
}

/// Brings a writable database to [`SCHEMA_VERSION`].
pub(crate) fn migrate(
    conn: &mut Connection,
    file: &str,
    map: impl Fn(&str, rusqlite::Error) -> Error,
) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map("starting the schema migration", e))?;
    let app_id = pragma_i64(&tx, file, "application_id")?;
    let version = pragma_i64(&tx, file, "user_version")?;
    check_identity(file, app_id, version)?;
    if version == i64::from(SCHEMA_VERSION) {
        return Ok(());
    }
    if version == 0 {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| map("reading the schema", e))?;
        if tables > 0 {
            return Err(store_err(
                file,
                "not a floe-promotion database: it has tables but no floe-promotion schema version",
            ));
        }
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = i + 1;
        tx.execute_batch(&sql.replace("'GENESIS'", &format!("'{GENESIS_HASH}'")))
            .map_err(|e| map(&format!("migrating the schema to version {to}"), e))?;
        tx.pragma_update(None, "user_version", to as i64)
            .map_err(|e| map("setting the schema version", e))?;
    }
    tx.pragma_update(None, "application_id", i64::from(APPLICATION_ID))
        .map_err(|e| map("setting the application id", e))?;
    tx.commit()
        .map_err(|e| map("committing the schema migration", e))
}

/// Checks that a database opened read-only has exactly this build's schema.
pub(crate) fn check_read_only(conn: &Connection, file: &str) -> Result<()> {
    let app_id = pragma_i64(conn, file, "application_id")?;
    let version = pragma_i64(conn, file, "user_version")?;
    check_identity(file, app_id, version)?;
    if version == 0 {
        return Err(store_err(
            file,
            "not a floe-promotion database (no schema); open it read-write once to create it",
        ));
    }
    if version < i64::from(SCHEMA_VERSION) {
        return Err(store_err(
            file,
            format!(
                "the database has schema version {version}, older than this build's \
                 {SCHEMA_VERSION}; open it read-write once to migrate it"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_match_the_version() {
        assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    }

    #[test]
    fn migration_creates_every_table() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        migrate(&mut conn, ":memory:", |a, e| {
            store_err(":memory:", format!("{a}: {e}"))
        })
        .expect("migrate");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, i64::from(SCHEMA_VERSION));
        let head: String = conn
            .query_row("SELECT head_hash FROM chain_head", [], |r| r.get(0))
            .expect("head");
        assert_eq!(head, GENESIS_HASH);
        for table in ["releases", "release_effects", "webhook_deliveries"] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .expect("schema");
            assert_eq!(n, 1, "{table}");
        }
        // Migrating again is a no-op.
        migrate(&mut conn, ":memory:", |a, e| {
            store_err(":memory:", format!("{a}: {e}"))
        })
        .expect("migrate again");
        let since: (i64, i64) = conn
            .query_row("SELECT format, since_seq FROM audit_format", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("audit format");
        assert_eq!(
            since,
            (2, 1),
            "a new file is in format 2 from its first event"
        );
    }

    #[test]
    fn version_1_files_gain_the_release_tables_and_keep_their_rows() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(&MIGRATIONS[0].replace("'GENESIS'", &format!("'{GENESIS_HASH}'")))
            .expect("version 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.pragma_update(None, "application_id", i64::from(APPLICATION_ID))
            .expect("application id");
        conn.execute(
            "INSERT INTO approvals (id, status, body) VALUES ('a', 'pending', '{}')",
            [],
        )
        .expect("a version 1 row");
        migrate(&mut conn, ":memory:", |a, e| {
            store_err(":memory:", format!("{a}: {e}"))
        })
        .expect("migrate 1 -> 2");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, i64::from(SCHEMA_VERSION));
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM approvals", [], |r| r.get(0))
            .expect("approvals");
        assert_eq!(kept, 1);
        let releases: i64 = conn
            .query_row("SELECT count(*) FROM releases", [], |r| r.get(0))
            .expect("releases table");
        assert_eq!(releases, 0);
    }
}
