//! `/healthz`, `/readyz` and `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use floe_promotion::{Error, Result};
use serde::Serialize;

use crate::state::AppState;

/// Something the server needs to answer calls: the state store, a registry. `/readyz` is 503
/// while any probe fails.
#[floe_promotion::async_trait]
pub trait ReadinessProbe: Send + Sync + std::fmt::Debug + 'static {
    /// What is checked, e.g. `state` or `registry 127.0.0.1:5000`.
    fn name(&self) -> String;
    /// `Ok` when it is reachable.
    async fn check(&self) -> Result<()>;
}

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    checks: Vec<Check>,
}

/// The process answers.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The state store (one read of the chain head) and every probe answer.
pub(crate) async fn readyz(State(st): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let state = st
        .history
        .query(&floe_promotion::history::HistoryQuery {
            limit: Some(1),
            order: floe_promotion::history::Order::NewestFirst,
            ..Default::default()
        })
        .await
        .map(|_| ());
    checks.push(check("state".into(), state));
    for probe in &st.probes {
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), probe.check())
            .await
            .unwrap_or_else(|_| {
                Err(Error::Unavailable {
                    registry: probe.name(),
                    message: "no answer within 5 s".into(),
                })
            });
        checks.push(check(probe.name(), result));
    }
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(Readiness { ready, checks })).into_response()
}

fn check(name: String, result: Result<()>) -> Check {
    Check {
        name,
        ok: result.is_ok(),
        error: result.err().map(|e| e.to_string()),
    }
}

/// Prometheus text.
pub(crate) async fn metrics(State(st): State<AppState>) -> Response {
    if let Err(e) = st
        .metrics
        .refresh(st.history.as_ref(), st.deliveries.as_deref())
        .await
    {
        tracing::warn!(error = %e, "metrics could not read the history");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}
