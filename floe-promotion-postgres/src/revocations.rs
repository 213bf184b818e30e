//! [`RevocationStore`] on PostgreSQL: one row per revoked digest, holding the revocation's
//! JSON. Each change is one statement, atomic across hosts.

use async_trait::async_trait;
use floe_promotion::state::{Revocation, RevocationStore};
use floe_promotion::{Digest, Result};
use tokio_postgres::Row;

use crate::store::PostgresStore;

impl PostgresStore {
    /// Parses revocation rows (`body` first), oldest first, then by digest.
    fn revocations_from(&self, rows: &[Row]) -> Result<Vec<Revocation>> {
        let mut out: Vec<Revocation> = rows
            .iter()
            .map(|r| self.decode_json("a revocation", &r.get::<_, String>(0)))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| (a.at, &a.digest).cmp(&(b.at, &b.digest)));
        Ok(out)
    }
}

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn revoke(&self, revocation: Revocation) -> Result<bool> {
        let action = format!("revoking {}", revocation.digest);
        let body = self.encode_json("a revocation", &revocation)?;
        let client = self.client(&action).await?;
        let added = client
            .execute(
                "INSERT INTO revocations (digest, body) VALUES ($1, $2) \
                 ON CONFLICT (digest) DO NOTHING",
                &[&revocation.digest.as_str(), &body],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(added == 1)
    }

    async fn unrevoke(&self, digest: &Digest) -> Result<Option<Revocation>> {
        let action = format!("lifting the revocation of {digest}");
        let client = self.client(&action).await?;
        let rows = client
            .query(
                "DELETE FROM revocations WHERE digest = $1 RETURNING body",
                &[&digest.as_str()],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(self.revocations_from(&rows)?.into_iter().next())
    }

    async fn revocation(&self, digest: &Digest) -> Result<Option<Revocation>> {
        let action = format!("reading the revocation of {digest}");
        let client = self.client(&action).await?;
        let rows = client
            .query(
                "SELECT body FROM revocations WHERE digest = $1",
                &[&digest.as_str()],
            )
            .await
            .map_err(|e| self.at.sql(&action, e))?;
        Ok(self.revocations_from(&rows)?.into_iter().next())
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        let action = "listing revocations";
        let client = self.client(action).await?;
        let rows = client
            .query("SELECT body FROM revocations", &[])
            .await
            .map_err(|e| self.at.sql(action, e))?;
        self.revocations_from(&rows)
    }
}
