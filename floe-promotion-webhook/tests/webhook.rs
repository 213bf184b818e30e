//! The webhook notifier against a real HTTP receiver on loopback: what it sends (checked
//! against the official CloudEvents and CDEvents JSON schemas), its signature (checked by the
//! `standardwebhooks` crate), retries, a dead endpoint, and secrets that never leak.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_promotion::config::{HeaderValue, Secret, WebhookSettings};
use floe_promotion::history::{EventKind, ExportFormat, HistoryQuery};
use floe_promotion::notify::{DeliveryLog, DeliveryQuery, DeliveryStatus, InMemoryDeliveryLog};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use floe_promotion_webhook::WebhookNotifier;
use floe_promotion_webhook::testing::{Receiver, closed_port};
use serde_json::Value;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn fixture(path: &str) -> Value {
    let file = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&file).expect("fixture")).expect("json")
}

fn hook(url: String, retries: u32) -> WebhookSettings {
    let mut s = WebhookSettings::new(url).with_secret("HOOK_SECRET", Secret::new(SECRET));
    s.retry_count = retries;
    s.timeout = Duration::from_secs(2);
    s
}

fn notifier(
    p: &TestPipeline,
    settings: WebhookSettings,
    log: &InMemoryDeliveryLog,
) -> Arc<WebhookNotifier> {
    Arc::new(
        WebhookNotifier::builder(settings, Arc::new(p.history.clone()), Arc::new(log.clone()))
            .config(Arc::new(
                config::InMemoryConfig::new(p.settings.clone()).unwrap(),
            ))
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .build()
            .unwrap(),
    )
}

fn req(p: &TestPipeline, version: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, "dev", "staging", p.actor("ci")).unwrap()
}

fn verify_signature(r: &floe_promotion_webhook::testing::Received) {
    let mut headers = http::HeaderMap::new();
    for (n, v) in &r.headers {
        headers.append(
            http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&r.body, &headers)
        .expect("the signature verifies with the secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_signed_cloudevents_with_cdevents_types() {
    let p = TestPipeline::new(&["dev", "staging"]);
    for (v, c) in [("v1", b"one"), ("v2", b"two")] {
        p.push_release("app", v, c).await;
    }
    let rx = Receiver::start().await.unwrap();
    let log = InMemoryDeliveryLog::new();
    let hook = notifier(&p, hook(rx.url("/floe"), 0), &log);
    let m = p
        .builder()
        .notifier(hook)
        .manual_delivery()
        .build()
        .unwrap();
    m.promote(req(&p, "v1")).await.unwrap();
    m.promote(req(&p, "v2")).await.unwrap();
    m.rollback(RollbackRequest::new("app", "staging", "v1", p.actor("ops"), "bad v2").unwrap())
        .await
        .unwrap();
    let staging = EnvName::new("staging").unwrap();
    m.lock(&staging, &p.actor("ops"), "freeze", None)
        .await
        .unwrap();
    m.deliver_notifications().await.unwrap();

    let history = p.history.query(&HistoryQuery::default()).await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), history.len(), "one request per event");

    let ce_schema = jsonschema::validator_for(&fixture("cloudevents.json")).unwrap();
    let registry = jsonschema::Registry::new()
        .add(
            "https://cdevents.dev/0.5.1/schema/links/embeddedlinksarray",
            fixture("cdevents-0.5.1/links/embeddedlinksarray.json"),
        )
        .unwrap()
        .add(
            "https://cdevents.dev/0.5.1/schema/links/embeddedlinkend",
            fixture("cdevents-0.5.1/links/embeddedlinkend.json"),
        )
        .unwrap()
        .add(
            "https://cdevents.dev/0.5.1/schema/links/embeddedlinkpath",
            fixture("cdevents-0.5.1/links/embeddedlinkpath.json"),
        )
        .unwrap()
        .add(
            "https://cdevents.dev/0.5.1/schema/links/embeddedlinkrelation",
            fixture("cdevents-0.5.1/links/embeddedlinkrelation.json"),
        )
        .unwrap()
        .prepare()
        .unwrap();
    let cd_schema = |file: &str| {
        jsonschema::options()
            .with_registry(&registry)
            .should_validate_formats(true)
            .build(&fixture(file))
            .unwrap()
    };
    let deployed = cd_schema("cdevents-0.5.1/servicedeployed.json");
    let upgraded = cd_schema("cdevents-0.5.1/serviceupgraded.json");
    let rolledback = cd_schema("cdevents-0.5.1/servicerolledback.json");

    let mut types = Vec::new();
    for (r, event) in got.iter().zip(&history) {
        assert_eq!(r.path, "/floe");
        assert_eq!(
            r.header("content-type"),
            Some("application/cloudevents+json")
        );
        let ce = r.json();
        let errors: Vec<String> = ce_schema.iter_errors(&ce).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {ce}");
        for attr in [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "data",
        ] {
            assert!(ce.get(attr).is_some(), "{attr} missing in {ce}");
        }
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["datacontenttype"], "application/json");
        assert_eq!(ce["id"], event.record.id.to_string());
        assert_eq!(
            r.header("webhook-id"),
            Some(event.record.id.to_string().as_str())
        );
        assert!(chrono::DateTime::parse_from_rfc3339(ce["time"].as_str().unwrap()).is_ok());
        verify_signature(r);
        let ty = ce["type"].as_str().unwrap().to_string();
        let schema = match ty.as_str() {
            "dev.cdevents.service.deployed.0.3.0" => Some(&deployed),
            "dev.cdevents.service.upgraded.0.3.0" => Some(&upgraded),
            "dev.cdevents.service.rolledback.0.3.0" => Some(&rolledback),
            _ => None,
        };
        if let Some(schema) = schema {
            let errors: Vec<String> = schema
                .iter_errors(&ce["data"])
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?} in {}", ce["data"]);
            let digest = event.record.digest.as_ref().unwrap();
            assert_eq!(
                ce["data"]["subject"]["content"]["artifactId"],
                format!(
                    "pkg:oci/app@sha256%3A{}?repository_url={}",
                    digest.hex(),
                    p.repo("staging", "app")
                )
            );
            assert_eq!(
                ce["data"]["subject"]["content"]["environment"]["id"],
                "staging"
            );
            assert_eq!(ce["subject"], "staging/app");
        } else {
            assert_eq!(ce["data"]["seq"], event.seq);
        }
        types.push(ty);
    }
    let wanted = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(
        wanted("dev.cdevents.service.deployed.0.3.0"),
        1,
        "{types:?}"
    );
    assert_eq!(
        wanted("dev.cdevents.service.upgraded.0.3.0"),
        1,
        "{types:?}"
    );
    assert_eq!(
        wanted("dev.cdevents.service.rolledback.0.3.0"),
        1,
        "{types:?}"
    );
    assert_eq!(wanted("dev.floe.environment.locked"), 1, "{types:?}");
    assert!(
        types.iter().any(|t| t == "dev.floe.promotion.requested"),
        "{types:?}"
    );
    let outcomes = log.list(&DeliveryQuery::default()).await.unwrap();
    assert_eq!(outcomes.len(), history.len());
    assert!(
        outcomes
            .iter()
            .all(|o| o.status == DeliveryStatus::Delivered && o.attempts == 1)
    );
}

/// Delivers one lock event to an endpoint and returns the receiver and the outcome log.
async fn deliver_one(rx: &Receiver, retries: u32) -> (InMemoryDeliveryLog, u64) {
    let p = TestPipeline::new(&["dev", "staging"]);
    let log = InMemoryDeliveryLog::new();
    let m = p
        .builder()
        .notifier(notifier(&p, hook(rx.url("/h"), retries), &log))
        .manual_delivery()
        .build()
        .unwrap();
    m.lock(&EnvName::new("dev").unwrap(), &p.actor("ops"), "x", None)
        .await
        .unwrap();
    let report = m.deliver_notifications().await.unwrap();
    let webhook = report
        .iter()
        .find(|d| d.notifier.starts_with("webhook:"))
        .unwrap();
    assert_eq!(
        webhook.error, None,
        "a failed delivery is acknowledged (dead letter)"
    );
    (log, webhook.cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_success() {
    let rx = Receiver::start().await.unwrap();
    rx.script([500, 503, 429]);
    let (log, cursor) = deliver_one(&rx, 3).await;
    assert_eq!(rx.count(), 4, "three failures, then success");
    let o = &log.list(&DeliveryQuery::default()).await.unwrap()[0];
    assert_eq!(
        (o.status, o.attempts, o.http_status),
        (DeliveryStatus::Delivered, 4, Some(204))
    );
    assert_eq!(cursor, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_exhaust_the_retries_and_are_recorded_failed() {
    let rx = Receiver::start().await.unwrap();
    rx.always(502);
    let (log, cursor) = deliver_one(&rx, 2).await;
    assert_eq!(rx.count(), 3, "one attempt and two retries");
    let o = &log.list(&DeliveryQuery::default()).await.unwrap()[0];
    assert_eq!(
        (o.status, o.attempts, o.http_status),
        (DeliveryStatus::Failed, 3, Some(502))
    );
    assert_eq!(cursor, 1, "the cursor moved on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    let rx = Receiver::start().await.unwrap();
    rx.always(400);
    let (log, _) = deliver_one(&rx, 5).await;
    assert_eq!(rx.count(), 1);
    let o = &log.list(&DeliveryQuery::default()).await.unwrap()[0];
    assert_eq!(
        (o.status, o.attempts, o.http_status),
        (DeliveryStatus::Failed, 1, Some(400))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried() {
    let rx = Receiver::start().await.unwrap();
    rx.delay(Duration::from_secs(4));
    let (log, _) = deliver_one(&rx, 1).await;
    assert_eq!(rx.count(), 2);
    let o = &log.list(&DeliveryQuery::default()).await.unwrap()[0];
    assert_eq!(o.status, DeliveryStatus::Failed);
    assert!(o.error.as_deref().unwrap().contains("timed out"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_costs_the_promotion_nothing() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let log = InMemoryDeliveryLog::new();
    let dead = format!("http://127.0.0.1:{}/hook", closed_port().unwrap());
    let m = p
        .builder()
        .notifier(notifier(&p, hook(dead, 3), &log))
        .build()
        .unwrap();
    let start = Instant::now();
    let record = m.promote(req(&p, "v1")).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(record.outcome, manager::Outcome::Promoted);
    let report = m.deliver_notifications().await.unwrap();
    assert!(report.iter().all(|d| d.error.is_none()), "{report:?}");
    let failed = log
        .list(&DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "both events recorded failed: {failed:?}");
    assert!(
        failed
            .iter()
            .all(|o| o.attempts == 4 && o.http_status.is_none())
    );
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot connect"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_filter_selects_kinds() {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    let rx = Receiver::start().await.unwrap();
    let log = InMemoryDeliveryLog::new();
    let mut settings = hook(rx.url("/"), 0);
    settings.events = vec![EventKind::PromotionSucceeded];
    let m = p
        .builder()
        .notifier(notifier(&p, settings, &log))
        .manual_delivery()
        .build()
        .unwrap();
    m.promote(req(&p, "v1")).await.unwrap();
    m.lock(&EnvName::new("dev").unwrap(), &p.actor("ops"), "x", None)
        .await
        .unwrap();
    let report = m.deliver_notifications().await.unwrap();
    assert_eq!(rx.count(), 1);
    assert_eq!(
        rx.received()[0].json()["type"],
        "dev.cdevents.service.deployed.0.3.0"
    );
    let webhook = report
        .iter()
        .find(|d| d.notifier.starts_with("webhook:"))
        .unwrap();
    assert_eq!(webhook.cursor, 3, "filtered events are acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_served_in_parallel() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let log = InMemoryDeliveryLog::new();
    let (a, b) = (
        Receiver::start().await.unwrap(),
        Receiver::start().await.unwrap(),
    );
    a.delay(Duration::from_millis(800));
    b.delay(Duration::from_millis(800));
    let m = p
        .builder()
        .notifier(notifier(&p, hook(a.url("/a"), 0), &log))
        .notifier(notifier(&p, hook(b.url("/b"), 0), &log))
        .manual_delivery()
        .build()
        .unwrap();
    m.lock(&EnvName::new("dev").unwrap(), &p.actor("ops"), "x", None)
        .await
        .unwrap();
    let start = Instant::now();
    m.deliver_notifications().await.unwrap();
    assert_eq!((a.count(), b.count()), (1, 1));
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

/// Collects everything `tracing` writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_leak() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (outcomes, debug, export, received) = rt.block_on(async {
        let p = TestPipeline::new(&["dev", "staging"]);
        p.push_release("app", "v1", b"one").await;
        let rx = Receiver::start().await.unwrap();
        rx.script([503, 400]);
        let log = InMemoryDeliveryLog::new();
        let mut settings = hook(
            rx.url("/in").replace("http://", "http://user:pa55word@") + "?token=t0ken",
            1,
        );
        settings.headers.push((
            "X-Api-Key".into(),
            HeaderValue::Secret {
                env: "API_KEY".into(),
                value: Secret::new("k3y-value"),
            },
        ));
        let n = notifier(&p, settings, &log);
        let debug = format!("{n:?} {:?}", n.settings());
        assert_eq!(
            n.name(),
            format!("webhook:http://127.0.0.1:{}/in", rx.port())
        );
        let m = p.builder().notifier(n).manual_delivery().build().unwrap();
        m.promote(req(&p, "v1")).await.unwrap();
        m.deliver_notifications().await.unwrap();
        let mut export = Vec::new();
        p.history
            .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut export)
            .await
            .unwrap();
        let outcomes = format!("{:?}", log.list(&DeliveryQuery::default()).await.unwrap());
        (
            outcomes,
            debug,
            String::from_utf8(export).unwrap(),
            rx.received(),
        )
    });
    assert_eq!(
        received[0].header("x-api-key"),
        Some("k3y-value"),
        "the header is sent"
    );
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook"),
        "the test captured the notifier's logs: {logs}"
    );
    let key = SECRET.trim_start_matches("whsec_");
    for (what, text) in [
        ("logs", &logs),
        ("outcomes", &outcomes),
        ("debug", &debug),
        ("export", &export),
    ] {
        for secret in [key, "k3y-value", "pa55word", "t0ken"] {
            assert!(!text.contains(secret), "{secret} in {what}: {text}");
        }
    }
}
