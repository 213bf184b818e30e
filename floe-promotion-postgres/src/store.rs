//! The store handle: the URL, TLS, the connection pool and the migration at open.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use floe_promotion::{Error, Result};
use tokio_postgres::config::SslMode;

use crate::errors::Location;
use crate::schema;

/// How to connect a [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    max_connections: usize,
    connect_timeout: Duration,
    wait_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(30),
        }
    }
}

impl PostgresOptions {
    /// The most connections the store keeps open to the server. Default: 8.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long opening a connection may take before the call fails with
    /// [`Error::Unavailable`]. Default: 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a call waits for a free connection of the pool. Default: 30 s.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }
}

/// The audit history, locks, leases, holds, release state, notifier cursors and webhook
/// delivery outcomes of floe-promotion in a PostgreSQL database, shared by promoters on many
/// machines.
///
/// Clones share one connection pool. See the crate documentation for the guarantees.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool,
    pub(crate) at: Arc<Location>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.at.name)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`;
    /// `?sslmode=require` insists on TLS, `prefer`, the default, tries it first, `disable`
    /// never does) with the default options, and migrates its schema.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with `options`.
    ///
    /// Fails with [`Error::Unavailable`] when the server cannot be reached, and with
    /// [`Error::Store`] when the URL is malformed or the database holds another application's
    /// tables or a newer schema. Messages name the server by its URL with the password
    /// replaced by `***`.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<PostgresStore> {
        let at = Location::new(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            Error::invalid(
                "PostgreSQL URL",
                at.name.clone(),
                at.scrub(format!("not a valid connection URL: {e}")),
            )
        })?;
        config.connect_timeout(options.connect_timeout);
        config.application_name("floe-promotion");
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        // `require` insists on TLS; `prefer` (the default) tries TLS first and falls back to
        // plain text when the server offers none, as libpq does; only `disable` never tries.
        let manager = if config.get_ssl_mode() == SslMode::Disable {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        } else {
            Manager::from_config(config, tls(&at)?, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| at.store(format!("building the connection pool: {e}")))?;
        let store = PostgresStore {
            pool,
            at: Arc::new(at),
        };
        let mut client = store.client("opening the database").await?;
        schema::migrate(&mut client, &store.at).await?;
        Ok(store)
    }

    /// The URL of the database, with the password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.at.name
    }

    /// A pooled connection.
    pub(crate) async fn client(&self, action: &str) -> Result<Object> {
        self.pool.get().await.map_err(|e| self.at.pool(action, e))
    }
}

/// rustls with the platform's root certificates.
fn tls(at: &Location) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| at.store(format!("configuring TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
