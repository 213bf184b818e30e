//! [`DeliveryLog`] on PostgreSQL: the latest webhook delivery outcome per endpoint and event,
//! one row each, replaced by a redelivery.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use floe_promotion::notify::{DeliveryLog, DeliveryOutcome, DeliveryQuery};
use floe_promotion::{Excerpt, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::store::PostgresStore;

const COLUMNS: &str = "webhook, seq, event_id, status, attempts, http_status, error, time";

impl PostgresStore {
    /// Parses a row; a value that does not parse (an edited row) is a store error naming it.
    fn outcome(&self, row: &Row) -> Result<DeliveryOutcome> {
        let webhook: String = row.get(0);
        let seq: i64 = row.get(1);
        let event_id: String = row.get(2);
        let status: String = row.get(3);
        let attempts: i64 = row.get(4);
        let http_status: Option<i64> = row.get(5);
        let error: Option<String> = row.get(6);
        let time: String = row.get(7);
        let bad = |what: &str, value: &str| {
            self.at.store(format!(
                "webhook_deliveries row ({webhook}, {seq}): {what} {:?} does not parse",
                Excerpt::new(value).to_string()
            ))
        };
        Ok(DeliveryOutcome {
            seq: u64::try_from(seq).map_err(|_| bad("seq", &seq.to_string()))?,
            event_id: event_id.parse().map_err(|_| bad("event_id", &event_id))?,
            status: status.parse().map_err(|_| bad("status", &status))?,
            attempts: u32::try_from(attempts)
                .map_err(|_| bad("attempts", &attempts.to_string()))?,
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
}

#[async_trait]
impl DeliveryLog for PostgresStore {
    async fn record(&self, o: &DeliveryOutcome) -> Result<()> {
        let action = format!("recording the delivery of event {} to {}", o.seq, o.webhook);
        let client = self.client(&action).await?;
        client
            .execute(
                &format!(
                    "INSERT INTO webhook_deliveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (seq, webhook) DO UPDATE SET
                       event_id = excluded.event_id, status = excluded.status,
                       attempts = excluded.attempts, http_status = excluded.http_status,
                       error = excluded.error, time = excluded.time"
                ),
                &[
                    &o.webhook,
                    &i64::try_from(o.seq).unwrap_or(i64::MAX),
                    &o.event_id.to_string(),
                    &o.status.as_str(),
                    &i64::from(o.attempts),
                    &o.http_status.map(i64::from),
                    &o.error,
                    &o.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
                ],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(())
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryOutcome>> {
        let action = "listing delivery outcomes";
        let client = self.client(action).await?;
        let mut sql = format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE TRUE");
        let mut args: Vec<String> = Vec::new();
        if let Some(status) = query.status {
            args.push(status.as_str().to_string());
            sql.push_str(&format!(" AND status = ${}", args.len()));
        }
        if let Some(webhook) = &query.webhook {
            args.push(webhook.clone());
            sql.push_str(&format!(" AND webhook = ${}", args.len()));
        }
        sql.push_str(" ORDER BY seq, webhook COLLATE \"C\"");
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(&sql, &params)
            .await
            .map_err(|e| self.at.sql(action, e))?;
        rows.iter().map(|r| self.outcome(r)).collect()
    }

    async fn get(&self, webhook: &str, seq: u64) -> Result<Option<DeliveryOutcome>> {
        let action = format!("reading the delivery of event {seq} to {webhook}");
        let client = self.client(&action).await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM webhook_deliveries WHERE seq = $1 AND webhook = $2"
                ),
                &[&i64::try_from(seq).unwrap_or(i64::MAX), &webhook],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        row.map(|r| self.outcome(&r)).transpose()
    }
}
