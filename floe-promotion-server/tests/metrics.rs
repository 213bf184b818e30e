//! The metrics read what the history and the delivery log hold: promotions by environment
//! and outcome, gate durations, approval waits, failed webhook deliveries; a second refresh
//! reads only what is new.

use chrono::{Duration, Utc};
use floe_promotion::gate::{GateResult, GateStatus};
use floe_promotion::history::{EventKind, EventRecord};
use floe_promotion::notify::{DeliveryOutcome, DeliveryStatus};
use floe_promotion::{
    Actor, DeliveryLog, Digest, EnvName, HistoryExt, InMemoryDeliveryLog, InMemoryHistory,
};
use floe_promotion_server::Metrics;

fn event(kind: EventKind, env: &str, minutes: i64) -> EventRecord {
    let mut r = EventRecord::new(
        kind,
        Actor::new("ci").unwrap(),
        Utc::now() - Duration::hours(1) + Duration::minutes(minutes),
    );
    r.environment = Some(EnvName::new(env).unwrap());
    r.digest = Some(Digest::of(b"app"));
    r
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_what_the_history_and_the_delivery_log_hold() {
    let history = InMemoryHistory::new();
    let deliveries = InMemoryDeliveryLog::new();
    let mut ok = event(EventKind::PromotionSucceeded, "staging", 0);
    ok.gates = vec![GateResult {
        gate: "smoke".into(),
        status: GateStatus::Passed,
        message: String::new(),
        duration_ms: 1500,
    }];
    history.append(ok).await.unwrap();
    history
        .append(event(EventKind::PromotionFailed, "staging", 1))
        .await
        .unwrap();
    history
        .append(event(EventKind::ApprovalRequested, "prod", 2))
        .await
        .unwrap();
    history
        .append(event(EventKind::PromotionSucceeded, "prod", 12))
        .await
        .unwrap();
    for seq in [1, 2] {
        deliveries
            .record(&DeliveryOutcome {
                webhook: "hooks".into(),
                seq,
                event_id: uuid::Uuid::new_v4(),
                status: DeliveryStatus::Failed,
                attempts: 3,
                http_status: Some(500),
                error: Some("HTTP 500".into()),
                time: Utc::now(),
            })
            .await
            .unwrap();
    }

    let metrics = Metrics::new();
    metrics.refresh(&history, Some(&deliveries)).await.unwrap();
    let text = metrics.render();
    let promotions = |env: &str, outcome: &str| {
        value(
            &text,
            &format!("floe_promotions_total{{environment=\"{env}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(promotions("staging", "succeeded"), 1.0);
    assert_eq!(promotions("staging", "failed"), 1.0);
    assert_eq!(promotions("prod", "succeeded"), 1.0);
    assert_eq!(
        value(
            &text,
            "floe_gate_duration_seconds_sum{gate=\"smoke\",status=\"passed\"}"
        ),
        1.5
    );
    // Requested at minute 2, promoted at minute 12.
    assert_eq!(
        value(
            &text,
            "floe_approval_wait_seconds_sum{environment=\"prod\",outcome=\"promoted\"}"
        ),
        600.0
    );
    assert_eq!(
        value(&text, "floe_webhook_delivery_failures{webhook=\"hooks\"}"),
        2.0
    );

    // Only new events are read again: one more success counts once.
    history
        .append(event(EventKind::PromotionSucceeded, "prod", 20))
        .await
        .unwrap();
    metrics.refresh(&history, None).await.unwrap();
    let text = metrics.render();
    assert_eq!(
        value(
            &text,
            "floe_promotions_total{environment=\"prod\",outcome=\"succeeded\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "floe_promotions_total{environment=\"staging\",outcome=\"succeeded\"}"
        ),
        1.0
    );
}
