//! The `manifest.yaml` loader.
//!
//! Two layers: raw structs that mirror the YAML exactly (`deny_unknown_fields` everywhere, so
//! a typo is an error with its line and column), then a conversion into the settings model
//! that checks every value (names, durations, regexes, severities, commands) and points at the
//! value that is wrong. Nothing here panics on any input.

mod artifacts;
mod attestation;
mod raw;
mod server;
mod signed_votes;
mod webhooks;

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

    fn gate_name(&self, field: &str, value: &Spanned<String>) -> Result<String> {
        let name = value.value.as_str();
        let ok = name.len() <= 63
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(name.to_string())
        } else {
            Err(self.at(
                value,
                format!(
                    "{field}: invalid gate name {name:?}: 1 to 63 characters of A-Z a-z 0-9 _ - . starting with a letter or digit"
                ),
            ))
        }
    }

    /// An argv list as is, or a string without shell syntax split on whitespace.
    fn argv(&self, field: &str, args: &RawArgs, at: &Location) -> Result<Vec<String>> {
        let argv = match args {
            RawArgs::Argv(argv) => argv.clone(),
            RawArgs::Line(line) => {
                let mut rest = line.clone();
                for p in PLACEHOLDERS {
                    rest = rest.replace(p, "");
                }
                if let Some(c) = rest.chars().find(|c| SHELL_CHARS.contains(c)) {
                    return Err(self.err(
                        Some(at),
                        format!(
                            "{field}: {line:?} contains `{c}`: commands are argument lists and never run through a shell; write it as a YAML list, e.g. [trivy, image, \"${{ARTIFACT_REF}}\"]"
                        ),
                    ));
                }
                line.split_whitespace().map(str::to_string).collect()
            }
        };
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(self.err(
                Some(at),
                format!("{field}: a command needs a program as its first argument"),
            ));
        }
        let mut argv = argv;
        // A program given as a relative path (`./smoke.sh`, `scripts/check`) is the manifest's
        // neighbour, like every other path in it; a bare name is looked up in PATH.
        if argv[0].contains('/') && Path::new(&argv[0]).is_relative() {
            argv[0] = self.path(&argv[0]).to_string_lossy().into_owned();
        }
        Ok(argv)
    }

    /// Commands run in the manifest's directory, so relative arguments mean the same from
    /// wherever floe is started.
    fn anchored(&self, mut spec: CommandSpec) -> CommandSpec {
        if spec.working_dir.is_none() {
            spec.working_dir = self.base.clone();
        }
        spec
    }

    fn command(
        &self,
        field: &str,
        args: &Spanned<RawArgs>,
        timeout: Option<&Spanned<u64>>,
    ) -> Result<CommandSpec> {
        let argv = self.argv(&format!("{field}.command"), &args.value, &args.referenced)?;
        let mut spec =
            CommandSpec::new(argv).map_err(|e| self.at(args, format!("{field}: {e}")))?;
        if let Some(t) = timeout {
            spec.timeout = Some(self.seconds(&format!("{field}.timeout_seconds"), t)?);
        }
        Ok(self.anchored(spec))
    }

    /// A `gate_commands` entry or an inline command gate.
    fn command_value(&self, field: &str, value: &Spanned<RawGateValue>) -> Result<CommandSpec> {
        match &value.value {
            RawGateValue::Args(args) => {
                let argv = self.argv(field, args, &value.referenced)?;
                CommandSpec::new(argv)
                    .map(|spec| self.anchored(spec))
                    .map_err(|e| self.at(value, format!("{field}: {e}")))
            }
            RawGateValue::Map(map) => {
                self.command(field, &map.command, map.timeout_seconds.as_ref())
            }
            RawGateValue::Flag(_) => Err(self.at(
                value,
                format!("{field}: expected a command: a list of arguments or {{ command: [...], timeout_seconds: N }}"),
            )),
        }
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

    fn environment(
        &self,
        raw: &RawEnvironment,
        name: &EnvName,
        names: &[EnvName],
        gate_commands: &HashMap<String, CommandSpec>,
    ) -> Result<Environment> {
        let field = |f: &str| format!("environment {name}: {f}");
        let known = || {
            names
                .iter()
                .map(EnvName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut env = Environment::new(name.clone());
        if let Some(repo) = &raw.repository {
            env.repository = Some(self.repository(&field("repository"), repo)?);
        }
        if let Some(gates) = &raw.gates {
            env.gates = self.gates(name, gates, gate_commands)?;
        }
        if let Some(t) = &raw.gate_timeout_seconds {
            env.gate_timeout = Some(self.seconds(&field("gate_timeout_seconds"), t)?);
        }
        if let Some(a) = &raw.authorization {
            env.authorization = Authorization {
                allowed_groups: a.allowed_groups.clone(),
                allowed_operators: a.allowed_operators.clone(),
                separation_of_duties: a.separation_of_duties,
            };
        }
        if let Some(a) = &raw.approval {
            let raw_policy = &a.value;
            let timeout = match &raw_policy.timeout {
                Some(d) => self.duration(&field("approval.timeout"), d)?,
                None => Duration::from_secs(24 * 3600),
            };
            let policy = ApprovalPolicy {
                rules: raw_policy
                    .rules
                    .iter()
                    .map(|r| ApprovalRule {
                        name: r.value.name.clone(),
                        required: r.value.required,
                        users: r.value.users.clone(),
                        groups: r.value.groups.clone(),
                    })
                    .collect(),
                timeout,
                separation: raw_policy
                    .separation_of_duties
                    .as_ref()
                    .map(|s| s.value)
                    .unwrap_or_default(),
                signers: raw_policy
                    .signers
                    .as_ref()
                    .map(|s| self.signers(&field("approval.signers"), s))
                    .transpose()?,
            };
            if let Err(message) = policy.validate(&field("approval")) {
                // Point at the rule the message is about, else at the approval block.
                let spot = raw_policy
                    .rules
                    .iter()
                    .find(|r| message.contains(&format!("[{}]", r.value.name)))
                    .map(|r| &r.referenced)
                    .unwrap_or(&a.referenced);
                return Err(self.err(Some(spot), message));
            }
            env.approval = Some(policy);
        }
        if let Some(policy) = &raw.policy {
            let mut settings = PolicySettings::default();
            if let Some(p) = &policy.version_pattern {
                settings.version_pattern = Some(self.regex(&field("policy.version_pattern"), p)?);
            }
            if let Some(d) = &policy.minimum_soak {
                settings.minimum_soak = Some(self.duration(&field("policy.minimum_soak"), d)?);
            }
            for source in &policy.allowed_sources {
                let f = field("policy.allowed_sources");
                let source_name = self.env_name(&f, source)?;
                if !names.contains(&source_name) {
                    return Err(self.at(
                        source,
                        format!(
                            "{f}: unknown environment {:?} (known: {})",
                            source.value,
                            known()
                        ),
                    ));
                }
                settings.allowed_sources.push(source_name);
            }
            env.policy = settings;
        }
        for (i, window) in raw.freeze_windows.iter().enumerate() {
            env.freeze_windows
                .push(self.freeze_window(&field(&format!("freeze_windows[{i}]")), window)?);
        }
        let now = Utc::now();
        for (i, window) in raw.windows.iter().enumerate() {
            env.windows
                .push(self.window(&field(&format!("windows[{i}]")), window, now)?);
        }
        if let Some(s) = &raw.strategy {
            env.strategy = self.strategy(&field("strategy"), s)?;
        }
        if let Some(auto) = &raw.auto_promote {
            let f = field("auto_promote.from");
            let from = self.env_name(&f, &auto.value.from)?;
            let Some(from_position) = names.iter().position(|n| n == &from) else {
                return Err(self.at(
                    &auto.value.from,
                    format!(
                        "{f}: unknown environment {:?} (known: {})",
                        auto.value.from.value,
                        known()
                    ),
                ));
            };
            let own_position = names.iter().position(|n| n == &env.name);
            if own_position.is_none_or(|own| from_position >= own) {
                return Err(self.at(
                    &auto.value.from,
                    format!(
                        "{f}: {from} does not come before {} in the promotion order; automatic promotion only moves forward",
                        env.name
                    ),
                ));
            }
            let soak = match &auto.value.soak {
                Some(d) => self.duration(&field("auto_promote.soak"), d)?,
                None => Duration::ZERO,
            };
            let versions = match &auto.value.versions {
                Some(p) => Some(self.regex(&field("auto_promote.versions"), p)?),
                None => None,
            };
            env.auto_promotion = Some(AutoPromotion {
                from,
                soak,
                versions,
            });
        }
        Ok(env)
    }

    fn gates(
        &self,
        env: &EnvName,
        raw: &RawGates,
        gate_commands: &HashMap<String, CommandSpec>,
    ) -> Result<GateSettings> {
        let field = |f: &str| format!("environment {env}: gates.{f}");
        let mut gates = GateSettings {
            tests: raw.tests,
            signature: raw.signature,
            ..GateSettings::default()
        };
        if let Some(pc) = &raw.policy_compliance {
            gates.policy_compliance = match &pc.value {
                RawPolicyCompliance::Flag(false) => None,
                RawPolicyCompliance::Flag(true) => Some(PolicyRules {
                    require_evidence: true,
                    ..PolicyRules::default()
                }),
                RawPolicyCompliance::Rules(rules) => {
                    Some(self.policy_rules(&field("policy_compliance"), pc, rules)?)
                }
            };
        }
        if let Some(scan) = &raw.security_scan
            && let RawScanGate::On(s) = &scan.value
        {
            gates.security_scan = Some(self.scan(&field("security_scan"), scan, s)?);
        }
        for (key, value) in &raw.commands {
            let name = self.gate_name(&field(""), key)?;
            let f = field(&name);
            let spec = match &value.value {
                RawGateValue::Flag(false) => continue,
                RawGateValue::Flag(true) => match gate_commands.get(&name) {
                    Some(spec) => spec.clone(),
                    None => {
                        let mut defined: Vec<&str> =
                            gate_commands.keys().map(String::as_str).collect();
                        defined.sort_unstable();
                        return Err(self.at(
                            key,
                            format!(
                                "{f}: true refers to promotion.gate_commands.{name}, which is not defined (built-in gates: {}; gate_commands: {})",
                                BUILTIN_GATES.join(", "),
                                if defined.is_empty() { "none".to_string() } else { defined.join(", ") }
                            ),
                        ));
                    }
                },
                _ => self.command_value(&f, value)?,
            };
            gates.commands.push((name, spec));
        }
        Ok(gates)
    }

    fn policy_rules(
        &self,
        field: &str,
        at: &Spanned<RawPolicyCompliance>,
        raw: &RawPolicyRules,
    ) -> Result<PolicyRules> {
        let mut rules = PolicyRules {
            require_evidence: raw.require_evidence,
            allowed_media_types: raw.allowed_media_types.clone(),
            ..PolicyRules::default()
        };
        rules.required_annotations = match &raw.required_annotations {
            None => BTreeMap::new(),
            Some(RawAnnotations::Keys(keys)) => keys.iter().map(|k| (k.clone(), None)).collect(),
            Some(RawAnnotations::Map(entries)) => entries
                .0
                .iter()
                .map(|(k, v)| (k.value.clone(), v.clone()))
                .collect(),
        };
        rules.max_size_bytes = match (&raw.max_size, &raw.max_size_bytes) {
            (Some(_), Some(b)) => {
                return Err(self.at(
                    b,
                    format!("{field}: give max_size or max_size_bytes, not both"),
                ));
            }
            (Some(s), None) => Some(parse_size(&s.value).ok_or_else(|| {
                self.at(
                    s,
                    format!(
                        "{field}.max_size: {:?} is not a size (expected e.g. 50MiB, 2GB or a number of bytes)",
                        s.value
                    ),
                )
            })?),
            (None, Some(b)) => Some(b.value),
            (None, None) => None,
        };
        if rules == PolicyRules::default() {
            return Err(self.at(
                at,
                format!("{field}: no rule is set; write policy_compliance: false to turn it off"),
            ));
        }
        Ok(rules)
    }

    fn scan(&self, field: &str, at: &Spanned<RawScanGate>, raw: &RawScan) -> Result<ScanSettings> {
        let source = match (&raw.command, &raw.report) {
            (Some(cmd), None) => {
                ScanSource::Command(self.command(field, cmd, raw.timeout_seconds.as_ref())?)
            }
            (None, Some(report)) => {
                if raw.timeout_seconds.is_some() {
                    return Err(self.at(
                        at,
                        format!("{field}: timeout_seconds applies to a scanner command, not to a report file"),
                    ));
                }
                if report.value.trim().is_empty() {
                    return Err(self.at(report, format!("{field}.report: an empty path")));
                }
                ScanSource::Report(self.path(&report.value))
            }
            (Some(_), Some(_)) => {
                return Err(self.at(at, format!("{field}: give command or report, not both")));
            }
            (None, None) => {
                return Err(self.at(
                    at,
                    format!("{field}: needs a scanner: command: [...] or report: PATH"),
                ));
            }
        };
        let block_on_severity = match &raw.block_on_severity {
            None => vec![Severity::Critical, Severity::High],
            Some(list) => {
                if list.value.is_empty() {
                    return Err(self.at(
                        list,
                        format!("{field}.block_on_severity: at least one severity is required (a scan that blocks nothing is not a gate)"),
                    ));
                }
                let mut out = Vec::new();
                for s in &list.value {
                    let sev = self.severity(&format!("{field}.block_on_severity"), s)?;
                    if !out.contains(&sev) {
                        out.push(sev);
                    }
                }
                out
            }
        };
        Ok(ScanSettings {
            source,
            block_on_severity,
            ignore_unfixed: raw.ignore_unfixed,
        })
    }

    fn freeze_window(&self, field: &str, raw: &Spanned<RawFreezeWindow>) -> Result<FreezeWindow> {
        let w = &raw.value;
        let reason = w.reason.clone().unwrap_or_default();
        match (&w.start, &w.end, &w.days, &w.from, &w.to) {
            (Some(start), Some(end), None, None, None) => {
                let time = |f: &str, v: &Spanned<String>| {
                    DateTime::parse_from_rfc3339(v.value.trim())
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| {
                            self.at(
                                v,
                                format!(
                                    "{field}.{f}: {:?} is not an RFC 3339 time (e.g. 2025-12-24T00:00:00Z): {e}",
                                    v.value
                                ),
                            )
                        })
                };
                let (s, e) = (time("start", start)?, time("end", end)?);
                if e <= s {
                    return Err(self.at(end, format!("{field}.end: must be after start")));
                }
                Ok(FreezeWindow::Absolute {
                    start: s,
                    end: e,
                    reason,
                })
            }
            (None, None, Some(days), Some(from), Some(to)) => {
                if days.is_empty() {
                    return Err(self.at(raw, format!("{field}.days: at least one day is required")));
                }
                let days = days
                    .iter()
                    .map(|d| {
                        weekday(&d.value).ok_or_else(|| {
                            self.at(
                                d,
                                format!(
                                    "{field}.days: {:?} is not a day (expected mon, tue, wed, thu, fri, sat or sun)",
                                    d.value
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let time = |f: &str, v: &Spanned<String>| {
                    let t = v.value.trim();
                    NaiveTime::parse_from_str(t, "%H:%M")
                        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
                        .map_err(|_| {
                            self.at(
                                v,
                                format!("{field}.{f}: {:?} is not a time of day (expected HH:MM, UTC)", v.value),
                            )
                        })
                };
                let (start, end) = (time("from", from)?, time("to", to)?);
                if end <= start {
                    return Err(self.at(
                        to,
                        format!("{field}.to: must be after from (write a window that crosses midnight as two windows)"),
                    ));
                }
                Ok(FreezeWindow::Weekly {
                    days,
                    start,
                    end,
                    reason,
                })
            }
            _ => Err(self.at(
                raw,
                format!(
                    "{field}: expected either {{ start, end, reason }} (RFC 3339 times) or {{ days, from, to, reason }} (weekly, HH:MM UTC)"
                ),
            )),
        }
    }

    /// A promotion window; a recurring one must have an occurrence ending after `now`.
    fn window(
        &self,
        field: &str,
        raw: &Spanned<RawWindow>,
        now: DateTime<Utc>,
    ) -> Result<PromotionWindow> {
        let w = &raw.value;
        // Each error points at the value it is about, else at the window.
        let fail = |e: WindowError| {
            let spot = match e.field {
                WindowField::Kind => w.kind.as_ref(),
                WindowField::Rrule => w.rrule.as_ref(),
                WindowField::Duration => w.duration.as_ref(),
                WindowField::Timezone => w.timezone.as_ref(),
                WindowField::Start => w.start.as_ref(),
                WindowField::End => w.end.as_ref(),
            };
            let message = format!("{field}.{e}");
            match spot {
                Some(v) => self.at(v, message),
                None => self.at(raw, message),
            }
        };
        let need = |f: WindowField, m: &str| {
            fail(WindowError {
                field: f,
                message: m.into(),
            })
        };
        let kind = match &w.kind {
            Some(k) => k.value.parse::<WindowKind>().map_err(|m| {
                fail(WindowError {
                    field: WindowField::Kind,
                    message: m,
                })
            })?,
            None => return Err(need(WindowField::Kind, "required: deny or allow")),
        };
        let tz = match &w.timezone {
            Some(t) => parse_timezone(&t.value).map_err(fail)?,
            None => chrono_tz::Tz::UTC,
        };
        let duration = w
            .duration
            .as_ref()
            .map(|d| parse_duration(&d.value))
            .transpose()
            .map_err(fail)?;
        let schedule = if let Some(rule) = &w.rrule {
            if w.end.is_some() {
                return Err(need(
                    WindowField::End,
                    "a recurring window lasts `duration`; end is for one-off windows",
                ));
            }
            let Some(duration) = duration else {
                return Err(need(
                    WindowField::Duration,
                    "a recurring window needs a duration, e.g. duration: 9h",
                ));
            };
            let start = match &w.start {
                None => None,
                Some(s) => Some(match parse_local(&s.value) {
                    Some(local) => local,
                    None => parse_time(&s.value, tz, WindowField::Start)
                        .map_err(fail)?
                        .with_timezone(&tz)
                        .naive_local(),
                }),
            };
            let recurrence = Recurrence::new(&rule.value, tz, start, duration).map_err(fail)?;
            match recurrence.next_occurrence(now) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(self.at(rule, format!("{field}.rrule: {:?} has no occurrence after {} (check UNTIL, COUNT and start)", rule.value, now.to_rfc3339()))),
                Err(e) => return Err(self.at(rule, format!("{field}.rrule: {e}"))),
            }
            WindowSchedule::recurring(recurrence)
        } else {
            let Some(start) = &w.start else {
                return Err(self.at(raw, format!("{field}: expected {{ kind, rrule, duration, timezone, reason }} (recurring) or {{ kind, start, end, timezone, reason }} (one-off)")));
            };
            let start = parse_time(&start.value, tz, WindowField::Start).map_err(fail)?;
            let end = match (&w.end, duration) {
                (Some(end), None) => parse_time(&end.value, tz, WindowField::End).map_err(fail)?,
                (None, Some(d)) => {
                    start + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
                }
                (Some(_), Some(_)) => {
                    return Err(need(
                        WindowField::Duration,
                        "give end or duration, not both",
                    ));
                }
                (None, None) => {
                    return Err(need(
                        WindowField::End,
                        "a one-off window needs end (or duration)",
                    ));
                }
            };
            WindowSchedule::once(start, end).map_err(fail)?
        };
        Ok(PromotionWindow::new(
            kind,
            schedule,
            w.reason.clone().unwrap_or_default(),
        ))
    }

    fn strategy(&self, field: &str, raw: &Spanned<RawStrategy>) -> Result<Strategy> {
        let map = match &raw.value {
            RawStrategy::Name(n) => {
                return match n.as_str() {
                    "direct" => Ok(Strategy::Direct),
                    "blue_green" => Ok(Strategy::BlueGreen { auto_switch: false }),
                    "canary" => Err(self.err(
                        Some(&raw.referenced),
                        format!(
                            "{field}: canary needs steps, e.g. {{ canary: {{ steps: [{{ weight: 10, pause: 1h }}, {{ weight: 100 }}] }} }}"
                        ),
                    )),
                    other => Err(self.err(
                        Some(&raw.referenced),
                        format!(
                            "{field}: unknown strategy {other:?}: expected direct, canary or blue_green"
                        ),
                    )),
                };
            }
            RawStrategy::Map(m) => m,
        };
        let given = [
            map.direct.is_some(),
            map.canary.is_some(),
            map.blue_green.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            return Err(self.err(
                Some(&raw.referenced),
                format!(
                    "{field}: name exactly one strategy (direct, canary or blue_green), found {given}"
                ),
            ));
        }
        if let Some(bg) = &map.blue_green {
            return Ok(Strategy::BlueGreen {
                auto_switch: bg.value.auto_switch,
            });
        }
        let Some(canary) = &map.canary else {
            return Ok(Strategy::Direct);
        };
        let raw_steps = &canary.value.steps;
        if raw_steps.value.is_empty() {
            return Err(self.at(
                raw_steps,
                format!(
                    "{field}.canary.steps: at least one step is needed, the last at weight 100"
                ),
            ));
        }
        let mut steps = Vec::new();
        let last = raw_steps.value.len() - 1;
        for (i, step) in raw_steps.value.iter().enumerate() {
            let at = format!("{field}.canary.steps[{i}]");
            let w = step.value.weight.value;
            if !(1..=100).contains(&w) {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: {w} is not a percentage from 1 to 100"),
                ));
            }
            let weight = w as u8;
            if let Some(prev) = steps.last().map(|s: &CanaryStep| s.weight)
                && weight <= prev
            {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: {weight} must be more than the step before ({prev})"),
                ));
            }
            if i == last && weight != 100 {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: the last step must be at 100, not {weight}"),
                ));
            }
            if weight == 100 && i != last {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: 100 must be the last step"),
                ));
            }
            let pause = match &step.value.pause {
                Some(p) if weight == 100 => {
                    return Err(self.at(
                        p,
                        format!(
                            "{at}.pause: the last step (100) ends the canary and takes no pause"
                        ),
                    ));
                }
                Some(p) => Some(self.duration(&format!("{at}.pause"), p)?),
                None => None,
            };
            steps.push(CanaryStep { weight, pause });
        }
        Ok(Strategy::Canary { steps })
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

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// "50MiB", "2GB", "1024": a size in bytes (SI units are powers of 1000, IEC of 1024).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000_u64.pow(2),
        "gb" | "g" => 1000_u64.pow(3),
        "tb" | "t" => 1000_u64.pow(4),
        "kib" | "ki" => 1 << 10,
        "mib" | "mi" => 1 << 20,
        "gib" | "gi" => 1 << 30,
        "tib" | "ti" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10 kib"), Some(10240));
        for bad in ["", "MiB", "1.5GiB", "-1", "5XB", "99999999999999999999"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert_eq!(parse_size("99999999999TiB"), None);
    }
}
