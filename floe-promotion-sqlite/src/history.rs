//! [`HistoryStore`] on SQLite: appends, indexed queries, streaming verify and export.

use std::io::Write;

use async_trait::async_trait;
use floe_promotion::history::{
    AuditEvent, Deployment, EventRecord, ExportFormat, ExportWriter, HistoryQuery, HistoryStore,
    Order, VerifyReport,
};
use floe_promotion::{EnvName, Error, Result};
use rusqlite::types::Value;
use rusqlite::{Row, Transaction, params, params_from_iter};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::errors::store_err;
use crate::store::{Shared, SqliteStore};

/// Events read per batch by queries on the blocking thread.
const EXPORT_CHUNK: usize = 64 * 1024;

fn to_i64(shared: &Shared, what: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| store_err(&shared.name, format!("{what} {v} is out of range")))
}

/// `hex(SHA-256(prev_hash ‖ content))` into `out`.
pub(crate) fn hash_into(prev_hash: &[u8], content: &[u8], out: &mut [u8; 64]) {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(content);
    // Encoding 32 bytes into a 64-byte buffer cannot fail.
    let _ = hex::encode_to_slice(h.finalize(), out);
}

/// Reads an event row `(seq, content, prev_hash, hash)`: the stored bytes are returned as
/// they are, and read for the event's fields. The sequence number is the row's position.
fn event_from_row(shared: &Shared, row: &Row<'_>) -> Result<AuditEvent> {
    let read = |e| shared.err("reading an event", e);
    let seq: i64 = row.get(0).map_err(read)?;
    let content = row.get_ref(1).map_err(read)?;
    let content = content.as_str().map_err(|e| {
        store_err(
            &shared.name,
            format!("event {seq}: content is not text: {e}"),
        )
    })?;
    let mut event = AuditEvent::from_stored(
        content.to_string(),
        row.get(2).map_err(read)?,
        row.get(3).map_err(read)?,
    )
    .map_err(|e| store_err(&shared.name, format!("event {seq}: {e}; run verify")))?;
    event.seq = seq as u64;
    Ok(event)
}

/// The SQL pre-filter of a query. It may return more rows than match (times are stored to
/// the millisecond); rows are then checked exactly with [`HistoryQuery::matches`].
fn select_sql(query: &HistoryQuery, order: Order) -> (String, Vec<Value>) {
    let mut sql = String::from("SELECT seq, content, prev_hash, hash FROM events WHERE 1");
    let mut args: Vec<Value> = Vec::new();
    let mut eq = |sql: &mut String, column: &str, v: Option<String>| {
        if let Some(v) = v {
            args.push(Value::Text(v));
            sql.push_str(&format!(" AND {column} = ?{}", args.len()));
        }
    };
    eq(
        &mut sql,
        "environment",
        query.environment.as_ref().map(ToString::to_string),
    );
    eq(
        &mut sql,
        "artifact",
        query.artifact.as_ref().map(ToString::to_string),
    );
    eq(
        &mut sql,
        "version",
        query.version.as_ref().map(ToString::to_string),
    );
    eq(
        &mut sql,
        "digest",
        query.digest.as_ref().map(ToString::to_string),
    );
    if !query.kinds.is_empty() {
        let mut marks = Vec::new();
        for k in &query.kinds {
            args.push(Value::Text(k.as_str().to_string()));
            marks.push(format!("?{}", args.len()));
        }
        sql.push_str(&format!(" AND kind IN ({})", marks.join(", ")));
    }
    if let Some(since) = query.since {
        args.push(Value::Integer(since.timestamp_millis()));
        sql.push_str(&format!(" AND time_ms >= ?{}", args.len()));
    }
    if let Some(until) = query.until {
        // `time < until` implies `floor_ms(time) <= floor_ms(until)`.
        args.push(Value::Integer(until.timestamp_millis()));
        sql.push_str(&format!(" AND time_ms <= ?{}", args.len()));
    }
    if let Some(after) = query.after_seq {
        // Sequence numbers above i64::MAX do not exist.
        args.push(Value::Integer(i64::try_from(after).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" AND seq > ?{}", args.len()));
    }
    if let Some(before) = query.before_seq {
        args.push(Value::Integer(i64::try_from(before).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" AND seq < ?{}", args.len()));
    }
    sql.push_str(match order {
        Order::OldestFirst => " ORDER BY seq ASC",
        Order::NewestFirst => " ORDER BY seq DESC",
    });
    (sql, args)
}

/// Streams the events matching `query` in `order`, at most `limit`, to `visit`, which may
/// stop early by returning `false`.
fn scan(
    shared: &Shared,
    tx: &Transaction<'_>,
    query: &HistoryQuery,
    order: Order,
    mut visit: impl FnMut(AuditEvent) -> Result<bool>,
) -> Result<()> {
    let limit = query.limit.unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(());
    }
    let (sql, args) = select_sql(query, order);
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(|e| shared.err("querying the history", e))?;
    let mut rows = stmt
        .query(params_from_iter(args))
        .map_err(|e| shared.err("querying the history", e))?;
    let mut n = 0;
    while let Some(row) = rows
        .next()
        .map_err(|e| shared.err("querying the history", e))?
    {
        let event = event_from_row(shared, row)?;
        if !query.matches(&event) {
            continue;
        }
        n += 1;
        if !visit(event)? || n >= limit {
            break;
        }
    }
    Ok(())
}

fn append(shared: &Shared, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
    if records.is_empty() {
        return Ok(vec![]);
    }
    shared.with_write("appending audit events", |tx| {
        let err = |e| shared.err("appending audit events", e);
        let (count, mut prev): (i64, String) = tx
            .query_row(
                "SELECT count, head_hash FROM chain_head WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (seq, content, prev_hash, hash, time_ms, kind, environment, \
                 artifact, version, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(err)?;
        let mut current = tx
            .prepare_cached(
                "INSERT INTO current (environment, artifact, seq) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (environment, artifact) DO UPDATE SET seq = excluded.seq",
            )
            .map_err(err)?;
        let mut seq = count as u64;
        let mut stored = Vec::with_capacity(records.len());
        for record in records {
            seq += 1;
            let seq_i = to_i64(shared, "sequence number", seq)?;
            let event = AuditEvent::seal(seq, record, std::mem::take(&mut prev));
            let r = &event.record;
            insert
                .execute(params![
                    seq_i,
                    event.content,
                    event.prev_hash,
                    event.hash,
                    r.time.timestamp_millis(),
                    r.kind.as_str(),
                    r.environment.as_ref().map(EnvName::as_str),
                    r.artifact.as_ref().map(|a| a.as_str()),
                    r.version.as_ref().map(|v| v.as_str()),
                    r.digest.as_ref().map(|d| d.as_str()),
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Integrity {
                        seq,
                        problem: format!(
                            "an event {seq} already exists beyond the chain head in {}: \
                             the history was edited behind the library's back; run verify",
                            shared.name
                        ),
                    },
                    _ => err(e),
                })?;
            prev = event.hash.clone();
            if let Some(d) = Deployment::from_event(&event) {
                current
                    .execute(params![d.environment.as_str(), d.artifact.as_str(), seq_i])
                    .map_err(err)?;
            }
            stored.push(event);
        }
        tx.execute(
            "UPDATE chain_head SET count = ?1, head_hash = ?2 WHERE id = 1",
            params![to_i64(shared, "sequence number", seq)?, prev],
        )
        .map_err(err)?;
        Ok(stored)
    })
}

/// A `Write` that hands full chunks to the caller's side of a bounded channel.
struct ChunkSink {
    buf: Vec<u8>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(EXPORT_CHUNK + 4096));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the export was abandoned by its reader"))
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= EXPORT_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn export(
    shared: &Shared,
    query: &HistoryQuery,
    format: ExportFormat,
    sink: &mut ChunkSink,
) -> Result<u64> {
    shared.with_read("exporting the history", |tx| {
        if format == ExportFormat::Jsonl && query.since.is_none() && query.until.is_none() {
            return export_jsonl_stored(shared, tx, query, sink);
        }
        let mut writer = ExportWriter::new(format, sink)?;
        scan(shared, tx, query, Order::OldestFirst, |event| {
            writer.write(&event)?;
            Ok(true)
        })?;
        writer.finish()
    })
}

/// Whether `h` is 64 hexadecimal digits. Every byte is looked at (no early exit), so that the
/// loop is vectorised: it runs twice per exported event.
fn is_hex_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().fold(true, |ok, b| ok & b.is_ascii_hexdigit())
}

/// JSON Lines straight from the stored bytes, without parsing the events: an exported line is
/// the stored content (the hashed canonical JSON, format 1 or 2) with `prev_hash` and `hash`
/// added before its closing brace, as the core's [`ExportWriter`] writes it. A row that does not have that shape
/// goes through the core's [`ExportWriter`]. Used when the SQL filter is exact (no time
/// bounds: times are indexed to the millisecond).
fn export_jsonl_stored(
    shared: &Shared,
    tx: &Transaction<'_>,
    query: &HistoryQuery,
    sink: &mut ChunkSink,
) -> Result<u64> {
    let io = |e| Error::io("writing the audit export", e);
    let err = |e| shared.err("exporting the history", e);
    let limit = query.limit.unwrap_or(usize::MAX) as u64;
    let mut n = 0u64;
    if limit > 0 {
        let (sql, args) = select_sql(query, Order::OldestFirst);
        let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let bytes = |i| row.get_ref(i).ok().and_then(|v| v.as_bytes().ok());
            match (bytes(1), bytes(2), bytes(3)) {
                (Some(content), Some(prev), Some(hash))
                    if content.len() > 2
                        && content.starts_with(b"{")
                        && content.ends_with(b"}")
                        && !content.contains(&b'\n')
                        && is_hex_hash(prev)
                        && is_hex_hash(hash) =>
                {
                    sink.write_all(&content[..content.len() - 1]).map_err(io)?;
                    sink.write_all(b",\"prev_hash\":\"").map_err(io)?;
                    sink.write_all(prev).map_err(io)?;
                    sink.write_all(b"\",\"hash\":\"").map_err(io)?;
                    sink.write_all(hash).map_err(io)?;
                    sink.write_all(b"\"}\n").map_err(io)?;
                }
                _ => {
                    let event = event_from_row(shared, row)?;
                    ExportWriter::new(ExportFormat::Jsonl, sink)?.write(&event)?;
                }
            }
            n += 1;
            if n >= limit {
                break;
            }
        }
    }
    sink.flush().map_err(io)?;
    Ok(n)
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn append_batch(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
        self.blocking("appending audit events", move |shared| {
            append(shared, records)
        })
        .await
    }

    async fn query(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        let query = query.clone();
        self.blocking("querying the history", move |shared| {
            shared.with_read("querying the history", |tx| {
                let mut out = Vec::with_capacity(query.limit.unwrap_or(16).min(1024));
                scan(shared, tx, &query, query.order, |e| {
                    out.push(e);
                    Ok(true)
                })?;
                Ok(out)
            })
        })
        .await
    }

    async fn deployments(&self, environment: Option<&EnvName>) -> Result<Vec<Deployment>> {
        let environment = environment.cloned();
        self.blocking("reading current versions", move |shared| {
            shared.with_read("reading current versions", |tx| {
                let err = |e| shared.err("reading current versions", e);
                let sql = "SELECT e.seq, e.content, e.prev_hash, e.hash FROM current c \
                           JOIN events e ON e.seq = c.seq \
                           WHERE ?1 IS NULL OR c.environment = ?1 \
                           ORDER BY c.environment, c.artifact";
                let mut stmt = tx.prepare_cached(sql).map_err(err)?;
                let mut rows = stmt
                    .query(params![environment.as_ref().map(EnvName::as_str)])
                    .map_err(err)?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(err)? {
                    let event = event_from_row(shared, row)?;
                    // A row whose content no longer makes a deployment was edited; verify
                    // reports it.
                    if let Some(d) = Deployment::from_event(&event)
                        && environment.as_ref().is_none_or(|e| e == &d.environment)
                    {
                        out.push(d);
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    /// Streams every row in sequence order in one read transaction and hashes the stored
    /// content directly; also checks the indexed columns, the chain head and the
    /// current-version table against the events.
    async fn verify(&self) -> Result<VerifyReport> {
        self.blocking("verifying the history", crate::verify::verify)
            .await
    }

    /// Formats the events on a blocking thread inside one read transaction and hands them
    /// over in chunks through a bounded channel, so memory stays flat whatever the size.
    async fn export(
        &self,
        query: &HistoryQuery,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> Result<u64> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let query = query.clone();
        let producer = self.blocking("exporting the history", move |shared| {
            let mut sink = ChunkSink {
                buf: Vec::with_capacity(EXPORT_CHUNK + 4096),
                tx,
            };
            export(shared, &query, format, &mut sink)
        });
        let consumer = async move {
            let mut result = Ok(());
            while let Some(chunk) = rx.recv().await {
                if let Err(e) = out.write_all(&chunk) {
                    result = Err(Error::io("writing the audit export", e));
                    break;
                }
            }
            // Dropping the receiver stops the producer when writing failed.
            drop(rx);
            result?;
            out.flush()
                .map_err(|e| Error::io("writing the audit export", e))
        };
        let (produced, consumed) = tokio::join!(producer, consumer);
        consumed?;
        produced
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use floe_promotion::history::EventKind;
    use floe_promotion::{ArtifactName, Digest};
    use rusqlite::Connection;

    use super::*;

    fn plan(conn: &Connection, query: &HistoryQuery) -> String {
        let (sql, args) = select_sql(query, query.order);
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let rows = stmt
            .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .expect("plan");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn hex_hashes_are_64_hex_digits_anywhere_in_the_string() {
        let good = "0123456789abcdefABCDEF".repeat(3);
        let good = &good.as_bytes()[..64];
        assert!(is_hex_hash(good));
        for at in [0, 1, 31, 32, 62, 63] {
            for bad in [b'g', b'"', b'\\', b'\n', b' ', 0xc3] {
                let mut h = good.to_vec();
                h[at] = bad;
                assert!(!is_hex_hash(&h), "byte {bad:#x} at {at}");
            }
        }
        assert!(!is_hex_hash(&good[..63]));
        assert!(!is_hex_hash(&[good, b"0"].concat()));
        assert!(!is_hex_hash(b""));
    }

    #[test]
    fn the_cli_queries_use_indexes() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::schema::migrate(&mut conn, ":memory:", |a, e| {
            store_err(":memory:", format!("{a}: {e}"))
        })
        .expect("migrate");
        let t = Utc
            .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        let cases = [
            (
                HistoryQuery {
                    environment: EnvName::new("prod").ok(),
                    limit: Some(50),
                    order: Order::NewestFirst,
                    ..Default::default()
                },
                "events_by_environment",
            ),
            (
                HistoryQuery {
                    artifact: ArtifactName::new("app").ok(),
                    kinds: vec![EventKind::PromotionSucceeded],
                    ..Default::default()
                },
                "events_by_artifact",
            ),
            (
                HistoryQuery {
                    digest: Some(Digest::of(b"x")),
                    ..Default::default()
                },
                "events_by_digest",
            ),
            (
                HistoryQuery {
                    since: Some(t),
                    until: Some(t + chrono::Duration::hours(1)),
                    ..Default::default()
                },
                "events_by_time",
            ),
        ];
        for (query, index) in cases {
            let plan = plan(&conn, &query);
            assert!(plan.contains(index), "{query:?}: {plan}");
            assert!(!plan.contains("SCAN events"), "{query:?}: {plan}");
        }
        // The latest events of an environment come straight off the index, unsorted.
        let latest = plan(
            &conn,
            &HistoryQuery {
                environment: EnvName::new("prod").ok(),
                order: Order::NewestFirst,
                ..Default::default()
            },
        );
        assert!(!latest.contains("TEMP B-TREE"), "{latest}");
    }
}
