//! Bounds on what a request may carry, and the request counter.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Failure;
use crate::state::AppState;

/// The largest request body: 64 KiB (every body is a small JSON document or form).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest query string: 4 KiB.
pub(crate) const MAX_QUERY_BYTES: usize = 4 * 1024;

/// Refuses an overlong query string (414) and a declared body over the limit (413) before a
/// handler runs; counts every request by its route.
pub(crate) async fn bound(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let query_len = request.uri().query().map_or(0, str::len);
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if query_len > MAX_QUERY_BYTES {
        Failure::invalid(
            st.errors.as_ref(),
            "request",
            "query string",
            format!("{query_len} bytes; at most {MAX_QUERY_BYTES}"),
        )
        .with_status(StatusCode::URI_TOO_LONG)
        .into_response()
    } else if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        too_large(&st)
    } else {
        let response = next.run(request).await;
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The body limit cut a body that declared no length: answer in the API's shape.
            too_large(&st)
        } else {
            response
        }
    };
    st.metrics
        .request(&method, &route, response.status().as_u16());
    response
}

fn too_large(st: &AppState) -> Response {
    Failure::invalid(
        st.errors.as_ref(),
        "request",
        "body",
        format!("larger than {MAX_BODY_BYTES} bytes"),
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    .into_response()
}
