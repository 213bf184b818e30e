//! The database schema and its versioned migrations.
//!
//! The version lives in the one-row table `schema_version`. Migrations run at open, in one
//! transaction that first takes a transaction-scoped advisory lock ([`MIGRATION_LOCK`]), so
//! stores opening a new database at the same moment migrate it once. A database with a newer
//! version than this build knows is refused, never modified.

use deadpool_postgres::Client;
use floe_promotion::Result;
use floe_promotion::history::GENESIS_HASH;

use crate::errors::Location;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key held while migrating ("FLOE" and "MIGR" in ASCII).
pub(crate) const MIGRATION_LOCK: i64 = 0x464c_4f45_4d49_4752;

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
    -- The head of the hash chain: appends lock this row (SELECT ... FOR UPDATE) and update it
    -- in the same transaction, so concurrent appenders on any number of hosts form one chain,
    -- and removing the last events is detected by verify.
    CREATE TABLE chain_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        count BIGINT NOT NULL,
        head_hash TEXT NOT NULL
    );
    INSERT INTO chain_head (id, count, head_hash) VALUES (1, 0, 'GENESIS');

    -- One row per audit event. `content` holds the exact bytes that were hashed; the other
    -- columns are copies for indexed queries, checked against `content` by verify.
    CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        content TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        time_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        environment TEXT,
        artifact TEXT,
        version TEXT,
        digest TEXT
    );
    CREATE INDEX events_by_environment ON events (environment, seq);
    CREATE INDEX events_by_artifact ON events (artifact, seq);
    CREATE INDEX events_by_digest ON events (digest, seq);
    CREATE INDEX events_by_time ON events (time_ms, seq);

    -- Nothing updates or deletes events through the library; this stops accidents.
    CREATE FUNCTION floe_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$;
    CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION floe_events_append_only();

    -- The event that made each (environment, artifact) current, maintained on append.
    CREATE TABLE current_versions (
        environment TEXT NOT NULL,
        artifact TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (environment, artifact)
    );

    CREATE TABLE locks (
        environment TEXT PRIMARY KEY,
        body TEXT NOT NULL
    );

    CREATE TABLE leases (
        environment TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        body TEXT NOT NULL
    );

    CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        environment TEXT NOT NULL,
        artifact TEXT NOT NULL,
        status TEXT NOT NULL,
        version BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX releases_by_target ON releases (environment, artifact);
    CREATE INDEX releases_by_kind_status ON releases (kind, status);

    CREATE TABLE release_effects (
        ord BIGSERIAL PRIMARY KEY,
        release_id TEXT NOT NULL,
        effect_key TEXT NOT NULL,
        UNIQUE (release_id, effect_key)
    );

    CREATE TABLE outbox_cursors (
        consumer TEXT PRIMARY KEY,
        seq BIGINT NOT NULL
    );

    CREATE TABLE holds (
        environment TEXT NOT NULL,
        holder TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (environment, holder)
    );

    CREATE TABLE webhook_deliveries (
        webhook TEXT NOT NULL,
        seq BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        http_status BIGINT,
        error TEXT,
        time TEXT NOT NULL,
        PRIMARY KEY (seq, webhook)
    );
    CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (status, seq);
    "#,
    // Version 2: revoked digests, one row each.
    r#"
    CREATE TABLE revocations (
        digest TEXT PRIMARY KEY,
        body TEXT NOT NULL
    );
    "#,
];

/// Brings the database to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(client: &mut Client, at: &Location) -> Result<()> {
    let action = "migrating the schema";
    let tx = client.transaction().await.map_err(|e| at.sql(action, e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| at.sql(action, e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             application TEXT NOT NULL,
             version INTEGER NOT NULL
         )",
    )
    .await
    .map_err(|e| at.sql(action, e))?;
    let row = tx
        .query_opt(
            "SELECT application, version FROM schema_version WHERE id = 1",
            &[],
        )
        .await
        .map_err(|e| at.sql(action, e))?;
    let version = match row {
        Some(row) => {
            let application: String = row.get(0);
            if application != "floe-promotion" {
                return Err(at.store(format!(
                    "not a floe-promotion database (schema_version belongs to {application:?})"
                )));
            }
            row.get::<_, i32>(1)
        }
        None => {
            tx.execute(
                "INSERT INTO schema_version (id, application, version) VALUES (1, 'floe-promotion', 0)",
                &[],
            )
            .await
            .map_err(|e| at.sql(action, e))?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(at.store(format!(
            "the database has schema version {version}, but this build supports versions up to \
             {SCHEMA_VERSION}; use a newer floe-promotion"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let to = i as i32 + 1;
        let step = format!("migrating the schema to version {to}");
        tx.batch_execute(&sql.replace("'GENESIS'", &format!("'{GENESIS_HASH}'")))
            .await
            .map_err(|e| at.sql(&step, e))?;
        tx.execute(
            "UPDATE schema_version SET version = $1 WHERE id = 1",
            &[&to],
        )
        .await
        .map_err(|e| at.sql(&step, e))?;
    }
    tx.commit().await.map_err(|e| at.sql(action, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_match_the_version() {
        assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    }
}
