//! # floe-promotion-webhook
//!
//! A [`Notifier`](floe_promotion::Notifier) that POSTs each lifecycle event to a webhook
//! endpoint as one signed [CloudEvents 1.0](https://github.com/cloudevents/spec) event in
//! structured JSON mode: [`WebhookNotifier`]. It is fed from the outbox (committed history)
//! like every notifier, after the commit and outside any lease; a slow or dead endpoint
//! never delays or fails a promotion.
//!
//! - **Types** ([`event`]): CDEvents service events where they fit
//!   (`dev.cdevents.service.deployed|upgraded|rolledback.0.3.0`, CDEvents 0.5.1, with the
//!   environment and the artifact as a `pkg:oci/…` purl), `dev.floe.*` for the rest, from one
//!   table ([`event::FLOE_TYPES`]).
//! - **Signatures** ([`sign`]): Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256("id.timestamp.body")>`); a secret given as
//!   `whsec_<base64>` is decoded, any other string is the key as is.
//! - **Retries**: connection errors, timeouts, 5xx and 429 with exponential backoff and
//!   jitter (backon), none on other answers.
//! - **Outcomes**: each delivery's outcome goes to a
//!   [`DeliveryLog`](floe_promotion::notify::DeliveryLog); a delivery that exhausts its
//!   retries is recorded `failed` and acknowledged (dead letter), to be redelivered with
//!   [`WebhookNotifier::redeliver`].
//!
//! ```
//! use std::sync::Arc;
//! use floe_promotion::config::{Secret, WebhookSettings};
//! use floe_promotion::notify::InMemoryDeliveryLog;
//! use floe_promotion::{InMemoryHistory, Notifier};
//! use floe_promotion_webhook::WebhookNotifier;
//!
//! let settings = WebhookSettings::new("https://hooks.example.com/floe?token=abc")
//!     .with_secret("FLOE_WEBHOOK_SECRET", Secret::new("whsec_c2VjcmV0LWtleQ=="));
//! let notifier = WebhookNotifier::builder(
//!     settings,
//!     Arc::new(InMemoryHistory::new()),
//!     Arc::new(InMemoryDeliveryLog::new()),
//! )
//! .build()?;
//! // The cursor key names the endpoint without its query.
//! assert_eq!(notifier.name(), "webhook:https://hooks.example.com:443/floe");
//! // Add it to a manager with `.notifier(Arc::new(notifier))`.
//! # Ok::<(), floe_promotion::Error>(())
//! ```

pub mod event;
mod notifier;
pub mod sign;
#[cfg(feature = "testing")]
pub mod testing;

pub use notifier::{MAX_BACKOFF, MIN_BACKOFF, WebhookNotifier, WebhookNotifierBuilder};
