//! The `manifest.yaml` loader.
//!
//! Two layers: raw structs that mirror the YAML exactly (`deny_unknown_fields` everywhere, so
//! a typo is an error with its line and column), then a conversion into the settings model
//! that checks every value (names, durations, regexes, severities, commands) and points at the
//! value that is wrong. Nothing here panics on any input.

mod artifacts;
mod attestation;
mod environment;
mod gates;
mod raw;
mod server;
mod signed_votes;
mod strategy;
mod webhooks;
mod windows;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use regex::Regex;
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::{
    ApprovalPolicy, ApprovalRule, ApprovalSeparation, Authorization, AutoPromotion, CanaryStep,
    Environment, FreezeWindow, GateSettings, InMemoryConfig, PolicySettings, PromotionSettings,
    PromotionWindow, Recurrence, ScanSettings, Strategy, TagScheme, Weekday, WindowError,
    WindowField, WindowKind, WindowSchedule, parse_duration, parse_local, parse_time,
    parse_timezone,
};
use crate::error::{Error, Result};
use crate::gate::{CommandSpec, PolicyRules, ScanSource, Severity, SignatureEnforcement};
use crate::input::read_bounded;
use crate::model::{EnvName, Repository};

use self::raw::*;

/// The largest manifest file read: 4 MiB.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Characters that mean "shell" in a command string. Commands are argv lists and never run
/// through a shell, so a string holding one of these is refused rather than split wrongly.
const SHELL_CHARS: &[char] = &[
    '\'', '"', '\\', ';', '|', '&', '$', '<', '>', '(', ')', '`', '*', '?', '[', ']', '{', '}',
    '~', '#', '!',
];

/// Placeholders allowed in command arguments (substituted by the gates, not by a shell).
const PLACEHOLDERS: &[&str] = &["${ARTIFACT_REF}", "${ARTIFACT_DIGEST}"];

/// Gate keys with a meaning of their own; every other key under `gates` is a command gate.
const BUILTIN_GATES: &[&str] = &["tests", "policy_compliance", "security_scan", "signature"];

/// The most YAML nodes (scalars, lists, mappings, counting each alias's expansion) a manifest
/// may have: far more than a large manifest needs (the complete sample has about 150), few
/// enough that an alias bomb ("billion laughs") is refused in milliseconds. serde-saphyr's
/// default, 250,000, took seconds of a debug build to refuse one.
const MAX_MANIFEST_NODES: usize = 25_000;

/// serde-saphyr's options for manifests: its default limits (nesting depth 64, ...) with at most
/// [`MAX_MANIFEST_NODES`] nodes and as many events replayed by aliases.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_nodes: MAX_MANIFEST_NODES },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 2 * MAX_MANIFEST_NODES,
        },
    }
}

/// Reads and validates a `manifest.yaml`.
///
/// Relative paths in it (`oci-layout:` repositories, scan reports, key files) are resolved
/// against the manifest's directory. A missing or unreadable file is [`Error::Io`] naming it;
/// everything else wrong is [`Error::Config`] with the file, the line and column when known,
/// and what was expected, or [`Error::NotSupported`] for settings whose behaviour does not
/// exist yet.
pub fn load_manifest(path: &Path) -> Result<InMemoryConfig> {
    load_manifest_with_env(path, &process_env)
}

/// The process's environment variable `name`, when it is set and Unicode.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// [`load_manifest`] with the secrets the manifest names (`secret_env`) looked up by `env`
/// instead of in the process's environment.
pub fn load_manifest_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<InMemoryConfig> {
    let bytes = read_bounded(path, MAX_MANIFEST_BYTES, "manifest").map_err(|e| match e {
        Error::InvalidInput { reason, .. } => Error::Config {
            file: Some(path.to_path_buf()),
            location: None,
            message: format!("the manifest is {reason}"),
        },
        other => other,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        Error::Config {
            file: Some(path.to_path_buf()),
            location: Some((line, column)),
            message: format!(
                "the manifest is not UTF-8 text (byte 0x{:02X})",
                e.as_bytes()[valid.len()]
            ),
        }
    })?;
    parse_manifest_with_env(&text, Some(path), env)
}

/// Parses and validates manifest text; `path` names the file in errors and anchors relative
/// paths (`oci-layout:` repositories, scan reports, key files). Without a path, relative paths
/// stay relative to the working directory.
///
/// ```
/// let config = floe_promotion::config::parse_manifest(
///     "artifacts:\n  registry: { uri: oci://registry.example.com/floe }\n  promotion:\n    environments:\n      - name: dev\n      - name: prod\n",
///     None,
/// )?;
/// use floe_promotion::EnvironmentConfig;
/// assert_eq!(config.environments().len(), 2);
/// # Ok::<(), floe_promotion::Error>(())
/// ```
pub fn parse_manifest(text: &str, path: Option<&Path>) -> Result<InMemoryConfig> {
    parse_manifest_with_env(text, path, &process_env)
}

/// [`parse_manifest`] with the secrets the manifest names (`secret_env`) looked up by `env`
/// instead of in the process's environment.
///
/// ```
/// let manifest = "artifacts:\n  registry: { uri: oci://registry.example.com/floe }\n  promotion:\n    environments: [{ name: dev }]\n    webhooks:\n      - url: https://hooks.example.com/floe\n        secret_env: HOOK_SECRET\n";
/// let env = |name: &str| (name == "HOOK_SECRET").then(|| "whsec_c2VjcmV0".to_string());
/// let config = floe_promotion::config::parse_manifest_with_env(manifest, None, &env)?;
/// use floe_promotion::EnvironmentConfig;
/// assert_eq!(config.settings().webhooks.len(), 1);
/// # Ok::<(), floe_promotion::Error>(())
/// ```
pub fn parse_manifest_with_env(
    text: &str,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<InMemoryConfig> {
    let loader = Loader::new(text, path, env);
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(loader.err(
            None,
            "the manifest is empty: expected a mapping with `artifacts: { promotion: { environments: [...] } }`",
        ));
    }
    let raw: RawManifest = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| loader.yaml_error(&e))?;
    let settings = loader.settings(raw)?;
    InMemoryConfig::new(settings)
}

// ---------------------------------------------------------------------------------------------
// The conversion: raw values into the settings model, each checked where it was written.

/// Converts the raw manifest; knows the file for errors and the directory for relative paths.
struct Loader<'a> {
    text: &'a str,
    file: Option<PathBuf>,
    base: Option<PathBuf>,
    /// Where `secret_env` names are looked up.
    env: &'a dyn Fn(&str) -> Option<String>,
}

fn located(at: &Location) -> Option<(usize, usize)> {
    let (line, column) = (at.line(), at.column());
    (line > 0).then(|| {
        (
            usize::try_from(line).unwrap_or(usize::MAX),
            usize::try_from(column).unwrap_or(usize::MAX),
        )
    })
}

impl<'a> Loader<'a> {
    fn new(text: &'a str, path: Option<&Path>, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        let base = path.map(|p| {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            p.parent().map(Path::to_path_buf).unwrap_or_default()
        });
        Loader {
            text,
            file: path.map(Path::to_path_buf),
            base,
            env,
        }
    }

    fn err(&self, at: Option<&Location>, message: impl Into<String>) -> Error {
        Error::Config {
            file: self.file.clone(),
            location: at.and_then(located),
            message: message.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> Error {
        self.err(Some(&value.referenced), message)
    }

    /// A YAML or shape error from serde-saphyr, as one line with its location.
    fn yaml_error(&self, e: &serde_saphyr::Error) -> Error {
        let location = e.location().filter(|l| l.line() > 0);
        let mut message = e.render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        });
        if let Some(l) = &location {
            let suffix = format!(" at line {}, column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        let mut message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        message = plain_words(message);
        if let Some(key) = location.as_ref().and_then(|l| self.key_at(l))
            && !message.contains(&key)
            && !message.starts_with("a manifest is")
        {
            message = format!("{key}: {message}");
        }
        self.err(location.as_ref(), message)
    }

    /// The mapping key written at or just before a location, to name the field of a value
    /// that did not deserialize.
    fn key_at(&self, at: &Location) -> Option<String> {
        let line = self
            .text
            .lines()
            .nth(usize::try_from(at.line()).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(at.column()).ok()?.checked_sub(1)?;
        let cut = line
            .char_indices()
            .nth(column)
            .map_or(line.len(), |(i, _)| i);
        let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
        // `key: <value here>`
        let before = line[..cut].trim_end();
        if let Some(before) = before.strip_suffix(':') {
            let start = before
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_key(c))
                .last()
                .map(|(i, _)| i)?;
            return Some(before[start..].to_string());
        }
        // `<here>key: value`
        let after = &line[cut..];
        let end = after.find(|c: char| !is_key(c)).unwrap_or(after.len());
        (end > 0 && after[end..].trim_start().starts_with(':')).then(|| after[..end].to_string())
    }

    /// A relative path resolved against the manifest's directory, `.` components dropped.
    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        let joined = match &self.base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        };
        joined
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    }

    fn repository(&self, field: &str, value: &Spanned<String>) -> Result<Repository> {
        let v = value.value.trim();
        let location = if let Some(dir) = v.strip_prefix("oci-layout:") {
            if dir.is_empty() {
                return Err(self.at(value, format!("{field}: oci-layout: needs a directory")));
            }
            format!("oci-layout:{}", self.path(dir).display())
        } else if let Some(rest) = v.strip_prefix("oci://") {
            rest.trim_end_matches('/').to_string()
        } else if let Some((scheme, _)) = v.split_once("://") {
            // Only the scheme is quoted: the rest of a URL may hold credentials.
            return Err(self.at(
                value,
                format!(
                    "{field}: a {scheme}:// URL is not a repository location: expected oci://HOST/PATH, HOST/PATH or oci-layout:DIR"
                ),
            ));
        } else {
            v.trim_end_matches('/').to_string()
        };
        Repository::new(location).map_err(|e| self.at(value, format!("{field}: {e}")))
    }

    fn duration(&self, field: &str, value: &Spanned<String>) -> Result<Duration> {
        humantime::parse_duration(value.value.trim()).map_err(|e| {
            self.at(
                value,
                format!(
                    "{field}: {:?} is not a duration (expected e.g. 24h, 90m or 1h30m): {e}",
                    value.value
                ),
            )
        })
    }

    fn seconds(&self, field: &str, value: &Spanned<u64>) -> Result<Duration> {
        if value.value == 0 {
            return Err(self.at(value, format!("{field}: must be at least 1")));
        }
        Ok(Duration::from_secs(value.value))
    }

    fn env_name(&self, field: &str, value: &Spanned<String>) -> Result<EnvName> {
        EnvName::new(value.value.as_str()).map_err(|e| self.at(value, format!("{field}: {e}")))
    }

    fn regex(&self, field: &str, value: &Spanned<String>) -> Result<Regex> {
        Regex::new(&value.value).map_err(|e| {
            let text = e.to_string();
            // regex errors span several lines with a caret; keep the "error: ..." line.
            let reason = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .map(str::to_string)
                .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "));
            self.at(
                value,
                format!(
                    "{field}: `{}` is not a valid regular expression: {reason}",
                    value.value
                ),
            )
        })
    }

    fn severity(&self, field: &str, value: &Spanned<String>) -> Result<Severity> {
        value
            .value
            .parse()
            .map_err(|e: Error| self.at(value, format!("{field}: {e}")))
    }

    fn settings(&self, raw: RawManifest) -> Result<PromotionSettings> {
        let groups = self.groups(raw.groups.as_ref())?;
        let artifacts = raw.artifacts;
        let p = artifacts.promotion;

        let webhooks = match &p.webhooks {
            Some(hooks) => self.webhooks(hooks)?,
            None => vec![],
        };

        let mut gate_commands: HashMap<String, CommandSpec> = HashMap::new();
        for (name, value) in p.gate_commands.iter().flat_map(|e| &e.0) {
            let field = format!("gate_commands.{}", name.value);
            let name = self.gate_name("gate_commands", name)?;
            gate_commands.insert(name, self.command_value(&field, value)?);
        }

        let Some(raw_envs) = &p.environments else {
            return Err(self.err(
                None,
                "artifacts.promotion.environments: at least one environment is required",
            ));
        };
        if raw_envs.value.is_empty() {
            return Err(self.at(
                raw_envs,
                "artifacts.promotion.environments: at least one environment is required",
            ));
        }
        // Names first: references between environments are checked against all of them.
        let mut names: Vec<EnvName> = Vec::new();
        let mut lines: HashMap<EnvName, Option<(usize, usize)>> = HashMap::new();
        for (i, env) in raw_envs.value.iter().enumerate() {
            let name = self.env_name(&format!("environments[{i}].name"), &env.name)?;
            if let Some(first) = lines.get(&name) {
                let first = first
                    .map(|(l, _)| format!(" (first defined at line {l})"))
                    .unwrap_or_default();
                return Err(self.at(
                    &env.name,
                    format!(
                        "artifacts.promotion.environments: duplicate environment name {:?}{first}",
                        name.as_str()
                    ),
                ));
            }
            lines.insert(name.clone(), located(&env.name.referenced));
            names.push(name);
        }
        let environments = raw_envs
            .value
            .iter()
            .zip(&names)
            .map(|(env, name)| self.environment(env, name, &names, &gate_commands))
            .collect::<Result<Vec<_>>>()?;
        self.check_signed_rules(&raw_envs.value, &environments, &groups)?;

        let mut settings = PromotionSettings::new(environments);
        settings.groups = groups;
        settings.source = self.file.clone();
        settings.webhooks = webhooks;
        settings.server = p.server.as_ref().map(|s| self.server(s)).transpose()?;
        if let Some(raw) = &p.attestation {
            settings.attestation = Some(self.attestation(raw)?);
        }
        if let Some(registry) = &artifacts.registry {
            settings.registry = Some(self.repository("artifacts.registry.uri", &registry.uri)?);
        }
        if let Some(t) = &p.default_timeout_seconds {
            settings.default_timeout = self.seconds("default_timeout_seconds", t)?;
        }
        if let Some(s) = &p.signature_enforcement {
            settings.signature_enforcement = s
                .value
                .parse::<SignatureEnforcement>()
                .map_err(|e| self.at(s, format!("signature_enforcement: {e}")))?;
        }
        settings.trusted_keys = p
            .trusted_keys
            .iter()
            .map(|k| {
                if k.value.trim().is_empty() {
                    Err(self.at(k, "trusted_keys: an empty path"))
                } else {
                    Ok(self.path(&k.value))
                }
            })
            .collect::<Result<_>>()?;
        settings.insecure_registries = p
            .insecure_registries
            .iter()
            .map(|r| self.host(r))
            .collect::<Result<_>>()?;
        if let Some(t) = &p.registry_timeout_seconds {
            settings.registry_timeout = Some(self.seconds("registry_timeout_seconds", t)?);
        }
        settings.allow_skip = p.allow_skip;
        if let Some(t) = &p.lease_ttl_seconds {
            settings.lease_ttl = self.seconds("lease_ttl_seconds", t)?;
        }
        if let Some(raw) = &p.tag_scheme {
            settings.tag_scheme = self.tag_scheme(raw)?;
        }
        if let Some(raw) = &p.artifacts {
            settings.artifacts = self.artifacts(raw)?;
        }
        Ok(settings)
    }

    fn host(&self, value: &Spanned<String>) -> Result<String> {
        let v = value.value.trim();
        if v.is_empty()
            || v.contains("://")
            || v.contains('/')
            || v.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(self.at(
                value,
                format!(
                    "insecure_registries: {v:?} is not a registry host: expected HOST or HOST:PORT"
                ),
            ));
        }
        Ok(v.to_string())
    }

    fn tag_scheme(&self, raw: &RawTagScheme) -> Result<TagScheme> {
        let mut scheme = TagScheme::default();
        let fields = [
            (
                "tag_scheme.environment",
                &raw.environment,
                &mut scheme.environment,
            ),
            ("tag_scheme.pointer", &raw.pointer, &mut scheme.pointer),
            ("tag_scheme.rollback", &raw.rollback, &mut scheme.rollback),
        ];
        let mut spans: Vec<(&str, &Location)> = Vec::new();
        for (field, value, slot) in fields {
            if let Some(v) = value {
                slot.clone_from(&v.value);
                spans.push((field, &v.referenced));
            }
        }
        scheme.validate().map_err(|message| {
            let at = spans
                .iter()
                .find(|(field, _)| message.starts_with(&format!("{field}:")))
                .or(spans.first())
                .map(|(_, at)| *at);
            self.err(at, message)
        })?;
        Ok(scheme)
    }
}

/// Rewords serde-saphyr messages meant for the program's author into ones for the manifest's.
fn plain_words(message: String) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return format!("duplicate key `{key}`: a key may appear once in a mapping");
    }
    if message.starts_with("budget breached")
        || message.starts_with("alias replay")
        || message == "recursion limit exceeded"
    {
        return if message.contains("Depth") || message.starts_with("recursion") {
            "the manifest is nested deeper than 64 levels".into()
        } else {
            format!(
                "the manifest is too large once its aliases are expanded: more than {MAX_MANIFEST_NODES} values"
            )
        };
    }
    if message.starts_with("multiple YAML documents") {
        return "a manifest is one YAML document, but a second one (---) follows".into();
    }
    let max = match message.as_str() {
        "invalid u8" => Some(u64::from(u8::MAX)),
        "invalid u16" => Some(u64::from(u16::MAX)),
        "invalid u32" => Some(u64::from(u32::MAX)),
        "invalid u64" | "invalid usize" => Some(u64::MAX),
        _ => None,
    };
    if let Some(max) = max {
        return format!("expected a whole number from 0 to {max}");
    }
    match message.as_str() {
        "invalid boolean" => "expected true or false".into(),
        "expected mapping start" => "expected a mapping (key: value)".into(),
        "expected sequence start" => "expected a list".into(),
        _ => message,
    }
}
