//! JSON bodies and query strings, refused in the API's error shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::Failure;
use crate::state::AppState;

/// A JSON body; a malformed one is a 400 (`usage`) naming what is wrong.
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Body<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Failure> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                // A body that is not JSON, or JSON of the wrong shape, is bad input (400);
                // a wrong media type and an oversized body keep their own statuses.
                let status = match rejection.status() {
                    s @ (StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE) => s,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(Failure::invalid(
                    state.errors.as_ref(),
                    "request",
                    "JSON body",
                    rejection.body_text(),
                )
                .with_status(status))
            }
        }
    }
}

/// A query string; a malformed one is a 400 (`usage`).
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(Failure::invalid(
                state.errors.as_ref(),
                "request",
                "query string",
                rejection.body_text(),
            )),
        }
    }
}
