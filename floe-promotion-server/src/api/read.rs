//! Reads: environments and status, history, approvals, locks, holds.

use axum::Json;
use axum::extract::{Path, State};
use floe_promotion::history::{EventKind, HistoryQuery, Order};
use floe_promotion::{ArtifactName, EnvName, Tag};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::answer::{Manager, answer, env_name, on_path};
use super::extract::Query;
use crate::error::{ApiError, Failure};
use crate::state::AppState;

/// The most events one history page holds.
pub(crate) const MAX_PAGE: usize = 500;

/// What runs in each environment, in promotion order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentsResponse {
    /// One entry per environment: deployments (version, digest, since, by whom), lock, holds,
    /// canaries, blue-green slots and revocations.
    #[schema(value_type = Vec<Object>)]
    pub environments: Vec<floe_promotion::manager::EnvironmentStatus>,
}

/// `GET /api/v1/environments`.
#[utoipa::path(get, path = "/api/v1/environments", tag = "status",
    responses((status = 200, body = EnvironmentsResponse), (status = 500, body = ApiError)))]
pub(crate) async fn environments(
    State(st): State<AppState>,
) -> Result<Json<EnvironmentsResponse>, Failure> {
    let environments = answer(&st, st.manager.status(None)).await?;
    Ok(Json(EnvironmentsResponse { environments }))
}

/// `GET /api/v1/environments/{env}`.
#[utoipa::path(get, path = "/api/v1/environments/{env}", tag = "status",
    params(("env" = String, Path, description = "The environment")),
    responses((status = 200, body = EnvironmentsResponse), (status = 404, body = ApiError)))]
pub(crate) async fn environment(
    State(st): State<AppState>,
    Path(env): Path<String>,
) -> Result<Json<EnvironmentsResponse>, Failure> {
    let status = |m: Manager, env| async move { m.status(Some(&env)).await };
    let environments = on_path(&st, &env, env_name, status).await?;
    Ok(Json(EnvironmentsResponse { environments }))
}

/// The filters of `GET /api/v1/history` (those of `floe history`, plus paging).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only events of this environment.
    pub env: Option<String>,
    /// Only events of NAME or NAME:VERSION.
    pub artifact: Option<String>,
    /// Only events of this kind (`promotion_succeeded`, `approval_requested`, ...).
    pub kind: Option<String>,
    /// At most this many events, newest first (default 50, at most 500).
    pub limit: Option<usize>,
    /// Only events with a sequence number below this (the `next_before` of the previous
    /// page).
    pub before: Option<u64>,
}

/// One page of the audit trail, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    /// The events: `{seq, format, ...record, prev_hash, hash}`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<floe_promotion::history::AuditEvent>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<u64>,
}

/// An optional `env` filter, checked.
fn env_filter(env: Option<&str>) -> floe_promotion::Result<Option<EnvName>> {
    env.map(EnvName::new).transpose()
}

/// Parses the history filters into a query.
pub(crate) fn history_query(p: &HistoryParams) -> floe_promotion::Result<HistoryQuery> {
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(floe_promotion::Error::invalid(
            "limit",
            limit.to_string(),
            format!("from 1 to {MAX_PAGE}"),
        ));
    }
    let mut q = HistoryQuery {
        environment: env_filter(p.env.as_deref())?,
        limit: Some(limit),
        before_seq: p.before,
        order: Order::NewestFirst,
        ..Default::default()
    };
    if let Some(s) = &p.artifact {
        match s.split_once(':') {
            Some((name, version)) => {
                q.artifact = Some(ArtifactName::new(name)?);
                q.version = Some(Tag::new(version)?);
            }
            None => q.artifact = Some(ArtifactName::new(s)?),
        }
    }
    if let Some(kind) = &p.kind {
        q.kinds = vec![kind.parse::<EventKind>()?];
    }
    Ok(q)
}

/// `GET /api/v1/history`.
#[utoipa::path(get, path = "/api/v1/history", tag = "history", params(HistoryParams),
    responses((status = 200, body = HistoryPage), (status = 400, body = ApiError)))]
pub(crate) async fn history(
    State(st): State<AppState>,
    Query(p): Query<HistoryParams>,
) -> Result<Json<HistoryPage>, Failure> {
    answer(&st, async {
        let q = history_query(&p)?;
        let events = st.manager.history(&q).await?;
        let next_before = (events.len() == q.limit.unwrap_or(0))
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Ok(Json(HistoryPage {
            events,
            next_before,
        }))
    })
    .await
}

/// The filters of `GET /api/v1/approvals`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalParams {
    /// Only requests into this environment.
    pub env: Option<String>,
    /// Only requests in this state: pending, approved, executing, executed, rejected, expired.
    pub status: Option<String>,
}

/// Approval requests, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalsResponse {
    /// The requests with their votes and what is missing.
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<floe_promotion::manager::ApprovalView>,
}

/// `GET /api/v1/approvals`.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ApprovalParams),
    responses((status = 200, body = ApprovalsResponse), (status = 400, body = ApiError)))]
pub(crate) async fn approvals(
    State(st): State<AppState>,
    Query(p): Query<ApprovalParams>,
) -> Result<Json<ApprovalsResponse>, Failure> {
    answer(&st, async {
        let env = env_filter(p.env.as_deref())?;
        let status = p
            .status
            .as_deref()
            .map(str::parse::<floe_promotion::release::approval::Phase>)
            .transpose()?;
        let requests = st.manager.approvals(env.as_ref(), status).await?;
        Ok(Json(ApprovalsResponse { requests }))
    })
    .await
}

/// The locks in force.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LocksResponse {
    /// One per locked environment.
    #[schema(value_type = Vec<Object>)]
    pub locks: Vec<floe_promotion::state::EnvLock>,
}

/// `GET /api/v1/locks`.
#[utoipa::path(get, path = "/api/v1/locks", tag = "locks",
    responses((status = 200, body = LocksResponse), (status = 500, body = ApiError)))]
pub(crate) async fn locks(State(st): State<AppState>) -> Result<Json<LocksResponse>, Failure> {
    let status = answer(&st, st.manager.status(None)).await?;
    Ok(Json(LocksResponse {
        locks: status.into_iter().filter_map(|s| s.lock).collect(),
    }))
}

/// The filter of `GET /api/v1/holds`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldParams {
    /// Only this environment.
    pub env: Option<String>,
}

/// Holds on automatic promotion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HoldsResponse {
    /// The holds, by environment.
    #[schema(value_type = Vec<Object>)]
    pub holds: Vec<floe_promotion::state::Hold>,
}

/// `GET /api/v1/holds`.
#[utoipa::path(get, path = "/api/v1/holds", tag = "holds", params(HoldParams),
    responses((status = 200, body = HoldsResponse), (status = 400, body = ApiError)))]
pub(crate) async fn holds(
    State(st): State<AppState>,
    Query(p): Query<HoldParams>,
) -> Result<Json<HoldsResponse>, Failure> {
    answer(&st, async {
        let env = env_filter(p.env.as_deref())?;
        let holds = st.manager.holds(env.as_ref()).await?;
        Ok(Json(HoldsResponse { holds }))
    })
    .await
}
