//! # floe-promotion-server
//!
//! `floe serve`: an HTTP API, a web dashboard and metrics over a
//! [`PromotionManager`](floe_promotion::PromotionManager).
//!
//! - `/api/v1/...`: versioned JSON endpoints (environments, history, approvals, promotions,
//!   rollbacks, locks, holds, audit), described by the OpenAPI document at
//!   `/api/v1/openapi.json` ([`openapi`]).
//! - `/`: a server-rendered dashboard; people sign in with a token and approve with a click.
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus text).
//!
//! Every mutating call needs a bearer token, verified by an [`IdentityVerifier`]: the actor
//! of a call is the token's identity, never a field of the request. Errors are the CLI's JSON
//! error shape ([`ApiError`]), classified by the embedder's [`ErrorReporter`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use floe_promotion::*;
//! # use floe_promotion_server::*;
//! # async fn doc(manager: Arc<dyn PromotionManager>, history: Arc<dyn HistoryStore>,
//! #     reporter: Arc<dyn ErrorReporter>) -> Result<()> {
//! let app = Server::builder()
//!     .manager(manager)
//!     .history(history)
//!     .errors(reporter)
//!     .identity(IdentityVerifier::new().with_static_tokens(
//!         StaticTokens::default().with_token("s3cret", Actor::new("alice")?),
//!     ))
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await
//!     .map_err(|e| Error::io("binding", e))?;
//! app.serve(listener, std::future::pending()).await
//! # }
//! ```

mod api;
mod auth;
mod dashboard;
mod error;
mod health;
mod identity;
mod lease_timing;
mod limits;
mod metrics;
mod serve;
mod state;

pub use api::{
    ApprovalParams, ApprovalsResponse, ApproveBody, EnvironmentsResponse, ExportParams,
    HistoryPage, HistoryParams, HoldBody, HoldParams, HoldsResponse, LockBody, LocksResponse,
    PlanResponse, PromoteBody, ReasonParams, RejectBody, RollbackBody, VerifyResponse, openapi,
};
pub use error::{ApiError, ErrorReporter, http_status};
pub use health::ReadinessProbe;
pub use identity::{IdentityVerifier, OidcVerifier, Refused, StaticTokens};
pub use lease_timing::LeaseTiming;
pub use metrics::Metrics;
pub use serve::{Server, ServerBuilder};
