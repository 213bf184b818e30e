//! [`RevocationStore`] on SQLite: one row per revoked digest, holding the revocation's JSON.

use async_trait::async_trait;
use floe_promotion::state::{Revocation, RevocationStore};
use floe_promotion::{Digest, Result};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::errors::store_err;
use crate::store::{Shared, SqliteStore};

fn decode(shared: &Shared, body: &str) -> Result<Revocation> {
    serde_json::from_str(body).map_err(|e| {
        store_err(
            &shared.name,
            format!("a revocation: stored JSON is not valid: {e}"),
        )
    })
}

fn read(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    digest: &Digest,
) -> Result<Option<Revocation>> {
    let body: Option<String> = tx
        .query_row(
            "SELECT body FROM revocations WHERE digest = ?1",
            params![digest.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| shared.err(action, e))?;
    body.map(|b| decode(shared, &b)).transpose()
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke(&self, revocation: Revocation) -> Result<bool> {
        self.blocking("revoking a digest", move |shared| {
            let action = format!("revoking {}", revocation.digest);
            let body = serde_json::to_string(&revocation)
                .map_err(|e| store_err(&shared.name, format!("encoding a revocation: {e}")))?;
            shared.with_write(&action, |tx| {
                let added = tx
                    .execute(
                        "INSERT INTO revocations (digest, body) VALUES (?1, ?2)
                         ON CONFLICT (digest) DO NOTHING",
                        params![revocation.digest.as_str(), body],
                    )
                    .map_err(|e| shared.err(&action, e))?;
                Ok(added == 1)
            })
        })
        .await
    }

    async fn unrevoke(&self, digest: &Digest) -> Result<Option<Revocation>> {
        let digest = digest.clone();
        self.blocking("lifting a revocation", move |shared| {
            let action = format!("lifting the revocation of {digest}");
            shared.with_write(&action, |tx| {
                let found = read(shared, tx, &action, &digest)?;
                tx.execute(
                    "DELETE FROM revocations WHERE digest = ?1",
                    params![digest.as_str()],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(found)
            })
        })
        .await
    }

    async fn revocation(&self, digest: &Digest) -> Result<Option<Revocation>> {
        let digest = digest.clone();
        self.blocking("reading a revocation", move |shared| {
            let action = format!("reading the revocation of {digest}");
            shared.with_read(&action, |tx| read(shared, tx, &action, &digest))
        })
        .await
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        self.blocking("listing revocations", move |shared| {
            shared.with_read("listing revocations", |tx| {
                let err = |e| shared.err("listing revocations", e);
                let mut stmt = tx
                    .prepare_cached("SELECT body FROM revocations")
                    .map_err(err)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
                let mut all = Vec::new();
                for row in rows {
                    all.push(decode(shared, &row.map_err(err)?)?);
                }
                all.sort_by(|a: &Revocation, b: &Revocation| {
                    (a.at, &a.digest).cmp(&(b.at, &b.digest))
                });
                Ok(all)
            })
        })
        .await
    }
}
