//! [`CursorStore`] on SQLite: the notifiers' delivery cursors, one row per consumer, shared by
//! every process that opens the file.

use async_trait::async_trait;
use floe_promotion::Result;
use floe_promotion::notify::CursorStore;
use rusqlite::{OptionalExtension, params};

use crate::store::{Durability, SqliteStore};

#[async_trait]
impl CursorStore for SqliteStore {
    async fn cursor(&self, consumer: &str) -> Result<u64> {
        let consumer = consumer.to_string();
        self.blocking("reading a delivery cursor", move |shared| {
            let action = format!("reading the delivery cursor of {consumer}");
            shared.with_read(&action, |tx| {
                let seq: Option<i64> = tx
                    .query_row(
                        "SELECT seq FROM outbox_cursors WHERE consumer = ?1",
                        params![consumer],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| shared.err(&action, e))?;
                Ok(seq.map_or(0, |s| s.max(0) as u64))
            })
        })
        .await
    }

    async fn advance(&self, consumer: &str, from: u64, to: u64) -> Result<bool> {
        if to <= from {
            return Ok(false);
        }
        let consumer = consumer.to_string();
        self.blocking("advancing a delivery cursor", move |shared| {
            let action = format!("advancing the delivery cursor of {consumer}");
            shared.with_write_as(&action, Durability::Relaxed, |tx| {
                let err = |e| shared.err(&action, e);
                let current: i64 = tx
                    .query_row(
                        "SELECT seq FROM outbox_cursors WHERE consumer = ?1",
                        params![consumer],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(err)?
                    .unwrap_or(0);
                if current != from as i64 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO outbox_cursors (consumer, seq) VALUES (?1, ?2)
                     ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
                    params![consumer, to as i64],
                )
                .map_err(err)?;
                Ok(true)
            })
        })
        .await
    }
}
