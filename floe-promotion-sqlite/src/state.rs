//! [`LockStore`] on SQLite: one row per lock and lease, holding its JSON; every change is a
//! `BEGIN IMMEDIATE` transaction, so it is atomic across processes. (The `approvals` table of
//! schema version 1 is no longer used: approval requests are release state.)

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use floe_promotion::state::{EnvLock, Lease, LeaseHolder};
use floe_promotion::{EnvName, Error, LockStore, Result};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::errors::store_err;
use crate::store::{Durability, Shared, SqliteStore};

fn to_json<T: Serialize>(shared: &Shared, what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| store_err(&shared.name, format!("encoding {what}: {e}")))
}

fn from_json<T: DeserializeOwned>(shared: &Shared, what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| {
        store_err(
            &shared.name,
            format!("{what}: stored JSON is not valid: {e}"),
        )
    })
}

/// Reads one JSON body selected by `key`.
fn body<T: DeserializeOwned>(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    sql: &str,
    key: &str,
    what: &str,
) -> Result<Option<T>> {
    let body: Option<String> = tx
        .query_row(sql, params![key], |r| r.get(0))
        .optional()
        .map_err(|e| shared.err(action, e))?;
    body.map(|b| from_json(shared, what, &b)).transpose()
}

fn get_lock_row(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    env: &EnvName,
) -> Result<Option<EnvLock>> {
    body(
        shared,
        tx,
        action,
        "SELECT body FROM locks WHERE environment = ?1",
        env.as_str(),
        &format!("lock of {env}"),
    )
}

#[async_trait]
impl LockStore for SqliteStore {
    async fn lock(&self, lock: EnvLock, now: DateTime<Utc>) -> Result<EnvLock> {
        self.blocking("locking an environment", move |shared| {
            let action = format!("locking {}", lock.environment);
            shared.with_write(&action, |tx| {
                if let Some(existing) = get_lock_row(shared, tx, &action, &lock.environment)?
                    && existing.is_active(now)
                {
                    return Err(Error::Locked {
                        lock: Box::new(existing),
                    });
                }
                tx.execute(
                    "INSERT OR REPLACE INTO locks (environment, body) VALUES (?1, ?2)",
                    params![lock.environment.as_str(), to_json(shared, "a lock", &lock)?],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(lock)
            })
        })
        .await
    }

    async fn unlock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        let environment = environment.clone();
        self.blocking("unlocking an environment", move |shared| {
            let action = format!("unlocking {environment}");
            shared.with_write(&action, |tx| {
                let existing = get_lock_row(shared, tx, &action, &environment)?;
                tx.execute(
                    "DELETE FROM locks WHERE environment = ?1",
                    params![environment.as_str()],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(existing.filter(|l| l.is_active(now)))
            })
        })
        .await
    }

    async fn get_lock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        let environment = environment.clone();
        self.blocking("reading a lock", move |shared| {
            let action = format!("reading the lock of {environment}");
            shared.with_read(&action, |tx| {
                Ok(get_lock_row(shared, tx, &action, &environment)?.filter(|l| l.is_active(now)))
            })
        })
        .await
    }

    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<EnvLock>> {
        self.blocking("listing locks", move |shared| {
            shared.with_read("listing locks", |tx| {
                let all: Vec<EnvLock> = list_bodies(shared, tx, "locks", "lock")?;
                Ok(all.into_iter().filter(|l| l.is_active(now)).collect())
            })
        })
        .await
    }

    async fn acquire_lease(
        &self,
        environment: &EnvName,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let environment = environment.clone();
        let holder = holder.clone();
        self.blocking("taking a promotion lease", move |shared| {
            let action = format!("taking the promotion lease of {environment}");
            // Relaxed: a lease guards live processes; a power cut that loses it also ended
            // every process it could have kept out.
            shared.with_write_as(&action, Durability::Relaxed, |tx| {
                let existing: Option<Lease> = body(
                    shared,
                    tx,
                    &action,
                    "SELECT body FROM leases WHERE environment = ?1",
                    environment.as_str(),
                    &format!("lease of {environment}"),
                )?;
                if let Some(l) = existing
                    && l.is_active(now)
                {
                    return Err(Error::Busy {
                        environment: environment.clone(),
                        holder: l.holder,
                        until: l.expires.to_rfc3339(),
                    });
                }
                let lease = Lease {
                    environment: environment.clone(),
                    holder: holder.name,
                    token: Uuid::new_v4(),
                    acquired: now,
                    expires: now + ttl,
                    process: holder.process,
                };
                tx.execute(
                    "INSERT OR REPLACE INTO leases (environment, token, body) VALUES (?1, ?2, ?3)",
                    params![
                        environment.as_str(),
                        lease.token.to_string(),
                        to_json(shared, "a lease", &lease)?
                    ],
                )
                .map_err(|e| shared.err(&action, e))?;
                Ok(lease)
            })
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.remove_lease("releasing", lease).await.map(|_| ())
    }

    async fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>> {
        self.blocking("listing leases", move |shared| {
            shared.with_read("listing promotion leases", |tx| {
                let all: Vec<Lease> = list_bodies(shared, tx, "leases", "lease")?;
                Ok(all.into_iter().filter(|l| l.is_active(now)).collect())
            })
        })
        .await
    }

    async fn break_lease(&self, lease: &Lease) -> Result<bool> {
        self.remove_lease("breaking", lease).await
    }
}

impl SqliteStore {
    /// Deletes `lease` if the environment's lease is still that one (same token).
    async fn remove_lease(&self, verb: &'static str, lease: &Lease) -> Result<bool> {
        let lease = lease.clone();
        self.blocking("removing a promotion lease", move |shared| {
            let action = format!("{verb} the promotion lease of {}", lease.environment);
            // A lost release costs a wait until the lease expires, never a wrong state.
            shared.with_write_as(&action, Durability::Relaxed, |tx| {
                let removed = tx
                    .execute(
                        "DELETE FROM leases WHERE environment = ?1 AND token = ?2",
                        params![lease.environment.as_str(), lease.token.to_string()],
                    )
                    .map_err(|e| shared.err(&action, e))?;
                Ok(removed > 0)
            })
        })
        .await
    }
}

/// Every row of `table` (`locks` or `leases`: `environment`, `body`), parsed, sorted by
/// environment.
fn list_bodies<T: DeserializeOwned>(
    shared: &Shared,
    tx: &Transaction<'_>,
    table: &'static str,
    what: &str,
) -> Result<Vec<T>> {
    let action = format!("listing {table}");
    let err = |e| shared.err(&action, e);
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT environment, body FROM {table} ORDER BY environment"
        ))
        .map_err(err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        let (env, body) = row.map_err(err)?;
        out.push(from_json(shared, &format!("{what} of {env}"), &body)?);
    }
    Ok(out)
}
