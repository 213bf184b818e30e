//! `floe auto`: one pass of automatic promotion, or `--watch` to run a pass on an interval
//! until SIGTERM or SIGINT.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use floe_promotion::orchestrate::{AutoAction, AutoOptions, AutoReport};

use super::*;
use crate::cli::OutputFormat;
use crate::output::AutoOutput;

/// How long a watch pass waits for its notifications before the next sleep.
const NOTIFY_BUDGET: Duration = Duration::from_secs(5);

pub(super) async fn run(g: &Global, a: AutoArgs) -> Result<(Option<Output>, u8)> {
    let env = a.env.as_deref().map(EnvName::new).transpose()?;
    let actor = actor(g)?;
    let interval = humantime::parse_duration(&a.interval).map_err(|e| {
        Error::invalid(
            "--interval",
            &a.interval,
            Excerpt::new(&e.to_string()).to_string(),
        )
    })?;
    if interval.is_zero() {
        return Err(Error::invalid(
            "--interval",
            &a.interval,
            "must be longer than 0s",
        ));
    }
    let envs: Vec<&EnvName> = env.iter().collect();
    let app = App::open(g, false, &envs).await?;
    let mut options = AutoOptions::new(actor);
    options.environment = env.clone();
    options.dry_run = a.dry_run;
    if !a.watch {
        if !a.dry_run {
            app.deliver_at_exit();
        }
        let report = app.manager.run_auto_promotions(&options).await?;
        let code = pass_code(&report, a.dry_run);
        return Ok((Some(Output::Auto(AutoOutput::of(report, a.dry_run))), code));
    }
    watch(g, &app, options, interval).await
}

/// The exit code of one pass: that of the first failed promotion, else success.
fn pass_code(report: &AutoReport, dry_run: bool) -> u8 {
    if dry_run {
        return exit::OK;
    }
    report
        .with_action(AutoAction::Failed)
        .find_map(|d| d.error.as_deref().map(exit::code))
        .unwrap_or(exit::OK)
}

/// Runs passes until a signal asks to stop; each pass's decisions are printed (text, or one
/// JSON document per line) and logged, and its notifications delivered.
async fn watch(
    g: &Global,
    app: &App,
    mut options: AutoOptions,
    interval: Duration,
) -> Result<(Option<Output>, u8)> {
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::io("listening for SIGTERM", e))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::io("listening for SIGINT", e))?;
    {
        let (stop, wake) = (stop.clone(), wake.clone());
        tokio::spawn(async move {
            let which = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            note(&format!("{which}: stopping after the promotion under way"));
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        });
    }
    options.stop = Some(stop.clone());
    note(&format!(
        "watching: a pass every {}{}; SIGTERM or SIGINT stops",
        humantime::format_duration(interval),
        if options.dry_run { " (dry run)" } else { "" }
    ));
    while !stop.load(Ordering::SeqCst) {
        match app.manager.run_auto_promotions(&options).await {
            Ok(report) => {
                for d in &report.decisions {
                    let what = d
                        .candidate
                        .as_ref()
                        .map(|c| format!("{}:{}", c.artifact, c.version))
                        .unwrap_or_default();
                    tracing::info!(target: "floe::auto", environment = %d.environment, action = %d.action, candidate = %what, "{}", floe_promotion::model::text::printable(&d.detail));
                }
                print_pass(g.output, AutoOutput::of(report, options.dry_run));
            }
            Err(e) => {
                tracing::warn!(error = %e, "automatic promotion pass failed; trying again after the interval");
                print_error(g.output, &e);
            }
        }
        if !options.dry_run {
            deliver(app).await;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
    }
    note("stopped");
    Ok((None, exit::OK))
}

/// A line about the watcher itself on standard error (standard output carries the passes).
fn note(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "floe auto: {} {message}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")
    );
}

async fn deliver(app: &App) {
    match tokio::time::timeout(NOTIFY_BUDGET, app.manager.deliver_notifications()).await {
        Ok(Ok(report)) => {
            for d in report.iter().filter(|d| d.error.is_some()) {
                tracing::warn!(notifier = %d.notifier, error = ?d.error, "notifications kept for the next pass");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "notifications kept for the next pass"),
        Err(_) => {
            tracing::warn!("notification delivery did not finish; the rest waits for the next pass")
        }
    }
}

fn print_pass(format: OutputFormat, out: AutoOutput) {
    use std::io::Write as _;
    let output = Output::Auto(out);
    let text = match format {
        OutputFormat::Json => serde_json::to_string(&output)
            .map(|s| s + "\n")
            .unwrap_or_default(),
        OutputFormat::Text => output.text(),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn print_error(format: OutputFormat, e: &Error) {
    use std::io::Write as _;
    let line = match format {
        OutputFormat::Json => serde_json::json!({
            "error": e.to_string(),
            "exit_code": exit::code(e),
        })
        .to_string(),
        OutputFormat::Text => format!(
            "pass failed: {}",
            floe_promotion::model::text::printable(&e.to_string())
        ),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
