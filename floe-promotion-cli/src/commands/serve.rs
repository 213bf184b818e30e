//! `floe serve`: the HTTP API, the dashboard and metrics, over the same manager and state as
//! every other command.

use std::sync::Arc;
use std::time::Duration;

use floe_promotion::config::ServerSettings;
use floe_promotion::{ArtifactRegistry, Repository};
use floe_promotion_server::{
    ApiError, ErrorReporter, IdentityVerifier, LeaseTiming, Metrics, ReadinessProbe, Server,
};

use super::*;
use crate::output::ErrorOutput;

/// How often the server delivers the notifications its calls recorded.
const DELIVERY_INTERVAL: Duration = Duration::from_secs(2);

/// The CLI's classification of errors, shared with the API: one exit-code mapping.
#[derive(Debug)]
pub(crate) struct CliErrors;

impl ErrorReporter for CliErrors {
    fn report(&self, error: &Error) -> ApiError {
        let doc = ErrorOutput::of(error);
        ApiError {
            error: doc.error,
            exit_code: doc.exit_code,
            kind: doc.kind,
        }
    }
}

/// A registry location is reachable: listing its tags answers (a repository that does not
/// exist yet answers too).
#[derive(Debug)]
struct RegistryProbe {
    registry: Arc<dyn ArtifactRegistry>,
    repository: Repository,
}

#[floe_promotion::async_trait]
impl ReadinessProbe for RegistryProbe {
    fn name(&self) -> String {
        format!("registry {}", self.repository)
    }

    async fn check(&self) -> Result<()> {
        match self.registry.list_tags(&self.repository).await {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("stopping: requests under way finish first");
}

pub(super) async fn run(g: &Global, a: cli::ServeArgs) -> Result<(Option<Output>, u8)> {
    let grace = humantime::parse_duration(&a.shutdown_grace)
        .map_err(|e| Error::invalid("--shutdown-grace", &a.shutdown_grace, e.to_string()))?;
    let metrics = Metrics::new();
    let timed = metrics.clone();
    let app = App::open_with(g, false, &[], None, move |locks| {
        Arc::new(LeaseTiming::new(locks, timed))
    })
    .await?;
    let settings: ServerSettings = app.config.settings().server.clone().unwrap_or_default();
    let identity = IdentityVerifier::from_settings(&settings)?;
    if !identity.is_configured() {
        tracing::warn!(
            "no identity source (artifacts.promotion.server.identity): every mutating call will be refused"
        );
    }
    let mut builder = Server::builder()
        .manager(Arc::new(app.manager.clone()))
        .history(app.store.history.clone())
        .deliveries(app.store.deliveries.clone())
        .errors(Arc::new(CliErrors))
        .identity(identity)
        .metrics(metrics)
        .tls(settings.tls.is_some());
    let mut seen = std::collections::BTreeSet::new();
    for env in app.config.environments() {
        if let Some(repository) = env
            .repository
            .clone()
            .or_else(|| app.config.settings().registry.clone())
            && seen.insert(repository.to_string())
        {
            builder = builder.probe(Arc::new(RegistryProbe {
                registry: app.registry.clone(),
                repository,
            }));
        }
    }
    let server = builder.build()?;

    // Notifications recorded by the server's calls go out from the outbox as they would at
    // the end of a command.
    let manager = app.manager.clone();
    let delivery = tokio::spawn(async move {
        loop {
            tokio::time::sleep(DELIVERY_INTERVAL).await;
            if let Err(e) = manager.deliver_notifications().await {
                tracing::warn!(error = %e, "notifications kept for the next pass");
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| Error::io(format!("listening on {}", a.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!("floe serve: listening on {scheme}://{addr}");
    // One signal stops accepting; requests under way then get `grace` to finish.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop.send(true);
    });
    let signalled = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let served = async {
        match &settings.tls {
            Some(tls) => {
                let listener = listener
                    .into_std()
                    .map_err(|e| Error::io("preparing the TLS listener", e))?;
                server
                    .serve_tls(listener, &tls.cert, &tls.key, signalled(), grace)
                    .await
            }
            None => server.serve(listener, signalled()).await,
        }
    };
    let deadline = signalled();
    let result = tokio::select! {
        r = served => r,
        _ = async { deadline.await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "requests still under way after the grace period were cut");
            Ok(())
        }
    };
    delivery.abort();
    app.deliver_at_exit();
    result?;
    Ok((None, exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_promotion_server::http_status;

    /// Every exit-code kind has an HTTP status of its own; only an unexpected failure and a
    /// broken audit chain are internal server errors (500).
    #[test]
    fn every_kind_of_the_exit_code_table_has_a_status() {
        for (code, name) in exit::ALL {
            let status = http_status(name).as_u16();
            match name {
                "ok" | "failure" | "integrity" => assert_eq!(status, 500, "{name}"),
                _ => assert_ne!(status, 500, "{code} {name}"),
            }
        }
    }

    /// The API's error document is the CLI's, field for field.
    #[test]
    fn the_api_error_is_the_cli_error_document() {
        let error = Error::not_found("environment qa");
        let api = serde_json::to_value(CliErrors.report(&error)).unwrap();
        let cli = serde_json::to_value(ErrorOutput::of(&error)).unwrap();
        assert_eq!(api, cli);
        assert_eq!(api["exit_code"], exit::NOT_FOUND);
    }
}
