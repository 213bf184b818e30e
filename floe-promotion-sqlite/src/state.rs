//! [`LockStore`] and [`ApprovalStore`] on SQLite: one row per lock, lease and approval
//! request, holding its JSON; every change is a `BEGIN IMMEDIATE` transaction, so it is atomic
//! across processes.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use floe_promotion::state::{
    ApprovalDecision, ApprovalRequest, ApprovalStatus, EnvLock, Lease, LeaseHolder,
};
use floe_promotion::{ApprovalStore, EnvName, Error, LockStore, Result};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::errors::store_err;
use crate::store::{Shared, SqliteStore};

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

fn get_request(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    id: Uuid,
) -> Result<ApprovalRequest> {
    body(
        shared,
        tx,
        action,
        "SELECT body FROM approvals WHERE id = ?1",
        &id.to_string(),
        &format!("approval request {id}"),
    )?
    .ok_or_else(|| Error::not_found(format!("approval request {id} in {}", shared.name)))
}

fn put_request(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    request: &ApprovalRequest,
) -> Result<()> {
    let body = to_json(shared, "an approval request", request)?;
    tx.execute(
        "UPDATE approvals SET status = ?2, body = ?3 WHERE id = ?1",
        params![request.id.to_string(), request.status.to_string(), body],
    )
    .map_err(|e| shared.err(action, e))?;
    Ok(())
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
            shared.with_write(&action, |tx| {
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
            shared.with_write(&action, |tx| {
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

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn create(&self, request: ApprovalRequest) -> Result<()> {
        self.blocking("creating an approval request", move |shared| {
            let action = format!("creating approval request {}", request.id);
            shared.with_write(&action, |tx| {
                let inserted = tx
                    .execute(
                        "INSERT INTO approvals (id, status, body) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (id) DO NOTHING",
                        params![
                            request.id.to_string(),
                            request.status.to_string(),
                            to_json(shared, "an approval request", &request)?
                        ],
                    )
                    .map_err(|e| shared.err(&action, e))?;
                if inserted == 0 {
                    return Err(Error::Conflict(format!(
                        "approval request {} already exists",
                        request.id
                    )));
                }
                Ok(())
            })
        })
        .await
    }

    async fn get(&self, id: Uuid) -> Result<ApprovalRequest> {
        self.blocking("reading an approval request", move |shared| {
            let action = format!("reading approval request {id}");
            shared.with_read(&action, |tx| get_request(shared, tx, &action, id))
        })
        .await
    }

    async fn list(&self, status: Option<ApprovalStatus>) -> Result<Vec<ApprovalRequest>> {
        self.blocking("listing approval requests", move |shared| {
            shared.with_read("listing approval requests", |tx| {
                let err = |e| shared.err("listing approval requests", e);
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id, body FROM approvals WHERE ?1 IS NULL OR status = ?1",
                    )
                    .map_err(err)?;
                let rows = stmt
                    .query_map(params![status.map(|s| s.to_string())], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(err)?;
                let mut out: Vec<ApprovalRequest> = Vec::new();
                for row in rows {
                    let (id, body) = row.map_err(err)?;
                    out.push(from_json(shared, &format!("approval request {id}"), &body)?);
                }
                out.sort_by_key(|r| (r.created, r.id));
                Ok(out)
            })
        })
        .await
    }

    async fn add_decision(&self, id: Uuid, decision: ApprovalDecision) -> Result<ApprovalRequest> {
        self.blocking("recording an approval decision", move |shared| {
            let action = format!("recording a decision on approval request {id}");
            shared.with_write(&action, |tx| {
                let mut request = get_request(shared, tx, &action, id)?;
                request.record_decision(decision)?;
                put_request(shared, tx, &action, &request)?;
                Ok(request)
            })
        })
        .await
    }

    async fn set_status(
        &self,
        id: Uuid,
        from: ApprovalStatus,
        to: ApprovalStatus,
    ) -> Result<ApprovalRequest> {
        self.blocking("changing an approval request's status", move |shared| {
            let action = format!("moving approval request {id} from {from} to {to}");
            shared.with_write(&action, |tx| {
                let mut request = get_request(shared, tx, &action, id)?;
                request.transition(from, to)?;
                put_request(shared, tx, &action, &request)?;
                Ok(request)
            })
        })
        .await
    }
}
