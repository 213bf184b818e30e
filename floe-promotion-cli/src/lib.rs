//! # floe-promotion-cli
//!
//! The `floe` command, a thin embedder of [`floe_promotion`]: it parses arguments, wires the
//! manifest, the SQLite state file and the OCI backends into a
//! [`DefaultPromotionManager`](floe_promotion::DefaultPromotionManager), and prints.
//! [`run`] is the whole program; `main` only calls it.

mod app;
pub mod cli;
pub mod exit;
mod lazy;
pub mod output;
mod progress;

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{CommandFactory, Parser};
use floe_promotion::history::{ExportFormat, HistoryQuery, Order, verify_export_file};
use floe_promotion::input::read_bounded;
use floe_promotion::registry::{Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::{
    ArtifactName, ArtifactRef, EXCERPT_CHARS, EnvName, EnvironmentConfig, Error, Excerpt,
    HistoryStore, PromotionManager, PromotionRequest, Reference, Result, RollbackRequest, Tag,
};

use crate::app::App;
use crate::cli::{AuditCommand, Cli, Command, Global, LeaseCommand, OutputFormat};
use crate::output::{
    AttestOutput, EnvOutput, ErrorOutput, LeaseOutput, Output, PlanOutput, StatusOutput,
    VerifyOutput,
};

/// Runs `floe` with the process's arguments and returns its exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing();
    let format = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(format, &Error::io("starting the async runtime", e));
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok((output, code)) => {
            if let Some(output) = output {
                let printed = match format {
                    OutputFormat::Json => serde_json::to_string_pretty(&output)
                        .map(|s| s + "\n")
                        .unwrap_or_default(),
                    OutputFormat::Text => output.text(),
                };
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(printed.as_bytes());
                let _ = stdout.flush();
            }
            ExitCode::from(code)
        }
        Err(e) => report(format, &e),
    }
}

/// Whether the raw arguments ask for `--output json` (used when they do not parse).
fn json_requested() -> bool {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    args.iter().any(|a| a == "--output=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
}

/// Reports an argument the parser refused: help and version go to stdout with success; an
/// error is one line (`floe: <what>; usage: ...`) or one JSON document, with exit code 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::from(exit::OK);
    }
    let json = json_requested();
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand && !json {
        // `floe` or `floe audit` alone: the help is the answer.
        let _ = e.print();
        return ExitCode::from(exit::USAGE);
    }
    // clap's rendering, on one line: the error with its details, tips, then the usage.
    let rendered = e.render().to_string();
    let (mut what, mut tips, mut usage) = (Vec::new(), Vec::new(), None);
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        } else if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u);
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            tips.push(tip);
        } else {
            what.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    let mut message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a command is missing (see floe --help)".to_string()
    } else if what.is_empty() {
        "invalid arguments".to_string()
    } else {
        shorten_quoted(&what.join(" "))
    };
    for tip in tips {
        message = format!("{message}; {tip}");
    }
    if let Some(usage) = usage {
        message = format!("{message}; usage: {usage}");
    }
    print_error(
        if json {
            OutputFormat::Json
        } else {
            OutputFormat::Text
        },
        &ErrorOutput {
            error: message,
            exit_code: exit::USAGE,
            kind: exit::name(exit::USAGE).to_string(),
        },
    )
}

/// clap quotes the values it refuses in single quotes, whole: each quoted part longer than
/// [`EXCERPT_CHARS`] is shortened to an [`Excerpt`].
fn shorten_quoted(message: &str) -> String {
    message
        .split('\'')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 && part.chars().nth(EXCERPT_CHARS).is_some() {
                Excerpt::new(part).to_string()
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("'")
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn report(format: OutputFormat, error: &Error) -> ExitCode {
    print_error(format, &ErrorOutput::of(error))
}

/// Prints an error: one JSON document on stdout, or one line on stderr.
fn print_error(format: OutputFormat, doc: &ErrorOutput) -> ExitCode {
    match format {
        OutputFormat::Json => {
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
        OutputFormat::Text => {
            let _ = writeln!(std::io::stderr(), "floe: {}", output::one_line(&doc.error));
        }
    }
    ExitCode::from(doc.exit_code)
}

fn actor(global: &Global) -> Result<floe_promotion::Actor> {
    let id = global
        .actor
        .clone()
        .or_else(|| std::env::var("FLOE_ACTOR").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .ok_or_else(|| Error::invalid("actor", "", "give --actor, or set FLOE_ACTOR or USER"))?;
    let mut groups = global.groups.clone();
    if groups.is_empty()
        && let Ok(g) = std::env::var("FLOE_ACTOR_GROUPS")
    {
        groups = g
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(floe_promotion::Actor::new(id)?.with_groups(groups))
}

fn parse_time(what: &'static str, s: &str) -> Result<DateTime<Utc>> {
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

fn artifact_version(s: &str) -> Result<(ArtifactName, Tag)> {
    let r: ArtifactRef = s.parse()?;
    match r.reference {
        Reference::Tag(t) => Ok((r.name, t)),
        Reference::Digest(_) => Err(Error::invalid(
            "artifact reference",
            s,
            "give NAME:VERSION; promotion resolves the digest itself",
        )),
    }
}

/// The exit code of a dry run: that of the first blocker, or success.
fn plan_code(plan: &PlanOutput) -> u8 {
    plan.blockers
        .first()
        .map(|b| b.exit_code)
        .unwrap_or(exit::OK)
}

async fn execute(cli: Cli) -> Result<(Option<Output>, u8)> {
    let g = &cli.global;
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "floe", &mut std::io::stdout());
            Ok((None, exit::OK))
        }
        Command::Promote(a) => {
            // Every argument is checked before the state file is opened: bad input writes
            // nothing.
            let (artifact, version) = artifact_version(&a.reference)?;
            let (from, to) = (EnvName::new(&a.from)?, EnvName::new(&a.to)?);
            let actor = actor(g)?;
            if a.override_lock && a.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(Error::invalid(
                    "--override-lock",
                    "",
                    "overriding a lock needs --reason",
                ));
            }
            let app = App::open(g, true, &[&from, &to]).await?;
            let req = PromotionRequest {
                artifact,
                version,
                from,
                to,
                actor,
                reason: a.reason.clone(),
                override_lock: a.override_lock,
            };
            if a.dry_run {
                let plan = PlanOutput::of(&app.manager.plan(req).await?);
                let code = plan_code(&plan);
                return Ok((Some(Output::Plan(plan)), code));
            }
            let progress = app.progress();
            let record = app.manager.promote(req).await;
            progress.finish();
            Ok((Some(Output::Promote(record?)), exit::OK))
        }
        Command::Rollback(a) => {
            let env = EnvName::new(&a.env)?;
            let named = if a.to.contains(':') {
                Some(artifact_version(&a.to)?)
            } else {
                Tag::new(&a.to)?;
                None
            };
            let actor = actor(g)?;
            if a.reason.trim().is_empty() {
                return Err(Error::invalid("--reason", "", "a rollback needs a reason"));
            }
            let app = App::open(g, true, &[&env]).await?;
            let (artifact, version) = if let Some(named) = named {
                named
            } else {
                let running = app.store.deployments(Some(&env)).await?;
                match running.as_slice() {
                    [one] => (one.artifact.clone(), Tag::new(&a.to)?),
                    [] => {
                        // Nothing runs there: no artifact of any name was promoted.
                        return Err(Error::VersionNotPromoted {
                            artifact: "*".into(),
                            version: a.to.clone(),
                            environment: env,
                        });
                    }
                    _ => {
                        return Err(Error::invalid(
                            "--to",
                            a.to.clone(),
                            format!(
                                "{env} runs several artifacts ({}); give NAME:VERSION",
                                running
                                    .iter()
                                    .map(|d| d.artifact.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            };
            let req = RollbackRequest {
                artifact,
                environment: env,
                to_version: version,
                actor,
                reason: a.reason.clone(),
                override_lock: a.override_lock,
            };
            if a.dry_run {
                let plan = PlanOutput::of(&app.manager.plan_rollback(req).await?);
                let code = plan_code(&plan);
                return Ok((Some(Output::Plan(plan)), code));
            }
            Ok((
                Some(Output::Rollback(app.manager.rollback(req).await?)),
                exit::OK,
            ))
        }
        Command::Status(a) => {
            let env = a.env.as_deref().map(EnvName::new).transpose()?;
            let app = App::open(g, false, &env.iter().collect::<Vec<_>>()).await?;
            let scheme = &app.config.settings().tag_scheme;
            let environments = app
                .manager
                .status(env.as_ref())
                .await?
                .into_iter()
                .map(|s| {
                    StatusOutput::of(s, |d| {
                        Ok((
                            app.config.repository(&d.environment, &d.artifact)?,
                            vec![
                                scheme.environment_tag(&d.version, &d.environment)?,
                                scheme.pointer_tag(&d.environment)?,
                            ],
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((Some(Output::Status { environments }), exit::OK))
        }
        Command::History(a) => {
            let mut q = HistoryQuery {
                environment: a.env.as_deref().map(EnvName::new).transpose()?,
                limit: Some(a.limit),
                order: Order::NewestFirst,
                ..Default::default()
            };
            if let Some(s) = &a.artifact {
                if s.contains(':') {
                    let (name, version) = artifact_version(s)?;
                    q.artifact = Some(name);
                    q.version = Some(version);
                } else {
                    q.artifact = Some(ArtifactName::new(s)?);
                }
            }
            let app = App::open(g, false, &q.environment.iter().collect::<Vec<_>>()).await?;
            let events = app.manager.history(&q).await?;
            Ok((Some(Output::History { events }), exit::OK))
        }
        Command::Lock(a) => {
            let env = EnvName::new(&a.env)?;
            let actor = actor(g)?;
            let expires = a
                .expires
                .as_deref()
                .map(|s| {
                    humantime::parse_duration(s)
                        // humantime quotes the unit it did not know, whole.
                        .map_err(|e| {
                            Error::invalid("--expires", s, Excerpt::new(&e.to_string()).to_string())
                        })
                        .and_then(|d| {
                            chrono::Duration::from_std(d)
                                .map_err(|e| Error::invalid("--expires", s, e.to_string()))
                        })
                })
                .transpose()?;
            let app = App::open(g, false, &[&env]).await?;
            let lock = app.manager.lock(&env, &actor, &a.reason, expires).await?;
            Ok((Some(Output::Lock { lock }), exit::OK))
        }
        Command::Unlock(a) => {
            let env = EnvName::new(&a.env)?;
            let actor = actor(g)?;
            let app = App::open(g, false, &[&env]).await?;
            let lock = app
                .manager
                .unlock(&env, &actor, a.reason.as_deref())
                .await?;
            Ok((Some(Output::Unlock { lock }), exit::OK))
        }
        Command::Lease(LeaseCommand::List) => {
            let app = App::open(g, false, &[]).await?;
            let leases = app.manager.leases().await?;
            Ok((
                Some(Output::Leases {
                    leases: leases.into_iter().map(LeaseOutput::from).collect(),
                }),
                exit::OK,
            ))
        }
        Command::Lease(LeaseCommand::Break(a)) => {
            let env = EnvName::new(&a.env)?;
            let actor = actor(g)?;
            let app = App::open(g, false, &[&env]).await?;
            let lease = app
                .manager
                .break_lease(&env, &actor, &a.reason, a.force)
                .await?;
            Ok((
                Some(Output::LeaseBroken {
                    lease: lease.into(),
                }),
                exit::OK,
            ))
        }
        Command::Envs => {
            let app = App::open(g, false, &[]).await?;
            let settings = app.config.settings();
            let environments = settings
                .environments
                .iter()
                .enumerate()
                .map(|(position, e)| EnvOutput {
                    name: e.name.clone(),
                    position,
                    repository: e.repository.as_ref().map(ToString::to_string),
                    gates: app
                        .manager
                        .gates(&e.name)
                        .iter()
                        .map(|g| g.name().to_string())
                        .collect(),
                    gate_timeout_seconds: e
                        .gate_timeout
                        .unwrap_or(settings.default_timeout)
                        .as_secs(),
                    allowed_operators: e.authorization.allowed_operators.clone(),
                    allowed_groups: e.authorization.allowed_groups.clone(),
                    separation_of_duties: e.authorization.separation_of_duties,
                    version_pattern: e
                        .policy
                        .version_pattern
                        .as_ref()
                        .map(|r| r.as_str().to_string()),
                    minimum_soak_seconds: e.policy.minimum_soak.map(|d| d.as_secs()),
                    allowed_sources: e.policy.allowed_sources.clone(),
                    freeze_windows: e
                        .freeze_windows
                        .iter()
                        .map(|w| match w {
                            floe_promotion::config::FreezeWindow::Absolute {
                                start,
                                end,
                                reason,
                            } => {
                                format!("{} to {}: {reason}", start.to_rfc3339(), end.to_rfc3339())
                            }
                            floe_promotion::config::FreezeWindow::Weekly {
                                days,
                                start,
                                end,
                                reason,
                            } => {
                                format!("weekly {days:?} {start}-{end} UTC: {reason}")
                            }
                        })
                        .collect(),
                })
                .collect();
            Ok((Some(Output::Envs { environments }), exit::OK))
        }
        Command::Audit(AuditCommand::Verify { file }) => {
            let (report, source) = match &file {
                Some(path) => (verify_export_file(path, true)?, path.display().to_string()),
                None => {
                    let app = App::open(g, false, &[]).await?;
                    (
                        app.manager.verify().await?,
                        app.state_path.display().to_string(),
                    )
                }
            };
            let code = if report.is_intact() {
                exit::OK
            } else {
                exit::INTEGRITY
            };
            Ok((
                Some(Output::Verify(VerifyOutput {
                    intact: report.is_intact(),
                    events: report.events,
                    head: report.head,
                    first_break: report.first_break,
                    source,
                })),
                code,
            ))
        }
        Command::Audit(AuditCommand::Export(a)) => {
            let environment = a.env.as_deref().map(EnvName::new).transpose()?;
            let q = HistoryQuery {
                since: a
                    .since
                    .as_deref()
                    .map(|s| parse_time("--since", s))
                    .transpose()?,
                until: a
                    .until
                    .as_deref()
                    .map(|s| parse_time("--until", s))
                    .transpose()?,
                environment,
                ..Default::default()
            };
            let app = App::open(g, false, &q.environment.iter().collect::<Vec<_>>()).await?;
            let format = match a.format {
                cli::ExportFormatArg::Jsonl => ExportFormat::Jsonl,
                cli::ExportFormatArg::Csv => ExportFormat::Csv,
            };
            let name = match format {
                ExportFormat::Jsonl => "jsonl",
                _ => "csv",
            };
            match &a.out {
                Some(path) => {
                    // Write to a temporary file next to the target and rename, so a failed
                    // export never leaves a half-written file under the requested name.
                    let dir = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."));
                    let tmp = dir.join(format!(
                        ".{}.floe-tmp-{}",
                        path.file_name()
                            .map(|n| n.to_string_lossy())
                            .unwrap_or_default(),
                        std::process::id()
                    ));
                    let file = File::create(&tmp)
                        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                    let mut w = std::io::BufWriter::new(file);
                    let result = app.store.export(&q, format, &mut w).await.and_then(|n| {
                        w.flush()
                            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                        Ok(n)
                    });
                    let n = match result {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            return Err(e);
                        }
                    };
                    std::fs::rename(&tmp, path).map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Error::io(format!("writing {}", path.display()), e)
                    })?;
                    Ok((
                        Some(Output::Export {
                            format: name.into(),
                            events: n,
                            out: path.display().to_string(),
                        }),
                        exit::OK,
                    ))
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout());
                    app.store.export(&q, format, &mut out).await?;
                    out.flush()
                        .map_err(|e| Error::io("writing the export to standard output", e))?;
                    Ok((None, exit::OK))
                }
            }
        }
        Command::Attest(a) => {
            let (artifact, version) = artifact_version(&a.reference)?;
            let env = EnvName::new(&a.env)?;
            let who = actor(g)?;
            let details = match &a.file {
                None => serde_json::Value::Null,
                Some(path) => read_report(path)?,
            };
            let app = App::open(g, true, &[&env]).await?;
            let evidence = Evidence {
                kind: match a.kind {
                    cli::EvidenceKindArg::Tests => EvidenceKind::Tests,
                    cli::EvidenceKindArg::Policy => EvidenceKind::Policy,
                },
                status: match a.status {
                    cli::EvidenceStatusArg::Passed => EvidenceStatus::Passed,
                    cli::EvidenceStatusArg::Failed => EvidenceStatus::Failed,
                },
                environment: Some(env.clone()),
                created: Utc::now(),
                actor: Some(who.id.clone()),
                details,
            };
            let (digest, attached) = app
                .manager
                .attest(&artifact, &version, &env, &evidence, &who)
                .await?;
            Ok((
                Some(Output::Attest(AttestOutput {
                    artifact: artifact.to_string(),
                    version,
                    environment: env,
                    digest,
                    evidence: attached,
                    kind: evidence.kind.to_string(),
                    status: evidence.status.to_string(),
                })),
                exit::OK,
            ))
        }
    }
}

/// The largest report `floe attest --file` attaches.
const MAX_REPORT: u64 = 1024 * 1024;

fn read_report(path: &std::path::Path) -> Result<serde_json::Value> {
    let bytes = read_bounded(path, MAX_REPORT, "--file")?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_quoted_by_clap_are_shortened() {
        let long = "x".repeat(10_240);
        let message = format!("invalid value '{long}' for '--format <FORMAT>'");
        let short = shorten_quoted(&message);
        assert_eq!(
            short,
            format!(
                "invalid value '{}…{} (10240 bytes)' for '--format <FORMAT>'",
                "x".repeat(60),
                "x".repeat(20)
            )
        );
        let plain =
            "unexpected argument '--frob' found; to pass '--frob' as a value, use '-- --frob'";
        assert_eq!(shorten_quoted(plain), plain);
    }
}
