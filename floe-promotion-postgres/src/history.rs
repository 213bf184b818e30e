//! [`HistoryStore`] on PostgreSQL: serialised appends, indexed queries and an anchored verify.

use std::collections::BTreeMap;

use async_trait::async_trait;
use floe_promotion::history::{
    AuditEvent, ChainVerifier, Deployment, EventRecord, HistoryQuery, HistoryStore, Order,
    VerifyReport,
};
use floe_promotion::{EnvName, Error, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::store::PostgresStore;

/// Events read per round trip by verify.
const VERIFY_PAGE: i64 = 10_000;

type Param = Box<dyn ToSql + Sync + Send>;

fn to_i64(store: &PostgresStore, what: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| store.at.store(format!("{what} {v} is out of range")))
}

/// Reads an event row `(seq, content, prev_hash, hash)` as stored.
fn event_from_row(store: &PostgresStore, row: &Row) -> Result<AuditEvent> {
    let seq: i64 = row
        .try_get(0)
        .map_err(|e| store.at.sql("reading an event", e))?;
    let content: String = row
        .try_get(1)
        .map_err(|e| store.at.sql("reading an event", e))?;
    let mut event = AuditEvent::from_stored(
        content,
        row.try_get(2)
            .map_err(|e| store.at.sql("reading an event", e))?,
        row.try_get(3)
            .map_err(|e| store.at.sql("reading an event", e))?,
    )
    .map_err(|e| store.at.store(format!("event {seq}: {e}; run verify")))?;
    event.seq = u64::try_from(seq).unwrap_or(0);
    Ok(event)
}

/// The SQL pre-filter of a query (times are stored to the millisecond, so rows are then
/// checked exactly with [`HistoryQuery::matches`]), and whether it is exact.
fn select_sql(query: &HistoryQuery, order: Order) -> (String, Vec<Param>) {
    let mut sql = String::from("SELECT seq, content, prev_hash, hash FROM events WHERE TRUE");
    let mut args: Vec<Param> = Vec::new();
    let eq = |sql: &mut String, args: &mut Vec<Param>, column: &str, v: Option<String>| {
        if let Some(v) = v {
            args.push(Box::new(v));
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
    };
    eq(
        &mut sql,
        &mut args,
        "environment",
        query.environment.as_ref().map(ToString::to_string),
    );
    eq(
        &mut sql,
        &mut args,
        "artifact",
        query.artifact.as_ref().map(ToString::to_string),
    );
    eq(
        &mut sql,
        &mut args,
        "version",
        query.version.as_ref().map(ToString::to_string),
    );
    eq(
        &mut sql,
        &mut args,
        "digest",
        query.digest.as_ref().map(ToString::to_string),
    );
    if !query.kinds.is_empty() {
        let kinds: Vec<String> = query.kinds.iter().map(|k| k.as_str().to_string()).collect();
        args.push(Box::new(kinds));
        sql.push_str(&format!(" AND kind = ANY(${})", args.len()));
    }
    if let Some(since) = query.since {
        args.push(Box::new(since.timestamp_millis()));
        sql.push_str(&format!(" AND time_ms >= ${}", args.len()));
    }
    if let Some(until) = query.until {
        args.push(Box::new(until.timestamp_millis()));
        sql.push_str(&format!(" AND time_ms <= ${}", args.len()));
    }
    if let Some(after) = query.after_seq {
        args.push(Box::new(i64::try_from(after).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" AND seq > ${}", args.len()));
    }
    if let Some(before) = query.before_seq {
        args.push(Box::new(i64::try_from(before).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" AND seq < ${}", args.len()));
    }
    sql.push_str(match order {
        Order::OldestFirst => " ORDER BY seq ASC",
        Order::NewestFirst => " ORDER BY seq DESC",
    });
    // Without time bounds the filter is exact, and the limit can go to the server.
    if query.since.is_none()
        && query.until.is_none()
        && let Some(limit) = query.limit
    {
        args.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    (sql, args)
}

fn params(args: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl PostgresStore {
    async fn append_events(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
        let action = "appending audit events";
        let err = |e| self.at.sql(action, e);
        let mut client = self.client(action).await?;
        let tx = client.transaction().await.map_err(err)?;
        // The row lock serialises appenders on every host until this transaction ends.
        let head = tx
            .query_one(
                "SELECT count, head_hash FROM chain_head WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(err)?;
        let count: i64 = head.get(0);
        let mut prev: String = head.get(1);
        // The whole batch goes in one statement (arrays unnested server-side): one round
        // trip per batch, whatever its size.
        let n = records.len();
        let mut seqs = Vec::with_capacity(n);
        let mut contents = Vec::with_capacity(n);
        let mut prevs = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut environments: Vec<Option<String>> = Vec::with_capacity(n);
        let mut artifacts: Vec<Option<String>> = Vec::with_capacity(n);
        let mut versions: Vec<Option<String>> = Vec::with_capacity(n);
        let mut digests: Vec<Option<String>> = Vec::with_capacity(n);
        // The newest event per (environment, artifact) that makes a version current.
        let mut current: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut seq = u64::try_from(count).unwrap_or(0);
        let mut stored = Vec::with_capacity(n);
        for record in records {
            seq += 1;
            let seq_i = to_i64(self, "sequence number", seq)?;
            let event = AuditEvent::seal(seq, record, std::mem::take(&mut prev));
            let r = &event.record;
            seqs.push(seq_i);
            contents.push(event.content.clone());
            prevs.push(event.prev_hash.clone());
            hashes.push(event.hash.clone());
            times.push(r.time.timestamp_millis());
            kinds.push(r.kind.as_str().to_string());
            environments.push(r.environment.as_ref().map(|e| e.as_str().to_string()));
            artifacts.push(r.artifact.as_ref().map(|a| a.as_str().to_string()));
            versions.push(r.version.as_ref().map(|v| v.as_str().to_string()));
            digests.push(r.digest.as_ref().map(|d| d.as_str().to_string()));
            if let Some(d) = Deployment::from_event(&event) {
                current.insert(
                    (
                        d.environment.as_str().to_string(),
                        d.artifact.as_str().to_string(),
                    ),
                    seq_i,
                );
            }
            prev = event.hash.clone();
            stored.push(event);
        }
        tx.execute(
            "INSERT INTO events (seq, content, prev_hash, hash, time_ms, kind, environment, \
             artifact, version, digest) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
             $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[])",
            &[
                &seqs,
                &contents,
                &prevs,
                &hashes,
                &times,
                &kinds,
                &environments,
                &artifacts,
                &versions,
                &digests,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Error::Integrity {
                    seq: u64::try_from(count).unwrap_or(0) + 1,
                    problem: format!(
                        "events already exist beyond the chain head in {}: the history was \
                         edited behind the library's back; run verify",
                        self.at.name
                    ),
                }
            } else {
                err(e)
            }
        })?;
        if !current.is_empty() {
            let (mut envs, mut arts, mut cur) = (Vec::new(), Vec::new(), Vec::new());
            for ((env, art), seq) in current {
                envs.push(env);
                arts.push(art);
                cur.push(seq);
            }
            tx.execute(
                "INSERT INTO current_versions (environment, artifact, seq) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) \
                 ON CONFLICT (environment, artifact) DO UPDATE SET seq = excluded.seq",
                &[&envs, &arts, &cur],
            )
            .await
            .map_err(err)?;
        }
        let seq_i = to_i64(self, "sequence number", seq)?;
        tx.execute(
            "UPDATE chain_head SET count = $1, head_hash = $2 WHERE id = 1",
            &[&seq_i, &prev],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(stored)
    }
}

#[async_trait]
impl HistoryStore for PostgresStore {
    async fn append_batch(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
        if records.is_empty() {
            return Ok(vec![]);
        }
        self.append_events(records).await
    }

    async fn query(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        let action = "querying the history";
        let limit = query.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(vec![]);
        }
        let client = self.client(action).await?;
        let (sql, args) = select_sql(query, query.order);
        let rows = client
            .query(&sql, &params(&args))
            .await
            .map_err(|e| self.at.sql(action, e))?;
        let mut out = Vec::new();
        for row in &rows {
            let event = event_from_row(self, row)?;
            if query.matches(&event) {
                out.push(event);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn deployments(&self, environment: Option<&EnvName>) -> Result<Vec<Deployment>> {
        let action = "reading current versions";
        let client = self.client(action).await?;
        let env = environment.map(EnvName::as_str);
        let rows = client
            .query(
                "SELECT e.seq, e.content, e.prev_hash, e.hash FROM current_versions c \
                 JOIN events e ON e.seq = c.seq \
                 WHERE $1::TEXT IS NULL OR c.environment = $1 \
                 ORDER BY c.environment COLLATE \"C\", c.artifact COLLATE \"C\"",
                &[&env],
            )
            .await
            .map_err(|e| self.at.sql(action, e))?;
        let mut out = Vec::new();
        for row in &rows {
            let event = event_from_row(self, row)?;
            if let Some(d) = Deployment::from_event(&event)
                && environment.is_none_or(|e| e == &d.environment)
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Reads the chain head and every event in sequence order in one snapshot (a repeatable
    /// read transaction), hashing the stored bytes, checking the indexed copies of each
    /// event's fields, and anchoring the result on the head row.
    async fn verify(&self) -> Result<VerifyReport> {
        let action = "verifying the history";
        let err = |e| self.at.sql(action, e);
        let mut client = self.client(action).await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(err)?;
        let head = tx
            .query_one("SELECT count, head_hash FROM chain_head WHERE id = 1", &[])
            .await
            .map_err(err)?;
        let count: i64 = head.get(0);
        let head_hash: String = head.get(1);
        let mut verifier = ChainVerifier::new();
        let mut after = 0i64;
        loop {
            let rows = tx
                .query(
                    "SELECT seq, content, prev_hash, hash, time_ms, kind, environment, artifact, \
                     version, digest FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after, &VERIFY_PAGE],
                )
                .await
                .map_err(err)?;
            for row in &rows {
                let seq: i64 = row.get(0);
                after = seq;
                let event = match event_from_row(self, row) {
                    Ok(event) => event,
                    Err(e) => {
                        let mut report = verifier.finish();
                        report.first_break = Some(floe_promotion::history::ChainBreak {
                            seq: u64::try_from(seq).unwrap_or(0),
                            id: None,
                            problem: e.to_string(),
                        });
                        report.head = None;
                        return Ok(report);
                    }
                };
                verifier.push(&event);
                if verifier.broken() {
                    return Ok(verifier.finish());
                }
                if let Some(problem) = column_problem(&event, row) {
                    let mut report = verifier.finish();
                    report.events = report.events.saturating_sub(1);
                    report.head = None;
                    report.first_break = Some(floe_promotion::history::ChainBreak {
                        seq: event.seq,
                        id: Some(event.record.id),
                        problem,
                    });
                    return Ok(report);
                }
            }
            if (rows.len() as i64) < VERIFY_PAGE {
                break;
            }
        }
        tx.commit().await.map_err(err)?;
        let count = u64::try_from(count).unwrap_or(0);
        Ok(verifier.finish_anchored(Some((count, head_hash.as_str()))))
    }
}

/// What differs between an event's indexed columns and its content.
fn column_problem(event: &AuditEvent, row: &Row) -> Option<String> {
    let r = &event.record;
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let time_ms: i64 = row.get(4);
    let kind: String = row.get(5);
    let same = time_ms == r.time.timestamp_millis()
        && kind == r.kind.as_str()
        && text(6).as_deref() == r.environment.as_ref().map(EnvName::as_str)
        && text(7).as_deref() == r.artifact.as_ref().map(|a| a.as_str())
        && text(8).as_deref() == r.version.as_ref().map(|v| v.as_str())
        && text(9).as_deref() == r.digest.as_ref().map(|d| d.as_str());
    (!same).then(|| {
        "the indexed columns of the event differ from its content: the row was edited".to_string()
    })
}
