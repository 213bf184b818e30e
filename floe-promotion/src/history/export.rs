use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AuditEvent, ChainVerifier, VerifyReport};
use crate::error::{Error, Excerpt, Result};
use crate::input::{BoundedLine, read_line_bounded, size_text};

/// Export formats of the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON object per line: the event's stored bytes ([`AuditEvent::content`]) with
    /// `prev_hash` and `hash` added before the closing brace, verifiable with
    /// [`verify_export`]; it reads back as the [`AuditEvent`] exactly (see the
    /// [module documentation](super#audit-formats)).
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
                let io = |e| Error::io("writing the audit export", e);
                match jsonl_prefix(event.content.as_bytes()) {
                    Some(prefix) => {
                        self.out.write_all(prefix).map_err(io)?;
                        self.out.write_all(b",\"prev_hash\":").map_err(io)?;
                        serde_json::to_writer(&mut *self.out, &event.prev_hash)
                            .map_err(write_err)?;
                        self.out.write_all(b",\"hash\":").map_err(io)?;
                        serde_json::to_writer(&mut *self.out, &event.hash).map_err(write_err)?;
                        self.out.write_all(b"}").map_err(io)?;
                    }
                    // Not an object with members: only a store that lost its bytes has this.
                    None => serde_json::to_writer(&mut *self.out, event).map_err(write_err)?,
                }
                self.out.write_all(b"\n").map_err(io)?;
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

/// The stored bytes without their closing brace, when they are a JSON object with members, so
/// that `prev_hash` and `hash` can follow.
pub(crate) fn jsonl_prefix(content: &[u8]) -> Option<&[u8]> {
    match content {
        [b'{', .., b'}'] if content.len() > 2 && !content.contains(&b'\n') => {
            Some(&content[..content.len() - 1])
        }
        _ => None,
    }
}

/// The longest line [`verify_export`] reads: one event, with room to spare (events are a few
/// KiB; a line past this is not an event, and reading it whole could exhaust memory).
pub const MAX_EXPORT_LINE: u64 = 8 * 1024 * 1024;

/// Verifies a JSON Lines export read from `input`.
///
/// Each line is read back as an [`AuditEvent`], which rebuilds its stored bytes (format 1 or
/// 2, in any member order); each event's hash is checked against those bytes, and links are
/// checked between events with consecutive sequence numbers; with `whole_chain` the export must also start at event 1 and
/// have no gaps (an unfiltered export). A line that is not an event is reported as the break.
///
/// Lines are read one at a time, each at most [`MAX_EXPORT_LINE`] bytes: a longer line (a file
/// without newlines, a device) is refused with [`Error::InvalidInput`] naming it and the limit,
/// after reading at most that much.
pub fn verify_export(mut input: impl BufRead, whole_chain: bool) -> Result<VerifyReport> {
    let mut verifier = if whole_chain {
        ChainVerifier::new()
    } else {
        ChainVerifier::excerpt()
    };
    let mut line = Vec::new();
    for n in 1u64.. {
        let at = || format!("line {n}");
        match read_line_bounded(&mut input, &mut line, MAX_EXPORT_LINE)
            .map_err(|e| Error::io("reading the audit export", e))?
        {
            BoundedLine::End => break,
            BoundedLine::TooLong => {
                return Err(Error::invalid(
                    "audit export line",
                    at(),
                    format!(
                        "longer than the {} limit of one event",
                        size_text(MAX_EXPORT_LINE)
                    ),
                ));
            }
            BoundedLine::Line => {}
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let event: AuditEvent = serde_json::from_slice(&line).map_err(|e| {
            Error::invalid(
                "audit export line",
                at(),
                // serde quotes the offending value whole, newlines and all: one short line.
                format!(
                    "not an audit event: {}",
                    Excerpt::new(
                        &e.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                ),
            )
        })?;
        verifier.push(&event);
        if verifier.broken() {
            break;
        }
    }
    Ok(verifier.finish())
}

/// [`verify_export`] of the file at `path`; every error names the file.
///
/// ```
/// use floe_promotion::history::verify_export_file;
/// let err = verify_export_file(std::path::Path::new("/dev/zero"), true).unwrap_err();
/// assert!(err.to_string().contains("/dev/zero"), "{err}");
/// assert!(err.to_string().contains("line 1 is longer than the 8 MiB limit"), "{err}");
/// ```
pub fn verify_export_file(path: &Path, whole_chain: bool) -> Result<VerifyReport> {
    let name = || Excerpt::path(path);
    let file = File::open(path)
        .map_err(|e| Error::io(format!("opening the audit export {}", name()), e))?;
    verify_export(BufReader::new(file), whole_chain).map_err(|e| match e {
        Error::InvalidInput {
            what: "audit export line",
            value,
            reason,
        } => Error::invalid(
            "audit export",
            path.display().to_string(),
            format!("{value} is {reason}"),
        ),
        Error::Io { source, .. } => {
            Error::io(format!("reading the audit export {}", name()), source)
        }
        other => other,
    })
}
