use std::io::{BufRead, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AuditEvent, ChainVerifier, VerifyReport};
use crate::error::{Error, Result};

/// Export formats of the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON object per line: the [`AuditEvent`] exactly, verifiable with [`verify_export`].
    Jsonl,
    /// RFC 4180 CSV with a header row; gates and details are JSON in their cells.
    Csv,
}

impl FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(Error::invalid(
                "export format",
                other,
                "expected jsonl or csv",
            )),
        }
    }
}

/// The CSV header.
pub const CSV_HEADER: [&str; 16] = [
    "seq",
    "id",
    "time",
    "kind",
    "actor",
    "actor_groups",
    "artifact",
    "version",
    "digest",
    "from",
    "environment",
    "reason",
    "gates",
    "details",
    "prev_hash",
    "hash",
];

/// Writes events one at a time in an export format.
pub struct ExportWriter<'a> {
    format: ExportFormat,
    out: &'a mut (dyn Write + Send),
    count: u64,
}

impl std::fmt::Debug for ExportWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportWriter")
            .field("format", &self.format)
            .field("count", &self.count)
            .finish()
    }
}

fn write_err(e: impl std::fmt::Display) -> Error {
    Error::io(
        "writing the audit export",
        std::io::Error::other(e.to_string()),
    )
}

impl<'a> ExportWriter<'a> {
    /// Starts an export (writes the CSV header).
    pub fn new(format: ExportFormat, out: &'a mut (dyn Write + Send)) -> Result<Self> {
        let mut w = ExportWriter {
            format,
            out,
            count: 0,
        };
        if format == ExportFormat::Csv {
            w.write_csv_row(&CSV_HEADER)?;
        }
        Ok(w)
    }

    fn write_csv_row<S: AsRef<[u8]>>(&mut self, row: &[S]) -> Result<()> {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::with_capacity(512));
        csv.write_record(row).map_err(write_err)?;
        let buf = csv.into_inner().map_err(write_err)?;
        self.out
            .write_all(&buf)
            .map_err(|e| Error::io("writing the audit export", e))
    }

    /// Writes one event.
    pub fn write(&mut self, event: &AuditEvent) -> Result<()> {
        match self.format {
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut *self.out, event).map_err(write_err)?;
                self.out
                    .write_all(b"\n")
                    .map_err(|e| Error::io("writing the audit export", e))?;
            }
            ExportFormat::Csv => {
                let r = &event.record;
                let opt = |v: Option<String>| v.unwrap_or_default();
                let row = [
                    event.seq.to_string(),
                    r.id.to_string(),
                    r.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    r.kind.to_string(),
                    r.actor.id.clone(),
                    r.actor.groups.join(";"),
                    opt(r.artifact.as_ref().map(ToString::to_string)),
                    opt(r.version.as_ref().map(ToString::to_string)),
                    opt(r.digest.as_ref().map(ToString::to_string)),
                    opt(r.from.as_ref().map(ToString::to_string)),
                    opt(r.environment.as_ref().map(ToString::to_string)),
                    opt(r.reason.clone()),
                    serde_json::to_string(&r.gates).map_err(write_err)?,
                    serde_json::to_string(&r.details).map_err(write_err)?,
                    event.prev_hash.clone(),
                    event.hash.clone(),
                ];
                self.write_csv_row(&row)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Flushes and returns how many events were written.
    pub fn finish(self) -> Result<u64> {
        self.out
            .flush()
            .map_err(|e| Error::io("writing the audit export", e))?;
        Ok(self.count)
    }
}

/// Verifies a JSON Lines export read from `input`.
///
/// Each event's hash is checked against its content, and links are checked between events with
/// consecutive sequence numbers; with `whole_chain` the export must also start at event 1 and
/// have no gaps (an unfiltered export). A line that is not an event is reported as the break.
pub fn verify_export(input: impl BufRead, whole_chain: bool) -> Result<VerifyReport> {
    let mut verifier = if whole_chain {
        ChainVerifier::new()
    } else {
        ChainVerifier::excerpt()
    };
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::io("reading the audit export", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: AuditEvent = serde_json::from_str(&line).map_err(|e| {
            Error::invalid(
                "audit export line",
                format!("line {}", n + 1),
                format!("not an audit event: {e}"),
            )
        })?;
        verifier.push(&event);
        if verifier.broken() {
            break;
        }
    }
    Ok(verifier.finish())
}
