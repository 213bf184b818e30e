//! The bearer-token extractor of mutating API calls.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use floe_promotion::{Actor, EnvName, Error};

use crate::error::Failure;
use crate::state::AppState;

/// The verified actor of a call: from `Authorization: Bearer <token>`, or a 401.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Actor);

/// A 401 in the API's error shape (kind `authorization`).
pub(crate) fn unauthenticated(state: &AppState, message: &str) -> Failure {
    let sample = Error::Forbidden {
        actor: "anonymous".into(),
        action: "authenticate",
        environment: EnvName::new("api").unwrap_or_else(|_| unreachable_env()),
        reason: String::new(),
    };
    let mut failure = state.fail(&sample).with_status(StatusCode::UNAUTHORIZED);
    failure.body.error = format!("unauthenticated: {message}");
    failure
}

fn unreachable_env() -> EnvName {
    // "api" is a valid name; this is only the type's fallback.
    EnvName::new("x").expect("a one-letter environment name is valid")
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                unauthenticated(state, "this call needs Authorization: Bearer <token>")
            })?;
        let value = header
            .to_str()
            .map_err(|_| unauthenticated(state, "the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthenticated(state, "expected Authorization: Bearer <token>"))?;
        match state.identity.verify(token).await {
            Ok(actor) => Ok(Caller(actor)),
            Err(refused) => {
                tracing::info!(reason = %refused, "bearer token refused");
                Err(unauthenticated(state, &refused.0))
            }
        }
    }
}
