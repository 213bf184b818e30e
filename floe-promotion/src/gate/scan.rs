use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::command::{Capture, Completion, describe_status, failure_message, run_captured};
use super::{CommandSpec, GateContext, GateOutcome, PromotionGate};
use crate::config::ScanSettings;
use crate::error::{Error, Result};

/// Vulnerability severities, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Unknown or unrated.
    Unknown,
    /// Negligible or low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl FromStr for Severity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "UNKNOWN" => Ok(Severity::Unknown),
            "NEGLIGIBLE" | "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            _ => Err(Error::invalid(
                "severity",
                s,
                "expected UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL",
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        })
    }
}

/// Where a scan report comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanSource {
    /// A scanner command that prints a Trivy or Grype JSON report on stdout.
    Command(CommandSpec),
    /// A Trivy or Grype JSON report file.
    Report(PathBuf),
}

/// The largest scan report read, from a file or a scanner's stdout: 64 MiB.
pub(crate) const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// How many blocking findings a message names.
const NAMED_FINDINGS: usize = 5;

/// The `security_scan` gate: reads a Trivy or Grype JSON report and fails on findings of the
/// blocking severities (unfixed ones skipped with `ignore_unfixed`).
///
/// The format is recognised by its shape: Trivy's `Results[].Vulnerabilities[]` (with
/// `SchemaVersion`), Grype's `matches[]`. A finding is unfixed when Trivy gives it no
/// `FixedVersion` or a status of `affected`, `will_not_fix`, `fix_deferred` or `end_of_life`,
/// and when Grype's `fix.state` is not `fixed`.
///
/// A scanner command runs like a [`CommandGate`](super::CommandGate) (argv, placeholders,
/// process group, timeout); its stdout is the report. A scanner that exits non-zero but
/// printed a report (Trivy's `--exit-code`, Grype's `--fail-on`) is judged by the report. A
/// report that cannot be read or parsed, or is larger than 64 MiB, is an error
/// naming the file or command.
#[derive(Debug, Clone)]
pub struct ScanGate {
    settings: ScanSettings,
}

impl ScanGate {
    /// A gate with these settings.
    pub fn new(settings: ScanSettings) -> Self {
        ScanGate { settings }
    }
}

#[async_trait]
impl PromotionGate for ScanGate {
    fn name(&self) -> &str {
        "security_scan"
    }

    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome> {
        let (bytes, origin, exit_note) = match &self.settings.source {
            ScanSource::Report(path) => (
                read_report(path).await?,
                format!("scan report {}", path.display()),
                None,
            ),
            ScanSource::Command(spec) => {
                let origin = format!("scanner command {:?}", spec.program());
                let out = run_captured(
                    spec,
                    ctx,
                    Capture::First(MAX_REPORT_BYTES.saturating_add(1)),
                )
                .await?;
                let status = match out.status {
                    Completion::TimedOut(limit) => {
                        return Ok(GateOutcome::fail(format!(
                            "{origin} timed out after {}; it was stopped",
                            humantime::format_duration(limit)
                        )));
                    }
                    Completion::Exited(status) => status,
                };
                if out.stdout_overflow || out.stdout.len() > MAX_REPORT_BYTES {
                    return Err(report_error(
                        &origin,
                        format!("the report is larger than {MAX_REPORT_BYTES} bytes"),
                    ));
                }
                if !status.success() && out.stdout.iter().all(u8::is_ascii_whitespace) {
                    // Nothing to judge: the scanner itself failed.
                    return Err(report_error(
                        &origin,
                        failure_message(spec.program(), status, &out.stderr)
                            + " and printed no report",
                    ));
                }
                let note =
                    (!status.success()).then(|| format!("the scanner {}", describe_status(status)));
                (out.stdout, origin, note)
            }
        };
        let report = parse_report(&bytes).map_err(|e| report_error(&origin, e))?;
        let mut outcome = judge(&report, &self.settings);
        if let Some(note) = exit_note {
            outcome.message = format!("{} ({note})", outcome.message);
        }
        Ok(outcome)
    }

    fn timeout(&self) -> Option<Duration> {
        match &self.settings.source {
            ScanSource::Command(spec) => spec.runner_timeout(),
            ScanSource::Report(_) => None,
        }
    }
}

fn report_error(origin: &str, message: impl Into<String>) -> Error {
    Error::io(
        format!("reading {origin}"),
        io::Error::new(io::ErrorKind::InvalidData, message.into()),
    )
}

async fn read_report(path: &Path) -> Result<Vec<u8>> {
    let context = || format!("reading scan report {}", path.display());
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(context(), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| Error::io(context(), e))?;
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(Error::io(
            context(),
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the report is larger than {MAX_REPORT_BYTES} bytes"),
            ),
        ));
    }
    Ok(bytes)
}

/// One vulnerability finding, whichever scanner reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Finding {
    id: String,
    package: String,
    severity: Severity,
    fixed: bool,
}

/// A parsed report.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Report {
    scanner: &'static str,
    findings: Vec<Finding>,
}

/// Either report shape; unknown fields are ignored (both tools add fields over time).
#[derive(Deserialize)]
struct AnyReport {
    #[serde(rename = "SchemaVersion")]
    schema_version: Option<serde_json::Value>,
    #[serde(rename = "Results")]
    results: Option<Vec<TrivyResult>>,
    matches: Option<Vec<GrypeMatch>>,
}

#[derive(Deserialize)]
struct TrivyResult {
    #[serde(rename = "Vulnerabilities", default)]
    vulnerabilities: Option<Vec<TrivyVulnerability>>,
}

#[derive(Deserialize)]
struct TrivyVulnerability {
    #[serde(rename = "VulnerabilityID", default)]
    id: String,
    #[serde(rename = "PkgName", default)]
    package: String,
    #[serde(rename = "FixedVersion", default)]
    fixed_version: Option<String>,
    #[serde(rename = "Status", default)]
    status: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: Option<String>,
}

#[derive(Deserialize)]
struct GrypeMatch {
    vulnerability: GrypeVulnerability,
    #[serde(default)]
    artifact: Option<GrypeArtifact>,
}

#[derive(Deserialize)]
struct GrypeVulnerability {
    #[serde(default)]
    id: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    fix: Option<GrypeFix>,
}

#[derive(Deserialize)]
struct GrypeFix {
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct GrypeArtifact {
    #[serde(default)]
    name: String,
}

fn severity_of(name: Option<&str>) -> Severity {
    // A severity this code does not know is treated as unrated rather than refused.
    name.and_then(|s| s.parse().ok())
        .unwrap_or(Severity::Unknown)
}

fn parse_report(bytes: &[u8]) -> std::result::Result<Report, String> {
    let any: AnyReport = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(matches) = any.matches {
        let findings = matches
            .into_iter()
            .map(|m| Finding {
                severity: severity_of(m.vulnerability.severity.as_deref()),
                fixed: m
                    .vulnerability
                    .fix
                    .and_then(|f| f.state)
                    .is_some_and(|s| s.eq_ignore_ascii_case("fixed")),
                id: m.vulnerability.id,
                package: m.artifact.map(|a| a.name).unwrap_or_default(),
            })
            .collect();
        return Ok(Report {
            scanner: "grype",
            findings,
        });
    }
    if any.results.is_some() || any.schema_version.is_some() {
        let findings = any
            .results
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.vulnerabilities.unwrap_or_default())
            .map(|v| {
                let unfixed_status = v.status.as_deref().is_some_and(|s| {
                    matches!(
                        s.to_ascii_lowercase().as_str(),
                        "affected" | "will_not_fix" | "fix_deferred" | "end_of_life"
                    )
                });
                let has_fix = v
                    .fixed_version
                    .as_deref()
                    .is_some_and(|f| !f.trim().is_empty());
                Finding {
                    severity: severity_of(v.severity.as_deref()),
                    fixed: has_fix && !unfixed_status,
                    id: v.id,
                    package: v.package,
                }
            })
            .collect();
        return Ok(Report {
            scanner: "trivy",
            findings,
        });
    }
    Err(
        "not a Trivy or Grype JSON report: expected Trivy's `SchemaVersion`/`Results` or Grype's `matches`"
            .into(),
    )
}

fn judge(report: &Report, settings: &ScanSettings) -> GateOutcome {
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    let mut ignored = 0usize;
    let mut blocking: Vec<&Finding> = Vec::new();
    for f in &report.findings {
        if settings.ignore_unfixed && !f.fixed {
            ignored += 1;
            continue;
        }
        *counts.entry(f.severity).or_default() += 1;
        if settings.block_on_severity.contains(&f.severity) {
            blocking.push(f);
        }
    }
    let totals = if counts.is_empty() {
        "no findings".to_string()
    } else {
        counts
            .iter()
            .rev()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ignored = if ignored > 0 {
        format!("; {ignored} unfixed ignored")
    } else {
        String::new()
    };
    let blocking_on = settings
        .block_on_severity
        .iter()
        .map(Severity::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if blocking.is_empty() {
        return GateOutcome::pass(format!(
            "{} report: nothing at {blocking_on} ({totals}{ignored})",
            report.scanner
        ));
    }
    blocking.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut named: Vec<String> = Vec::new();
    for f in &blocking {
        let label = if f.package.is_empty() {
            f.id.clone()
        } else {
            format!("{} in {}", f.id, f.package)
        };
        if !named.contains(&label) {
            named.push(label);
        }
        if named.len() == NAMED_FINDINGS {
            break;
        }
    }
    let more = blocking.len().saturating_sub(named.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    GateOutcome::fail(format!(
        "{} report: {} finding(s) at {blocking_on}: {}{more} ({totals}{ignored})",
        report.scanner,
        blocking.len(),
        named.join(", ")
    ))
}
