//! Mutations: promotions and rollbacks (with `dry_run`), approvals, locks and holds. Each
//! needs a bearer token; the actor is the token's identity.

use std::future::Future;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use floe_promotion::history::Deployment;
use floe_promotion::manager::{PromotionPlan, PromotionRecord};
use floe_promotion::{ArtifactName, EnvName, Error, PromotionRequest, RollbackRequest, Tag};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::answer::{Manager, answer, env_name, on_path};
use super::extract::{Body, Query};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorReporter, Failure};
use crate::state::AppState;

/// `POST /api/v1/promotions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    /// The artifact.
    pub artifact: String,
    /// The version (release tag).
    pub version: String,
    /// Source environment.
    pub from: String,
    /// Target environment.
    pub to: String,
    /// Why (recorded; required with the overrides).
    #[serde(default)]
    pub reason: Option<String>,
    /// Break-glass: promote although the target is locked.
    #[serde(default)]
    pub override_lock: bool,
    /// Break-glass: promote although the target's window is closed.
    #[serde(default)]
    pub override_window: bool,
    /// Check everything and answer with the plan; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/v1/rollbacks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The environment to roll back.
    pub environment: String,
    /// The version to return to.
    pub version: String,
    /// The artifact; needed only when the environment ran several at that version.
    #[serde(default)]
    pub artifact: Option<String>,
    /// Why (required).
    pub reason: String,
    /// Break-glass: roll back although the environment is locked.
    #[serde(default)]
    pub override_lock: bool,
    /// Check everything and answer with the plan; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a dry run found: what would be written and what would refuse it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanResponse {
    /// Whether the real run would succeed now.
    pub would_succeed: bool,
    /// The artifact.
    pub artifact: String,
    /// The version.
    pub version: String,
    /// The digest that would be promoted.
    pub digest: Option<String>,
    /// Source environment (none for a rollback).
    pub from: Option<String>,
    /// Target environment.
    pub to: String,
    /// Tags that would be written.
    #[schema(value_type = Vec<Object>)]
    pub tags: Vec<floe_promotion::manager::PlannedTag>,
    /// Every gate's result.
    #[schema(value_type = Vec<Object>)]
    pub gates: Vec<floe_promotion::gate::GateResult>,
    /// What would refuse the run, in order, each in the error shape.
    pub blockers: Vec<ApiError>,
    /// The approval a real run would wait for.
    #[schema(value_type = Option<Object>)]
    pub approval: Option<floe_promotion::manager::PlannedApproval>,
}

impl PlanResponse {
    fn of(plan: &PromotionPlan, reporter: &dyn ErrorReporter) -> PlanResponse {
        PlanResponse {
            would_succeed: plan.would_succeed(),
            artifact: plan.artifact.to_string(),
            version: plan.version.to_string(),
            digest: plan.digest.as_ref().map(ToString::to_string),
            from: plan.from.as_ref().map(ToString::to_string),
            to: plan.to.to_string(),
            tags: plan.tags.clone(),
            gates: plan.gates.clone(),
            blockers: plan.blockers.iter().map(|e| reporter.report(e)).collect(),
            approval: plan.approval.clone(),
        }
    }
}

/// The shared end of a promotion and a rollback: with `dry_run`, `plan`'s plan (blockers in
/// the error shape); otherwise `run`'s record.
async fn plan_or_run<Q, P, R>(
    st: &AppState,
    dry_run: bool,
    request: Q,
    plan: impl FnOnce(Q) -> P,
    run: impl FnOnce(Q) -> R,
) -> Result<Response, Error>
where
    P: Future<Output = Result<PromotionPlan, Error>>,
    R: Future<Output = Result<PromotionRecord, Error>>,
{
    if dry_run {
        let plan = plan(request).await?;
        return Ok(Json(PlanResponse::of(&plan, st.errors.as_ref())).into_response());
    }
    Ok(Json(run(request).await?).into_response())
}

/// `POST /api/v1/promotions`: a promotion, or its plan with `dry_run`.
#[utoipa::path(post, path = "/api/v1/promotions", tag = "promotions", request_body = PromoteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The promotion record, or the plan of a dry run", body = Object),
        (status = 202, description = "Waiting for approval (the message names the request)", body = ApiError),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 423, body = ApiError)))]
pub(crate) async fn promote(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Body(b): Body<PromoteBody>,
) -> Result<Response, Failure> {
    answer(&st, async {
        let req = PromotionRequest {
            artifact: ArtifactName::new(&b.artifact)?,
            version: Tag::new(&b.version)?,
            from: EnvName::new(&b.from)?,
            to: EnvName::new(&b.to)?,
            actor,
            reason: b.reason,
            override_lock: b.override_lock,
            automatic: false,
            override_window: b.override_window,
        };
        let (plan, run) = (|r| st.manager.plan(r), |r| st.manager.promote(r));
        plan_or_run(&st, b.dry_run, req, plan, run).await
    })
    .await
}

/// The artifact a rollback means when the body names none: the one the environment ran at
/// that version.
async fn rollback_artifact(
    st: &AppState,
    env: &EnvName,
    version: &Tag,
) -> Result<ArtifactName, Error> {
    let history = st
        .history
        .query(&floe_promotion::history::HistoryQuery {
            environment: Some(env.clone()),
            version: Some(version.clone()),
            ..Default::default()
        })
        .await?;
    let mut names: Vec<ArtifactName> = history
        .iter()
        .filter_map(Deployment::from_event)
        .map(|d| d.artifact)
        .collect();
    names.sort();
    names.dedup();
    match names.len() {
        1 => Ok(names.remove(0)),
        0 => Err(Error::VersionNotPromoted {
            artifact: "(any)".into(),
            version: version.to_string(),
            environment: env.clone(),
        }),
        _ => Err(Error::invalid(
            "artifact",
            "",
            format!(
                "{env} ran {version} of several artifacts ({}); name one",
                names
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `POST /api/v1/rollbacks`: a rollback, or its plan with `dry_run`.
#[utoipa::path(post, path = "/api/v1/rollbacks", tag = "promotions", request_body = RollbackBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rollback record, or the plan of a dry run", body = Object),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 423, body = ApiError)))]
pub(crate) async fn rollback(
    State(st): State<AppState>,
    Caller(actor): Caller,
    Body(b): Body<RollbackBody>,
) -> Result<Response, Failure> {
    answer(&st, async {
        let environment = EnvName::new(&b.environment)?;
        let version = Tag::new(&b.version)?;
        let artifact = match &b.artifact {
            Some(a) => ArtifactName::new(a)?,
            None => rollback_artifact(&st, &environment, &version).await?,
        };
        let req = RollbackRequest {
            artifact,
            environment,
            to_version: version,
            actor,
            reason: b.reason,
            override_lock: b.override_lock,
        };
        let (plan, run) = (|r| st.manager.plan_rollback(r), |r| st.manager.rollback(r));
        plan_or_run(&st, b.dry_run, req, plan, run).await
    })
    .await
}

fn request_id(id: &str) -> Result<uuid::Uuid, Error> {
    id.parse()
        .map_err(|_| Error::invalid("approval request id", id, "not a request id (a UUID)"))
}

/// `POST /api/v1/approvals/{id}/approve`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// A comment, recorded with the vote.
    #[serde(default)]
    pub comment: Option<String>,
}

/// `POST /api/v1/approvals/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (required, recorded).
    pub reason: String,
}

/// `POST /api/v1/approvals/{id}/approve`: a vote; the promotion runs when the quorum is met.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "The request id")), request_body = ApproveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request after the vote, and the promotion when it ran", body = Object),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn approve(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Caller(actor): Caller,
    Body(b): Body<ApproveBody>,
) -> Result<Json<impl Serialize>, Failure> {
    let vote =
        move |m: Manager, id| async move { m.approve(id, &actor, b.comment.as_deref()).await };
    on_path(&st, &id, request_id, vote).await.map(Json)
}

/// `POST /api/v1/approvals/{id}/reject`: a rejection, final.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals",
    params(("id" = String, Path, description = "The request id")), request_body = RejectBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The rejected request", body = Object),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn reject(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Caller(actor): Caller,
    Body(b): Body<RejectBody>,
) -> Result<Json<impl Serialize>, Failure> {
    let reject = move |m: Manager, id| async move { m.reject(id, &actor, &b.reason).await };
    on_path(&st, &id, request_id, reject).await.map(Json)
}

/// `POST /api/v1/approvals/{id}/execute`: runs an approved request (locks and gates apply).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/execute", tag = "approvals",
    params(("id" = String, Path, description = "The request id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The promotion record", body = Object),
        (status = 401, body = ApiError), (status = 409, body = ApiError), (status = 423, body = ApiError)))]
pub(crate) async fn execute(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Caller(actor): Caller,
) -> Result<Json<impl Serialize>, Failure> {
    let execute = move |m: Manager, id| async move { m.execute(id, &actor).await };
    on_path(&st, &id, request_id, execute).await.map(Json)
}

/// `PUT /api/v1/environments/{env}/lock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    /// Why (required, recorded).
    pub reason: String,
    /// Lift the lock by itself after this many seconds.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
}

/// A reason given in the query string (`DELETE` calls).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReasonParams {
    /// Why (recorded).
    pub reason: Option<String>,
    /// Holds only: release this holder's hold instead of your own (audited).
    pub holder: Option<String>,
}

/// `PUT /api/v1/environments/{env}/lock`: locks an environment.
#[utoipa::path(put, path = "/api/v1/environments/{env}/lock", tag = "locks",
    params(("env" = String, Path, description = "The environment")), request_body = LockBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The lock", body = Object),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn lock(
    State(st): State<AppState>,
    Path(env): Path<String>,
    Caller(actor): Caller,
    Body(b): Body<LockBody>,
) -> Result<Json<impl Serialize>, Failure> {
    let lock = move |m: Manager, env| async move {
        let expires = b
            .expires_in_seconds
            .map(|s| {
                i64::try_from(s)
                    .ok()
                    .and_then(chrono::Duration::try_seconds)
                    .ok_or_else(|| Error::invalid("expires_in_seconds", s.to_string(), "too large"))
            })
            .transpose()?;
        m.lock(&env, &actor, &b.reason, expires).await
    };
    on_path(&st, &env, env_name, lock).await.map(Json)
}

/// `DELETE /api/v1/environments/{env}/lock`: unlocks an environment.
#[utoipa::path(delete, path = "/api/v1/environments/{env}/lock", tag = "locks",
    params(("env" = String, Path, description = "The environment"), ReasonParams),
    security(("bearer" = [])),
    responses((status = 200, description = "The lock that was lifted", body = Object),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn unlock(
    State(st): State<AppState>,
    Path(env): Path<String>,
    Caller(actor): Caller,
    Query(p): Query<ReasonParams>,
) -> Result<Json<impl Serialize>, Failure> {
    let unlock =
        move |m: Manager, env| async move { m.unlock(&env, &actor, p.reason.as_deref()).await };
    on_path(&st, &env, env_name, unlock).await.map(Json)
}

/// `POST /api/v1/environments/{env}/holds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Why (required, recorded).
    pub reason: String,
}

/// `POST /api/v1/environments/{env}/holds`: holds automatic promotion into `env`.
#[utoipa::path(post, path = "/api/v1/environments/{env}/holds", tag = "holds",
    params(("env" = String, Path, description = "The environment")), request_body = HoldBody,
    security(("bearer" = [])),
    responses((status = 201, description = "The hold", body = Object),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn hold(
    State(st): State<AppState>,
    Path(env): Path<String>,
    Caller(actor): Caller,
    Body(b): Body<HoldBody>,
) -> Result<impl IntoResponse, Failure> {
    let hold = move |m: Manager, env| async move { m.hold(&env, &actor, &b.reason).await };
    let hold = on_path(&st, &env, env_name, hold).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// `DELETE /api/v1/environments/{env}/holds`: releases the caller's hold (or `holder`'s).
#[utoipa::path(delete, path = "/api/v1/environments/{env}/holds", tag = "holds",
    params(("env" = String, Path, description = "The environment"), ReasonParams),
    security(("bearer" = [])),
    responses((status = 200, description = "The released hold", body = Object),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn release_hold(
    State(st): State<AppState>,
    Path(env): Path<String>,
    Caller(actor): Caller,
    Query(p): Query<ReasonParams>,
) -> Result<Json<impl Serialize>, Failure> {
    let release = move |m: Manager, env| async move {
        let reason = p.reason.unwrap_or_default();
        m.release_hold(&env, &actor, p.holder.as_deref(), &reason)
            .await
    };
    on_path(&st, &env, env_name, release).await.map(Json)
}
