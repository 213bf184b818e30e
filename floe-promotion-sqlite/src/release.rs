//! [`ReleaseStore`] on SQLite: one row per release holding its JSON, with copies of the fields
//! that are looked up (target, kind, status, version) in indexed columns, and one row per
//! recorded effect key. Every change is a `BEGIN IMMEDIATE` transaction, so compare-and-set
//! and effect recording are atomic across processes sharing the file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use floe_promotion::release::{
    Release, ReleaseFilter, ReleaseState, check_effect_key, check_new_release, check_status,
    release_exists, version_conflict,
};
use floe_promotion::{ReleaseStore, Result};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params, params_from_iter};
use uuid::Uuid;

use crate::errors::store_err;
use crate::store::{Shared, SqliteStore};

fn encode(shared: &Shared, release: &Release) -> Result<String> {
    serde_json::to_string(release).map_err(|e| {
        store_err(
            &shared.name,
            format!("encoding release {}: {e}", release.id),
        )
    })
}

fn decode(shared: &Shared, id: &str, body: &str) -> Result<Release> {
    serde_json::from_str(body).map_err(|e| {
        store_err(
            &shared.name,
            format!("release {id}: stored JSON is not valid: {e}"),
        )
    })
}

/// The release with `id`, if stored.
fn read(shared: &Shared, tx: &Transaction<'_>, action: &str, id: Uuid) -> Result<Option<Release>> {
    let id = id.to_string();
    let body: Option<String> = tx
        .query_row("SELECT body FROM releases WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| shared.err(action, e))?;
    body.map(|b| decode(shared, &id, &b)).transpose()
}

fn exists(shared: &Shared, tx: &Transaction<'_>, action: &str, id: Uuid) -> Result<()> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM releases WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| shared.err(action, e))?;
    found.map(|_| ()).ok_or_else(|| not_found(shared, id))
}

fn not_found(shared: &Shared, id: Uuid) -> floe_promotion::Error {
    floe_promotion::Error::not_found(format!("release {id} in {}", shared.name))
}

/// Writes the row of `release`: its body and the indexed copies of its fields.
fn write(
    shared: &Shared,
    tx: &Transaction<'_>,
    action: &str,
    sql: &str,
    release: &Release,
) -> Result<usize> {
    let version = i64::try_from(release.version).map_err(|_| {
        store_err(
            &shared.name,
            format!(
                "{action}: version {} does not fit in SQLite",
                release.version
            ),
        )
    })?;
    tx.execute(
        sql,
        params![
            release.id.to_string(),
            release.kind.as_str(),
            release.environment.as_str(),
            release.artifact.as_str(),
            release.status,
            version,
            encode(shared, release)?
        ],
    )
    .map_err(|e| shared.err(action, e))
}

#[async_trait]
impl ReleaseStore for SqliteStore {
    async fn create(&self, release: Release) -> Result<Release> {
        check_new_release(&release)?;
        self.blocking("creating a release", move |shared| {
            let action = format!("creating release {}", release.id);
            shared.with_write(&action, |tx| {
                let inserted = write(
                    shared,
                    tx,
                    &action,
                    "INSERT INTO releases (id, kind, environment, artifact, status, version, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                    &release,
                )?;
                if inserted == 0 {
                    let existing = read(shared, tx, &action, release.id)?
                        .ok_or_else(|| not_found(shared, release.id))?;
                    return Err(release_exists(&existing));
                }
                Ok(release)
            })
        })
        .await
    }

    async fn get(&self, id: Uuid) -> Result<Release> {
        self.blocking("reading a release", move |shared| {
            let action = format!("reading release {id}");
            shared.with_read(&action, |tx| {
                read(shared, tx, &action, id)?.ok_or_else(|| not_found(shared, id))
            })
        })
        .await
    }

    async fn list(&self, filter: &ReleaseFilter) -> Result<Vec<Release>> {
        let filter = filter.clone();
        self.blocking("listing releases", move |shared| {
            let action = "listing releases";
            shared.with_read(action, |tx| {
                let err = |e| shared.err(action, e);
                // Only the filter's fields, so that SQLite can use the indexes.
                let mut clauses = Vec::new();
                let mut values = Vec::new();
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
                        values.push(Value::Text(v.to_string()));
                        clauses.push(format!("{column} = ?{}", values.len()));
                    }
                }
                let mut sql = String::from("SELECT id, body FROM releases");
                if !clauses.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&clauses.join(" AND "));
                }
                let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
                let rows = stmt
                    .query_map(params_from_iter(values), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(err)?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, body) = row.map_err(err)?;
                    let release = decode(shared, &id, &body)?;
                    // The columns pre-filter; the body decides.
                    if release.matches(&filter) {
                        out.push(release);
                    }
                }
                out.sort_by_key(Release::list_order);
                Ok(out)
            })
        })
        .await
    }

    async fn update(
        &self,
        id: Uuid,
        expected_version: u64,
        state: ReleaseState,
        now: DateTime<Utc>,
    ) -> Result<Release> {
        check_status(&state.status)?;
        self.blocking("updating a release", move |shared| {
            let action = format!("updating release {id} at version {expected_version}");
            shared.with_write(&action, |tx| {
                let stored = read(shared, tx, &action, id)?.ok_or_else(|| not_found(shared, id))?;
                if stored.version != expected_version {
                    return Err(version_conflict(&stored, expected_version));
                }
                let next = stored.advanced(state, now);
                write(
                    shared,
                    tx,
                    &action,
                    "UPDATE releases SET kind = ?2, environment = ?3, artifact = ?4, \
                     status = ?5, version = ?6, body = ?7 WHERE id = ?1",
                    &next,
                )?;
                Ok(next)
            })
        })
        .await
    }

    async fn record_effect(&self, id: Uuid, key: &str) -> Result<bool> {
        check_effect_key(key)?;
        let key = key.to_string();
        self.blocking("recording an effect", move |shared| {
            let action = format!("recording effect {key:?} of release {id}");
            shared.with_write(&action, |tx| {
                exists(shared, tx, &action, id)?;
                let inserted = tx
                    .execute(
                        "INSERT INTO release_effects (release_id, effect_key) VALUES (?1, ?2) \
                         ON CONFLICT (release_id, effect_key) DO NOTHING",
                        params![id.to_string(), key],
                    )
                    .map_err(|e| shared.err(&action, e))?;
                Ok(inserted > 0)
            })
        })
        .await
    }

    async fn effects(&self, id: Uuid) -> Result<Vec<String>> {
        self.blocking("listing effects", move |shared| {
            let action = format!("listing the effects of release {id}");
            shared.with_read(&action, |tx| {
                exists(shared, tx, &action, id)?;
                let err = |e| shared.err(&action, e);
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT effect_key FROM release_effects WHERE release_id = ?1 \
                         ORDER BY rowid",
                    )
                    .map_err(err)?;
                let keys = stmt
                    .query_map([id.to_string()], |r| r.get::<_, String>(0))
                    .map_err(err)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(err)?;
                Ok(keys)
            })
        })
        .await
    }
}
