//! `GET /api/v1/audit/verify` and the streamed `GET /api/v1/audit/export`.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use floe_promotion::history::{ExportFormat, HistoryQuery};
use floe_promotion::{EnvName, Error};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use crate::error::{ApiError, Failure};
use crate::state::AppState;

/// Bytes sent per chunk of an export.
const CHUNK: usize = 64 * 1024;

/// The result of verifying the audit chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether the whole chain verifies.
    pub intact: bool,
    /// How many events were checked.
    pub events: u64,
    /// The hash of the last event.
    pub head: Option<String>,
    /// The first event that was changed, removed, reordered or inserted.
    #[schema(value_type = Option<Object>)]
    pub first_break: Option<floe_promotion::history::ChainBreak>,
}

/// `GET /api/v1/audit/verify`.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyResponse), (status = 500, body = ApiError)))]
pub(crate) async fn verify(State(st): State<AppState>) -> Result<Json<VerifyResponse>, Failure> {
    let report = st.manager.verify().await.map_err(|e| st.fail(&e))?;
    Ok(Json(VerifyResponse {
        intact: report.is_intact(),
        events: report.events,
        head: report.head,
        first_break: report.first_break,
    }))
}

/// The filters of `GET /api/v1/audit/export` (those of `floe audit export`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `jsonl` (default) or `csv`.
    pub format: Option<String>,
    /// Events at or after this time (RFC 3339, or YYYY-MM-DD).
    pub since: Option<String>,
    /// Events before this time (RFC 3339, or YYYY-MM-DD).
    pub until: Option<String>,
    /// Only events of this environment.
    pub env: Option<String>,
}

fn time(what: &'static str, s: &str) -> Result<DateTime<Utc>, Error> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Error::invalid(
                what,
                s,
                "expected RFC 3339 (2026-01-31T12:00:00Z) or YYYY-MM-DD",
            )
        })
}

/// Sends what the export writes to the response, a chunk at a time; a client that went away
/// makes the next write fail, which ends the export.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: SyncSender<Bytes>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn chunks(rx: Receiver<Bytes>) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(Some(rx), |rx| async move {
        let rx = rx?;
        let (next, rx) = tokio::task::spawn_blocking(move || (rx.recv().ok(), rx))
            .await
            .ok()?;
        next.map(|chunk| (Ok(chunk), Some(rx)))
    })
}

/// `GET /api/v1/audit/export`: the audit trail as JSON Lines (verifiable with
/// `floe audit verify --file`) or CSV, streamed as it is read.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportParams),
    responses(
        (status = 200, description = "JSON Lines or CSV", content_type = "application/x-ndjson", body = String),
        (status = 400, body = ApiError)))]
pub(crate) async fn export(
    State(st): State<AppState>,
    Query(p): Query<ExportParams>,
) -> Result<Response, Failure> {
    let parse = || -> Result<(HistoryQuery, ExportFormat, &'static str), Error> {
        let (format, content_type) = match p.format.as_deref().unwrap_or("jsonl") {
            "jsonl" => (ExportFormat::Jsonl, "application/x-ndjson"),
            "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8"),
            other => return Err(Error::invalid("format", other, "jsonl or csv")),
        };
        let q = HistoryQuery {
            since: p.since.as_deref().map(|s| time("since", s)).transpose()?,
            until: p.until.as_deref().map(|s| time("until", s)).transpose()?,
            environment: p.env.as_deref().map(EnvName::new).transpose()?,
            ..Default::default()
        };
        Ok((q, format, content_type))
    };
    let (q, format, content_type) = parse().map_err(|e| st.fail(&e))?;
    let (tx, rx) = sync_channel::<Bytes>(4);
    let history = st.history.clone();
    let runtime = tokio::runtime::Handle::current();
    // The store's export writes synchronously: it runs on a blocking thread, and each chunk
    // waits for the client to take the one before (memory stays flat).
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            tx,
        };
        let result = runtime.block_on(history.export(&q, format, &mut writer));
        match result.and_then(|_| {
            writer
                .flush()
                .map_err(|e| Error::io("sending the export", e))
        }) {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "audit export ended early"),
        }
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        HttpBody::from_stream(chunks(rx)),
    )
        .into_response())
}
