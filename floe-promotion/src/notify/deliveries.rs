//! Delivery outcomes of notifiers that report them (webhooks): per endpoint and event,
//! delivered or failed, how many attempts, the last HTTP status or error.
//!
//! A webhook that exhausts its retries records `failed` and acknowledges the event, so its
//! outbox cursor moves on: a dead endpoint never blocks the events after it, and the failed
//! ones wait here to be redelivered (`floe notifications retry`). This is a dead-letter list,
//! not a queue: nothing redelivers a failed event by itself.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Delivered, or given up on after every retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The endpoint acknowledged the event (a 2xx answer).
    Delivered,
    /// Every attempt failed; the event waits for a redelivery.
    Failed,
}

impl DeliveryStatus {
    /// `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(Error::invalid(
                "delivery status",
                s,
                "expected delivered or failed",
            )),
        }
    }
}

/// The outcome of the latest delivery of one event to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    /// The endpoint: the notifier's name (its cursor key), which holds no credentials.
    pub webhook: String,
    /// The event's sequence number in the history.
    pub seq: u64,
    /// The event's id (the CloudEvents `id` and `webhook-id`).
    pub event_id: Uuid,
    /// Delivered or failed.
    pub status: DeliveryStatus,
    /// Requests made in this delivery (1 + retries).
    pub attempts: u32,
    /// The last HTTP status answered, if any answer came.
    pub http_status: Option<u16>,
    /// The last error (no secrets, no URL credentials), when the last attempt failed.
    pub error: Option<String>,
    /// When the delivery ended.
    pub time: DateTime<Utc>,
}

/// Which outcomes [`DeliveryLog::list`] returns. Every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this endpoint.
    pub webhook: Option<String>,
}

/// Where delivery outcomes are kept.
///
/// # Contract
///
/// - `record` stores the outcome of one delivery of one event to one endpoint, keyed by
///   (`webhook`, `seq`); an outcome recorded again for the same key replaces the earlier one
///   (a redelivery's result is the one that counts).
/// - `list` returns the outcomes that match every filter of the [`DeliveryQuery`], ordered by
///   `seq` then `webhook`, each exactly as it was recorded.
/// - `get` returns the outcome of one key, `None` when none was recorded.
/// - Concurrent `record`s of different keys are all kept; of the same key, exactly one is.
/// - Durable stores keep outcomes across processes and restarts.
///
/// Recording an outcome never fails a promotion: outcomes are written by notifiers, after the
/// commit, from the outbox.
#[async_trait]
pub trait DeliveryLog: Send + Sync + Debug + 'static {
    /// Records (or replaces) an outcome.
    async fn record(&self, outcome: &DeliveryOutcome) -> Result<()>;
    /// The outcomes matching `query`, by sequence number then endpoint.
    async fn list(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryOutcome>>;
    /// The outcome of one endpoint and event.
    async fn get(&self, webhook: &str, seq: u64) -> Result<Option<DeliveryOutcome>>;
}

/// Delivery outcomes held in memory, for one process and for tests. Clones share them.
#[derive(Debug, Default, Clone)]
pub struct InMemoryDeliveryLog {
    outcomes: Arc<Mutex<BTreeMap<(u64, String), DeliveryOutcome>>>,
}

impl InMemoryDeliveryLog {
    /// No outcomes yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeliveryLog for InMemoryDeliveryLog {
    async fn record(&self, outcome: &DeliveryOutcome) -> Result<()> {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        outcomes.insert((outcome.seq, outcome.webhook.clone()), outcome.clone());
        Ok(())
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryOutcome>> {
        let outcomes = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(outcomes
            .values()
            .filter(|o| query.status.is_none_or(|s| o.status == s))
            .filter(|o| query.webhook.as_ref().is_none_or(|w| &o.webhook == w))
            .cloned()
            .collect())
    }

    async fn get(&self, webhook: &str, seq: u64) -> Result<Option<DeliveryOutcome>> {
        let outcomes = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(outcomes.get(&(seq, webhook.to_string())).cloned())
    }
}
