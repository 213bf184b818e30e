//! The oci-client clients behind [`OciRegistry`](super::OciRegistry): which client serves a
//! host (plain HTTP without the system's TLS roots, TLS with them), the credentials handed to
//! them, and the retry and timeout policy of every call.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use floe_promotion::{Error, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use std::sync::Arc;

use super::error::{self, Failure, classify};
use super::location::RemoteRepo;
use super::{Inner, MAX_BACKOFF, OciOptions, Probed, auth, transfer};

/// The two clients one kind of connection needs.
pub(super) struct Clients {
    /// Whether these clients trust the system's TLS roots (else only [`PLAIN_HTTP_ANCHOR`]).
    pub(super) tls: bool,
    /// Every call but blob uploads.
    pub(super) client: oci_client::Client,
    /// Blob uploads: the same client without a read timeout, built when a blob is first
    /// uploaded (each client oci-client builds costs a load of the system's TLS roots, and
    /// a retag or a mount uploads nothing).
    /// Built once: concurrent uploads wait for the first build instead of building their own.
    pub(super) uploader: tokio::sync::OnceCell<oci_client::Client>,
}

impl Clients {
    /// Opens the download of the blob `digest` of `size` bytes for a caller that checks the
    /// bytes itself (a copy's [`Body`](super::transfer::Body) checks them before the last byte
    /// goes out; a stream opened for another backend goes through `crate::stream::verified`).
    ///
    /// oci-client hashes a whole download (an answer of 200) to check it at its end, but not a
    /// ranged one (206). The caller's check makes that second hash of every byte redundant, and
    /// on a 256 MiB blob it cost the command about 0.15 s of its one thread. So a blob with
    /// content is asked for as the range `bytes=0-`, which is the whole blob; a registry that
    /// ignores ranges answers 200, and then oci-client checks it too. An empty blob is asked for
    /// whole: no range of it can be satisfied.
    pub(super) async fn open_checked_elsewhere(
        &self,
        oref: &oci_client::Reference,
        digest: &str,
        size: u64,
    ) -> oci_client::errors::Result<oci_client::client::SizedStream> {
        if size == 0 {
            return self.client.pull_blob_stream(oref, digest).await;
        }
        Ok(
            match self
                .client
                .pull_blob_stream_partial(oref, digest, 0, None)
                .await?
            {
                oci_client::client::BlobResponse::Full(stream)
                | oci_client::client::BlobResponse::Partial(stream) => stream,
            },
        )
    }
}

/// The only root certificate of the clients for plain-HTTP hosts: a throwaway self-signed
/// certificate whose private key was discarded. Those clients never make a TLS connection
/// (every host they serve is reached over HTTP); naming one root keeps reqwest from loading
/// and parsing the system's certificate store, which costs a command tens of milliseconds.
pub(super) const PLAIN_HTTP_ANCHOR: &[u8] = include_bytes!("data/plain-http-anchor.pem");

/// The clients for one kind of host: with the system's TLS roots (`tls`) or with only
/// [`PLAIN_HTTP_ANCHOR`] for hosts reached over plain HTTP. The uploader comes later.
pub(super) fn build_clients(options: &OciOptions, tls: bool) -> Result<Clients> {
    Ok(Clients {
        tls,
        // Each read of an answer (and of a download) is limited to the request timeout.
        client: build_client(options, tls, Some(options.request_timeout))?,
        uploader: tokio::sync::OnceCell::new(),
    })
}

/// One oci-client client; `read_timeout: None` for blob uploads: while the body streams up
/// the client reads nothing, so a read timeout would cut an upload that makes progress (their
/// progress is watched instead, see `transfer`).
fn build_client(
    options: &OciOptions,
    tls: bool,
    read_timeout: Option<Duration>,
) -> Result<oci_client::Client> {
    let protocol = if options.insecure_hosts.is_empty() {
        ClientProtocol::Https
    } else {
        ClientProtocol::HttpsExcept(options.insecure_hosts.clone())
    };
    {
        let config = ClientConfig {
            protocol: protocol.clone(),
            // One streaming PUT per blob: flat memory and far fewer requests than chunks.
            use_monolithic_push: true,
            read_timeout,
            connect_timeout: Some(options.request_timeout),
            user_agent: concat!("floe-promotion-oci/", env!("CARGO_PKG_VERSION")),
            tls_certs_only: if tls {
                vec![]
            } else {
                vec![oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: PLAIN_HTTP_ANCHOR.to_vec(),
                }]
            },
            ..ClientConfig::default()
        };
        oci_client::Client::try_from(config).map_err(|e| {
            Error::invalid(
                "registry client options",
                format!("{options:?}"),
                error::chain(&e),
            )
        })
    }
}

impl Inner {
    /// The clients for `host`: the plain-HTTP ones for an insecure host, otherwise the TLS
    /// ones, built (with the system's roots) the first time a TLS host is reached.
    pub(super) fn clients(&self, host: &str) -> Result<&Clients> {
        if self.options.insecure_hosts.iter().any(|h| h == host) {
            return Ok(&self.plain);
        }
        if let Some(clients) = self.tls.get() {
            return Ok(clients);
        }
        // Two tasks may both build; the first stored wins and the other is dropped.
        let built = build_clients(&self.options, true)?;
        Ok(self.tls.get_or_init(|| built))
    }

    /// The blob-upload client for `repo`'s host, built on first use, holding the credentials
    /// of `repo`.
    pub(super) async fn uploader(&self, repo: &RemoteRepo) -> Result<&oci_client::Client> {
        let auth = self.auth(repo).await?;
        let clients = self.clients(repo.host())?;
        let uploader = clients
            .uploader
            .get_or_try_init(|| async { build_client(&self.options, clients.tls, None) })
            .await?;
        uploader.store_auth_if_needed(&repo.auth_key(), &auth).await;
        Ok(uploader)
    }

    /// The credentials for `repo`'s host, resolved once and handed to oci-client (whose blob
    /// calls take no credentials argument). A probe of the host made by
    /// [`prepare`](super::OciRegistry::prepare) and still in flight is waited for first, so
    /// that the call does not probe too; whatever its outcome, the call then goes on as usual.
    pub(super) async fn auth(&self, repo: &RemoteRepo) -> Result<RegistryAuth> {
        if let Some(probe) = self.prepared_cell(repo, false) {
            probe.get_or_init(|| async { Ok(()) }).await;
        }
        self.credentials(repo).await
    }

    /// The credentials for `repo`'s host, resolved once and stored in the clients.
    async fn credentials(&self, repo: &RemoteRepo) -> Result<RegistryAuth> {
        let key = repo.auth_key();
        if let Some(auth) = self.auths.lock().await.get(&key) {
            return Ok(auth.clone());
        }
        let source = self.options.credentials_for(repo.host()).clone();
        let host = repo.host().to_string();
        let resolved = tokio::task::spawn_blocking(move || auth::resolve(&source, &host))
            .await
            .map_err(|e| Error::Unauthorized {
                registry: repo.host().to_string(),
                message: format!("resolving credentials did not finish: {e}"),
            })??;
        let mut auths = self.auths.lock().await;
        let auth = auths.entry(key.clone()).or_insert(resolved).clone();
        let clients = self.clients(repo.host())?;
        clients.client.store_auth_if_needed(&key, &auth).await;
        if let Some(uploader) = clients.uploader.get() {
            uploader.store_auth_if_needed(&key, &auth).await;
        }
        Ok(auth)
    }

    /// The cell holding the outcome of `repo`'s host's authentication probe: created when
    /// `create`, otherwise only found.
    pub(super) fn prepared_cell(
        &self,
        repo: &RemoteRepo,
        create: bool,
    ) -> Option<Arc<tokio::sync::OnceCell<Probed>>> {
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        match prepared.get(repo.host()) {
            Some(cell) => Some(Arc::clone(cell)),
            None if create => Some(Arc::clone(
                prepared.entry(repo.host().to_string()).or_default(),
            )),
            None => None,
        }
    }

    /// Asks `repo`'s registry how it authenticates, with `repo`'s credentials (see
    /// [`prepare`](super::OciRegistry::prepare)), within twice the request timeout.
    pub(super) async fn probe(&self, repo: &RemoteRepo) -> Result<()> {
        let auth = self.credentials(repo).await?;
        let clients = self.clients(repo.host())?;
        let image = repo.tag_ref("latest");
        let asked = tokio::time::timeout(
            self.timeout(),
            clients
                .client
                .auth(&image, &auth, oci_client::RegistryOperation::Pull),
        )
        .await;
        match asked {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                Err(classify(&e, repo.host(), "authentication for", &repo.to_string()).error)
            }
            Err(_) => Err(Error::Unavailable {
                registry: repo.host().to_string(),
                message: format!("no answer to /v2/ within {:?}", self.timeout()),
            }),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are used up. Each
    /// attempt is limited to `limit`.
    pub(super) async fn retry<T, F, Fut>(
        &self,
        host: &str,
        what: &str,
        limit: Duration,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.options.retry_backoff)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(self.options.retries as usize);
        let outcome = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            let attempt = tokio::time::timeout(limit, attempt());
            async move {
                match attempt.await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::unavailable(
                        host,
                        format!("{what}: no answer within {limit:?}"),
                    )),
                }
            }
        })
        .retry(backoff)
        .when(|f: &Failure| f.retryable)
        .notify(|f, wait| tracing::debug!(%host, %what, error = %f.error, ?wait, "retrying"))
        .await;
        let attempts = attempts.into_inner();
        outcome.map_err(|f| match f.error {
            Error::Unavailable { registry, message } if attempts > 1 => Error::Unavailable {
                registry,
                message: format!("{message} (after {attempts} attempts)"),
            },
            other => other,
        })
    }

    /// The limit for one attempt of an operation that moves no blob bytes: twice the request
    /// timeout, since oci-client may precede the request with an authentication round trip.
    pub(super) fn timeout(&self) -> Duration {
        self.options.request_timeout.saturating_mul(2)
    }

    /// The outer limit of one attempt that moves `size` bytes: the transfer's deadline
    /// ([`transfer::deadline`], enforced with the idle timeouts by [`transfer::watchdog`]) plus
    /// room for the request that opens it.
    pub(super) fn transfer_timeout(&self, size: u64) -> Duration {
        transfer::deadline(self.options.request_timeout, size).saturating_add(self.timeout())
    }
}
