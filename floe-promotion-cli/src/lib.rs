//! # floe-promotion-cli
//!
//! The `floe` command, a thin embedder of [`floe_promotion`]: it parses arguments, wires the
//! manifest, the SQLite state file and the OCI backends into a
//! [`DefaultPromotionManager`](floe_promotion::DefaultPromotionManager), and prints.
//! [`run`] is the whole program; `main` only calls it.

mod app;
mod checkpoints;
pub mod cli;
mod commands;
pub mod exit;
mod lazy;
pub mod output;
mod progress;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use floe_promotion::{EXCERPT_CHARS, Error, Excerpt};

use crate::cli::{Cli, OutputFormat};
use crate::output::ErrorOutput;

/// How long a command waits at exit for its notifications to be delivered.
const NOTIFY_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `floe` with the process's arguments and returns its exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing();
    let format = cli.global.output;
    let serving = matches!(cli.command, cli::Command::Serve(_));
    // A process that keeps its state open for long opens it differently (see `app`).
    if serving || matches!(&cli.command, cli::Command::Auto(a) if a.0.watch) {
        app::long_running();
    }
    // A command is a handful of requests and state writes, waiting on the network and the
    // disk: one thread drives them (SQLite still runs on blocking threads), without worker
    // threads to start and hand work between. `floe serve` answers many clients at once.
    let mut builder = if serving {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return report(format, &Error::io("starting the async runtime", e));
        }
    };
    let result = runtime.block_on(async {
        let result = commands::execute(cli).await;
        app::deliver_pending(NOTIFY_BUDGET).await;
        result
    });
    // The command's work is committed and its notifications delivered (or kept for the next
    // run); what is left is to print and exit. Dropping the runtime would first join its idle
    // threads, and the last manager (kept by `app`) would close its state and registry
    // connections: work the exit does anyway, about 0.3 ms of a 16 ms retag. Nothing is lost
    // by not closing them: a SQLite connection here never checkpoints on close
    // (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`), and a PostgreSQL server or a registry sees the
    // connection end either way.
    std::mem::forget(runtime);
    match result {
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
