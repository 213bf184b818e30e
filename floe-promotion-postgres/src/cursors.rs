//! [`CursorStore`] on PostgreSQL: the notifiers' delivery cursors, one row per consumer; an
//! advance is compare-and-set under a transaction-scoped advisory lock on the consumer.

use async_trait::async_trait;
use floe_promotion::Result;
use floe_promotion::notify::CursorStore;

use crate::store::PostgresStore;

#[async_trait]
impl CursorStore for PostgresStore {
    async fn cursor(&self, consumer: &str) -> Result<u64> {
        let action = format!("reading the delivery cursor of {consumer}");
        let client = self.client(&action).await?;
        let row = client
            .query_opt(
                "SELECT seq FROM outbox_cursors WHERE consumer = $1",
                &[&consumer],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    async fn advance(&self, consumer: &str, from: u64, to: u64) -> Result<bool> {
        if to <= from {
            return Ok(false);
        }
        let (Ok(from), Ok(to)) = (i64::try_from(from), i64::try_from(to)) else {
            return Err(self.at.store(format!(
                "advancing the delivery cursor of {consumer}: sequence number out of range"
            )));
        };
        let action = format!("advancing the delivery cursor of {consumer}");
        let err = |e| self.at.sql(&action, e);
        let mut client = self.client(&action).await?;
        let tx = client.transaction().await.map_err(err)?;
        self.key_lock(&tx, &action, &format!("floe:cursor:{consumer}"))
            .await?;
        let current = tx
            .query_opt(
                "SELECT seq FROM outbox_cursors WHERE consumer = $1",
                &[&consumer],
            )
            .await
            .map_err(err)?
            .map_or(0, |r| r.get::<_, i64>(0));
        if current != from {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO outbox_cursors (consumer, seq) VALUES ($1, $2) \
             ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
            &[&consumer, &to],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }
}
