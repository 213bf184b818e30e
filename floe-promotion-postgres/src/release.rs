//! [`ReleaseStore`] on PostgreSQL: one row per release holding its JSON, with copies of the
//! looked-up fields (target, kind, status, version) in indexed columns, and one row per
//! recorded effect key. An update locks the release's row (`SELECT ... FOR UPDATE`) and
//! compares its version, so of several hosts updating from one version exactly one wins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use floe_promotion::release::{
    Release, ReleaseFilter, ReleaseState, check_effect_key, check_new_release, check_status,
    release_exists, version_conflict,
};
use floe_promotion::{Error, ReleaseStore, Result};
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::store::PostgresStore;

impl PostgresStore {
    fn release_not_found(&self, id: Uuid) -> Error {
        Error::not_found(format!("release {id} in {}", self.at.name))
    }

    /// The release with `id`, if stored (`FOR UPDATE` when `lock`).
    async fn read_release<C: GenericClient + Sync>(
        &self,
        client: &C,
        action: &str,
        id: Uuid,
        lock: bool,
    ) -> Result<Option<Release>> {
        let sql = if lock {
            "SELECT body FROM releases WHERE id = $1 FOR UPDATE"
        } else {
            "SELECT body FROM releases WHERE id = $1"
        };
        let id = id.to_string();
        let row = client
            .query_opt(sql, &[&id])
            .await
            .map_err(|e| self.at.sql(action, e))?;
        row.map(|r| self.decode_json(&format!("release {id}"), &r.get::<_, String>(0)))
            .transpose()
    }

    async fn write_release<C: GenericClient + Sync>(
        &self,
        client: &C,
        action: &str,
        sql: &str,
        release: &Release,
    ) -> Result<u64> {
        let version = i64::try_from(release.version).map_err(|_| {
            self.at.store(format!(
                "{action}: version {} is out of range",
                release.version
            ))
        })?;
        let body = self.encode_json(&format!("release {}", release.id), release)?;
        client
            .execute(
                sql,
                &[
                    &release.id.to_string(),
                    &release.kind.as_str(),
                    &release.environment.as_str(),
                    &release.artifact.as_str(),
                    &release.status,
                    &version,
                    &body,
                ],
            )
            .await
            .map_err(|e| self.at.sql(action, e))
    }

    async fn release_exists_check<C: GenericClient + Sync>(
        &self,
        client: &C,
        action: &str,
        id: Uuid,
    ) -> Result<()> {
        let found = client
            .query_opt("SELECT 1 FROM releases WHERE id = $1", &[&id.to_string()])
            .await
            .map_err(|e| self.at.sql(action, e))?;
        found.map(|_| ()).ok_or_else(|| self.release_not_found(id))
    }
}

#[async_trait]
impl ReleaseStore for PostgresStore {
    async fn create(&self, release: Release) -> Result<Release> {
        check_new_release(&release)?;
        let action = format!("creating release {}", release.id);
        let client = self.client(&action).await?;
        let inserted = self
            .write_release(
                &**client,
                &action,
                "INSERT INTO releases (id, kind, environment, artifact, status, version, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                &release,
            )
            .await?;
        if inserted == 0 {
            let existing = self
                .read_release(&**client, &action, release.id, false)
                .await?
                .ok_or_else(|| self.release_not_found(release.id))?;
            return Err(release_exists(&existing));
        }
        Ok(release)
    }

    async fn get(&self, id: Uuid) -> Result<Release> {
        let action = format!("reading release {id}");
        let client = self.client(&action).await?;
        self.read_release(&**client, &action, id, false)
            .await?
            .ok_or_else(|| self.release_not_found(id))
    }

    async fn list(&self, filter: &ReleaseFilter) -> Result<Vec<Release>> {
        let action = "listing releases";
        let client = self.client(action).await?;
        let mut clauses = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let fields = [
            (
                "environment",
                filter.environment.as_ref().map(|e| e.as_str()),
            ),
            ("artifact", filter.artifact.as_ref().map(|a| a.as_str())),
            ("kind", filter.kind.map(|k| k.as_str())),
            ("status", filter.status.as_deref()),
        ];
        for (column, value) in fields {
            if let Some(v) = value {
                values.push(v.to_string());
                clauses.push(format!("{column} = ${}", values.len()));
            }
        }
        let mut sql = String::from("SELECT id, body FROM releases");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(&sql, &params)
            .await
            .map_err(|e| self.at.sql(action, e))?;
        let mut out = Vec::new();
        for row in &rows {
            let id: String = row.get(0);
            let release: Release =
                self.decode_json(&format!("release {id}"), &row.get::<_, String>(1))?;
            if release.matches(filter) {
                out.push(release);
            }
        }
        out.sort_by_key(Release::list_order);
        Ok(out)
    }

    async fn update(
        &self,
        id: Uuid,
        expected_version: u64,
        state: ReleaseState,
        now: DateTime<Utc>,
    ) -> Result<Release> {
        check_status(&state.status)?;
        let action = format!("updating release {id} at version {expected_version}");
        let err = |e| self.at.sql(&action, e);
        let mut client = self.client(&action).await?;
        let tx = client.transaction().await.map_err(err)?;
        let stored = self
            .read_release(&*tx, &action, id, true)
            .await?
            .ok_or_else(|| self.release_not_found(id))?;
        if stored.version != expected_version {
            return Err(version_conflict(&stored, expected_version));
        }
        let next = stored.advanced(state, now);
        self.write_release(
            &*tx,
            &action,
            "UPDATE releases SET kind = $2, environment = $3, artifact = $4, status = $5, \
             version = $6, body = $7 WHERE id = $1",
            &next,
        )
        .await?;
        tx.commit().await.map_err(err)?;
        Ok(next)
    }

    async fn record_effect(&self, id: Uuid, key: &str) -> Result<bool> {
        check_effect_key(key)?;
        let action = format!("recording effect {key:?} of release {id}");
        let client = self.client(&action).await?;
        self.release_exists_check(&**client, &action, id).await?;
        let inserted = client
            .execute(
                "INSERT INTO release_effects (release_id, effect_key) VALUES ($1, $2) \
                 ON CONFLICT (release_id, effect_key) DO NOTHING",
                &[&id.to_string(), &key],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(inserted > 0)
    }

    async fn effects(&self, id: Uuid) -> Result<Vec<String>> {
        let action = format!("listing the effects of release {id}");
        let client = self.client(&action).await?;
        self.release_exists_check(&**client, &action, id).await?;
        let rows = client
            .query(
                "SELECT effect_key FROM release_effects WHERE release_id = $1 ORDER BY ord",
                &[&id.to_string()],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }
}
