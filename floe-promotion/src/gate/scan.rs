use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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

/// The `security_scan` gate: reads a Trivy or Grype JSON report and fails on findings of the
/// blocking severities (unfixed ones skipped with `ignore_unfixed`).
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

    async fn evaluate(&self, _ctx: &GateContext) -> Result<GateOutcome> {
        let _ = &self.settings;
        Err(Error::not_supported(
            "security scan gate",
            "being implemented",
        ))
    }
}
