//! Prometheus metrics, read from the audit trail (the outbox) and the webhook delivery log.
//!
//! The history is the one record of what happened, whichever process did it: each scrape
//! reads the events recorded since the last one, so promotions made by `floe promote` on
//! another machine count too.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use floe_promotion::history::{EventKind, HistoryQuery, Order};
use floe_promotion::notify::{DeliveryQuery, DeliveryStatus};
use floe_promotion::{DeliveryLog, HistoryStore, Result};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::sync::Mutex;

/// Events read per page while catching up.
const PAGE: usize = 1000;

/// The server's metrics and how far into the history they have read.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<MetricsInner>);

#[derive(Debug)]
struct MetricsInner {
    registry: Registry,
    promotions: IntCounterVec,
    gate_seconds: HistogramVec,
    approval_wait_seconds: HistogramVec,
    webhook_failures: IntGaugeVec,
    lease_wait_seconds: HistogramVec,
    http_requests: IntCounterVec,
    cursor: Mutex<Cursor>,
}

#[derive(Debug, Default)]
struct Cursor {
    seq: u64,
    /// Approval requests not yet decided: (environment, digest) -> requested at.
    requested: HashMap<(String, String), DateTime<Utc>>,
}

fn metric<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: T) -> T {
    // Names are fixed and distinct: registering cannot collide.
    let _ = registry.register(Box::new(m.clone()));
    m
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, nothing read yet.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let buckets = vec![
            0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
            86400.0,
        ];
        let promotions = metric(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "floe_promotions_total",
                    "Promotions and rollbacks recorded, by environment and outcome.",
                ),
                &["environment", "outcome"],
            )
            .expect("valid metric"),
        );
        let gate_seconds = metric(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "floe_gate_duration_seconds",
                    "Gate run time, by gate and status.",
                )
                .buckets(buckets.clone()),
                &["gate", "status"],
            )
            .expect("valid metric"),
        );
        let approval_wait_seconds = metric(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "floe_approval_wait_seconds",
                    "Time from an approval request to its promotion, rejection or expiry.",
                )
                .buckets(buckets.clone()),
                &["environment", "outcome"],
            )
            .expect("valid metric"),
        );
        let webhook_failures = metric(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "floe_webhook_delivery_failures",
                    "Webhook deliveries that failed and wait for a redelivery, by webhook.",
                ),
                &["webhook"],
            )
            .expect("valid metric"),
        );
        let lease_wait_seconds = metric(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "floe_lease_wait_seconds",
                    "Time promotions served here waited for an environment's promotion lease.",
                )
                .buckets(buckets),
                &["environment"],
            )
            .expect("valid metric"),
        );
        let http_requests = metric(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "floe_http_requests_total",
                    "HTTP requests served, by route and status.",
                ),
                &["method", "route", "status"],
            )
            .expect("valid metric"),
        );
        Metrics(Arc::new(MetricsInner {
            registry,
            promotions,
            gate_seconds,
            approval_wait_seconds,
            webhook_failures,
            lease_wait_seconds,
            http_requests,
            cursor: Mutex::new(Cursor::default()),
        }))
    }

    /// Counts one HTTP request.
    pub(crate) fn request(&self, method: &str, route: &str, status: u16) {
        self.0
            .http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
    }

    /// Observes a wait for the promotion lease of `environment`.
    pub fn observe_lease_wait(&self, environment: &str, waited: std::time::Duration) {
        self.0
            .lease_wait_seconds
            .with_label_values(&[environment])
            .observe(waited.as_secs_f64());
    }

    /// Reads the events recorded since the last call and the delivery log.
    pub async fn refresh(
        &self,
        history: &dyn HistoryStore,
        deliveries: Option<&dyn DeliveryLog>,
    ) -> Result<()> {
        let m = &self.0;
        let mut cursor = m.cursor.lock().await;
        loop {
            let page = history
                .query(&HistoryQuery {
                    after_seq: Some(cursor.seq),
                    limit: Some(PAGE),
                    order: Order::OldestFirst,
                    ..Default::default()
                })
                .await?;
            for event in &page {
                cursor.seq = cursor.seq.max(event.seq);
                let r = &event.record;
                let env = r
                    .environment
                    .as_ref()
                    .map(|e| e.as_str().to_string())
                    .unwrap_or_default();
                let key = (
                    env.clone(),
                    r.digest.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                );
                for g in &r.gates {
                    let status = serde_json::to_value(g.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    m.gate_seconds
                        .with_label_values(&[g.gate.as_str(), status.as_str()])
                        .observe(g.duration_ms as f64 / 1000.0);
                }
                let outcome = match r.kind {
                    EventKind::PromotionSucceeded => Some("succeeded"),
                    EventKind::PromotionFailed => Some("failed"),
                    EventKind::RollbackSucceeded => Some("rolled_back"),
                    EventKind::RollbackFailed => Some("rollback_failed"),
                    _ => None,
                };
                if let Some(outcome) = outcome {
                    m.promotions
                        .with_label_values(&[env.as_str(), outcome])
                        .inc();
                }
                let waited = |end: &str, cursor: &mut Cursor| {
                    if let Some(start) = cursor.requested.remove(&key) {
                        let secs = (r.time - start).num_milliseconds().max(0) as f64 / 1000.0;
                        m.approval_wait_seconds
                            .with_label_values(&[env.as_str(), end])
                            .observe(secs);
                    }
                };
                match r.kind {
                    EventKind::ApprovalRequested => {
                        cursor.requested.entry(key.clone()).or_insert(r.time);
                    }
                    EventKind::PromotionSucceeded => waited("promoted", &mut cursor),
                    EventKind::ApprovalExpired => waited("expired", &mut cursor),
                    EventKind::ApprovalDecided
                        if r.details.get("decision").map(String::as_str) == Some("rejected") =>
                    {
                        waited("rejected", &mut cursor)
                    }
                    _ => {}
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        drop(cursor);
        if let Some(log) = deliveries {
            let failed = log
                .list(&DeliveryQuery {
                    status: Some(DeliveryStatus::Failed),
                    ..Default::default()
                })
                .await?;
            m.webhook_failures.reset();
            for d in failed {
                m.webhook_failures
                    .with_label_values(&[d.webhook.as_str()])
                    .inc();
            }
        }
        Ok(())
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
