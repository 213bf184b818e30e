//! [`DeliveryLog`] on SQLite: the latest webhook delivery outcome per endpoint and event, one
//! row each, shared by every process that opens the file.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use floe_promotion::notify::{DeliveryLog, DeliveryOutcome, DeliveryQuery};
use floe_promotion::{Error, Result};
use rusqlite::types::Value;
use rusqlite::{Row, params};

use crate::store::SqliteStore;

const COLUMNS: &str = "webhook, seq, event_id, status, attempts, http_status, error, time";

/// A row as read, before its text columns are parsed.
type RawRow = (
    String,
    i64,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

/// Parses a row; a value that does not parse (an edited file) is a store error naming it.
fn outcome(store: &str, row: RawRow) -> Result<DeliveryOutcome> {
    let (webhook, seq, event_id, status, attempts, http_status, error, time) = row;
    let bad = |what: &str, value: &str| Error::Store {
        backend: "sqlite",
        location: store.to_string(),
        message: format!(
            "webhook_deliveries row ({webhook}, {seq}): {what} {:?} does not parse",
            floe_promotion::Excerpt::new(value).to_string()
        ),
    };
    Ok(DeliveryOutcome {
        seq: u64::try_from(seq).map_err(|_| bad("seq", &seq.to_string()))?,
        event_id: event_id.parse().map_err(|_| bad("event_id", &event_id))?,
        status: status.parse().map_err(|_| bad("status", &status))?,
        attempts: u32::try_from(attempts).map_err(|_| bad("attempts", &attempts.to_string()))?,
        http_status: http_status
            .map(|s| u16::try_from(s).map_err(|_| bad("http_status", &s.to_string())))
            .transpose()?,
        error,
        time: DateTime::parse_from_rfc3339(&time)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad("time", &time))?,
        webhook: webhook.clone(),
    })
}

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn record(&self, outcome: &DeliveryOutcome) -> Result<()> {
        let o = outcome.clone();
        self.blocking("recording a delivery outcome", move |shared| {
            let action = format!("recording the delivery of event {} to {}", o.seq, o.webhook);
            shared.with_write(&action, |tx| {
                tx.execute(
                    &format!(
                        "INSERT INTO webhook_deliveries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (seq, webhook) DO UPDATE SET
                           event_id = excluded.event_id, status = excluded.status,
                           attempts = excluded.attempts, http_status = excluded.http_status,
                           error = excluded.error, time = excluded.time"
                    ),
                    params![
                        o.webhook,
                        i64::try_from(o.seq).unwrap_or(i64::MAX),
                        o.event_id.to_string(),
                        o.status.as_str(),
                        i64::from(o.attempts),
                        o.http_status.map(i64::from),
                        o.error,
                        o.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
                    ],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(())
            })
        })
        .await
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryOutcome>> {
        let query = query.clone();
        let name = self.path().display().to_string();
        self.blocking("listing delivery outcomes", move |shared| {
            let action = "listing delivery outcomes";
            shared.with_read(action, |tx| {
                let mut sql = format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE 1 = 1");
                let mut args: Vec<Value> = Vec::new();
                if let Some(status) = query.status {
                    args.push(Value::Text(status.as_str().to_string()));
                    sql.push_str(&format!(" AND status = ?{}", args.len()));
                }
                if let Some(webhook) = &query.webhook {
                    args.push(Value::Text(webhook.clone()));
                    sql.push_str(&format!(" AND webhook = ?{}", args.len()));
                }
                sql.push_str(" ORDER BY seq, webhook");
                let mut stmt = tx.prepare(&sql).map_err(|e| shared.err(action, e))?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), raw)
                    .map_err(|e| shared.err(action, e))?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(|e| shared.err(action, e))?;
                rows.into_iter().map(|r| outcome(&name, r)).collect()
            })
        })
        .await
    }

    async fn get(&self, webhook: &str, seq: u64) -> Result<Option<DeliveryOutcome>> {
        let webhook = webhook.to_string();
        let name = self.path().display().to_string();
        self.blocking("reading a delivery outcome", move |shared| {
            let action = format!("reading the delivery of event {seq} to {webhook}");
            shared.with_read(&action, |tx| {
                use rusqlite::OptionalExtension;
                let row = tx
                    .query_row(
                        &format!(
                            "SELECT {COLUMNS} FROM webhook_deliveries WHERE seq = ?1 AND webhook = ?2"
                        ),
                        params![i64::try_from(seq).unwrap_or(i64::MAX), webhook],
                        raw,
                    )
                    .optional()
                    .map_err(|e| shared.err(&action, e))?;
                row.map(|r| outcome(&name, r)).transpose()
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_status_is_an_error_not_a_panic() {
        let row: RawRow = (
            "w".into(),
            1,
            uuid::Uuid::nil().to_string(),
            "lost".into(),
            1,
            None,
            None,
            "2026-01-01T00:00:00Z".into(),
        );
        assert!(outcome("f.db", row).is_err());
    }
}
