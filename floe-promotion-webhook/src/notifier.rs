//! [`WebhookNotifier`]: POSTs each event to one endpoint, retrying what may succeed later, and
//! records the outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use floe_promotion::config::{HeaderValue, WebhookSettings};
use floe_promotion::history::{AuditEvent, EventKind, HistoryQuery, Order};
use floe_promotion::notify::{DeliveryLog, DeliveryOutcome, DeliveryStatus};
use floe_promotion::{EnvironmentConfig, Error, HistoryStore, Notifier, Result};

use crate::event::{Arrival, CLOUDEVENTS_JSON, EventContext, cloud_event};
use crate::sign::SigningKey;

/// The first retry waits about this long (doubling, with jitter, up to [`MAX_BACKOFF`]).
pub const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
struct AttemptError {
    http_status: Option<u16>,
    message: String,
    retryable: bool,
}

/// Sends each event to one webhook endpoint as a signed CloudEvent.
///
/// Each event is one `POST` of one CloudEvents 1.0 event in structured JSON mode
/// (`Content-Type: application/cloudevents+json`, see [`cloud_event`]), with the Standard
/// Webhooks headers `webhook-id` (the event id), `webhook-timestamp` (Unix seconds of the
/// attempt) and, when a secret is configured, `webhook-signature` (see [`SigningKey`]), plus
/// the configured headers.
///
/// Connection errors, timeouts (each request is limited to `timeout_seconds`), 5xx and 429
/// answers are retried up to `retry_count` times with exponential backoff and jitter (backon);
/// other answers (4xx, 3xx: redirects are not followed) are final. Any 2xx acknowledges.
///
/// The outcome (delivered or failed, attempts, last status or error) is recorded in the
/// [`DeliveryLog`] under [`name`](Notifier::name). A delivery that fails after every retry is
/// recorded `failed` and **acknowledged** to the outbox: the endpoint's later events are not
/// held up behind a dead endpoint, and the failed ones are redelivered on request
/// ([`redeliver`](Self::redeliver), `floe notifications retry`). Only an error writing the
/// outcome keeps the event in the outbox (it is then delivered again on the next run).
///
/// A succeeded promotion is `dev.cdevents.service.deployed` when history shows no earlier
/// event that made a version of that artifact current in that environment (a promotion, a
/// rollback or a switch), and `dev.cdevents.service.upgraded` otherwise: the notifier reads
/// the history it is fed from to decide.
///
/// Secrets (the signing key, header values read with `secret_env`) never appear in its
/// `Debug`, its logs, its errors or the recorded outcomes; the endpoint appears as
/// `scheme://host:port/path` only (no userinfo, no query).
#[derive(Debug)]
pub struct WebhookNotifier {
    settings: WebhookSettings,
    name: String,
    display_url: String,
    key: Option<SigningKey>,
    client: reqwest::Client,
    history: Arc<dyn HistoryStore>,
    config: Option<Arc<dyn EnvironmentConfig>>,
    log: Arc<dyn DeliveryLog>,
    backoff: (Duration, Duration),
}

/// Builds a [`WebhookNotifier`].
#[derive(Debug)]
pub struct WebhookNotifierBuilder {
    settings: WebhookSettings,
    history: Arc<dyn HistoryStore>,
    log: Arc<dyn DeliveryLog>,
    config: Option<Arc<dyn EnvironmentConfig>>,
    backoff: (Duration, Duration),
}

impl WebhookNotifierBuilder {
    /// The environments, to name each artifact's repository in its purl (`repository_url`).
    pub fn config(mut self, config: Arc<dyn EnvironmentConfig>) -> Self {
        self.config = Some(config);
        self
    }

    /// The first and the longest wait between attempts (default [`MIN_BACKOFF`],
    /// [`MAX_BACKOFF`]).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max.max(min));
        self
    }

    /// Checks the settings and the secret and builds the notifier. Errors name the setting
    /// and the secret's variable, never a secret or the URL's credentials.
    pub fn build(self) -> Result<WebhookNotifier> {
        let display_url = self.settings.display_url();
        let config_err = |message: String| Error::Config {
            file: None,
            location: None,
            message: format!("webhook {display_url}: {message}"),
        };
        self.settings.validate("webhook").map_err(config_err)?;
        let key = match &self.settings.secret {
            Some((env, secret)) => Some(
                SigningKey::from_secret(secret.expose())
                    .map_err(|e| config_err(format!("secret_env {env}: {e}")))?,
            ),
            None => None,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "floe-promotion-webhook/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| {
                config_err(format!("cannot build the HTTP client: {}", e.without_url()))
            })?;
        Ok(WebhookNotifier {
            name: format!("webhook:{display_url}"),
            display_url,
            key,
            client,
            history: self.history,
            config: self.config,
            log: self.log,
            backoff: self.backoff,
            settings: self.settings,
        })
    }
}

/// The error's text and its sources', joined, without the URL reqwest puts in it.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut parts = vec![kind.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl WebhookNotifier {
    /// A notifier for one endpoint, reading `history` (to tell a first deployment from an
    /// upgrade) and recording outcomes in `log`.
    pub fn builder(
        settings: WebhookSettings,
        history: Arc<dyn HistoryStore>,
        log: Arc<dyn DeliveryLog>,
    ) -> WebhookNotifierBuilder {
        WebhookNotifierBuilder {
            settings,
            history,
            log,
            config: None,
            backoff: (MIN_BACKOFF, MAX_BACKOFF),
        }
    }

    /// The endpoint as shown: `scheme://host:port/path`.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    /// The settings.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Whether the artifact of a succeeded promotion was current in its environment before.
    async fn arrival(&self, event: &AuditEvent) -> Result<Arrival> {
        let r = &event.record;
        let (Some(environment), Some(artifact)) = (&r.environment, &r.artifact) else {
            return Ok(Arrival::First);
        };
        if r.kind != EventKind::PromotionSucceeded {
            return Ok(Arrival::Later);
        }
        let earlier = self
            .history
            .query(&HistoryQuery {
                environment: Some(environment.clone()),
                artifact: Some(artifact.clone()),
                kinds: EventKind::ALL
                    .into_iter()
                    .filter(|k| k.sets_current())
                    .collect(),
                before_seq: Some(event.seq),
                limit: Some(1),
                order: Order::NewestFirst,
                ..Default::default()
            })
            .await?;
        Ok(if earlier.is_empty() {
            Arrival::First
        } else {
            Arrival::Later
        })
    }

    /// The CloudEvent body of an event.
    async fn body(&self, event: &AuditEvent) -> Result<Vec<u8>> {
        let r = &event.record;
        let repository = match (&self.config, &r.environment, &r.artifact) {
            (Some(config), Some(env), Some(artifact)) => config
                .repository(env, artifact)
                .ok()
                .map(|repo| repo.as_str().to_string()),
            _ => None,
        };
        let ctx = EventContext {
            arrival: self.arrival(event).await?,
            repository,
        };
        serde_json::to_vec(&cloud_event(event, &ctx)).map_err(|e| {
            Error::invalid(
                "event",
                event.record.id.to_string(),
                format!("cannot serialize the CloudEvent: {e}"),
            )
        })
    }

    /// One signed POST.
    async fn attempt(&self, id: &str, body: &[u8]) -> std::result::Result<u16, AttemptError> {
        let timestamp = Utc::now().timestamp();
        let mut request = self
            .client
            .post(self.settings.url.trim())
            .timeout(self.settings.timeout)
            .header(reqwest::header::CONTENT_TYPE, CLOUDEVENTS_JSON)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = &self.key {
            request = request.header("webhook-signature", key.sign(id, timestamp, body));
        }
        for (name, value) in &self.settings.headers {
            let mut v = reqwest::header::HeaderValue::from_str(value.expose()).map_err(|_| {
                AttemptError {
                    http_status: None,
                    message: format!("header {name}: not a valid header value"),
                    retryable: false,
                }
            })?;
            v.set_sensitive(matches!(value, HeaderValue::Secret { .. }));
            request = request.header(name.as_str(), v);
        }
        let response = request.body(body.to_vec()).send().await.map_err(|e| {
            let retryable = e.is_connect() || e.is_timeout() || e.is_request();
            AttemptError {
                http_status: None,
                message: describe(e),
                retryable,
            }
        })?;
        let status = response.status();
        // The answer's body is not needed; dropping the response closes or reuses the
        // connection.
        drop(response);
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(AttemptError {
                http_status: Some(status.as_u16()),
                message: format!("HTTP {status}"),
                retryable: status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
            })
        }
    }

    /// Delivers one event (whatever the `events` filter says), retrying as configured, and
    /// records and returns the outcome. `Err` only when the event cannot be rendered or the
    /// outcome cannot be recorded.
    pub async fn redeliver(&self, event: &AuditEvent) -> Result<DeliveryOutcome> {
        let body = self.body(event).await?;
        let id = event.record.id.to_string();
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.backoff.0)
            .with_max_delay(self.backoff.1)
            .with_max_times(self.settings.retry_count as usize)
            .with_jitter();
        let sent = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(&id, &body).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e: &AttemptError| e.retryable)
        .notify(|e: &AttemptError, wait: Duration| {
            tracing::debug!(
                target: "floe::webhook",
                webhook = %self.display_url,
                seq = event.seq,
                error = %e.message,
                ?wait,
                "webhook attempt failed; retrying"
            );
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        let outcome = match sent {
            Ok(status) => DeliveryOutcome {
                webhook: self.name.clone(),
                seq: event.seq,
                event_id: event.record.id,
                status: DeliveryStatus::Delivered,
                attempts,
                http_status: Some(status),
                error: None,
                time: Utc::now(),
            },
            Err(e) => {
                tracing::warn!(
                    target: "floe::webhook",
                    webhook = %self.display_url,
                    seq = event.seq,
                    attempts,
                    error = %e.message,
                    "webhook delivery failed; recorded for `floe notifications retry`"
                );
                DeliveryOutcome {
                    webhook: self.name.clone(),
                    seq: event.seq,
                    event_id: event.record.id,
                    status: DeliveryStatus::Failed,
                    attempts,
                    http_status: e.http_status,
                    error: Some(e.message),
                    time: Utc::now(),
                }
            }
        };
        self.log.record(&outcome).await?;
        Ok(outcome)
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    /// Delivers the event when the `events` filter accepts its kind (else acknowledges it
    /// untouched); a delivery that fails after every retry is recorded and acknowledged.
    async fn notify(&self, event: &AuditEvent) -> Result<()> {
        if !self.settings.accepts(event.record.kind) {
            return Ok(());
        }
        self.redeliver(event).await.map(|_| ())
    }

    /// `webhook:` and the endpoint as `scheme://host:port/path`: stable, and free of
    /// credentials (userinfo and query are left out).
    fn name(&self) -> &str {
        &self.name
    }
}
