//! [`LockStore`] on PostgreSQL: one row per lock and lease, holding its JSON. Every change is a
//! transaction that first takes a transaction-scoped advisory lock on the environment, so
//! check-then-write is atomic across hosts. Leases hold their expiry time: a holder that died
//! stops holding the environment when its lease expires.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use floe_promotion::state::{EnvLock, Lease, LeaseHolder};
use floe_promotion::{EnvName, Error, LockStore, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::store::PostgresStore;

impl PostgresStore {
    pub(crate) fn encode_json<T: Serialize>(&self, what: &str, value: &T) -> Result<String> {
        serde_json::to_string(value).map_err(|e| self.at.store(format!("encoding {what}: {e}")))
    }

    pub(crate) fn decode_json<T: DeserializeOwned>(&self, what: &str, body: &str) -> Result<T> {
        serde_json::from_str(body).map_err(|e| {
            self.at
                .store(format!("{what}: stored JSON is not valid: {e}"))
        })
    }

    /// Serialises the transactions that change `key` (on every host) until `tx` ends.
    pub(crate) async fn key_lock(
        &self,
        tx: &Transaction<'_>,
        action: &str,
        key: &str,
    ) -> Result<()> {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| self.at.sql(action, e))?;
        Ok(())
    }

    /// The JSON body selected by `sql` with one text parameter.
    async fn body<T: DeserializeOwned>(
        &self,
        tx: &Transaction<'_>,
        action: &str,
        sql: &str,
        key: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let row = tx
            .query_opt(sql, &[&key])
            .await
            .map_err(|e| self.at.sql(action, e))?;
        row.map(|r| self.decode_json(what, &r.get::<_, String>(0)))
            .transpose()
    }

    /// Every row of `table` (`locks` or `leases`), parsed, sorted by environment.
    async fn list_bodies<T: DeserializeOwned>(&self, table: &str, what: &str) -> Result<Vec<T>> {
        let action = format!("listing {table}");
        let client = self.client(&action).await?;
        let rows = client
            .query(
                &format!(
                    "SELECT environment, body FROM {table} ORDER BY environment COLLATE \"C\""
                ),
                &[],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        rows.iter()
            .map(|r| {
                let env: String = r.get(0);
                self.decode_json(&format!("{what} of {env}"), &r.get::<_, String>(1))
            })
            .collect()
    }

    /// Deletes `lease` if the environment's lease is still that one (same token).
    async fn remove_lease(&self, verb: &str, lease: &Lease) -> Result<bool> {
        let action = format!("{verb} the promotion lease of {}", lease.environment);
        let client = self.client(&action).await?;
        let removed = client
            .execute(
                "DELETE FROM leases WHERE environment = $1 AND token = $2",
                &[&lease.environment.as_str(), &lease.token.to_string()],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(removed > 0)
    }
}

const LOCK_SQL: &str = "SELECT body FROM locks WHERE environment = $1";

#[async_trait]
impl LockStore for PostgresStore {
    async fn lock(&self, lock: EnvLock, now: DateTime<Utc>) -> Result<EnvLock> {
        let action = format!("locking {}", lock.environment);
        let err = |e| self.at.sql(&action, e);
        let env = lock.environment.as_str();
        let body = self.encode_json("a lock", &lock)?;
        let mut client = self.client(&action).await?;
        let tx = client.transaction().await.map_err(err)?;
        self.key_lock(&tx, &action, &format!("floe:lock:{env}"))
            .await?;
        let existing: Option<EnvLock> = self
            .body(&tx, &action, LOCK_SQL, env, &format!("lock of {env}"))
            .await?;
        if let Some(existing) = existing
            && existing.is_active(now)
        {
            return Err(Error::Locked {
                lock: Box::new(existing),
            });
        }
        tx.execute(
            "INSERT INTO locks (environment, body) VALUES ($1, $2) \
             ON CONFLICT (environment) DO UPDATE SET body = excluded.body",
            &[&env, &body],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(lock)
    }

    async fn unlock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        let action = format!("unlocking {environment}");
        let client = self.client(&action).await?;
        let row = client
            .query_opt(
                "DELETE FROM locks WHERE environment = $1 RETURNING body",
                &[&environment.as_str()],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        let existing: Option<EnvLock> = row
            .map(|r| self.decode_json(&format!("lock of {environment}"), &r.get::<_, String>(0)))
            .transpose()?;
        Ok(existing.filter(|l| l.is_active(now)))
    }

    async fn get_lock(&self, environment: &EnvName, now: DateTime<Utc>) -> Result<Option<EnvLock>> {
        let action = format!("reading the lock of {environment}");
        let client = self.client(&action).await?;
        let row = client
            .query_opt(LOCK_SQL, &[&environment.as_str()])
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        let lock: Option<EnvLock> = row
            .map(|r| self.decode_json(&format!("lock of {environment}"), &r.get::<_, String>(0)))
            .transpose()?;
        Ok(lock.filter(|l| l.is_active(now)))
    }

    async fn locks(&self, now: DateTime<Utc>) -> Result<Vec<EnvLock>> {
        let all: Vec<EnvLock> = self.list_bodies("locks", "lock").await?;
        Ok(all.into_iter().filter(|l| l.is_active(now)).collect())
    }

    async fn acquire_lease(
        &self,
        environment: &EnvName,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let action = format!("taking the promotion lease of {environment}");
        let err = |e| self.at.sql(&action, e);
        let env = environment.as_str();
        let mut client = self.client(&action).await?;
        let tx = client.transaction().await.map_err(err)?;
        self.key_lock(&tx, &action, &format!("floe:lease:{env}"))
            .await?;
        let existing: Option<Lease> = self
            .body(
                &tx,
                &action,
                "SELECT body FROM leases WHERE environment = $1",
                env,
                &format!("lease of {env}"),
            )
            .await?;
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
            holder: holder.name.clone(),
            token: Uuid::new_v4(),
            acquired: now,
            expires: now + ttl,
            process: holder.process.clone(),
        };
        tx.execute(
            "INSERT INTO leases (environment, token, body) VALUES ($1, $2, $3) \
             ON CONFLICT (environment) DO UPDATE SET token = excluded.token, body = excluded.body",
            &[
                &env,
                &lease.token.to_string(),
                &self.encode_json("a lease", &lease)?,
            ],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(lease)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.remove_lease("releasing", lease).await.map(|_| ())
    }

    async fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>> {
        let all: Vec<Lease> = self.list_bodies("leases", "lease").await?;
        Ok(all.into_iter().filter(|l| l.is_active(now)).collect())
    }

    async fn break_lease(&self, lease: &Lease) -> Result<bool> {
        self.remove_lease("breaking", lease).await
    }
}
