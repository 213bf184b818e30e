//! The server: its parts, its routes, and serving them over TCP or TLS with graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use floe_promotion::{DeliveryLog, Error, HistoryStore, PromotionManager, Result};

use crate::error::ErrorReporter;
use crate::health::ReadinessProbe;
use crate::identity::IdentityVerifier;
use crate::limits::{MAX_BODY_BYTES, bound};
use crate::metrics::Metrics;
use crate::state::{AppState, Inner};

/// A configured server: its router and how to serve it.
#[derive(Debug, Clone)]
pub struct Server {
    state: AppState,
}

/// Builds a [`Server`]; `manager`, `history` and `errors` are required.
#[derive(Debug, Default)]
pub struct ServerBuilder {
    manager: Option<Arc<dyn PromotionManager>>,
    history: Option<Arc<dyn HistoryStore>>,
    deliveries: Option<Arc<dyn DeliveryLog>>,
    errors: Option<Arc<dyn ErrorReporter>>,
    identity: IdentityVerifier,
    probes: Vec<Arc<dyn ReadinessProbe>>,
    metrics: Option<Metrics>,
    tls: bool,
}

impl ServerBuilder {
    /// The manager every call goes through.
    pub fn manager(mut self, manager: Arc<dyn PromotionManager>) -> Self {
        self.manager = Some(manager);
        self
    }

    /// The history store the manager records into (exports stream from it; metrics read it).
    pub fn history(mut self, history: Arc<dyn HistoryStore>) -> Self {
        self.history = Some(history);
        self
    }

    /// The webhook delivery log, for the failed-delivery metric.
    pub fn deliveries(mut self, deliveries: Arc<dyn DeliveryLog>) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// How errors are classified (the CLI's exit-code mapping).
    pub fn errors(mut self, errors: Arc<dyn ErrorReporter>) -> Self {
        self.errors = Some(errors);
        self
    }

    /// Who may call mutating endpoints (default: nobody).
    pub fn identity(mut self, identity: IdentityVerifier) -> Self {
        self.identity = identity;
        self
    }

    /// Adds a readiness probe (a registry).
    pub fn probe(mut self, probe: Arc<dyn ReadinessProbe>) -> Self {
        self.probes.push(probe);
        self
    }

    /// Shares these metrics (e.g. with a lease-wait observer wired into the manager).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Marks the server as served over HTTPS (session cookies become `Secure`).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The server; a missing part is an invalid-input error naming it.
    pub fn build(self) -> Result<Server> {
        let missing = |what: &str| Error::invalid("server", what, "required by Server::builder()");
        Ok(Server {
            state: AppState(Arc::new(Inner {
                manager: self.manager.ok_or_else(|| missing("manager"))?,
                history: self.history.ok_or_else(|| missing("history"))?,
                deliveries: self.deliveries,
                identity: self.identity,
                errors: self.errors.ok_or_else(|| missing("errors"))?,
                probes: self.probes,
                metrics: self.metrics.unwrap_or_default(),
                sessions: Default::default(),
                tls: self.tls,
            })),
        })
    }
}

impl Server {
    /// A builder.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Every route: the API, the dashboard, health and metrics, with the request bounds.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(crate::api::routes())
            .route("/", get(crate::dashboard::index))
            .route("/login", post(crate::dashboard::login))
            .route("/logout", post(crate::dashboard::logout))
            .route(
                "/ui/approvals/{id}/approve",
                post(crate::dashboard::approve),
            )
            .route("/ui/approvals/{id}/reject", post(crate::dashboard::reject))
            .route("/healthz", get(crate::health::healthz))
            .route("/readyz", get(crate::health::readyz))
            .route("/metrics", get(crate::health::metrics))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .route_layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                bound,
            ))
            .with_state(self.state.clone())
    }

    /// Serves plain HTTP on `listener` until `shutdown` completes; requests under way then
    /// finish before this returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::io("serving HTTP", e))
    }

    /// Serves HTTPS with the PEM certificate chain and key at `cert` and `key` until
    /// `shutdown` completes; requests under way then finish (for at most `grace`).
    pub async fn serve_tls(
        self,
        listener: std::net::TcpListener,
        cert: &std::path::Path,
        key: &std::path::Path,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: std::time::Duration,
    ) -> Result<()> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
            .await
            .map_err(|e| Error::Config {
                file: Some(cert.to_path_buf()),
                location: None,
                message: format!("cannot load the TLS certificate and key: {e}"),
            })?;
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopper.graceful_shutdown(Some(grace));
        });
        axum_server::from_tcp_rustls(listener, config)
            .handle(handle)
            .serve(
                self.router()
                    .into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .map_err(|e| Error::io("serving HTTPS", e))
    }
}
