//! [`HoldStore`] on SQLite: one row per (environment, holder), holding the hold's JSON; every
//! change is a `BEGIN IMMEDIATE` transaction, so it is atomic across processes.

use async_trait::async_trait;
use floe_promotion::state::{Hold, HoldKind, HoldStore};
use floe_promotion::{EnvName, Result};
use rusqlite::{Transaction, params};

use crate::errors::store_err;
use crate::store::{Shared, SqliteStore};

/// The holds selected by `filter` (an SQL condition on `environment` and `kind`, with its
/// parameters), in contract order.
fn select(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Hold>> {
    let err = |e| shared.err(action, e);
    let mut stmt = tx
        .prepare_cached(&format!("SELECT body FROM holds WHERE {filter}"))
        .map_err(err)?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        let body = row.map_err(err)?;
        let hold: Hold = serde_json::from_str(&body).map_err(|e| {
            store_err(
                &shared.name,
                format!("a hold: stored JSON is not valid: {e}"),
            )
        })?;
        out.push(hold);
    }
    out.sort_by(|a, b| {
        (&a.environment, a.placed, &a.holder).cmp(&(&b.environment, b.placed, &b.holder))
    });
    Ok(out)
}

#[async_trait]
impl HoldStore for SqliteStore {
    async fn place(&self, hold: Hold) -> Result<bool> {
        self.blocking("placing a hold", move |shared| {
            let action = format!("placing a hold on {}", hold.environment);
            let body = serde_json::to_string(&hold)
                .map_err(|e| store_err(&shared.name, format!("encoding a hold: {e}")))?;
            shared.with_write(&action, |tx| {
                let added = tx
                    .execute(
                        "INSERT INTO holds (environment, holder, kind, body) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (environment, holder) DO NOTHING",
                        params![
                            hold.environment.as_str(),
                            hold.holder,
                            hold.kind.as_str(),
                            body
                        ],
                    )
                    .map_err(|e| shared.err(&action, e))?;
                Ok(added == 1)
            })
        })
        .await
    }

    async fn release(&self, environment: &EnvName, holder: &str) -> Result<Option<Hold>> {
        let environment = environment.clone();
        let holder = holder.to_string();
        self.blocking("releasing a hold", move |shared| {
            let action = format!("releasing the hold of {holder} on {environment}");
            shared.with_write(&action, |tx| {
                let found = select(
                    shared,
                    tx,
                    &action,
                    "environment = ?1 AND holder = ?2",
                    &[&environment.as_str(), &holder],
                )?;
                tx.execute(
                    "DELETE FROM holds WHERE environment = ?1 AND holder = ?2",
                    params![environment.as_str(), holder],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(found.into_iter().next())
            })
        })
        .await
    }

    async fn release_kind(&self, environment: &EnvName, kind: HoldKind) -> Result<Vec<Hold>> {
        let environment = environment.clone();
        self.blocking("releasing holds", move |shared| {
            let action = format!("releasing the {kind} holds on {environment}");
            shared.with_write(&action, |tx| {
                let found = select(
                    shared,
                    tx,
                    &action,
                    "environment = ?1 AND kind = ?2",
                    &[&environment.as_str(), &kind.as_str()],
                )?;
                tx.execute(
                    "DELETE FROM holds WHERE environment = ?1 AND kind = ?2",
                    params![environment.as_str(), kind.as_str()],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(found)
            })
        })
        .await
    }

    async fn holds(&self, environment: Option<&EnvName>) -> Result<Vec<Hold>> {
        let environment = environment.cloned();
        self.blocking("listing holds", move |shared| {
            shared.with_read("listing holds", |tx| match &environment {
                Some(env) => select(
                    shared,
                    tx,
                    "listing holds",
                    "environment = ?1",
                    &[&env.as_str()],
                ),
                None => select(shared, tx, "listing holds", "1 = 1", &[]),
            })
        })
        .await
    }
}
