//! The error documents of the API: the CLI's JSON error shape, with an HTTP status chosen by
//! the error's kind.
//!
//! The server does not classify library errors itself: the embedder hands it an
//! [`ErrorReporter`] (the `floe` CLI passes its exit-code mapping), so the API and the CLI
//! name every error with one table. The HTTP status follows from the kind's name.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use floe_promotion::Error;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON document of a failed call: `floe --output json`'s error shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// The one-line message.
    pub error: String,
    /// The exit code `floe` ends with for this error.
    pub exit_code: u8,
    /// The name of that exit code (`not_found`, `locked`, `approval_pending`, ...).
    pub kind: String,
}

/// Classifies library errors for the API: the same classification as the embedding CLI's.
pub trait ErrorReporter: Send + Sync + std::fmt::Debug + 'static {
    /// The document of `error`.
    fn report(&self, error: &Error) -> ApiError;
}

/// The HTTP status of an error kind (an exit-code name of `floe`). Unknown kinds are 500.
pub fn http_status(kind: &str) -> StatusCode {
    match kind {
        "usage" => StatusCode::BAD_REQUEST,
        "not_found" | "version_not_promoted" => StatusCode::NOT_FOUND,
        "authorization" | "separation_of_duties" => StatusCode::FORBIDDEN,
        "immutability" | "invalid_transition" | "approval_closed" | "conflict" | "revoked" => {
            StatusCode::CONFLICT
        }
        "locked" => StatusCode::LOCKED,
        "signature" | "gate_failed" | "policy_violation" | "dependency_missing" => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        "approval_pending" => StatusCode::ACCEPTED,
        "busy" | "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "registry_auth" => StatusCode::BAD_GATEWAY,
        "not_supported" => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failed call: a status and its document.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) body: ApiError,
}

impl Failure {
    /// A failure of a library error, classified by `reporter`.
    pub(crate) fn of(reporter: &dyn ErrorReporter, error: &Error) -> Failure {
        let body = reporter.report(error);
        Failure {
            status: http_status(&body.kind),
            body,
        }
    }

    /// A failure of bad input the server itself refused (an unparsable body or query).
    pub(crate) fn invalid(
        reporter: &dyn ErrorReporter,
        what: &'static str,
        value: &str,
        reason: impl Into<String>,
    ) -> Failure {
        Failure::of(reporter, &Error::invalid(what, value, reason))
    }

    /// The same document with another status (401, 413, 414).
    pub(crate) fn with_status(mut self, status: StatusCode) -> Failure {
        self.status = status;
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_statuses_the_api_documents() {
        assert_eq!(http_status("not_found"), StatusCode::NOT_FOUND);
        assert_eq!(http_status("authorization"), StatusCode::FORBIDDEN);
        assert_eq!(http_status("locked"), StatusCode::LOCKED);
        assert_eq!(http_status("approval_pending"), StatusCode::ACCEPTED);
        assert_eq!(http_status("usage"), StatusCode::BAD_REQUEST);
        assert_eq!(http_status("failure"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            http_status("no such kind"),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
