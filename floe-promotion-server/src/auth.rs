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

/// A 401 in the API's error shape, classified as an authorization refusal.
pub(crate) fn unauthenticated(state: &AppState, message: &str) -> Failure {
    let classified = match EnvName::new("api") {
        Ok(environment) => Error::Forbidden {
            actor: "anonymous".into(),
            action: "authenticate",
            environment,
            reason: String::new(),
        },
        Err(e) => e,
    };
    let mut failure = state
        .fail(&classified)
        .with_status(StatusCode::UNAUTHORIZED);
    failure.body.error = format!("unauthenticated: {message}");
    failure
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
