//! The versioned JSON API under `/api/v1`, and its OpenAPI document.

mod answer;
mod audit;
mod extract;
mod read;
mod write;

use axum::Json;
use axum::Router;
use axum::routing::{get, post, put};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

pub use audit::{ExportParams, VerifyResponse};
pub use read::{
    ApprovalParams, ApprovalsResponse, EnvironmentsResponse, HistoryPage, HistoryParams,
    HoldParams, HoldsResponse, LocksResponse,
};
pub use write::{
    ApproveBody, HoldBody, LockBody, PlanResponse, PromoteBody, ReasonParams, RejectBody,
    RollbackBody,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "floe",
        description = "Promote OCI artifacts by digest through environments: status, history, approvals, promotions, rollbacks, locks, holds and the audit trail. Mutating calls need a bearer token (a static token or an OIDC ID token); the actor is the token's identity. Errors are `{error, exit_code, kind}` with the exit code and kind `floe` would end with."
    ),
    paths(
        read::environments, read::environment, read::history, read::approvals, read::locks,
        read::holds, write::promote, write::rollback, write::approve, write::reject,
        write::execute, write::lock, write::unlock, write::hold, write::release_hold,
        audit::verify, audit::export
    ),
    components(schemas(crate::error::ApiError)),
    modifiers(&BearerAuth),
    tags(
        (name = "status", description = "What runs where"),
        (name = "history", description = "The audit trail, paged"),
        (name = "approvals", description = "Approval requests and votes"),
        (name = "promotions", description = "Promotions and rollbacks"),
        (name = "locks", description = "Environment locks"),
        (name = "holds", description = "Holds on automatic promotion"),
        (name = "audit", description = "Verification and export of the audit trail")
    )
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the API (served at `/api/v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// The `/api/v1` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/environments", get(read::environments))
        .route("/api/v1/environments/{env}", get(read::environment))
        .route(
            "/api/v1/environments/{env}/lock",
            put(write::lock).delete(write::unlock),
        )
        .route(
            "/api/v1/environments/{env}/holds",
            post(write::hold).delete(write::release_hold),
        )
        .route("/api/v1/history", get(read::history))
        .route("/api/v1/approvals", get(read::approvals))
        .route("/api/v1/approvals/{id}/approve", post(write::approve))
        .route("/api/v1/approvals/{id}/reject", post(write::reject))
        .route("/api/v1/approvals/{id}/execute", post(write::execute))
        .route("/api/v1/promotions", post(write::promote))
        .route("/api/v1/rollbacks", post(write::rollback))
        .route("/api/v1/locks", get(read::locks))
        .route("/api/v1/holds", get(read::holds))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/audit/export", get(audit::export))
}
