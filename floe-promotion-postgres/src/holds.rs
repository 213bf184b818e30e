//! [`HoldStore`] on PostgreSQL: one row per (environment, holder), holding the hold's JSON.
//! Each change is one statement, atomic across hosts.

use async_trait::async_trait;
use floe_promotion::state::{Hold, HoldKind, HoldStore};
use floe_promotion::{EnvName, Result};
use tokio_postgres::Row;

use crate::store::PostgresStore;

impl PostgresStore {
    /// Parses hold rows (`body` first) and sorts them in contract order.
    fn holds_from(&self, rows: &[Row]) -> Result<Vec<Hold>> {
        let mut out: Vec<Hold> = rows
            .iter()
            .map(|r| self.decode_json("a hold", &r.get::<_, String>(0)))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| {
            (&a.environment, a.placed, &a.holder).cmp(&(&b.environment, b.placed, &b.holder))
        });
        Ok(out)
    }
}

#[async_trait]
impl HoldStore for PostgresStore {
    async fn place(&self, hold: Hold) -> Result<bool> {
        let action = format!("placing a hold on {}", hold.environment);
        let body = self.encode_json("a hold", &hold)?;
        let client = self.client(&action).await?;
        let added = client
            .execute(
                "INSERT INTO holds (environment, holder, kind, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (environment, holder) DO NOTHING",
                &[
                    &hold.environment.as_str(),
                    &hold.holder,
                    &hold.kind.as_str(),
                    &body,
                ],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(added == 1)
    }

    async fn release(&self, environment: &EnvName, holder: &str) -> Result<Option<Hold>> {
        let action = format!("releasing the hold of {holder} on {environment}");
        let client = self.client(&action).await?;
        let rows = client
            .query(
                "DELETE FROM holds WHERE environment = $1 AND holder = $2 RETURNING body",
                &[&environment.as_str(), &holder],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(self.holds_from(&rows)?.into_iter().next())
    }

    async fn release_kind(&self, environment: &EnvName, kind: HoldKind) -> Result<Vec<Hold>> {
        let action = format!("releasing the {kind} holds on {environment}");
        let client = self.client(&action).await?;
        let rows = client
            .query(
                "DELETE FROM holds WHERE environment = $1 AND kind = $2 RETURNING body",
                &[&environment.as_str(), &kind.as_str()],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        self.holds_from(&rows)
    }

    async fn holds(&self, environment: Option<&EnvName>) -> Result<Vec<Hold>> {
        let action = "listing holds";
        let client = self.client(action).await?;
        let env = environment.map(EnvName::as_str);
        let rows = client
            .query(
                "SELECT body FROM holds WHERE $1::TEXT IS NULL OR environment = $1",
                &[&env],
            )
            .await
            .map_err(|e| self.at.sql(action, e))?;
        self.holds_from(&rows)
    }
}
